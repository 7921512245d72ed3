package router_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

func hasReason(p bot.Plan, part string) bool {
	return slices.ContainsFunc(p.Reasons, func(s string) bool { return strings.Contains(s, part) })
}

// Cost within the tier: a member who cannot afford a tier's first choice
// is served by the cheapest model they can afford before the router
// leaves the tier, by the tier below before the free tier, and the
// reasons say what was skipped and why.
func TestCostWithinTheTier(t *testing.T) {
	r := MustFullRouter(t, nil)
	ctx := context.Background()
	plan := func(t *testing.T, req bot.PlanRequest) bot.Plan {
		t.Helper()
		p, err := r.Plan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, r, p, req.Messages, req)
		return p
	}
	doc := "Summarise this report:\n" + strings.Repeat("The committee reviewed the quarterly figures for the northern warehouses. ", 2400) // ~60k tokens

	t.Run("LongDocumentStaysOnACheapLongContextModel", func(t *testing.T) {
		req := bot.PlanRequest{Messages: []bot.ChatMessage{user(doc)}, Available: 10_000, FreeRemaining: 5}
		p := plan(t, req)
		if p.Tier != router.TierLong || p.Free || p.Dropped != 0 {
			t.Fatalf("tier=%s free=%t dropped=%d reasons=%q: a document the member can afford on a cheap long-context model fell elsewhere", p.Tier, p.Free, p.Dropped, p.Reasons)
		}
		if !hasReason(p, "skipped google/gemini-2.5-flash: even a 64-token answer costs ~") || !hasReason(p, "more than the 10000 available") ||
			!hasReason(p, "-token conversation: "+p.Model) {
			t.Fatalf("reasons=%q do not say what was skipped and why", p.Reasons)
		}
	})
	t.Run("LongDocumentNobodyCanPayForGoesFree", func(t *testing.T) {
		p := plan(t, bot.PlanRequest{Messages: []bot.ChatMessage{user(doc)}, Available: 3_000, FreeRemaining: 5})
		if p.Tier != router.TierFree || !p.FreeFallback || !hasReason(p, "cannot cover the long tier → free tier (5 free requests left today)") {
			t.Fatalf("plan=%+v", p)
		}
	})
	t.Run("TierBelowBeforeFree", func(t *testing.T) {
		msgs := []bot.ChatMessage{user("Prove that the square root of 2 is irrational, step by step.")}
		p := plan(t, bot.PlanRequest{Messages: msgs, Available: 100, FreeRemaining: 5})
		if p.Tier != router.TierGeneral || p.Free || !hasReason(p, "the balance of 100 tokens cannot cover the reasoning tier → general tier") || !hasReason(p, "skipped openai/o4-mini") {
			t.Fatalf("tier=%s reasons=%q, want the general tier before the free one", p.Tier, p.Reasons)
		}
		p = plan(t, bot.PlanRequest{Messages: msgs, Available: 20, FreeRemaining: 5})
		if p.Tier != router.TierFast || p.Free || !hasReason(p, "cannot cover the general tier → fast tier") {
			t.Fatalf("tier=%s reasons=%q, want the fast tier before the free one", p.Tier, p.Reasons)
		}
		p = plan(t, bot.PlanRequest{Messages: msgs, Available: 3, FreeRemaining: 5})
		if p.Tier != router.TierFree || !hasReason(p, "cannot cover the reasoning tier (nor general, fast) → free tier") {
			t.Fatalf("tier=%s reasons=%q", p.Tier, p.Reasons)
		}
	})
	t.Run("CheapCandidateLateInTheTier", func(t *testing.T) {
		// Only the fourth candidate is affordable; two fallbacks at most
		// used to cut it off before the balance was looked at.
		r := MustFullRouter(t, func(c *router.Config) {
			c.Tiers = map[string][]string{router.TierCode: {"anthropic/claude-opus-4.6", "anthropic/claude-sonnet-4.6", "openai/gpt-5.1-codex", "qwen/qwen3-coder"}}
			c.MaxFallbacks = 2
		})
		req := bot.PlanRequest{Messages: []bot.ChatMessage{user("Write a Python function that parses a CSV file into a list of dicts.")}, Available: 200, FreeRemaining: 5}
		p, err := r.Plan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, r, p, req.Messages, req)
		if p.Tier != router.TierCode || p.Model != "qwen/qwen3-coder" || !hasReason(p, "skipped anthropic/claude-opus-4.6") {
			t.Fatalf("tier=%s model=%s reasons=%q", p.Tier, p.Model, p.Reasons)
		}
	})
	t.Run("ImageOnACheapVisionModel", func(t *testing.T) {
		msgs := []bot.ChatMessage{{Role: bot.RoleUser, Content: "what is this?", Images: []string{cat}}}
		p := plan(t, bot.PlanRequest{Messages: msgs, Available: 200, FreeRemaining: 5})
		if p.Tier != router.TierVision || p.Free || !hasReason(p, "the cheapest configured model that reads images: "+p.Model) {
			t.Fatalf("tier=%s reasons=%q", p.Tier, p.Reasons)
		}
	})
	t.Run("RichMemberKeepsTheBestCandidate", func(t *testing.T) {
		p := plan(t, bot.PlanRequest{Messages: []bot.ChatMessage{user(doc)}, Available: rich})
		if p.Model != router.DefaultTiers()[router.TierLong][0] || hasReason(p, "skipped") {
			t.Fatalf("model=%s reasons=%q", p.Model, p.Reasons)
		}
	})
}
