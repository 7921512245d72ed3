package router

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/orchat/orchat/bot"
)

// Plan chooses the model for a request: locally, deterministically, with
// no network call. See bot.Chat for the errors.
func (r *Router) Plan(ctx context.Context, req bot.PlanRequest) (bot.Plan, error) {
	s := r.catalog.snap()
	if len(s.models) == 0 {
		return bot.Plan{}, bot.Errorf(bot.EUNAVAILABLE, "The model list is not loaded yet; please try again in a minute.")
	}
	p := &planner{r: r, s: s, req: req}
	return p.plan()
}

// descent is where the auto router looks when the member cannot afford a
// tier: the tiers below it, cheapest last, before the free tier. Long and
// vision need a capability, not a grade: they look for the cheapest
// configured model with it instead (cheapestWith).
var descent = map[string][]string{
	TierReasoning: {TierReasoning, TierGeneral, TierFast},
	TierCode:      {TierCode, TierGeneral, TierFast},
	TierGeneral:   {TierGeneral, TierFast},
	TierFast:      {TierFast},
	TierLong:      {TierLong},
	TierVision:    {TierVision},
}

type planner struct {
	r   *Router
	s   *snapshot
	req bot.PlanRequest

	msgs       []bot.ChatMessage
	lastUser   int
	maxTokens  int
	floor      int
	needImage  bool
	needTools  bool
	needFile   bool
	files      []bot.FilePart // every file part of the conversation
	parsed     bool           // the upstream reads files for any model (Config.ParsesFiles)
	histImages int            // images in earlier turns: kept for vision models, else dropped
	effort     string
	effortFrom string // "you", "config", "tier"
	show       bool
	fullPrompt int // estimated tokens of the whole conversation
	minPrompt  int // system messages and the latest user message only
	reasons    []string
	// cheapestFloor is the least any paid candidate would cost at the
	// floor (for the EINSUFFICIENT message).
	cheapestFloor int64
	// cl is the auto router's classification; ex, when set, collects the
	// working for Explain.
	cl      classification
	ex      *Explanation
	skipped []string // ids skip has given a reason for
	// disallowed counts the candidates the community's model rules
	// refused: when they refused every paid one, the free tier answers.
	disallowed int
	// learned is the model the community's votes put first, ahead of the
	// router's own choice ("" when they did not change it).
	learned string
}

// cand is a candidate with what it needs: for routers (openrouter/auto),
// the allowed models that bound its context and price.
type cand struct {
	m       bot.Model
	allowed []bot.Model
}

func (c cand) ctx() int {
	n := c.m.ContextLength
	for _, a := range c.allowed {
		n = min(n, a.ContextLength)
	}
	return n
}

func (c cand) maxCompletion() int {
	n := c.m.MaxCompletionTokens
	for _, a := range c.allowed {
		if a.MaxCompletionTokens > 0 && (n == 0 || a.MaxCompletionTokens < n) {
			n = a.MaxCompletionTokens
		}
	}
	return n
}

func (p *planner) plan() (bot.Plan, error) {
	cfg := &p.r.cfg
	p.msgs = p.req.Messages
	p.lastUser = -1
	p.parsed = cfg.ParsesFiles()
	for i, m := range p.msgs {
		if m.Role == bot.RoleUser {
			p.lastUser = i
		}
		if len(m.Files) > 0 {
			p.needFile = true
			p.files = append(p.files, m.Files...)
		}
	}
	for i, m := range p.msgs {
		switch {
		case i == p.lastUser && len(m.Images) > 0:
			p.needImage = true
		case i != p.lastUser:
			p.histImages += len(m.Images)
		}
	}
	if p.lastUser < 0 || strings.TrimSpace(p.msgs[p.lastUser].Content) == "" && len(p.msgs[p.lastUser].Images) == 0 {
		return bot.Plan{}, bot.Errorf(bot.EINVALID, "Your message is empty: write a question after the mention.")
	}
	p.needTools = p.req.Tools
	p.maxTokens = p.req.MaxTokens
	if p.maxTokens <= 0 {
		p.maxTokens = cfg.MaxTokens
	}
	p.floor = min(cfg.MinCompletionTokens, p.maxTokens)
	p.fullPrompt = EstimatePrompt(p.msgs)
	p.minPrompt = PromptOverheadTokens
	for i, m := range p.msgs {
		if m.Role == bot.RoleSystem || i == p.lastUser {
			p.minPrompt += EstimateMessage(m)
		}
	}

	choice := strings.TrimSpace(p.req.Model)
	if p.req.ImageOutput {
		p.maxTokens = max(p.maxTokens, cfg.ImageMaxTokens)
		p.floor = min(cfg.MinCompletionTokens, p.maxTokens)
		if choice == "" || strings.EqualFold(choice, "auto") {
			choice = p.imageModel()
		}
	}
	if choice != "" && !strings.EqualFold(choice, "auto") {
		return p.chosen(choice)
	}
	return p.auto()
}

