package main

import (
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

// planJSON is the plan as `orchat route --json` prints it.
func planJSON(plan bot.Plan) map[string]any {
	return map[string]any{
		"model": plan.Model, "tier": plan.Tier, "fallbacks": nonNil(plan.Fallbacks), "reasons": nonNil(plan.Reasons),
		"estimated_cost_usd": plan.CostUSD, "estimated_tokens": plan.PromptTokens, "max_tokens": plan.MaxTokens,
		"hold_tokens": plan.Cost, "free": plan.Free,
	}
}

// printPlan writes the plan for people.
func (m *Main) printPlan(plan bot.Plan) {
	fmt.Fprintf(m.Stdout, "model:     %s (tier %s)\n", plan.Model, plan.Tier)
	if len(plan.Fallbacks) > 0 {
		fmt.Fprintf(m.Stdout, "fallbacks: %s\n", strings.Join(plan.Fallbacks, ", "))
	}
	fmt.Fprintf(m.Stdout, "estimate:  %d prompt tokens + up to %d completion tokens, at most $%.6f (%s balance tokens held)\n",
		plan.PromptTokens, plan.MaxTokens, plan.CostUSD, bot.FormatTokens(plan.Cost))
	for _, why := range plan.Reasons {
		fmt.Fprintf(m.Stdout, "why:       %s\n", why)
	}
}

// printExplanation writes `orchat route --explain`: the signals, the
// classifier's scores per tier, the constraints, every candidate and the
// winner. planErr is the plan's own error (the working is shown anyway:
// it says why nothing was affordable).
func (m *Main) printExplanation(ex router.Explanation, planErr error) error {
	if m.JSON {
		out := map[string]any{"needed": ex.Needed, "signals": ex.Signals, "scores": nonNilSlice(ex.Scores),
			"constraints": nonNil(ex.Constraints), "candidates": nonNilSlice(ex.Candidates)}
		if planErr == nil {
			out["plan"] = planJSON(ex.Plan)
		} else {
			out["error"] = userMessage(planErr)
		}
		return m.printJSON(out)
	}
	w := m.Stdout
	s := ex.Signals
	fmt.Fprintln(w, "signals:")
	fmt.Fprintf(w, "  prompt       ~%d tokens (the long tier from %d), %d turn(s), new message %d bytes\n", s.PromptTokens, s.LongPromptTokens, s.Turns, s.MessageBytes)
	var hard []string
	if s.Images > 0 {
		hard = append(hard, fmt.Sprintf("%d image(s)", s.Images))
	}
	if s.CodeFence {
		hard = append(hard, "a code fence")
	}
	if s.CodeLines > 0 {
		hard = append(hard, fmt.Sprintf("%d code-like line(s)", s.CodeLines))
	}
	if s.Equations > 0 {
		hard = append(hard, fmt.Sprintf("%d equation(s)", s.Equations))
	}
	if s.FollowUp {
		hard = append(hard, "a short follow-up")
		if s.CodeContext {
			hard = append(hard, "after code")
		}
	}
	if s.Tools {
		hard = append(hard, "tools")
	}
	if len(hard) == 0 {
		hard = append(hard, "none")
	}
	fmt.Fprintf(w, "  structure    %s\n", strings.Join(hard, ", "))
	fmt.Fprintf(w, "  purse        %s tokens available, %d free requests left today\n", bot.FormatTokens(max(s.Available, 0)), s.FreeRemaining)
	if len(ex.Scores) > 0 {
		fmt.Fprint(w, "classifier: ")
		for _, sc := range ex.Scores {
			fmt.Fprintf(w, " %s %.0f %%", sc.Tier, 100*sc.P)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "needed tier: %s\n", ex.Needed)
	fmt.Fprintln(w, "constraints:")
	for _, c := range ex.Constraints {
		fmt.Fprintf(w, "  - %s\n", c)
	}
	fmt.Fprintln(w, "candidates:")
	for _, c := range ex.Candidates {
		line := fmt.Sprintf("  %-9s %-45s %s", c.Tier, c.Model, c.Outcome)
		if c.Why != "" {
			line += ": " + c.Why
		}
		fmt.Fprintln(w, line)
	}
	if planErr != nil {
		fmt.Fprintln(w, "no plan: see the error below")
		return nil
	}
	m.printPlan(ex.Plan)
	return nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
