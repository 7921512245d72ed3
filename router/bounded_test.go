package router_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// TestBoundedAnswers: whatever an upstream sends, one answer holds at
// most router.max_answer_bytes of text, ends with a note that says so and
// is charged at most its hold; a giant event or body is refused.
func TestBoundedAnswers(t *testing.T) {
	const limit = 64 << 10
	planFor := func(t *testing.T, r *router.Router) bot.Plan {
		t.Helper()
		plan, err := r.Plan(context.Background(), bot.PlanRequest{Identity: "console:alice", Model: modelA, Messages: []bot.ChatMessage{user("tell me everything")}, Available: 15_000})
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}
	t.Run("FloodOf200MB", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Flood: 200 << 20}}})
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.MaxAnswerBytes = limit })
		plan := planFor(t, r)
		res, text, err := stream(t, r, plan)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeAnswerTooLong {
			t.Fatalf("err=%v, want %s", err, router.CodeAnswerTooLong)
		}
		if want := "The answer went past 64 KiB, the most one answer may hold here, so it was cut there."; bot.ErrorMessage(err) != want {
			t.Fatalf("message %q, want %q", bot.ErrorMessage(err), want)
		}
		if len(text) != limit || res.FinishReason != bot.FinishLength {
			t.Fatalf("text of %d bytes, finish %q; want %d bytes, %q", len(text), res.FinishReason, limit, bot.FinishLength)
		}
		if !res.Estimated || res.Cost <= 0 || res.Cost > plan.Cost {
			t.Fatalf("charge %d (estimated %t); want an estimate above 0 and at most the hold %d", res.Cost, res.Estimated, plan.Cost)
		}
		if len(res.Attempts) != 1 {
			t.Fatalf("attempts %v: an answer cut for its length is never sent again", res.Attempts)
		}
	})
	t.Run("OneEndlessEvent", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Flood: 200 << 20, FloodEvent: true}}})
		r := MustRouter(t, sim.URL(), nil)
		res, text, err := stream(t, r, planFor(t, r))
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeBadStream || !ue.Partial || !strings.Contains(err.Error(), "an SSE event longer than 1 MiB") {
			t.Fatalf("err=%v, want a partial bad stream", err)
		}
		if text == "" || len(text) > 1<<10 || res.Cost <= 0 {
			t.Fatalf("text=%q cost=%d: want the first chunk's text, charged", text, res.Cost)
		}
	})
	t.Run("CompareFlood", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Flood: 200 << 20}}})
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.MaxAnswerBytes = limit })
		a := planFor(t, r)
		b, err := r.Plan(context.Background(), bot.PlanRequest{Identity: "console:alice", Model: modelB, Messages: []bot.ChatMessage{user("tell me everything")}, Available: 15_000})
		if err != nil {
			t.Fatal(err)
		}
		rs := r.Compare(context.Background(), []bot.ChatRequest{{Plan: a}, {Plan: b}}, nil)
		if len(rs[0].Text) != limit || bot.ErrorCode(rs[0].Err) != bot.EUNAVAILABLE || rs[0].Cost > a.Cost {
			t.Fatalf("flooded panel: %d bytes, err %v, cost %d (hold %d)", len(rs[0].Text), rs[0].Err, rs[0].Cost, a.Cost)
		}
		if rs[1].Err != nil || rs[1].Text == "" {
			t.Fatalf("the other panel: %+v", rs[1])
		}
	})
	t.Run("JSONBodies", func(t *testing.T) {
		body := func(n int) string {
			return fmt.Sprintf(`{"id":"gen-1","model":%q,"choices":[{"message":{"content":"%s"},"finish_reason":"stop"}]}`, modelA, strings.Repeat("a", n))
		}
		for _, tt := range []struct {
			name     string
			n        int
			code     string
			wantText int
		}{
			{"CutAtTheLimit", 2 * limit, router.CodeAnswerTooLong, limit},
			{"PastWhatAnyAnswerTakes", 3 << 20, router.CodeBadJSON, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Status: http.StatusOK, Body: body(tt.n)}}})
				r := MustRouter(t, sim.URL(), func(c *router.Config) { c.MaxAnswerBytes = limit })
				plan := planFor(t, r)
				plan.Fallbacks = nil
				res, _, err := stream(t, r, plan)
				var ue *router.UpstreamError
				if !errors.As(err, &ue) || ue.Code != tt.code || len(res.Text) != tt.wantText {
					t.Fatalf("err=%v, text %d bytes; want %s and %d bytes", err, len(res.Text), tt.code, tt.wantText)
				}
			})
		}
	})
}
