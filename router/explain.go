package router

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/internal/tiermodel"
)

// Explanation is the auto router's working for one request, for
// `orchat route --explain`: what it read, how the classifier scored the
// prompt, which constraints it applied, every candidate it looked at and
// what became of it.
type Explanation struct {
	Plan bot.Plan
	// Needed is the tier the prompt needs; Plan.Tier is the tier that
	// served it (lower when the balance could not cover it, "free" when no
	// paid tier was affordable, "chosen" when the user named a model).
	Needed  string
	Signals Signals
	// Scores are the classifier's probabilities per tier, best first; nil
	// when the user named a model.
	Scores []TierScore
	// Constraints are the hard constraints every candidate had to meet.
	Constraints []string
	// Candidates are every model considered, in order.
	Candidates []Candidate
	// Votes is what the community's compare votes did (nil when the
	// request named no community or the router has no votes to read).
	Votes *VoteLearning
	// Effort is the reasoning effort sent ("" for none) and EffortFrom
	// where it came from: "you", "config" (router.reasoning) or "tier"
	// (the router's proposal for the tier).
	Effort     string
	EffortFrom string
}

// Signals are the cheap facts the router reads before choosing.
type Signals struct {
	Images           int  `json:"images"`
	PromptTokens     int  `json:"prompt_tokens"`
	LongPromptTokens int  `json:"long_prompt_tokens"`
	Turns            int  `json:"turns"`
	MessageBytes     int  `json:"message_bytes"`
	CodeFence        bool `json:"code_fence"`
	CodeLines        int  `json:"code_lines"`
	Equations        int  `json:"equations"`
	FollowUp         bool `json:"follow_up"`
	// CodeContext: the follow-up follows code.
	CodeContext   bool  `json:"code_context"`
	Tools         bool  `json:"tools"`
	Available     int64 `json:"available_tokens"`
	FreeRemaining int   `json:"free_requests_left"`
}

// TierScore is the classifier's probability that a prompt needs a tier.
type TierScore struct {
	Tier string  `json:"tier"`
	P    float64 `json:"p"`
}

// Candidate is one model the router considered and what became of it.
type Candidate struct {
	Tier  string `json:"tier"`
	Model string `json:"model"`
	// Outcome is "winner", "fallback", "dropped" (a hard constraint) or
	// "skipped" (it fits, but costs more than the member has).
	Outcome string `json:"outcome"`
	Why     string `json:"why,omitempty"`
}

// RankCandidate is a candidate offered to Config.Rank.
type RankCandidate struct {
	ID string
	// Cost is the worst case of this request on it, in balance tokens.
	Cost int64
}

// Explain plans req as Plan does and returns the working. It is slower
// than Plan (it scores the text even when a hard signal decides) and is
// meant for people, not for every message.
func (r *Router) Explain(ctx context.Context, req bot.PlanRequest) (Explanation, error) {
	s := r.catalog.snap()
	if len(s.models) == 0 {
		return Explanation{}, bot.Errorf(bot.EUNAVAILABLE, "The model list is not loaded yet; please try again in a minute.")
	}
	ex := &Explanation{}
	p := &planner{r: r, s: s, req: req, ex: ex}
	plan, err := p.plan()
	ex.Plan = plan
	ex.Effort, ex.EffortFrom = plan.Reasoning, plan.EffortFrom
	ex.Signals = Signals{PromptTokens: p.fullPrompt, LongPromptTokens: r.cfg.LongPromptTokens, Tools: req.Tools,
		Available: req.Available, FreeRemaining: req.FreeRemaining}
	for _, m := range req.Messages {
		ex.Signals.Images += len(m.Images)
	}
	if p.cl.scored {
		sig := p.cl.sig
		ex.Signals.Turns, ex.Signals.MessageBytes = sig.Turns, sig.Bytes
		ex.Signals.CodeFence, ex.Signals.CodeLines, ex.Signals.Equations = sig.Fences, sig.CodeLines, sig.Equations
		ex.Signals.FollowUp, ex.Signals.CodeContext = sig.FollowUp, sig.CodeContext
		for c, v := range p.cl.scores {
			ex.Scores = append(ex.Scores, TierScore{tiermodel.Classes[c], v})
		}
		slices.SortStableFunc(ex.Scores, func(a, b TierScore) int { return cmp.Compare(b.P, a.P) })
	}
	ex.Needed = p.cl.tier
	if ex.Needed == "" {
		ex.Needed = TierChosen
	}
	ex.Constraints = p.constraints()
	return *ex, err
}

// constraints says in words what every candidate had to meet.
func (p *planner) constraints() []string {
	out := []string{
		"in the catalog and writes text",
		fmt.Sprintf("context holds the ~%s-token message and at least %d answer tokens (the whole ~%s-token conversation preferred; older turns trimmed otherwise)",
			tokensWords(p.minPrompt), p.floor, tokensWords(p.fullPrompt)),
		fmt.Sprintf("answers at least %d tokens (max_tokens %d, lowered to the candidates' completion caps)", p.floor, p.maxTokens),
	}
	if p.needImage {
		out = append(out, "reads images (image in input_modalities)")
	}
	if p.needTools {
		out = append(out, "supports tools")
	}
	out = append(out, fmt.Sprintf("paid models only when a %d-token answer fits the balance of %d tokens; else the free tier while free requests last (%d left today)",
		p.floor, max(p.req.Available, 0), p.req.FreeRemaining))
	return out
}
