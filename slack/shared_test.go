package slack_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestThreadAnsweredByAnotherProcess: two orchat processes serve one app,
// one Socket Mode connection each. A thread reply reaches the second
// process while the bot is not in the thread yet; the first then answers a
// mention in it; the next reply in the thread, reaching the second
// process, is for the bot and is answered there.
func TestThreadAnsweredByAnotherProcess(t *testing.T) {
	fake := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
	var answered [2]atomic.Int64
	start := func(i int) {
		a, err := slack.New(slack.Options{
			BotToken: fake.BotToken, AppToken: fake.AppToken, APIURL: fake.APIURL(), Shared: true,
			Handler: handlerFunc(func(ctx context.Context, ev bot.Event, out bot.Output) error {
				answered[i].Add(1)
				_, err := out.Post(ctx, bot.Message{Text: "an answer"})
				return err
			}),
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stacktest.Go(t, a.Run))
		for deadline := time.Now().Add(10 * time.Second); fake.OpenConnections() != i+1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d did not connect", i+1)
			}
		}
	}
	start(0)
	start(1)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
		}
	}
	const channel = "C0GENERAL"
	// Envelopes alternate between the two connections: first, second…
	root := fake.Say(slacktest.Post{User: "U0ALICE", Channel: channel, Text: "anyone?"})
	if d := fake.Say(slacktest.Post{User: "U0BOB", Channel: channel, Thread: root.TS, Text: "no idea"}); d.Conn != 2 {
		t.Fatalf("the first reply went to connection %d, want 2", d.Conn)
	}
	_, mention := fake.MentionEvents(slacktest.Post{User: "U0ALICE", Channel: channel, Thread: root.TS, Text: "what is 2+2?"})
	if fake.Send(mention); mention.Conn != 1 {
		t.Fatalf("the mention went to connection %d, want 1", mention.Conn)
	}
	wait("the first process answers the mention", func() bool { return len(fake.Thread(channel, root.TS)) >= 4 })
	if d := fake.Say(slacktest.Post{User: "U0ALICE", Channel: channel, Thread: root.TS, Text: "and 3+3?"}); d.Conn != 2 {
		t.Fatalf("the follow-up went to connection %d, want 2", d.Conn)
	}
	wait("the second process answers the follow-up in the thread the first one answered in", func() bool { return answered[1].Load() == 1 })
	if got := answered[0].Load(); got != 1 {
		t.Errorf("the first process answered %d events, want the mention only", got)
	}
}
