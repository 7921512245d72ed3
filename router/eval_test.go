package router_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/internal/tierset"
)

// The evaluation of the auto router on prompts it was never trained on.
// `go test ./router -run Eval -v` prints per-tier accuracy, the confusion
// matrix and the cost–quality table (docs/ROUTING.md quotes them).

const (
	heldOutPath = "testdata/tiers/heldout.txt"
	trainPath   = "testdata/tiers/train.txt"
	// evalSystemPrompt is what a community's bot typically sends first.
	evalSystemPrompt = "You are orchat, a helpful assistant in a Discord server. Today is 2026-03-02."
	// answerTokens is the answer length assumed when pricing a plan for
	// the cost–quality table (the same for every router).
	answerTokens = 500
)

// Floors of TestEvalHeldOut, set from the measurement in docs/ROUTING.md
// (92.6 % overall, the weakest tier, reasoning, 81.8 %) with room for a
// few prompts: the overall accuracy, and each tier the classifier
// decides. Vision, long and free follow from hard signals and the
// balance: every miss there is a bug.
const (
	evalFloor     = 0.90
	evalTierFloor = 0.75
)

// strength orders the tiers by the quality of their models for the
// cost–quality table: a prompt is served well when it lands on its tier
// or a stronger one. Vision and long need a model that can take the
// input at all (the hard constraints guarantee it) of general quality.
var strength = map[string]int{
	router.TierFree: 0, router.TierFast: 0,
	router.TierGeneral: 1, router.TierLong: 1, router.TierVision: 1,
	router.TierCode: 2, router.TierReasoning: 2,
	"strongest": 3,
}

// servedWell: the prompt that needs tier need, served by tier got.
func servedWell(need, got string) bool {
	switch {
	case need == got || strength[got] > strength[need]:
		return true
	case need == router.TierLong || need == router.TierVision:
		return strength[got] == strength[need]
	}
	return false
}

// evalResult is one router's outcome on one item.
type evalResult struct {
	item tierset.Item
	plan bot.Plan
	err  error
	cost float64 // USD of the first candidate for answerTokens
}

