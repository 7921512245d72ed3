package slack_test

import (
	"context"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/slack/slacktest"
)

// TestWorkspaceAdmins: who runs a workspace is Slack's to say (users.info
// is_admin and is_owner, asked once and remembered), and a workspace may
// add members of its own.
func TestWorkspaceAdmins(t *testing.T) {
	t.Parallel()
	settings := func(w *world) []bot.Setting {
		t.Helper()
		rows, err := w.store.CommunitySettings(context.Background(), "slack:"+slacktest.TeamID)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	usersInfo := func(w *world, user string) int {
		n := 0
		for _, c := range w.slack.Calls("users.info") {
			if c.Params.Get("user") == user {
				n++
			}
		}
		return n
	}

	t.Run("AdminAndOwnerRunSettingsMembersDoNot", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.slack.SetRole(bob, "owner")
		w.slack.Slash(alice, general, "orchat-settings", "budget daily 5000")
		w.eventually("alice is refused", func() bool { return seenEphemeral(w, alice, "can use /settings") })
		if rows := settings(w); len(rows) != 0 {
			t.Fatalf("a member's /orchat-settings stored %+v", rows)
		}
		w.slack.Slash(bob, general, "orchat-settings", "budget daily 5000")
		w.eventually("the owner's change is confirmed", func() bool { return seenEphemeral(w, bob, "Done: budget daily") })
		w.slack.Slash(bob, general, "orchat-settings", "compare blind on")
		w.eventually("the second change is confirmed", func() bool { return seenEphemeral(w, bob, "Done: compare blind") })
		if n := usersInfo(w, bob); n != 1 {
			t.Fatalf("users.info asked %d times about bob, want once (remembered)", n)
		}
		if rows := settings(w); len(rows) != 2 {
			t.Fatalf("settings=%+v", rows)
		}
	})

	t.Run("MemberAddedAsAdminAndChannelScope", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.slack.SetRole(bob, "admin")
		w.slack.Slash(bob, general, "orchat-settings", "admins add <@UALICE|alice>")
		w.eventually("alice is added", func() bool { return seenEphemeral(w, bob, "Done: admins") })
		w.slack.Slash(alice, general, "orchat-settings", "models deny openai/* channel:<#CRANDOM|random>")
		w.eventually("alice's change is confirmed", func() bool { return seenEphemeral(w, alice, "Done: models deny in") })
		var deny bot.Setting
		for _, r := range settings(w) {
			if r.Key == bot.SettingModelsDeny {
				deny = r
			}
		}
		if deny.Channel != random || deny.Value != "openai/*" || deny.UpdatedBy != w.identity(alice) {
			t.Fatalf("the channel's rule=%+v, want openai/* in %s by alice", deny, random)
		}
	})
}