// auto is the local auto router: classify, take the tier's candidates,
// apply the hard constraints, keep those the member can afford (for long
// and vision, the cheapest configured models with the capability when
// none of the tier's own is), else the tier below, else the free tier.
func (p *planner) auto() (bot.Plan, error) {
	p.cl = p.r.classify(p.msgs, p.fullPrompt, p.ex != nil)
	p.reasons = append(p.reasons, p.cl.reason)
	chain := descent[p.cl.tier]
	for i, tier := range chain {
		if i > 0 {
			p.reasons = append(p.reasons, fmt.Sprintf("the balance of %d tokens cannot cover the %s tier → %s tier", max(p.req.Available, 0), chain[i-1], tier))
		}
		cands := p.tierCandidates(tier)
		if len(cands) == 0 {
			if i == 0 && p.disallowed == 0 {
				return bot.Plan{}, p.tooLarge()
			}
			continue
		}
		cands = p.affordable(tier, cands)
		if len(cands) == 0 && (tier == TierLong || tier == TierVision) {
			cands = p.cheapestWith(tier)
		}
		if len(cands) == 0 {
			continue
		}
		cands = p.learn(tier, cands)
		cands = p.rank(tier, cands)
		plan, cands, err := p.fit(cands, tier)
		if err != nil {
			return bot.Plan{}, err
		}
		if kept, ok := p.afford(&plan, cands, tier); ok {
			return p.finish(plan, kept, tier), nil
		}
	}
	return p.freeInstead(p.cl.tier)
}

// drop records a candidate that breaks a hard constraint.
func (p *planner) drop(tier, id, why string) {
	p.reasons = append(p.reasons, "dropped "+id+": "+why)
	p.note(tier, id, "dropped", why)
}

// skip records a candidate that fits but costs more than the member has;
// the reasons name a model once, though it may be a candidate of several
// tiers the router looks at.
func (p *planner) skip(tier, id, why string) {
	if !slices.Contains(p.skipped, id) {
		p.skipped = append(p.skipped, id)
		p.reasons = append(p.reasons, "skipped "+id+": "+why)
	}
	p.note(tier, id, "skipped", why)
}

func (p *planner) note(tier, id, outcome, why string) {
	if p.ex != nil {
		p.ex.Candidates = append(p.ex.Candidates, Candidate{Tier: tier, Model: id, Outcome: outcome, Why: why})
	}
}

// promptFor is the prompt c would get: the whole conversation when its
// context holds it, else what trimming leaves.
func (p *planner) promptFor(c cand) int {
	if c.ctx() >= p.fullPrompt+p.floor {
		return p.fullPrompt
	}
	return max(p.minPrompt, c.ctx()-p.floor)
}

// floorCost is what a floor-length answer on c costs, in balance tokens.
func (p *planner) floorCost(c cand) int64 {
	t, _ := p.cost(c, p.promptFor(c), min(p.floor, p.maxTokens))
	if !c.m.Free() && (p.cheapestFloor == 0 || t < p.cheapestFloor) {
		p.cheapestFloor = t
	}
	return t
}

// affordable keeps the candidates whose floor-length answer the member
// can pay for, before fit keeps the first few: a cheap candidate late in
// the list is not cut off behind dear ones.
func (p *planner) affordable(tier string, cands []cand) []cand {
	avail := max(p.req.Available, 0)
	kept := cands[:0] // tierCandidates' slice is this call's own
	for _, c := range cands {
		if t := p.floorCost(c); t > avail {
			p.skip(tier, c.m.ID, fmt.Sprintf("even a %d-token answer costs ~%d tokens, more than the %d available", min(p.floor, p.maxTokens), t, avail))
			continue
		}
		kept = append(kept, c)
	}
	return kept
}

// cheapestWith returns, cheapest first, the configured models of every
// paid tier that have the tier's capability (a context that holds the
// conversation, image input) and that the member can afford: the long
// document a member can pay for on a cheap long-context model stays
// there instead of falling to the free tier. The pool is the operator's
// choice of models, not the whole catalog, so the answer keeps their
// quality floor.
func (p *planner) cheapestWith(tier string) []cand {
	avail := max(p.req.Available, 0)
	type priced struct {
		c    cand
		cost int64
	}
	var found []priced
	var seen []string
	for _, t := range Tiers {
		if t == TierFree || t == tier {
			continue
		}
		for _, id := range p.r.cfg.Tiers[t] {
			if slices.Contains(seen, id) {
				continue
			}
			seen = append(seen, id)
			m, err := p.s.lookup(id)
			if err != nil || m.Free() {
				continue
			}
			c, why := p.candidate(m)
			if why != "" || tier == TierLong && c.ctx() < p.fullPrompt+p.floor {
				continue
			}
			if t := p.floorCost(c); t <= avail {
				found = append(found, priced{c, t})
			}
		}
	}
	slices.SortStableFunc(found, func(a, b priced) int { return cmp.Compare(a.cost, b.cost) })
	out := make([]cand, 0, 1+p.r.cfg.MaxFallbacks)
	for _, f := range found {
		if len(out) == cap(out) {
			break
		}
		out = append(out, f.c)
	}
	if len(out) > 0 {
		what := "holds the ~" + tokensWords(p.fullPrompt) + "-token conversation"
		if tier == TierVision {
			what = "reads images"
		}
		p.reasons = append(p.reasons, fmt.Sprintf("no %s model is affordable; the cheapest configured model that %s: %s (~%d tokens for a %d-token answer)",
			tier, what, out[0].m.ID, found[0].cost, min(p.floor, p.maxTokens)))
	}
	return out
}