func loadItems(t testing.TB, path string) []tierset.Item {
	t.Helper()
	items, err := tierset.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func planRequest(it tierset.Item) bot.PlanRequest {
	return bot.PlanRequest{Identity: "console:eval", Messages: it.Messages(evalSystemPrompt), Available: it.Balance, FreeRemaining: it.FreeLeft}
}

// usd prices an answer of answerTokens on model id for a prompt.
func usd(t testing.TB, r *router.Router, id string, prompt int) float64 {
	t.Helper()
	m, err := r.Catalog().Lookup(id)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if m.Free() {
		return 0
	}
	return float64(prompt)*m.PromptPrice + answerTokens*m.CompletionPrice + m.RequestPrice
}

// strongestCost is what the dearest configured paid model that can take
// the request would cost: the reference of the cost column.
func strongestCost(t testing.TB, r *router.Router, it tierset.Item) float64 {
	t.Helper()
	prompt := router.EstimatePrompt(it.Messages(evalSystemPrompt))
	best := 0.0
	for tier, ids := range r.Config().Tiers {
		if tier == router.TierFree {
			continue
		}
		for _, id := range ids {
			m, err := r.Catalog().Lookup(id)
			if err != nil || it.Images > 0 && !m.Vision() || m.ContextLength < prompt+answerTokens {
				continue
			}
			best = max(best, usd(t, r, id, prompt))
		}
	}
	return best
}

func runEval(t testing.TB, r *router.Router, items []tierset.Item) []evalResult {
	t.Helper()
	out := make([]evalResult, len(items))
	for i, it := range items {
		req := planRequest(it)
		p, err := r.Plan(context.Background(), req)
		out[i] = evalResult{item: it, plan: p, err: err}
		if err == nil {
			out[i].cost = usd(t, r, p.Model, p.PromptTokens)
		}
	}
	return out
}

// accuracy prints per-tier accuracy and the confusion matrix; it returns
// the share of items planned on their tier, overall and per tier.
func accuracy(t testing.TB, name string, res []evalResult) (float64, map[string]float64) {
	t.Helper()
	cols := append(slices.Clone(router.Tiers), "error")
	conf := map[string]map[string]int{}
	right, total := map[string]int{}, map[string]int{}
	var wrong []string
	for _, e := range res {
		got := e.plan.Tier
		if e.err != nil {
			got = "error"
		}
		if conf[e.item.Tier] == nil {
			conf[e.item.Tier] = map[string]int{}
		}
		conf[e.item.Tier][got]++
		total[e.item.Tier]++
		if got == e.item.Tier {
			right[e.item.Tier]++
		} else {
			reason := ""
			if len(e.plan.Reasons) > 0 {
				reason = e.plan.Reasons[0]
			}
			if e.err != nil {
				reason = e.err.Error()
			}
			wrong = append(wrong, fmt.Sprintf("  %-14s want %-9s got %-9s %s", e.item.ID, e.item.Tier, got, reason))
		}
	}
	var b strings.Builder
	all := 0
	for _, n := range right {
		all += n
	}
	acc := float64(all) / float64(len(res))
	fmt.Fprintf(&b, "%s: %d of %d held-out prompts on their tier (%.1f %%)\n", name, all, len(res), 100*acc)
	fmt.Fprintf(&b, "  %-10s %5s %7s\n", "tier", "n", "acc")
	for _, tier := range router.Tiers {
		if total[tier] > 0 {
			fmt.Fprintf(&b, "  %-10s %5d %6.1f%%\n", tier, total[tier], 100*float64(right[tier])/float64(total[tier]))
		}
	}
	langRight, langTotal := map[string]int{}, map[string]int{}
	for _, e := range res {
		langTotal[e.item.Lang]++
		if e.err == nil && e.plan.Tier == e.item.Tier {
			langRight[e.item.Lang]++
		}
	}
	b.WriteString("  by language:")
	for _, lang := range slices.Sorted(maps.Keys(langTotal)) {
		fmt.Fprintf(&b, " %s %d/%d", lang, langRight[lang], langTotal[lang])
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "  confusion (rows: labelled tier, columns: planned tier)\n  %-10s", "")
	for _, c := range cols {
		fmt.Fprintf(&b, " %9s", c)
	}
	b.WriteByte('\n')
	for _, tier := range router.Tiers {
		fmt.Fprintf(&b, "  %-10s", tier)
		for _, c := range cols {
			fmt.Fprintf(&b, " %9d", conf[tier][c])
		}
		b.WriteByte('\n')
	}
	if len(wrong) > 0 {
		fmt.Fprintf(&b, "  misrouted:\n%s\n", strings.Join(wrong, "\n"))
	}
	t.Log("\n" + b.String())
	perTier := map[string]float64{}
	for tier, n := range total {
		perTier[tier] = float64(right[tier]) / float64(n)
	}
	return acc, perTier
}

// costQuality is one row of the RouteLLM-style table.
type costQuality struct {
	name            string
	n, well, over   int
	cost, strongest float64
}

func (c costQuality) String() string {
	return fmt.Sprintf("| %s | %d | %.1f %% | %.1f %% | %.1f %% |", c.name, c.n,
		100*float64(c.well)/float64(c.n), 100*float64(c.over)/float64(c.n), 100*c.cost/c.strongest)
}

// quality scores served tiers against needed tiers; free items are left
// out (their tier is the member's purse, not the prompt's need).
func quality(t testing.TB, r *router.Router, name string, res []evalResult, served func(evalResult) (tier string, cost float64)) costQuality {
	t.Helper()
	c := costQuality{name: name}
	for _, e := range res {
		if e.item.Tier == router.TierFree {
			continue
		}
		tier, cost := served(e)
		c.n++
		c.strongest += strongestCost(t, r, e.item)
		c.cost += cost
		if servedWell(e.item.Tier, tier) {
			c.well++
		}
		if strength[tier] > strength[e.item.Tier] {
			c.over++
		}
	}
	return c
}

// TestEvalHeldOut measures the auto router on the held-out prompts. It
// fails when the accuracy falls below evalFloor or when any plan breaks
// a hard constraint.
func TestEvalHeldOut(t *testing.T) {
	r := MustFullRouter(t, nil)
	items := loadItems(t, heldOutPath)
	res := runEval(t, r, items)
	for _, e := range res {
		if e.err != nil {
			t.Errorf("%s: %v", e.item.ID, e.err)
			continue
		}
		checkPlan(t, r, e.plan, e.item.Messages(evalSystemPrompt), planRequest(e.item))
	}
	acc, perTier := accuracy(t, "auto router (tier model)", res)

	// The first router's keyword scan, through the same planner.
	v1 := MustFullRouter(t, nil)
	router.UseKeywordClassifier(v1)
	resV1 := runEval(t, v1, items)
	accuracy(t, "baseline: the keyword classifier of the first router", resV1)

	general := r.Config().Tiers[router.TierGeneral]
	rows := []costQuality{
		quality(t, r, "auto router (tier model)", res, func(e evalResult) (string, float64) { return e.plan.Tier, e.cost }),
		quality(t, r, "keyword classifier (the first router's)", resV1, func(e evalResult) (string, float64) { return e.plan.Tier, e.cost }),
		quality(t, r, "always the general tier", res, func(e evalResult) (string, float64) {
			req := planRequest(e.item)
			req.Available = rich // a baseline that ignores the purse
			for _, id := range general {
				req.Model = id
				if p, err := r.Plan(context.Background(), req); err == nil {
					return router.TierGeneral, usd(t, r, p.Model, p.PromptTokens)
				}
			}
			t.Fatalf("%s: no general model takes it", e.item.ID)
			return "", 0
		}),
		quality(t, r, "always the strongest configured model", res, func(e evalResult) (string, float64) {
			return "strongest", strongestCost(t, r, e.item)
		}),
	}
	var b strings.Builder
	b.WriteString("| router | prompts | served at or above the needed tier | over-served | cost vs the strongest |\n|---|---|---|---|---|\n")
	for _, row := range rows {
		b.WriteString(row.String() + "\n")
	}
	t.Log("cost–quality on the held-out prompts (free-tier items left out):\n" + b.String())
	if acc < evalFloor {
		t.Errorf("held-out accuracy %.1f %% is below the floor of %.0f %%", 100*acc, 100*evalFloor)
	}
	for _, tier := range router.Tiers {
		floor := evalTierFloor
		if tier == router.TierVision || tier == router.TierLong || tier == router.TierFree {
			floor = 1
		}
		if got, ok := perTier[tier]; !ok || got < floor {
			t.Errorf("held-out accuracy of the %s tier is %.1f %%, below its floor of %.0f %%", tier, 100*got, 100*floor)
		}
	}
}
