package slack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
)

// agentWorld is a world with Slack's agent surfaces on: native streams,
// the agent messaging experience.
func agentWorld(t *testing.T, change ...func(*setup)) *world {
	t.Helper()
	return newWorld(t, append([]func(*setup){func(s *setup) {
		s.opts.NativeStreaming, s.opts.AgentView = true, true
	}}, change...)...)
}

// streamedAfter waits for the bot's natively streamed answer after ts in
// a thread, stopped (its footer shown), and returns it.
func (w *world) streamedAfter(channel, thread, ts string) slacktest.Message {
	w.t.Helper()
	var got slacktest.Message
	w.eventually("a streamed answer after "+ts+" is stopped", func() bool {
		for _, m := range w.slack.BotMessages(channel) {
			if st := w.final(m.TS).Status; m.ThreadTS == thread && after(m.TS, ts) && m.Streamed && !m.Streaming && (st == bot.StatusDone || st == bot.StatusFailed) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// callsOn counts the successful calls of method on the message ts.
func (w *world) callsOn(method, ts string) int {
	n := 0
	for _, c := range w.slack.Calls(method) {
		if c.Params.Get("ts") == ts && c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func TestNativeStreaming(t *testing.T) {
	w := agentWorld(t)
	d := w.slack.Mention(slacktest.Post{User: alice, Channel: general, Text: "Why is the sky blue? Tell me at length."})
	answer := w.streamedAfter(general, d.TS, d.TS)
	final := w.final(answer.TS)

	t.Run("OneStreamNoUpdates", func(t *testing.T) {
		starts := w.slack.Calls("chat.startStream")
		if len(starts) != 1 || starts[0].Params.Get("thread_ts") != d.TS {
			t.Fatalf("chat.startStream calls %+v, want one in the mention's thread", starts)
		}
		if p := starts[0].Params; p.Get("recipient_team_id") != slacktest.TeamID || p.Get("recipient_user_id") != alice {
			t.Fatalf("startStream recipient %q/%q, want the asker (Slack requires it in channels)", p.Get("recipient_team_id"), p.Get("recipient_user_id"))
		}
		if n := w.callsOn("chat.appendStream", answer.TS); n < 1 {
			t.Fatalf("chat.appendStream calls=%d, want the text appended as it came", n)
		}
		if n := w.callsOn("chat.stopStream", answer.TS); n != 1 {
			t.Fatalf("chat.stopStream calls=%d, want 1", n)
		}
		if n := len(w.slack.Calls("chat.update")); n != 0 {
			t.Fatalf("chat.update calls=%d, want none: the answer streamed natively", n)
		}
	})
	t.Run("ShowsTheWholeAnswerFooterAndThumbs", func(t *testing.T) {
		if final.Status != bot.StatusDone || !strings.Contains(final.Text, "You said: Why is the sky blue?") {
			t.Fatalf("engine's last message: %s %q", final.Status, final.Text)
		}
		want := final.Text + "\n" + final.Footer + "\n[👍] [👎]"
		if got := answer.Visible(); got != want {
			t.Fatalf("Slack shows\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("ThreadFollowUpReadsTheStreamBack", func(t *testing.T) {
		w.slack.Say(slacktest.Post{User: alice, Channel: general, Thread: d.TS, Text: "And sunsets?"})
		w.streamedAfter(general, d.TS, answer.TS)
		reqs := w.simRequests()
		msgs := reqs[len(reqs)-1].Messages
		if got := msgs[len(msgs)-2]; got.Role != bot.RoleAssistant || got.Content != final.Text {
			t.Fatalf("the model got %s %q as the earlier answer, want the streamed text", got.Role, got.Content)
		}
	})
	t.Run("ChargedOnce", func(t *testing.T) {
		if got := len(w.charges(alice)); got != 2 {
			t.Fatalf("charges=%d, want 2 (two answers)", got)
		}
	})
}

func TestNativeStreamingFallsBack(t *testing.T) {
	t.Run("WorkspaceRefuses", func(t *testing.T) {
		w := agentWorld(t)
		w.slack.Refuse("chat.startStream", "not_allowed")
		_, first := w.mention(slacktest.Post{User: alice, Channel: general, Text: "first"})
		_, second := w.mention(slacktest.Post{User: bob, Channel: general, Text: "second"})
		if got, want := second.Visible(), slack.Mrkdwn(w.final(second.TS).Text)+"\n"+w.final(second.TS).Footer; got != want {
			t.Fatalf("the fallback answer shows\n%s\nwant\n%s", got, want)
		}
		if w.callsOn("chat.update", first.TS) < 1 {
			t.Fatal("the first answer was not streamed with chat.update")
		}
		if n := len(w.slack.Calls("chat.startStream")); n != 1 {
			t.Fatalf("chat.startStream was tried %d times, want once: the workspace's refusal is remembered", n)
		}
	})
	t.Run("StreamBreaks", func(t *testing.T) {
		w := agentWorld(t)
		w.slack.Refuse("chat.appendStream", "message_not_in_streaming_state")
		d := w.slack.Mention(slacktest.Post{User: alice, Channel: general, Text: "a long answer please"})
		answer := w.answerAfter(general, d.TS, d.TS)
		if answer.Streamed || !strings.Contains(answer.Visible(), "You said: a long answer please") {
			t.Fatalf("after a broken stream Slack shows %q (streamed=%v), want the whole answer via chat.update", answer.Visible(), answer.Streamed)
		}
	})
}

func TestFeedback(t *testing.T) {
	w := agentWorld(t)
	d := w.slack.Mention(slacktest.Post{User: alice, Channel: general, Text: "rate me"})
	answer := w.streamedAfter(general, d.TS, d.TS)
	model := w.final(answer.TS).Meta.Model

	saw := func(user, text string) func() bool {
		return func() bool {
			for _, m := range w.slack.Ephemerals(user) {
				if strings.Contains(m.Visible(), text) {
					return true
				}
			}
			return false
		}
	}
	w.slack.Click(bob, general, answer.TS, "up")
	w.eventually("bob is thanked", saw(bob, "👍 for "+model))
	w.slack.Click(bob, general, answer.TS, "down")
	w.eventually("bob's second vote is refused", saw(bob, "already rated"))
	w.slack.Click(alice, general, answer.TS, "down")
	w.eventually("alice is thanked", saw(alice, "👎 for "+model))

	counts, err := w.store.FeedbackCounts(context.Background(), "slack:"+slacktest.TeamID)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 || counts[0] != (bot.ModelFeedback{Model: model, Up: 1, Down: 1}) {
		t.Fatalf("recorded %+v, want one up (bob) and one down (alice) for %s", counts, model)
	}
	w.slack.Slash(alice, general, "leaderboard", "")
	w.eventually("the leaderboard counts the thumbs", func() bool {
		for _, m := range w.slack.Messages(general) {
			if strings.Contains(m.Visible(), model) && strings.Contains(m.Visible(), "👍 1 👎 1") {
				return true
			}
		}
		return false
	})
}

func TestAgentDM(t *testing.T) {
	w := agentWorld(t)
	dm := slacktest.DMChannel(alice)

	w.slack.OpenDM(alice, "messages")
	w.eventually("the DM offers suggested prompts", func() bool { return len(w.slack.Prompts(dm)) == 3 })
	prompts := w.slack.Prompts(dm)
	for i, want := range []string{"Ask", "Compare", "balance"} {
		if !strings.Contains(prompts[i].Title+prompts[i].Message, want) {
			t.Errorf("prompt %d is %+v, want one for %s", i, prompts[i], want)
		}
	}

	w.slack.LookAt(alice, random)
	q := w.slack.Say(slacktest.Post{User: alice, Channel: dm, Text: "What is this channel about?"})
	answer := w.streamedAfter(dm, q.TS, q.TS)

	t.Run("AnsweredInItsOwnThread", func(t *testing.T) {
		if answer.ThreadTS != q.TS {
			t.Fatalf("answer thread %q, want the question's %q", answer.ThreadTS, q.TS)
		}
	})
	t.Run("TitledAfterTheQuestion", func(t *testing.T) {
		if got := w.slack.Title(dm, q.TS); got != "What is this channel about?" {
			t.Fatalf("title %q", got)
		}
	})
	t.Run("StatusWhileAnsweringClearedAfter", func(t *testing.T) {
		if got := w.slack.Statuses(dm, q.TS); len(got) != 2 || got[0] == "" || got[1] != "" {
			t.Fatalf("statuses %q, want one set then cleared", got)
		}
	})
	t.Run("TheChannelInViewIsNamedToTheModel", func(t *testing.T) {
		reqs := w.simRequests()
		system := reqs[len(reqs)-1].Messages[0].Content
		if !strings.Contains(system, "<#"+random+">") {
			t.Fatalf("system prompt %q does not name the channel the member looks at", system)
		}
	})
	t.Run("CommandsAsPlainMessages", func(t *testing.T) {
		before := len(w.simRequests())
		b := w.slack.Say(slacktest.Post{User: alice, Channel: dm, Text: "balance"})
		var got string
		w.eventually("balance answers", func() bool {
			for _, m := range w.slack.Thread(dm, b.TS) {
				if m.BotID != "" && strings.Contains(m.Visible(), "tokens") {
					got = m.Visible()
					return true
				}
			}
			return false
		})
		if n := len(w.simRequests()) - before; n != 0 {
			t.Fatalf("\"balance\" asked the model %d times; it is a command (shown %q)", n, got)
		}
		h := w.slack.Say(slacktest.Post{User: alice, Channel: dm, Text: "help"})
		w.eventually("help answers with the commands", func() bool {
			for _, m := range w.slack.Thread(dm, h.TS) {
				if m.BotID != "" && strings.Contains(m.Visible(), "compare") {
					return true
				}
			}
			return false
		})
	})
	t.Run("CompareModelsColonPrompt", func(t *testing.T) {
		c := w.slack.Say(slacktest.Post{User: alice, Channel: dm, Text: "compare " + compareModels[0] + " " + compareModels[1] + ": Say hi"})
		w.eventually("the compare finishes", func() bool {
			for _, m := range w.slack.Thread(dm, c.TS) {
				v := m.Visible()
				if m.BotID != "" && strings.Contains(v, compareModels[0]) && strings.Contains(v, compareModels[1]) && strings.Contains(v, "[A]") {
					return true
				}
			}
			return false
		})
	})
}

func TestMessageShortcut(t *testing.T) {
	w := agentWorld(t)
	w.slack.Say(slacktest.Post{User: bob, Channel: general, Text: "The deploy freeze starts Friday at 18:00 UTC."})
	msgs := w.slack.Messages(general)
	target := msgs[len(msgs)-1]
	w.slack.Shortcut(alice, general, target.TS, slack.DefaultShortcutID)
	answer := w.streamedAfter(general, target.TS, target.TS)
	if answer.ThreadTS != target.TS {
		t.Fatalf("the answer went to thread %q, want the message's %q", answer.ThreadTS, target.TS)
	}
	reqs := w.simRequests()
	system := reqs[len(reqs)-1].Messages[0].Content
	if !strings.Contains(system, "The deploy freeze starts Friday at 18:00 UTC.") || !strings.Contains(system, "Bob") {
		t.Fatalf("the model was not given the message: system prompt %q", system)
	}
	if got := len(w.charges(alice)); got != 1 {
		t.Fatalf("alice was charged %d times, want once", got)
	}
}

func TestAppHome(t *testing.T) {
	w := agentWorld(t)
	w.slack.SetRole(admin, "admin")
	w.slack.OpenDM(alice, "home")
	w.slack.OpenDM(admin, "home")
	var member, adm string
	w.eventually("both Home tabs are published", func() bool {
		m, ok1 := w.slack.Home(alice)
		a, ok2 := w.slack.Home(admin)
		member, adm = m.Visible(), a.Visible()
		return ok1 && ok2
	})
	for _, want := range []string{"Your balance", "tokens", "free", "Your usage by model", "Leaderboard"} {
		if !strings.Contains(member, want) {
			t.Errorf("a member's App Home lacks %q:\n%s", want, member)
		}
	}
	if strings.Contains(member, "Workspace settings") {
		t.Errorf("a member sees the admins' settings:\n%s", member)
	}
	if !strings.Contains(adm, "Workspace settings and pool") || !strings.Contains(adm, "Pool") {
		t.Errorf("an admin's App Home lacks the settings and pool:\n%s", adm)
	}
}