// rank lets Config.Rank reorder a tier's candidates for this request.
func (p *planner) rank(tier string, cands []cand) []cand {
	if p.r.cfg.Rank == nil || len(cands) < 2 {
		return cands
	}
	offer := make([]RankCandidate, len(cands))
	for i, c := range cands {
		t, _ := p.cost(c, p.promptFor(c), p.maxTokens)
		offer[i] = RankCandidate{ID: c.m.ID, Cost: t}
	}
	order, why := p.r.cfg.Rank(p.req, tier, offer)
	out := make([]cand, 0, len(cands))
	used := make([]bool, len(cands))
	for _, id := range order {
		for i, c := range cands {
			if !used[i] && c.m.ID == id {
				out, used[i] = append(out, c), true
				break
			}
		}
	}
	for i, c := range cands {
		if !used[i] {
			out = append(out, c)
		}
	}
	if why != "" {
		p.reasons = append(p.reasons, why)
	}
	return out
}

// tierCandidates returns the tier's configured candidates that meet the
// hard constraints; when none is left, the best catalog models for the
// tier's needs.
func (p *planner) tierCandidates(tier string) []cand {
	var out []cand
	for _, id := range p.r.cfg.Tiers[tier] {
		m, err := p.s.lookup(id)
		if err != nil {
			p.drop(tier, id, "not in the catalog")
			continue
		}
		c, why := p.candidate(m)
		if why != "" {
			p.drop(tier, id, why)
			continue
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out
	}
	picks := p.catalogPick(tier, 1+p.r.cfg.MaxFallbacks)
	if len(picks) > 0 {
		p.r.warnTier(tier, picks[0].m.ID)
		p.reasons = append(p.reasons, "no configured "+tier+" model fits; picked "+picks[0].m.ID+" from the catalog")
	}
	return picks
}

// candidate checks m against the hard constraints that do not depend on
// the other candidates; why is "" when it passes.
func (p *planner) candidate(m bot.Model) (c cand, why string) {
	c.m = m
	if m.Router() || baseID(m.ID) == AutoModel {
		c.allowed = p.autoAllowed()
		if len(c.allowed) == 0 {
			return c, "none of its allowed models fits this request"
		}
	}
	if ok, why := p.req.Policy.Permits(m); !ok {
		p.disallowed++
		return c, notAllowed + why
	}
	if p.req.ImageOutput {
		if !m.ImageOutput() {
			return c, "does not make images"
		}
	} else if !slices.Contains(m.OutputModalities, "text") {
		return c, "does not write text"
	}
	if p.needImage && !m.Vision() {
		return c, "no image input"
	}
	if p.needFile && !m.Files() && !m.Router() && !p.parsed {
		return c, "no document input"
	}
	if p.needFile && !m.Router() {
		c.m.RequestPrice += PDFParseUSD(p.r.cfg.PDFEngine, m, p.files)
	}
	if p.req.Web && !strings.HasSuffix(m.ID, ":online") && !m.Router() {
		c.m.RequestPrice += WebSearchUSD(m, p.r.cfg.Web.MaxResults)
	}
	if p.needTools && !m.Tools() {
		return c, "no tool support"
	}
	if mc := c.maxCompletion(); mc > 0 && mc < p.floor {
		return c, fmt.Sprintf("answers at most %d tokens", mc)
	}
	if ctx := c.ctx(); ctx < p.minPrompt+p.floor {
		return c, fmt.Sprintf("its %s-token context cannot hold the ~%s-token message", tokensWords(ctx), tokensWords(p.minPrompt))
	}
	return c, ""
}

// autoAllowed returns the catalog models matching openrouter/auto's allowed
// patterns that meet this request's needs, sorted by id.
func (p *planner) autoAllowed() []bot.Model {
	patterns := p.r.cfg.AutoModels
	if len(patterns) == 0 {
		patterns = p.r.defaultAutoModels
	}
	var out []bot.Model
	for i := range p.s.models {
		m := &p.s.models[i]
		if m.Router() || !matchAny(patterns, m.ID) {
			continue
		}
		if p.needImage && !m.Vision() || p.needTools && !m.Tools() || p.needFile && !m.Files() && !p.parsed {
			continue
		}
		if ok, _ := p.req.Policy.Permits(*m); !ok {
			continue
		}
		if m.ContextLength < p.minPrompt+p.floor || m.MaxCompletionTokens > 0 && m.MaxCompletionTokens < p.floor {
			continue
		}
		out = append(out, *m)
	}
	return out
}

func matchAny(patterns []string, id string) bool {
	for _, pat := range patterns {
		if pat == id {
			return true
		}
		if strings.ContainsAny(pat, "*?[") {
			if ok, _ := path.Match(pat, id); ok {
				return true
			}
		}
	}
	return false
}

// excludedFromPicks are models no tier should fall back to on its own:
// classifiers, search and research agents, image makers.
var excludedFromPicks = []string{"guard", "safeguard", "search", "research", "-image", "bodybuilder", "audio"}

// catalogPick chooses up to n catalog models for a tier whose configured
// candidates are all gone: those that meet the tier's needs and every hard
// constraint, by capability, then price.
func (p *planner) catalogPick(tier string, n int) []cand {
	type scored struct {
		c     cand
		score int
		price float64
	}
	var newest int64
	for i := range p.s.models {
		newest = max(newest, p.s.models[i].Created.Unix())
	}
	const year = 365 * 24 * 3600
	var picks []scored
	for i := range p.s.models {
		m := p.s.models[i]
		lid := p.s.lowerID[i]
		// Routers (openrouter/auto, openrouter/free...) are not models.
		if m.Router() || m.Free() != (tier == TierFree) || strings.HasPrefix(lid, "openrouter/") {
			continue
		}
		if slices.ContainsFunc(excludedFromPicks, func(x string) bool { return strings.Contains(lid, x) }) {
			continue
		}
		if len(m.OutputModalities) != 1 || m.OutputModalities[0] != "text" {
			continue
		}
		c, why := p.candidate(m)
		if why != "" || c.ctx() < p.fullPrompt+p.floor && tier == TierLong {
			continue
		}
		// A paid model listed at zero is a promotion or a mistake: skip it.
		if tier != TierFree && priceKey(m) <= 0 {
			continue
		}
		score := 0
		if (tier == TierFast || tier == TierGeneral) && strings.Contains(lid, "thinking") {
			score -= 2 // slow to answer
		}
		if m.Tools() {
			score++
		}
		if m.ContextLength >= 128_000 {
			score++
		}
		if newest-m.Created.Unix() < year {
			score++
		}
		switch tier {
		case TierCode:
			if strings.Contains(lid, "code") || strings.Contains(lid, "devstral") || strings.Contains(lid, "codestral") {
				score += 4
			}
		case TierReasoning:
			if slices.Contains(m.SupportedParameters, "reasoning") {
				score += 4
			}
		case TierLong:
			if m.ContextLength >= 1_000_000 {
				score += 4
			}
		}
		picks = append(picks, scored{c, score, priceKey(m)})
	}
	slices.SortFunc(picks, func(a, b scored) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.price, b.price),
			cmp.Compare(b.c.m.ContextLength, a.c.m.ContextLength), strings.Compare(a.c.m.ID, b.c.m.ID))
	})
	out := make([]cand, 0, n)
	for _, s := range picks {
		if len(out) == n {
			break
		}
		out = append(out, s.c)
	}
	return out
}

