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
		"hold_tokens": plan.Cost, "free": plan.Free, "needed": plan.Needed,
		"effort": plan.Reasoning, "effort_from": plan.EffortFrom, "chosen_by_votes": plan.Learned,
	}
}

// effortFrom says in words where a plan's effort came from.
func effortFrom(from, tier string) string {
	switch from {
	case "you":
		return "your effort:"
	case "config":
		return "router.reasoning"
	case "tier":
		return "the router's proposal for the " + tier + " tier"
	}
	return from
}

// printPlan writes the plan for people.
func (m *Main) printPlan(plan bot.Plan) {
	by := ""
	if plan.Learned {
		by = ", chosen by this community's votes"
	}
	fmt.Fprintf(m.Stdout, "model:     %s (tier %s%s)\n", plan.Model, plan.Tier, by)
	if plan.Reasoning != "" {
		fmt.Fprintf(m.Stdout, "effort:    %s (%s)\n", plan.Reasoning, effortFrom(plan.EffortFrom, plan.Tier))
	}
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
		if ex.Votes != nil {
			out["votes"] = ex.Votes
		}
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
	if v := ex.Votes; v != nil {
		m.printVotes(v)
	}
	if planErr != nil {
		fmt.Fprintln(w, "no plan: see the error below")
		return nil
	}
	m.printPlan(ex.Plan)
	return nil
}

// printVotes writes what a community's votes did to the plan.
func (m *Main) printVotes(v *router.VoteLearning) {
	w := m.Stdout
	if !v.On {
		fmt.Fprintf(w, "votes of %s: off (its admins turned routing learn off)\n", v.Community)
		return
	}
	if v.Tier == "" {
		fmt.Fprintf(w, "votes of %s: not used (fewer than two candidates to order)\n", v.Community)
		return
	}
	fmt.Fprintf(w, "votes of %s: %d in the %s tier (%d needed); price band: at most %g× the router's own choice\n", v.Community, v.Votes, v.Tier, v.MinVotes, v.PriceBand)
	for i, r := range v.Ratings {
		band := "in the band"
		if !r.InBand {
			band = fmt.Sprintf("outside the band (over %s tokens)", bot.FormatTokens(v.BandLimit))
		}
		rated := "rating"
		if !r.Rated {
			rated = "no votes, counted as"
		}
		fmt.Fprintf(w, "  %d. %-45s %s %d, ~%s tokens, %s\n", i+1, r.Model, rated, r.Rating, bot.FormatTokens(r.Cost), band)
	}
	switch {
	case v.Decided:
		fmt.Fprintln(w, "  → chosen by this community's votes")
	case v.Why != "":
		fmt.Fprintf(w, "  → %s\n", v.Why)
	}
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
