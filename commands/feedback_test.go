package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/stack/stacktest"
)

// recording is a platform that keeps what it was sent.
type recording struct {
	mu    sync.Mutex
	texts []string
}

func (o *recording) Post(_ context.Context, m bot.Message) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts = append(o.texts, m.Text)
	return "n", nil
}

func (o *recording) Edit(_ context.Context, _ string, m bot.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts = append(o.texts, m.Text)
	return nil
}

func (o *recording) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.texts, "\n")
}

// TestFeedbackOnlyOnSlack: /feedback rates the answer under whose Slack
// buttons it was clicked. On the console (and Discord) nothing shows a
// member an answer's reference, so a typed /feedback could only rate a
// made-up answer: it is refused there, records nothing, and /help does
// not offer it; Slack's button still counts.
func TestFeedbackOnlyOnSlack(t *testing.T) {
	st := stacktest.MustOpen(t, stacktest.Options{})
	ctx := context.Background()
	counts := func(community string) []bot.ModelFeedback {
		t.Helper()
		fb, err := st.Store.FeedbackCounts(ctx, community)
		if err != nil {
			t.Fatal(err)
		}
		return fb
	}

	out := &recording{}
	err := st.Engine.Handle(ctx, bot.Event{ID: "c1", Platform: bot.PlatformConsole, Identity: "console:ann", Community: "console",
		Text: "/feedback made-up-1 openai/gpt-5-mini up"}, out)
	if err == nil {
		t.Fatal("a typed /feedback on the console was accepted")
	}
	if got := out.text(); !strings.Contains(got, "only on Slack") {
		t.Fatalf("the console was told %q, want that /feedback is only on Slack", got)
	}
	if fb := counts(""); len(fb) != 0 {
		t.Fatalf("feedback recorded from the console: %+v", fb)
	}

	help := &recording{}
	if err := st.Engine.Handle(ctx, bot.Event{ID: "c2", Platform: bot.PlatformConsole, Identity: "console:ann", Community: "console", Text: "/help"}, help); err != nil {
		t.Fatal(err)
	}
	if got := help.text(); strings.Contains(got, "/feedback") || !strings.Contains(got, "/leaderboard") {
		t.Fatalf("the console's /help: %q, want /leaderboard and no /feedback", got)
	}

	slackOut := &recording{}
	if err := st.Engine.Handle(ctx, bot.Event{ID: "s1", Platform: bot.PlatformSlack, Identity: "slack:T1:U1", Community: "slack:T1", Command: "feedback",
		Options: map[string]string{"answer": "slack:C1:1.2", "model": "openai/gpt-5-mini", "vote": "up"}}, slackOut); err != nil {
		t.Fatal(err)
	}
	if fb := counts("slack:T1"); len(fb) != 1 || fb[0].Up != 1 {
		t.Fatalf("Slack's button recorded %+v, want one 👍", fb)
	}
}