// fit keeps at most 1+MaxFallbacks candidates, prefers those whose context
// holds the whole conversation, lowers max_tokens to every candidate's
// completion cap, and trims the oldest turns to the smallest context.
func (p *planner) fit(cands []cand, tier string) (bot.Plan, []cand, error) {
	cfg := &p.r.cfg
	if limit := 1 + cfg.MaxFallbacks; len(cands) > limit {
		cands = cands[:limit]
	}
	var whole []cand
	for _, c := range cands {
		if c.ctx() >= p.fullPrompt+p.floor {
			whole = append(whole, c)
		}
	}
	if len(whole) > 0 && len(whole) < len(cands) {
		for _, c := range cands {
			if c.ctx() < p.fullPrompt+p.floor {
				p.drop(tier, c.m.ID, fmt.Sprintf("its %s-token context cannot hold the ~%s-token conversation", tokensWords(c.ctx()), tokensWords(p.fullPrompt)))
			}
		}
		cands = whole
	}
	p.reasoning(cands[0], tier)
	mt := p.maxTokens
	minCtx := cands[0].ctx()
	for _, c := range cands {
		minCtx = min(minCtx, c.ctx())
		if mc := c.maxCompletion(); mc > 0 && mc < mt {
			mt = mc
		}
	}
	if mt < p.maxTokens {
		p.reasons = append(p.reasons, fmt.Sprintf("max_tokens lowered to %d, the completion cap of the candidates", mt))
	}
	msgs, dropped, prompt := p.trim(minCtx - mt)
	if prompt+mt > minCtx {
		// Even the latest message alone leaves less than max_tokens: answer
		// shorter (candidate() guaranteed room for the floor).
		mt = max(minCtx-prompt, p.floor)
		p.reasons = append(p.reasons, fmt.Sprintf("max_tokens lowered to %d to fit the context", mt))
	}
	if dropped > 0 {
		p.reasons = append(p.reasons, fmt.Sprintf("dropped the %d oldest turns to fit the %s-token context", dropped, tokensWords(minCtx)))
	} else if tier == TierLong || p.fullPrompt > 32_000 {
		p.reasons = append(p.reasons, fmt.Sprintf("fits the %s-token context", tokensWords(minCtx)))
	}
	return bot.Plan{MaxTokens: mt, Messages: msgs, Dropped: dropped, PromptTokens: prompt}, cands, nil
}

