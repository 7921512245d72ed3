package discord_test

import (
	"context"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord/discordtest"
)

// newRegisteredWorld is a world whose slash commands Discord knows: a
// subcommand can be run only once its command is registered.
func newRegisteredWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.eventually("the commands to be registered", func() bool { _, ok := w.dc.Commands(""); return ok })
	return w
}

// TestCommunityAdmins: who runs a server is Discord's to say (Manage
// Server or Administrator, from the interaction's member permissions, or
// for a typed command from the guild's roles), and the server may add
// roles and members of its own.
func TestCommunityAdmins(t *testing.T) {
	t.Parallel()
	persona := func(w *world, u discordtest.User, text string) []discordtest.Message {
		t.Helper()
		_, msgs := w.command(u, w.general, "settings persona set", discordtest.Option{Name: "text", Value: text})
		return msgs
	}
	settings := func(w *world) []bot.Setting {
		t.Helper()
		rows, err := w.store.CommunitySettings(context.Background(), "discord:"+w.guild)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}

	t.Run("ManageServerRole", func(t *testing.T) {
		t.Parallel()
		w := newRegisteredWorld(t)
		mods := w.dc.NewRole(w.guild, "Moderators", discordtest.DefaultMemberPermissions|discordtest.PermManageGuild)
		w.dc.GiveRole(w.guild, w.bob.ID, mods)
		if msgs := persona(w, w.alice, "You are a pirate."); !containsText(msgs, "can use /settings") {
			t.Fatalf("a plain member's /settings: %q, want a refusal", texts(msgs))
		}
		if rows := settings(w); len(rows) != 0 {
			t.Fatalf("a refused /settings stored %+v", rows)
		}
		if msgs := persona(w, w.bob, "You are a pirate."); !containsText(msgs, "Done: persona") || !msgs[0].Ephemeral() {
			t.Fatalf("a member with Manage Server: %q, want a private confirmation", texts(msgs))
		}
		if rows := settings(w); len(rows) != 1 || rows[0].UpdatedBy != w.identity(w.bob) {
			t.Fatalf("settings=%+v", rows)
		}
	})

	t.Run("Administrator", func(t *testing.T) {
		t.Parallel()
		w := newRegisteredWorld(t)
		admins := w.dc.NewRole(w.guild, "Admins", discordtest.PermAdministrator)
		w.dc.GiveRole(w.guild, w.bob.ID, admins)
		if msgs := persona(w, w.bob, "You are a poet."); !containsText(msgs, "Done: persona") {
			t.Fatalf("an Administrator: %q", texts(msgs))
		}
	})

	t.Run("TypedCommandByTheOwner", func(t *testing.T) {
		// A mention carries the member's roles but no permissions: the
		// adapter reads the guild's roles and owner.
		t.Parallel()
		w := newRegisteredWorld(t)
		w.dc.SetOwner(w.guild, w.bob.ID)
		m, _ := w.mention(w.bob, w.general, "/settings budget daily 5000")
		w.waitHandled("discord:message:" + m.ID)
		rows := settings(w)
		if len(rows) != 1 || rows[0].Key != bot.SettingBudgetDaily || rows[0].Value != "5000" {
			t.Fatalf("the owner's typed /settings stored %+v", rows)
		}
		if got := w.dc.RequestsTo("GET", "/guilds/"+w.guild); len(got) != 1 {
			t.Fatalf("%d reads of the guild, want 1", len(got))
		}
		// A plain member's typed /settings is refused with the same rule.
		m, _ = w.mention(w.alice, w.general, "/settings budget daily 1")
		w.waitHandled("discord:message:" + m.ID)
		if rows := settings(w); rows[0].Value != "5000" {
			t.Fatalf("a plain member changed the budget: %+v", rows)
		}
		// The guild's roles were remembered.
		if got := w.dc.RequestsTo("GET", "/guilds/"+w.guild); len(got) != 1 {
			t.Fatalf("%d reads of the guild, want it remembered", len(got))
		}
	})

	t.Run("RoleAddedAsAdmin", func(t *testing.T) {
		t.Parallel()
		w := newRegisteredWorld(t)
		helpers := w.dc.NewRole(w.guild, "Helpers", discordtest.DefaultMemberPermissions)
		w.dc.GiveRole(w.guild, w.bob.ID, helpers)
		_, msgs := w.command(w.admin, w.general, "settings admins add", discordtest.Option{Name: "who", Value: helpers})
		if !containsText(msgs, "Done: admins") || !containsText(msgs, "<@&"+helpers+">") {
			t.Fatalf("adding a role: %q", texts(msgs))
		}
		if msgs := persona(w, w.bob, "You are a guide."); !containsText(msgs, "Done: persona") {
			t.Fatalf("a member of a role the server made admin: %q", texts(msgs))
		}
		_, msgs = w.command(w.admin, w.general, "settings admins remove", discordtest.Option{Name: "who", Value: helpers})
		if !containsText(msgs, "Done: admins") {
			t.Fatalf("removing the role: %q", texts(msgs))
		}
		if msgs := persona(w, w.bob, "You are a guide again."); !containsText(msgs, "can use /settings") {
			t.Fatalf("after the role was removed: %q", texts(msgs))
		}
	})

	t.Run("ChannelOptionScopesASetting", func(t *testing.T) {
		t.Parallel()
		w := newRegisteredWorld(t)
		other := w.dc.NewChannel(w.guild)
		_, msgs := w.command(w.admin, w.general, "settings persona set",
			discordtest.Option{Name: "text", Value: "You answer in French."}, discordtest.Option{Name: "channel", Value: other})
		if !containsText(msgs, "<#"+other+">") {
			t.Fatalf("a channel's persona: %q", texts(msgs))
		}
		rows := settings(w)
		if len(rows) != 1 || rows[0].Channel != other {
			t.Fatalf("settings=%+v, want the persona of channel %s", rows, other)
		}
		w.mention(w.alice, other, "bonjour")
		w.mention(w.alice, w.general, "hello")
		reqs := w.asked("")
		if len(reqs) < 2 {
			t.Fatalf("%d requests upstream", len(reqs))
		}
		if sp := reqs[len(reqs)-2].Messages[0].Content; sp != "You answer in French." {
			t.Fatalf("the system prompt in the channel is %q", sp)
		}
		if sp := reqs[len(reqs)-1].Messages[0].Content; strings.Contains(sp, "French") {
			t.Fatalf("the channel's persona leaked into another channel: %q", sp)
		}
	})
}

