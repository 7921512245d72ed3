package discord_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router/openroutertest"
)

// TestFirstTextNotHeldByAnotherAnswersLimit: Discord rate-limits a webhook
// per webhook and token, that is per interaction. While alice's answer
// waits out 429s on its edits, bob's answer in the same channel shows its
// first text as soon as the model sends it, and its later edits keep the
// engine's pace; alice's limited edits are retried only after their
// Retry-After, and her answer still finishes. (Before, every webhook call
// of a channel shared one bucket: bob's first text waited for alice's
// Retry-After.)
func TestFirstTextNotHeldByAnotherAnswersLimit(t *testing.T) {
	t.Parallel()
	const retryAfter = time.Second
	const pace = 50 * time.Millisecond // stacktest's engine edit pace
	var mu sync.Mutex
	firstToken := map[string]time.Time{} // prompt → the upstream's first answer text
	w := newWorld(t, func(s *setup) {
		s.sim.TokensPerSecond = 100 // an answer of several edits
		s.sim.OnServed = func(sv openroutertest.Served) {
			if sv.Request == nil {
				return
			}
			mu.Lock()
			firstToken[lastUser(sv.Request.Messages)] = sv.FirstToken
			mu.Unlock()
		}
	})

	alice := w.dc.RunCommand(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "alice waits out a limit"})
	w.dc.RateLimit(discordtest.RateLimit{Method: http.MethodPatch, Path: "/webhooks/", Count: 2, RetryAfter: retryAfter,
		Match: func(r discordtest.Request) bool { return strings.Contains(r.Path, "/"+alice.Token+"/") }})
	w.eventually("alice's edit is answered 429", func() bool { return w.dc.RateLimited() >= 1 })

	bobPrompt := "bob asks meanwhile"
	bob, msgs := w.command(w.bob, w.general, "ask", discordtest.Option{Name: "prompt", Value: bobPrompt})
	if len(msgs) != 1 || msgs[0].Footer() == "" || !strings.Contains(msgs[0].Text(), bobPrompt) {
		t.Fatalf("bob's responses=%q, want his finished answer", texts(msgs))
	}
	mu.Lock()
	first := firstToken[bobPrompt]
	mu.Unlock()
	if first.IsZero() {
		t.Fatal("the simulator never sent bob's first token")
	}
	var edits []time.Time // bob's text edits, as the fake received them
	for _, r := range w.dc.RequestsTo(http.MethodPatch, "/webhooks/") {
		if strings.Contains(r.Path, "/"+bob.Token+"/") && r.Status == http.StatusOK && hasText(r.Body) {
			edits = append(edits, r.Time)
		}
	}
	if len(edits) < 3 {
		t.Fatalf("%d text edits of bob's answer, want several (a slow stream)", len(edits))
	}
	if wait := edits[0].Sub(first); wait > 150*time.Millisecond {
		t.Fatalf("bob's first text reached Discord %v after the model's first token, want at once (alice's limit held it)", wait)
	}
	for i := 1; i < len(edits); i++ {
		if gap := edits[i].Sub(edits[i-1]); gap < pace/2 {
			t.Fatalf("bob's edits %d and %d came %v apart, want the engine's pace (%v)", i-1, i, gap, pace)
		}
	}

	w.waitHandled("discord:interaction:" + alice.ID)
	if got := w.dc.RateLimited(); got != 2 {
		t.Fatalf("%d requests answered 429, want 2", got)
	}
	var limited time.Time
	for _, r := range w.dc.RequestsTo(http.MethodPatch, "/webhooks/") {
		if !strings.Contains(r.Path, "/"+alice.Token+"/") {
			continue
		}
		if r.Status == http.StatusTooManyRequests {
			limited = r.Time
		} else if !limited.IsZero() {
			if gap := r.Time.Sub(limited); gap < retryAfter-10*time.Millisecond {
				t.Fatalf("alice's edit was retried %v after its 429, before the Retry-After of %v", gap, retryAfter)
			}
			limited = time.Time{}
		}
	}
	if a := w.dc.Responses(alice.ID); len(a) != 1 || a[0].Footer() == "" || !strings.Contains(a[0].Text(), "alice waits") {
		t.Fatalf("alice's responses=%q, want her finished answer", texts(a))
	}
}

// hasText reports whether a webhook edit's body shows answer text (an
// embed with a description).
func hasText(body json.RawMessage) bool {
	var e struct {
		Embeds []struct {
			Description string `json:"description"`
		} `json:"embeds"`
	}
	return json.Unmarshal(body, &e) == nil && len(e.Embeds) > 0 && strings.TrimSpace(e.Embeds[0].Description) != ""
}