// reasoning settles the effort and whether to show the thinking for the
// lead candidate, and makes room for the thinking: a reasoning model's
// thinking counts inside its completion cap, so a small cap would leave
// nothing for the answer. The effort is the user's effort: when given,
// else router.reasoning's when it sets one for the tier or the model,
// else the router's proposal for the tier (ProposedEffort). The room,
// and so the hold, follows the effort: a quick question on a model that
// thinks holds less than a proof on the same model.
func (p *planner) reasoning(lead cand, tier string) {
	cfg := &p.r.cfg
	if !lead.m.Reasons() {
		if p.req.Effort != "" {
			p.reasons = append(p.reasons, lead.m.ID+" does not reason: the effort is not sent")
		}
		p.effort, p.show, p.effortFrom = "", false, ""
		return
	}
	p.effort, p.show = cfg.Reasoning.For(tier, lead.m.ID, "")
	p.effortFrom = "config"
	switch {
	case p.req.Effort != "":
		p.effort, p.effortFrom = p.req.Effort, "you"
	case p.effort == "":
		p.effort, p.effortFrom = proposedEffort(tier, lead.m), "tier"
		if p.effort != "" {
			p.reasons = append(p.reasons, "effort "+p.effort+": the router's proposal for the "+tier+" tier")
		}
	}
	if p.effort == "" {
		p.effortFrom = ""
	}
	if p.effort == "none" || p.effort == "" && !thinksByDefault(lead.m) {
		return
	}
	// An ask gets the effort's share of the reasoning cap; a request with
	// its own cap (a compare's) gets up to four times that cap.
	want := thinkingRoom(cfg.Reasoning.MaxTokens, p.effort)
	if p.req.MaxTokens > 0 {
		want = min(want, 4*p.req.MaxTokens)
	}
	if p.maxTokens < want {
		p.reasons = append(p.reasons, fmt.Sprintf("max_tokens raised from %d to %d: %s thinks inside its completion cap", p.maxTokens, want, lead.m.ID))
		p.maxTokens = want
	}
}

// ProposedEffort is the effort the auto router proposes per tier when
// router.reasoning sets none: a quick tier keeps a model that always
// thinks brief, the code tier thinks as much as such models do by
// default, and the reasoning tier asks every reasoning model to think
// hard (turning thinking on for models that only think when asked).
var ProposedEffort = map[string]string{
	TierFast:      "low",
	TierGeneral:   "low",
	TierLong:      "low",
	TierVision:    "low",
	TierCode:      "medium",
	TierReasoning: "high",
}

// proposedEffort is ProposedEffort for m in tier: outside the reasoning
// tier, only for models that think anyway (asking a model that does not
// think by default for an effort would turn its thinking on, slower and
// dearer). A named model (tier "chosen") and the free tier get none.
func proposedEffort(tier string, m bot.Model) string {
	e := ProposedEffort[tier]
	if tier != TierReasoning && !thinksByDefault(m) {
		return ""
	}
	return e
}

// thinkingRoom is the completion cap a reasoning answer gets for an
// effort: the whole reasoning cap for high and above (and for a model's
// own default, which may be anything), less for lower efforts, so the
// hold is sized to the thinking asked for.
func thinkingRoom(reasoningCap int, effort string) int {
	switch effort {
	case "minimal":
		return reasoningCap / 4
	case "low":
		return reasoningCap / 2
	case "medium":
		return reasoningCap * 3 / 4
	}
	return reasoningCap
}

// thinksByDefault reports whether a reasoning model thinks even when no
// effort is sent: the families that always reason (OpenAI's o-series and
// GPT-5, DeepSeek R1, QwQ, the :thinking variants...).
func thinksByDefault(m bot.Model) bool {
	id := strings.ToLower(m.ID)
	if strings.Contains(id, "-chat") {
		return false
	}
	for _, f := range []string{"/o1", "/o3", "/o4", "-r1", "/r1", "thinking", "reasoner", "qwq", "/gpt-5", "gpt-oss", "magistral"} {
		if strings.Contains(id, f) {
			return true
		}
	}
	return false
}

// imageModel is the model /imagine uses when none is named: the
// configured one, else the catalog's cheapest image maker.
func (p *planner) imageModel() string {
	if _, err := p.s.lookup(p.r.cfg.ImageModel); err == nil {
		return p.r.cfg.ImageModel
	}
	var best bot.Model
	for i := range p.s.models {
		m := p.s.models[i]
		if m.ImageOutput() && !m.Router() && (best.ID == "" || priceKey(m) < priceKey(best)) {
			best = m
		}
	}
	if best.ID == "" {
		return p.r.cfg.ImageModel // refused by chosen with a clear message
	}
	return best.ID
}

