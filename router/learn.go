package router

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/orchat/orchat/bot"
)

// learner keeps each community's ratings per tier, read from the votes
// store at most once per Learn.Refresh: a plan reads the cache, never the
// database (the plan benchmark runs with learning on).
type learner struct {
	votes bot.TierVotes
	cfg   Learn
	now   func() time.Time
	log   interface {
		Warn(msg string, args ...any)
	}

	mu sync.RWMutex
	m  map[string]*learned
	// load serialises reads of the store: many plans of one community
	// arriving as its ratings go stale read them once.
	load sync.Mutex
}

// learned is one community's ratings, as read at a moment.
type learned struct {
	at    time.Time
	tiers map[string]tierRatings
}

// tierRatings are one tier's ratings in a community.
type tierRatings struct {
	votes   int
	ratings map[string]int // model id → Bradley–Terry rating (1000 is average)
}

// learnTimeout bounds one read of a community's votes.
const learnTimeout = 2 * time.Second

func newLearner(cfg Config) *learner {
	if cfg.Votes == nil {
		return nil
	}
	return &learner{votes: cfg.Votes, cfg: cfg.Learn, now: cfg.Now, log: cfg.Logger, m: map[string]*learned{}}
}

// ratings returns the community's ratings, reading them again once they
// are older than Refresh. A failed read keeps what was known (and is tried
// again after Refresh): a database hiccup must not fail a plan.
func (l *learner) ratings(community string) *learned {
	now := l.now()
	l.mu.RLock()
	e := l.m[community]
	l.mu.RUnlock()
	if e != nil && now.Sub(e.at) < l.cfg.Refresh {
		return e
	}
	l.load.Lock()
	defer l.load.Unlock()
	l.mu.RLock()
	e = l.m[community]
	l.mu.RUnlock()
	if e != nil && now.Sub(e.at) < l.cfg.Refresh {
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
	res, err := l.votes.TierResults(ctx, community)
	cancel()
	next := &learned{at: now, tiers: map[string]tierRatings{}}
	if err != nil {
		l.log.Warn("router: could not read the community's votes; keeping the ratings known", "community", community, "err", err)
		if e != nil {
			next.tiers = e.tiers
		}
	}
	for _, t := range res {
		tr := tierRatings{votes: t.Votes, ratings: map[string]int{}}
		for _, r := range bot.RankPairs(t.Pairs, t.Feedback) {
			tr.ratings[r.Model] = r.Rating
		}
		next.tiers[t.Tier] = tr
	}
	l.mu.Lock()
	l.m[community] = next
	l.mu.Unlock()
	return next
}

// VoteLearning is what the community's votes did to one plan, for
// Explain.
type VoteLearning struct {
	Community string `json:"community"`
	// On: the community lets the router learn from its votes (an admin
	// turns it off with /settings routing learn off).
	On bool `json:"on"`
	// Tier is the tier whose candidates the votes ordered (or would have).
	Tier string `json:"tier,omitempty"`
	// Votes counts the tier's votes here; MinVotes is how many it needs.
	Votes    int `json:"votes"`
	MinVotes int `json:"min_votes"`
	// PriceBand: a candidate may lead when it costs at most this many
	// times the router's own first choice; BandLimit is that price for
	// this request, in balance tokens.
	PriceBand float64 `json:"price_band"`
	BandLimit int64   `json:"band_limit_tokens,omitempty"`
	// Ratings are the tier's candidates with their rating here (1000 for
	// a model without votes), in the order the votes put them.
	Ratings []ModelRating `json:"ratings,omitempty"`
	// Decided: the votes put a model first that the router would not have
	// chosen without them, and it answered.
	Decided bool   `json:"decided"`
	Why     string `json:"why,omitempty"`
}

// ModelRating is one candidate's rating in a community's tier.
type ModelRating struct {
	Model  string `json:"model"`
	Rating int    `json:"rating"`
	Rated  bool   `json:"rated"` // the model has votes in the tier here
	Cost   int64  `json:"cost_tokens"`
	InBand bool   `json:"in_band"`
}

// learn orders a tier's affordable candidates by the community's ratings
// when the tier has enough votes here: those within the price band of the
// router's own first choice by rating (the best first; a model without
// votes counts as average; equal ratings keep the configured order), then
// the rest in their order. The hard constraints and the balance have
// already been applied, so the votes only choose among what may answer.
func (p *planner) learn(tier string, cands []cand) []cand {
	l := p.r.learner
	if l == nil || p.req.Community == "" || tier == TierFree {
		return cands
	}
	if p.ex != nil && p.ex.Votes == nil {
		p.ex.Votes = &VoteLearning{Community: p.req.Community, On: p.req.Learn, MinVotes: l.cfg.MinVotes, PriceBand: l.cfg.PriceBand}
	}
	p.learned = ""
	if !p.req.Learn || len(cands) < 2 {
		return cands
	}
	tr := l.ratings(p.req.Community).tiers[tier]
	if p.ex != nil {
		// A tier the router fell to replaces what an earlier one said.
		v := p.ex.Votes
		v.Tier, v.Votes, v.Why, v.BandLimit, v.Ratings = tier, tr.votes, "", 0, nil
	}
	if tr.votes < l.cfg.MinVotes {
		if p.ex != nil {
			p.ex.Votes.Why = fmt.Sprintf("this community has %d of the %d votes the %s tier needs before its votes order the candidates", tr.votes, l.cfg.MinVotes, tier)
		}
		return cands
	}
	type rated struct {
		c      cand
		rating int
		votes  bool
		cost   int64
		inBand bool
	}
	var buf [8]rated
	all := buf[:0]
	if len(cands) > len(buf) {
		all = make([]rated, 0, len(cands))
	}
	var limit int64
	for i, c := range cands {
		t, _ := p.cost(c, p.promptFor(c), p.maxTokens)
		if i == 0 {
			limit = int64(float64(t) * l.cfg.PriceBand)
		}
		r, ok := tr.ratings[c.m.ID]
		if !ok {
			r = 1000
		}
		all = append(all, rated{c: c, rating: r, votes: ok, cost: t, inBand: t <= limit})
	}
	slices.SortStableFunc(all, func(a, b rated) int {
		switch {
		case a.inBand != b.inBand:
			if a.inBand {
				return -1
			}
			return 1
		case !a.inBand:
			return 0
		}
		return b.rating - a.rating
	})
	first, was := all[0], cands[0]
	for i, r := range all {
		cands[i] = r.c // the slice is this plan's own (tierCandidates, cheapestWith)
	}
	if first.c.m.ID != was.m.ID {
		p.learned = first.c.m.ID
		wasRating := tr.ratings[was.m.ID]
		if wasRating == 0 {
			wasRating = 1000
		}
		// Concatenated, not Sprintf'd: this runs in every learned plan.
		p.reasons = append(p.reasons, "this community's votes prefer "+first.c.m.ID+" in the "+tier+" tier (rating "+
			strconv.Itoa(first.rating)+" against "+strconv.Itoa(wasRating)+" for "+was.m.ID+", from "+strconv.Itoa(tr.votes)+
			" votes; within "+strconv.FormatFloat(l.cfg.PriceBand, 'g', -1, 64)+"× its price)")
	}
	if p.ex != nil {
		v := p.ex.Votes
		v.BandLimit = limit
		for _, r := range all {
			v.Ratings = append(v.Ratings, ModelRating{Model: r.c.m.ID, Rating: r.rating, Rated: r.votes, Cost: r.cost, InBand: r.inBand})
		}
		if p.learned == "" {
			v.Why = fmt.Sprintf("the votes agree with the router's own choice, %s", was.m.ID)
		}
	}
	return cands
}
