package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/stack/stacktest"
)

// refusing is a platform that refuses every answer message (Discord
// rejecting an embed, a channel the bot may no longer write to) but
// delivers notices and errors.
type refusing struct {
	mu    sync.Mutex
	texts []string
}

func (o *refusing) Post(_ context.Context, m bot.Message) (string, error) {
	if m.Kind == bot.KindReply || m.Kind == bot.KindCompare {
		return "", errors.New("platform: 50035 invalid form body")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.texts = append(o.texts, m.Text)
	return "n", nil
}

func (o *refusing) Edit(context.Context, string, bot.Message) error {
	return errors.New("platform: 50035 invalid form body")
}

func (o *refusing) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.texts, "\n")
}

// TestAnswerRefusedAfterCharge: when the platform refuses an answer that
// was already charged, the user is told what it cost, never the generic
// "Nothing was charged" apology that invites paying for it again.
func TestAnswerRefusedAfterCharge(t *testing.T) {
	for _, tt := range []struct{ name, text string }{
		{"Ask", "/ask model:openai/gpt-5-mini What is a monad?"},
		{"Compare", "/compare What is a monad?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := stacktest.MustOpen(t, stacktest.Options{})
			const user bot.Identity = "console:ann"
			out := &refusing{}
			err := st.Engine.Handle(context.Background(), bot.Event{ID: "e1", Platform: bot.PlatformConsole, Identity: user, Community: "console", Text: tt.text}, out)
			if err == nil {
				t.Fatal("Handle succeeded, though the platform refused the answer")
			}
			b, berr := st.Store.Balance(context.Background(), user)
			if berr != nil {
				t.Fatal(berr)
			}
			if b.Balance >= 15000 {
				t.Fatalf("balance=%d: the answer was not charged, so this test shows nothing", b.Balance)
			}
			got := out.text()
			if strings.Contains(got, "Nothing was charged") || !strings.Contains(got, "It was charged "+bot.FormatTokens(15000-b.Balance)+" tokens") {
				t.Fatalf("the user was told %q after being charged %d tokens", got, 15000-b.Balance)
			}
			st.Verify(t)
		})
	}
}

// TestRefusalSaysWhatIsHeld: while answers in progress hold most of a
// balance, a refusal says both figures; the available figure alone ("Your
// balance is 2 tokens") reads as a balance that vanished.
func TestRefusalSaysWhatIsHeld(t *testing.T) {
	for _, tt := range []struct{ name, text string }{
		{"AskChosenModel", "/ask model:openai/gpt-5-mini What is a monad?"},
		{"Compare", "/compare What is a monad?"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := stacktest.MustOpen(t, stacktest.Options{})
			ctx := context.Background()
			const user bot.Identity = "console:ann"
			if _, _, err := st.Store.EnsureUser(ctx, user); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Store.Reserve(ctx, user, 14_998, "in-flight"); err != nil {
				t.Fatal(err)
			}
			out := &refusing{}
			ev := bot.Event{ID: "e1", Platform: bot.PlatformConsole, Identity: user, Community: "console", Text: tt.text}
			if err := st.Engine.Handle(ctx, ev, out); bot.ErrorCode(err) != bot.EINSUFFICIENT {
				t.Fatalf("Handle: %v, want a refusal for the balance", err)
			}
			if got, want := out.text(), "Your balance is 15,000 tokens, 14,998 of them held for answers in progress, so 2 are available"; !strings.Contains(got, want) {
				t.Fatalf("the refusal says %q, want it to say %q", got, want)
			}
		})
	}
}