// trim drops the oldest non-system turns until the prompt is at most
// budget tokens (and at most MaxTurns turns); the latest user message and
// the system messages always stay.
func (p *planner) trim(budget int) ([]bot.ChatMessage, int, int) {
	prompt := p.fullPrompt
	turns := 0
	for _, m := range p.msgs {
		if m.Role != bot.RoleSystem {
			turns++
		}
	}
	maxTurns := p.r.cfg.MaxTurns
	drop := make([]bool, len(p.msgs))
	dropped := 0
	for i, m := range p.msgs {
		if prompt <= budget && (maxTurns <= 0 || turns-dropped <= maxTurns) {
			break
		}
		if m.Role == bot.RoleSystem || i >= p.lastUser {
			continue
		}
		drop[i] = true
		dropped++
		prompt -= EstimateMessage(m)
	}
	if dropped > 0 {
		// Keep the history starting with a user turn: some providers refuse
		// a conversation that opens with the assistant.
		for i, m := range p.msgs {
			if drop[i] || m.Role == bot.RoleSystem {
				continue
			}
			if m.Role != bot.RoleAssistant || i >= p.lastUser {
				break
			}
			drop[i] = true
			dropped++
			prompt -= EstimateMessage(m)
		}
	}
	out := make([]bot.ChatMessage, 0, len(p.msgs)-dropped)
	for i, m := range p.msgs {
		if !drop[i] {
			out = append(out, m)
		}
	}
	return out, dropped, prompt
}

// cost returns the worst-case balance tokens and USD of c for a prompt and
// completion size. A router is priced as the dearest of its allowed models.
func (p *planner) cost(c cand, prompt, completion int) (int64, float64) {
	b := p.r.cfg.Billing
	if len(c.allowed) > 0 {
		var worst int64
		var usd float64
		for _, a := range c.allowed {
			t, u := p.cost(cand{m: a}, prompt, completion)
			worst, usd = max(worst, t), max(usd, u)
		}
		return worst, usd
	}
	if c.m.Free() || c.m.Router() {
		return b.Estimate(c.m, prompt, completion), 0
	}
	return b.Estimate(c.m, prompt, completion), float64(prompt)*c.m.PromptPrice + float64(completion)*c.m.CompletionPrice + c.m.RequestPrice
}

