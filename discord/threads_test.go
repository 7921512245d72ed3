package discord_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
)

func withThreads(s *setup) { s.opts.Threads = true }

// threadStore is a bot.ThreadStore of function fields (a store shared with
// other processes).
type threadStore struct {
	started func(ctx context.Context, thread string) error
	is      func(ctx context.Context, thread string) (bool, error)
}

func (f threadStore) StartedThread(ctx context.Context, thread string) error {
	return f.started(ctx, thread)
}
func (f threadStore) BotThread(ctx context.Context, thread string) (bool, error) {
	return f.is(ctx, thread)
}

var _ bot.ThreadStore = threadStore{}

// TestThreads: with discord.threads, a mention starts a thread named from
// the question and the answer goes there; the bot answers every message
// in threads it started, without a mention, with the thread as context;
// it archives nothing and stays out of threads it did not start.
func TestThreads(t *testing.T) {
	t.Run("MentionStartsAThreadAndFollowUpsNeedNoMention", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, withThreads)
		m := w.dc.Mention(w.alice, w.general, "Which is the tallest mountain on Earth?")
		w.waitHandled("discord:message:" + m.ID)
		threads := w.dc.StartedThreads()
		if len(threads) != 1 || threads[0].ID != m.ID || threads[0].ParentID != w.general {
			t.Fatalf("threads %+v, want one started from the mention", threads)
		}
		if got, want := threads[0].Name, "Which is the tallest mountain on Earth?"; got != want {
			t.Fatalf("thread name %q, want %q", got, want)
		}
		thread := threads[0].ID
		answers := w.dc.BotMessages(thread)
		if len(answers) != 1 || !strings.Contains(answers[0].Text(), "tallest mountain") {
			t.Fatalf("thread holds %q, want the answer\n%s", texts(answers), w.dc.Dump())
		}
		if n := len(w.dc.BotMessages(w.general)); n != 0 {
			t.Fatalf("%d bot messages in the channel, want the answer in the thread only", n)
		}

		// A follow-up without a mention is answered, with the thread
		// (the question that started it, the first answer) as context.
		f := w.dc.Say(w.alice, thread, "And the second tallest?")
		w.waitHandled("discord:message:" + f.ID)
		if got := w.dc.BotMessages(thread); len(got) != 2 || !strings.Contains(got[1].Text(), "second tallest") {
			t.Fatalf("thread holds %q, want two answers", texts(got))
		}
		reqs := w.asked("And the second tallest?")
		if len(reqs) != 1 {
			t.Fatalf("the model was asked %d times, want 1", len(reqs))
		}
		var context []string
		for _, msg := range reqs[0].Messages[1 : len(reqs[0].Messages)-1] {
			context = append(context, msg.Role+": "+msg.Content)
		}
		joined := strings.Join(context, "\n")
		if !strings.Contains(joined, "user: Which is the tallest mountain on Earth?") || !strings.Contains(joined, "assistant: ") {
			t.Fatalf("context %q, want the opening question and the first answer", context)
		}

		// Nothing is archived, nor changed.
		for _, r := range w.dc.Requests() {
			if r.Method == "PATCH" && strings.HasPrefix(r.Path, "/channels/") && !strings.Contains(r.Path, "/messages/") {
				t.Fatalf("the bot changed a channel: %s %s", r.Method, r.Path)
			}
		}
		if c, _ := w.dc.Channel(thread); c.ThreadMetadata == nil || c.ThreadMetadata.Archived {
			t.Fatalf("thread %+v, want it open", c)
		}
	})

	t.Run("ThreadsTheBotDidNotStartNeedAMention", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, withThreads)
		other := w.dc.NewThread(w.guild, w.general)
		quiet := w.dc.Say(w.alice, other, "people talking among themselves")
		m := w.dc.Mention(w.alice, other, "now a question for the bot")
		w.waitHandled("discord:message:" + m.ID)
		if n := w.timesHandled("discord:message:" + quiet.ID); n != 0 {
			t.Fatalf("a message without a mention in someone else's thread was answered %d times", n)
		}
		if got := w.dc.BotMessages(other); len(got) != 1 {
			t.Fatalf("thread holds %q, want the one answer to the mention", texts(got))
		}
		if n := len(w.dc.StartedThreads()); n != 0 {
			t.Fatalf("a mention inside a thread started %d threads", n)
		}
	})

	t.Run("ThreadsStartedByAnotherProcess", func(t *testing.T) {
		// The store says another process (shard) started the thread: this
		// one answers in it without a mention too.
		t.Parallel()
		var thread string
		var asked []string
		var mu sync.Mutex
		store := threadStore{
			started: func(context.Context, string) error { return nil },
			is: func(_ context.Context, id string) (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, id)
				return id == "discord:"+thread, nil
			},
		}
		w := newWorld(t, func(s *setup) { s.opts.ThreadStore = store })
		mu.Lock()
		thread = w.dc.NewThread(w.guild, w.general)
		mu.Unlock()
		m := w.dc.Say(w.alice, thread, "a follow-up in a shared thread")
		w.waitHandled("discord:message:" + m.ID)
		if got := w.dc.BotMessages(thread); len(got) != 1 {
			t.Fatalf("thread holds %q, want the answer", texts(got))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(asked) == 0 || asked[0] != "discord:"+thread {
			t.Fatalf("the store was asked %q, want the thread by its platform name", asked)
		}
	})

	t.Run("OffByDefault", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m, replies := w.mention(w.alice, w.general, "no thread please")
		if len(replies) != 1 || len(w.dc.StartedThreads()) != 0 || replies[0].ChannelID != m.ChannelID {
			t.Fatalf("replies %q threads %d, want a reply in the channel", texts(replies), len(w.dc.StartedThreads()))
		}
	})

	t.Run("CommunitySettingDecides", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t) // discord.threads off
		w.registered()
		_, msgs := w.command(w.admin, w.general, "settings threads", discordtest.Option{Name: "state", Value: "on"})
		if !strings.Contains(strings.Join(texts(msgs), "\n"), "threads") {
			t.Fatalf("/settings threads on answered %q", texts(msgs))
		}
		m := w.dc.Mention(w.alice, w.general, "now in a thread?")
		w.waitHandled("discord:message:" + m.ID)
		if got := w.dc.StartedThreads(); len(got) != 1 || got[0].ID != m.ID {
			t.Fatalf("threads %+v, want one for the mention once the server turned threads on", got)
		}
		w.command(w.admin, w.general, "settings threads", discordtest.Option{Name: "state", Value: "off"})
		m2, replies := w.mention(w.alice, w.general, "and now?")
		if len(w.dc.StartedThreads()) != 1 || len(replies) != 1 || replies[0].ChannelID != m2.ChannelID {
			t.Fatalf("threads %d replies %q, want a reply in the channel once threads are off", len(w.dc.StartedThreads()), texts(replies))
		}
	})

	t.Run("NamesFromAwkwardQuestions", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, withThreads)
		long := strings.Repeat("why is the sky blue and ", 20)
		m1 := w.dc.Mention(w.alice, w.general, long)
		w.waitHandled("discord:message:" + m1.ID)
		m2 := w.dc.Mention(w.alice, w.general, "🔥🔥 **`~~`** <:pepe:123456>")
		w.waitHandled("discord:message:" + m2.ID)
		threads := w.dc.StartedThreads()
		if len(threads) != 2 {
			t.Fatalf("%d threads, want 2", len(threads))
		}
		if n := utf8.RuneCountInString(threads[0].Name); n != 100 || !strings.HasSuffix(threads[0].Name, "…") {
			t.Fatalf("long question's thread name has %d characters: %q", n, threads[0].Name)
		}
		if got, want := threads[1].Name, "Question from Alice"; got != want {
			t.Fatalf("emoji-only question's thread name %q, want %q", got, want)
		}
	})
}

func TestThreadName(t *testing.T) {
	for _, tt := range []struct{ question, want string }{
		{"What is Go?", "What is Go?"},
		{"**Bold** question about `code`", "Bold question about code"},
		{"<@123> <#456> hello <@&789>", "hello"},
		{"first line\nsecond line", "first line"},
		{"\n\nafter blank lines", "after blank lines"},
		{"see [the docs](https://example.com) please", "see the docs please"},
		{"🔥🔥🔥", "Question from Ann"},
		{"**__~~``~~__**", "Question from Ann"},
		{"", "Question from Ann"},
		{"<:pepe:123> <a:dance:456>", "Question from Ann"},
		{"\u202eevil\u202c name", "evil name"},
	} {
		if got := discord.ThreadName(tt.question, "Ann"); got != tt.want {
			t.Errorf("ThreadName(%q) = %q, want %q", tt.question, got, tt.want)
		}
	}
	if got := discord.ThreadName("🔥", ""); got != "Question for orchat" {
		t.Errorf("no asker: %q", got)
	}
}