// TestThreadsFollowTheirChannel: a thread is a channel of its own on
// Discord, but its channel's settings apply to it.
func TestThreadsFollowTheirChannel(t *testing.T) {
	t.Parallel()
	w := newRegisteredWorld(t)
	other := w.dc.NewChannel(w.guild)
	thread := w.dc.NewThread(w.guild, w.general)
	for _, c := range [][]discordtest.Option{
		{{Name: "list", Value: "<#" + w.general + ">"}},
	} {
		if _, msgs := w.command(w.admin, w.general, "settings channels only", c...); !containsText(msgs, "Done: channels") {
			t.Fatalf("channels only: %q", texts(msgs))
		}
	}
	if _, msgs := w.command(w.admin, w.general, "settings persona set", discordtest.Option{Name: "text", Value: "You speak like a lighthouse keeper."}, discordtest.Option{Name: "channel", Value: w.general}); !containsText(msgs, "Done: persona") {
		t.Fatalf("persona: %q", texts(msgs))
	}
	before := len(w.asked(""))
	m, _ := w.mention(w.alice, thread, "hello from the thread")
	w.waitHandled("discord:message:" + m.ID)
	reqs := w.asked("")
	if len(reqs) != before+1 || reqs[len(reqs)-1].Messages[0].Content != "You speak like a lighthouse keeper." {
		t.Fatalf("a mention in a thread of #general: %d requests, want its channel's persona", len(reqs)-before)
	}
	m, _ = w.mention(w.alice, other, "hello from elsewhere")
	w.waitHandled("discord:message:" + m.ID)
	if got := len(w.asked("")); got != before+1 {
		t.Fatalf("a mention outside the allowed channels was answered (%d requests)", got-before)
	}
	if replies := w.repliesTo(m); len(replies) != 0 {
		t.Fatalf("a mention outside the allowed channels got %q", texts(replies))
	}
}

func TestAutocompleteFollowsModelRules(t *testing.T) {
	t.Parallel()
	w := newRegisteredWorld(t)
	ask := func() []discordtest.Choice {
		t.Helper()
		in := w.dc.Autocomplete(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "hi"},
			discordtest.Option{Name: "model", Value: "gpt", Focused: true})
		w.eventually("the autocomplete answer", func() bool { i, _ := w.dc.Interaction(in.ID); return i.ResponseType != 0 })
		in, _ = w.dc.Interaction(in.ID)
		return in.Choices
	}
	openai := func(cs []discordtest.Choice) int {
		n := 0
		for _, c := range cs {
			if v, _ := c.Value.(string); strings.HasPrefix(v, "openai/") {
				n++
			}
		}
		return n
	}
	if openai(ask()) == 0 {
		t.Fatal("no openai models offered for gpt before any rule")
	}
	_, msgs := w.command(w.admin, w.general, "settings models deny", discordtest.Option{Name: "list", Value: "openai/*"})
	if !containsText(msgs, "Done: models deny") {
		t.Fatalf("deny: %q", texts(msgs))
	}
	if n := openai(ask()); n != 0 {
		t.Fatalf("%d openai models offered after the server denied openai/*", n)
	}
}