// afford keeps the paid candidates the user can afford. The first
// candidate that is affordable at the floor leads: max_tokens is lowered to
// what it affords, and fallbacks that would need a lower max_tokens are
// dropped. ok is false when no candidate is affordable even at the floor.
func (p *planner) afford(plan *bot.Plan, cands []cand, tier string) ([]cand, bool) {
	avail := max(p.req.Available, 0)
	prompt, mt := plan.PromptTokens, plan.MaxTokens
	var kept []cand
	for _, c := range cands {
		t, _ := p.cost(c, prompt, min(p.floor, mt))
		if !c.m.Free() && (p.cheapestFloor == 0 || t < p.cheapestFloor) {
			p.cheapestFloor = t
		}
		if t > avail {
			p.skip(tier, c.m.ID, fmt.Sprintf("even a %d-token answer costs ~%d tokens, more than the %d available", min(p.floor, mt), t, avail))
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == 0 {
		return nil, false
	}
	if t, _ := p.cost(kept[0], prompt, mt); t > avail {
		lo, hi := min(p.floor, mt), mt // lo is affordable, hi is not
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if t, _ := p.cost(kept[0], prompt, mid); t <= avail {
				lo = mid
			} else {
				hi = mid
			}
		}
		p.reasons = append(p.reasons, fmt.Sprintf("max_tokens lowered from %d to %d: what the balance of %d tokens affords", mt, lo, avail))
		mt = lo
		plan.MaxTokens = mt
	}
	out := kept[:1]
	for _, c := range kept[1:] {
		if t, _ := p.cost(c, prompt, mt); t > avail {
			p.skip(tier, c.m.ID, fmt.Sprintf("as a fallback it would cost more than the %d tokens available", avail))
			continue
		}
		out = append(out, c)
	}
	return out, true
}

// freeInstead plans the free tier when no paid candidate is affordable and
// the user has free requests left; else EINSUFFICIENT.
func (p *planner) freeInstead(tier string) (bot.Plan, error) {
	if p.req.FreeRemaining <= 0 || tier == TierFree {
		return bot.Plan{}, p.insufficient()
	}
	below := ""
	if chain := descent[tier]; len(chain) > 1 {
		below = " (nor " + strings.Join(chain[1:], ", ") + ")"
	}
	ruled := p.disallowed > 0 && p.cheapestFloor == 0 // the rules left no paid model, not the balance
	if ruled {
		p.reasons = append(p.reasons, fmt.Sprintf("the admins allow %s here → free tier (%d free requests left today)", p.req.Policy.String(), p.req.FreeRemaining))
	} else {
		p.reasons = append(p.reasons, fmt.Sprintf("the balance of %d tokens cannot cover the %s tier%s → free tier (%d free requests left today)", max(p.req.Available, 0), tier, below, p.req.FreeRemaining))
	}
	cands := p.tierCandidates(TierFree)
	if len(cands) == 0 {
		return bot.Plan{}, p.insufficient()
	}
	plan, cands, err := p.fit(cands, TierFree)
	if err != nil {
		return bot.Plan{}, err
	}
	plan = p.finish(plan, cands, TierFree)
	plan.FreeFallback = plan.Free && !ruled
	return plan, nil
}

func (p *planner) insufficient() error {
	if p.disallowed > 0 && p.cheapestFloor == 0 {
		// No paid model was even priced: the rules, not the balance, left
		// nothing to choose.
		free := ""
		if p.req.FreeRemaining <= 0 {
			free = ", and your free-model requests for today are used"
		}
		return bot.Errorf(bot.EINSUFFICIENT, "No model allowed here can take this request (the admins allow %s)%s.", p.req.Policy.String(), free)
	}
	free := ""
	if p.req.FreeRemaining <= 0 {
		free = " and no free requests are left today"
	}
	return bot.Errorf(bot.EINSUFFICIENT, "%s%s; this request needs about %s (for at least %d answer tokens on the cheapest suitable model). Ask an admin for a top-up.",
		bot.YourBalance(p.req.Available, p.req.Held), free, bot.FormatTokens(max(p.cheapestFloor, 1)), p.floor)
}

// tooLarge is the error when no model at all can take the message.
func (p *planner) tooLarge() error {
	largest := 0
	for i := range p.s.models {
		m := &p.s.models[i]
		if p.needImage && !m.Vision() || p.needFile && !m.Files() && !p.parsed || m.Router() {
			continue
		}
		largest = max(largest, m.ContextLength)
	}
	if p.needImage && largest == 0 {
		return bot.Errorf(bot.EINVALID, "No model in the catalog can read images right now; send the text alone.")
	}
	if p.needFile && largest == 0 {
		return bot.Errorf(bot.EINVALID, "No model in the catalog can read documents right now; paste the text instead.")
	}
	if p.minPrompt+p.floor > largest {
		return bot.Errorf(bot.EINVALID, "Your message is about %s tokens, but the largest context of any model is %s tokens (with %d for the answer). Shorten it or split it.", tokensWords(p.minPrompt), tokensWords(largest), p.floor)
	}
	return bot.Errorf(bot.EINVALID, "No model in the catalog can take this request (images: %t, tools: %t, ~%s tokens).", p.needImage, p.needTools, tokensWords(p.minPrompt))
}

// chosen plans the model the user named: no classification, every
// constraint, no fallbacks.
func (p *planner) chosen(id string) (bot.Plan, error) {
	m, err := p.s.lookup(id)
	if err != nil {
		if baseID(id) != AutoModel {
			return bot.Plan{}, err
		}
		m = bot.Model{ID: id, Name: "Auto Router", ContextLength: 2_000_000, PromptPrice: -1, CompletionPrice: -1,
			InputModalities: []string{"text", "image", "file", "audio", "video"}, OutputModalities: []string{"text"}, SupportedParameters: []string{"tools"}}
	}
	c, why := p.candidate(m)
	if why != "" {
		return bot.Plan{}, p.refuse(m, c, why)
	}
	p.reasons = append(p.reasons, "you chose "+m.ID)
	if p.req.Classify {
		p.cl = p.r.classify(p.msgs, p.fullPrompt, p.ex != nil)
	}
	plan, cands, err := p.fit([]cand{c}, TierChosen)
	if err != nil {
		return bot.Plan{}, err
	}
	kept, ok := p.afford(&plan, cands, TierChosen)
	if !ok {
		t, _ := p.cost(c, plan.PromptTokens, p.floor)
		return bot.Plan{}, bot.Errorf(bot.EINSUFFICIENT, "%s; %s needs about %s for this request (at least %d answer tokens). Ask an admin for a top-up, or pick a :free model or auto.", bot.YourBalance(p.req.Available, p.req.Held), m.ID, bot.FormatTokens(t), p.floor)
	}
	return p.finish(plan, kept, TierChosen), nil
}

// notAllowed starts the reason of a candidate the community's model
// rules refuse.
const notAllowed = "not allowed here: "

// refuse explains why the chosen model cannot take the request.
func (p *planner) refuse(m bot.Model, c cand, why string) error {
	if rule, ok := strings.CutPrefix(why, notAllowed); ok {
		return bot.Errorf(bot.EINVALID, "%s is not allowed here: %s. /settings show lists the rules; pick another model, or auto.", m.ID, rule)
	}
	switch why {
	case "no image input":
		return bot.Errorf(bot.EINVALID, "%s cannot read images. Models that can: %s (or switch back to auto).", m.ID, strings.Join(p.visionChoices(5), ", "))
	case "no tool support":
		return bot.Errorf(bot.EINVALID, "%s does not support tools; pick another model or switch back to auto.", m.ID)
	case "does not make images":
		return bot.Errorf(bot.EINVALID, "%s does not make images. Models that do: /models image.", m.ID)
	case "no document input":
		return bot.Errorf(bot.EINVALID, "%s cannot read documents such as PDFs. Pick a model that can (such as google/gemini-2.5-flash), or switch back to auto.", m.ID)
	case "none of its allowed models fits this request":
		return bot.Errorf(bot.EINVALID, "None of the models %s may choose can take this request (images: %t, ~%s tokens); pick a model or switch back to auto.", m.ID, p.needImage, tokensWords(p.minPrompt))
	}
	if ctx := c.ctx(); ctx < p.minPrompt+p.floor {
		largest := ""
		if big := p.largestContext(); big.ID != "" && big.ContextLength > ctx {
			largest = fmt.Sprintf(" Pick a model with a larger context, such as %s (%s tokens).", big.ID, tokensWords(big.ContextLength))
		}
		return bot.Errorf(bot.EINVALID, "Your message is about %s tokens, but %s holds %s tokens (with at least %d for the answer).%s", tokensWords(p.minPrompt), m.ID, tokensWords(ctx), p.floor, largest)
	}
	return bot.Errorf(bot.EINVALID, "%s cannot take this request: it %s.", m.ID, strings.TrimPrefix(why, "its "))
}

// visionChoices lists vision models to suggest: the vision tier's, then
// the cheapest others.
func (p *planner) visionChoices(n int) []string {
	var out []string
	for _, id := range p.r.cfg.Tiers[TierVision] {
		if m, err := p.s.lookup(id); err == nil && m.Vision() && len(out) < n {
			out = append(out, id)
		}
	}
	if len(out) < n {
		for _, m := range p.r.catalog.Search(bot.ModelQuery{Vision: true, MaxPromptPrice: 1}) {
			if len(out) == n {
				break
			}
			if !slices.Contains(out, m.ID) && slices.Contains(m.OutputModalities, "text") && len(m.OutputModalities) == 1 {
				out = append(out, m.ID)
			}
		}
	}
	return out
}

func (p *planner) largestContext() bot.Model {
	var best bot.Model
	for i := range p.s.models {
		m := p.s.models[i]
		if m.Router() || p.needImage && !m.Vision() {
			continue
		}
		if m.ContextLength > best.ContextLength {
			best = m
		}
	}
	return best
}

// finish fills in the plan from the final candidates.
func (p *planner) finish(plan bot.Plan, cands []cand, tier string) bot.Plan {
	if p.histImages > 0 {
		if cands[0].m.Vision() {
			// The images of earlier turns go along: keep to fallbacks
			// that can read them.
			kept := cands[:1]
			for _, c := range cands[1:] {
				if c.m.Vision() {
					kept = append(kept, c)
				}
			}
			cands = kept
		} else {
			plan.Messages = slices.Clone(plan.Messages)
			for i := range plan.Messages {
				if n := len(plan.Messages[i].Images); n > 0 {
					plan.ImagesDropped += n
					plan.Messages[i].Images = nil
				}
			}
			if plan.ImagesDropped > 0 {
				p.reasons = append(p.reasons, fmt.Sprintf("left out %d %s of earlier messages: %s cannot read images", plan.ImagesDropped, bot.Plural(plan.ImagesDropped, "image", "images"), cands[0].m.ID))
			}
		}
	}
	plan.Reasoning, plan.ShowReasoning, plan.EffortFrom = p.effort, p.show, p.effortFrom
	plan.Web, plan.WebResults = p.req.Web, p.r.cfg.Web.MaxResults
	if p.req.ImageOutput || tier == TierChosen && cands[0].m.ImageOutput() {
		// /imagine, or an ask to a model that draws: ask for its images.
		plan.Modalities = []string{"image", "text"}
	}
	plan.Tier = tier
	plan.Model = cands[0].m.ID
	plan.Needed = p.cl.tier
	plan.Learned = p.learned != "" && p.learned == plan.Model
	if p.ex != nil && p.ex.Votes != nil {
		p.ex.Votes.Decided = plan.Learned
	}
	plan.Free = true
	for i, c := range cands {
		if i > 0 {
			plan.Fallbacks = append(plan.Fallbacks, c.m.ID)
			p.note(tier, c.m.ID, "fallback", "")
		} else {
			p.note(tier, c.m.ID, "winner", "")
		}
		if !c.m.Free() {
			plan.Free = false
		}
		t, usd := p.cost(c, plan.PromptTokens, plan.MaxTokens)
		plan.Cost = max(plan.Cost, t)
		plan.CostUSD = max(plan.CostUSD, usd)
		if c.m.Free() && t > 0 {
			plan.Free = false // a web search on a free model is paid for: held and charged
		}
		if len(c.allowed) > 0 && plan.AutoModels == nil {
			for _, a := range c.allowed {
				plan.AutoModels = append(plan.AutoModels, a.ID)
			}
		}
	}
	if tier != TierChosen {
		if len(plan.Fallbacks) > 0 {
			p.reasons = append(p.reasons, fmt.Sprintf("%s first, then %s", plan.Model, strings.Join(plan.Fallbacks, ", ")))
		} else {
			p.reasons = append(p.reasons, plan.Model+", no fallback")
		}
	}
	plan.Reasons = p.reasons
	return plan
}

// baseID strips a routing suffix (:nitro, :floor, :online, :thinking,
// :exacto) from id.
func baseID(id string) string {
	if i := strings.LastIndexByte(id, ':'); i > 0 && slices.Contains(routingSuffixes, id[i:]) {
		return id[:i]
	}
	return id
}
