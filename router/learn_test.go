package router_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// fakeVotes is a votes store with function fields: results answers
// TierResults, calls counts the reads per community.
type fakeVotes struct {
	mu      sync.Mutex
	results func(community string) []bot.TierResults
	calls   map[string]int
}

func (f *fakeVotes) TierResults(_ context.Context, community string) ([]bot.TierResults, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[community]++
	return f.results(community), nil
}

func (f *fakeVotes) reads(community string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[community]
}

// clock is a fake clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	codex  = "openai/gpt-5.1-codex"        // $1.25 / $10 per M: the router's own first choice
	sonnet = "anthropic/claude-sonnet-4.6" // $3 / $15: 1.5× codex, within the band
	qwen   = "qwen/qwen3-coder"            // $0.22 / $1: cheaper, within the band
	opus   = "anthropic/claude-opus-4.6"   // $5 / $25: 2.5× codex, outside the band
)

// codeVotes are a community's code-tier votes: opus beats everyone, then
// sonnet, then qwen, then codex.
func codeVotes(votes int) bot.TierResults {
	return bot.TierResults{Tier: router.TierCode, Votes: votes, Pairs: []bot.PairRecord{
		{A: sonnet, B: codex, AWins: 12, BWins: 2},
		{A: qwen, B: codex, AWins: 8, BWins: 4},
		{A: sonnet, B: qwen, AWins: 7, BWins: 3},
		{A: opus, B: sonnet, AWins: 9, BWins: 1},
		{A: opus, B: codex, AWins: 9, BWins: 0},
	}}
}

// Learning from votes: once a tier has enough votes in a community, its
// affordable candidates within the price band are tried in the order of
// that community's ratings; below the threshold, with learning off or in
// another community, the router's own order stands; the ratings are read
// once per refresh, and new votes count once the clock passes it.
func TestLearnFromVotes(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	seeded := map[string][]bot.TierResults{
		"discord:1": {codeVotes(30), {Tier: router.TierFast, Votes: 40, Pairs: []bot.PairRecord{{A: "x/y", B: "x/z", AWins: 40}}}},
		"discord:2": {{Tier: router.TierCode, Votes: 30, Pairs: []bot.PairRecord{{A: codex, B: sonnet, AWins: 30}}}},
		"discord:3": {codeVotes(19)},
	}
	votes := &fakeVotes{results: func(c string) []bot.TierResults { mu.Lock(); defer mu.Unlock(); return seeded[c] }}
	r := MustFullRouter(t, func(c *router.Config) {
		c.Tiers = map[string][]string{router.TierCode: {codex, sonnet, qwen, opus}}
		c.MaxFallbacks = 2
		c.Votes = votes
		c.Now = clk.Now
	})
	ctx := context.Background()
	msgs := []bot.ChatMessage{user("Write a Python function that parses a CSV file into a list of dicts.")}
	plan := func(t *testing.T, community string, learn bool, available int64) bot.Plan {
		t.Helper()
		req := bot.PlanRequest{Messages: msgs, Available: available, FreeRemaining: 5, Community: community, Learn: learn}
		p, err := r.Plan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, r, p, msgs, req)
		if p.Tier != router.TierCode {
			t.Fatalf("tier=%s, want code (the test's prompt)", p.Tier)
		}
		return p
	}

	t.Run("RatingsOrderTheTierWithinTheBand", func(t *testing.T) {
		p := plan(t, "discord:1", true, rich)
		if got, want := strings.Join(p.Candidates(), ","), sonnet+","+qwen+","+codex; got != want || !p.Learned {
			t.Fatalf("candidates=%s learned=%t reasons=%q, want %s chosen by the votes (opus is rated best but costs 2.5× the router's choice)", got, p.Learned, p.Reasons, want)
		}
		if !hasReason(p, "this community's votes prefer "+sonnet+" in the code tier") || !hasReason(p, "from 30 votes; within 2× its price") {
			t.Fatalf("reasons=%q do not say the votes decided", p.Reasons)
		}
		ex, err := r.Explain(ctx, bot.PlanRequest{Messages: msgs, Available: rich, FreeRemaining: 5, Community: "discord:1", Learn: true})
		if err != nil {
			t.Fatal(err)
		}
		v := ex.Votes
		if v == nil || !v.On || !v.Decided || v.Tier != router.TierCode || v.Votes != 30 || v.MinVotes != 20 || v.PriceBand != 2 || len(v.Ratings) != 4 {
			t.Fatalf("explain votes=%+v", v)
		}
		want := map[string]int{}
		for _, rk := range bot.RankPairs(codeVotes(30).Pairs, nil) {
			want[rk.Model] = rk.Rating
		}
		for i, m := range []string{sonnet, qwen, codex, opus} {
			got := v.Ratings[i]
			if got.Model != m || got.Rating != want[m] || !got.Rated || got.InBand != (m != opus) {
				t.Fatalf("rating %d = %+v, want %s rated %d (in band: %t)", i, got, m, want[m], m != opus)
			}
		}
		if want[opus] <= want[sonnet] || want[sonnet] <= want[qwen] || want[qwen] <= want[codex] {
			t.Fatalf("ratings %v do not follow the seeded votes", want)
		}
		if v.Ratings[3].Cost <= v.BandLimit || v.Ratings[0].Cost > v.BandLimit {
			t.Fatalf("band limit %d, costs %+v", v.BandLimit, v.Ratings)
		}
	})
	t.Run("HardConstraintsAndTheBalanceFirst", func(t *testing.T) {
		// Sonnet's floor-length answer is more than the member has: the
		// votes choose among what they can afford.
		p := plan(t, "discord:1", true, 800)
		if p.Model != qwen || !p.Learned || !hasReason(p, "skipped "+sonnet) {
			t.Fatalf("model=%s learned=%t reasons=%q, want qwen: sonnet is unaffordable, qwen is the votes' next", p.Model, p.Learned, p.Reasons)
		}
	})
	t.Run("BelowTheThreshold", func(t *testing.T) {
		p := plan(t, "discord:3", true, rich)
		if p.Model != codex || p.Learned || hasReason(p, "votes prefer") {
			t.Fatalf("model=%s learned=%t reasons=%q: 19 votes are fewer than the 20 needed", p.Model, p.Learned, p.Reasons)
		}
		ex, _ := r.Explain(ctx, bot.PlanRequest{Messages: msgs, Available: rich, Community: "discord:3", Learn: true})
		if ex.Votes == nil || ex.Votes.Decided || !strings.Contains(ex.Votes.Why, "19 of the 20 votes") {
			t.Fatalf("explain votes=%+v", ex.Votes)
		}
	})
	t.Run("OffSwitch", func(t *testing.T) {
		before := votes.reads("discord:4")
		mu.Lock()
		seeded["discord:4"] = []bot.TierResults{codeVotes(50)}
		mu.Unlock()
		p := plan(t, "discord:4", false, rich)
		if p.Model != codex || p.Learned {
			t.Fatalf("model=%s learned=%t: the admins turned learning off", p.Model, p.Learned)
		}
		if votes.reads("discord:4") != before {
			t.Fatal("the votes were read for a community that turned learning off")
		}
		ex, _ := r.Explain(ctx, bot.PlanRequest{Messages: msgs, Available: rich, Community: "discord:4"})
		if ex.Votes == nil || ex.Votes.On || ex.Votes.Decided {
			t.Fatalf("explain votes=%+v, want learning shown off", ex.Votes)
		}
	})
	t.Run("AnotherCommunityUnaffected", func(t *testing.T) {
		// discord:2 voted for codex, the router's own choice; discord:5
		// has no votes at all.
		for _, c := range []string{"discord:2", "discord:5", ""} {
			if p := plan(t, c, true, rich); p.Model != codex || p.Learned {
				t.Fatalf("%q: model=%s learned=%t reasons=%q", c, p.Model, p.Learned, p.Reasons)
			}
		}
	})
	t.Run("CachedThenRefreshedOnTheClock", func(t *testing.T) {
		base := votes.reads("discord:1")
		for range 5 {
			if p := plan(t, "discord:1", true, rich); p.Model != sonnet {
				t.Fatalf("model=%s", p.Model)
			}
		}
		if got := votes.reads("discord:1"); got != base {
			t.Fatalf("%d reads of the votes for 5 plans within the refresh, want none", got-base)
		}
		// New votes: the community now prefers codex by far.
		mu.Lock()
		seeded["discord:1"] = []bot.TierResults{{Tier: router.TierCode, Votes: 80, Pairs: append(codeVotes(0).Pairs,
			bot.PairRecord{A: codex, B: sonnet, AWins: 60}, bot.PairRecord{A: codex, B: qwen, AWins: 60})}}
		mu.Unlock()
		clk.Add(59 * time.Second)
		if p := plan(t, "discord:1", true, rich); p.Model != sonnet {
			t.Fatalf("model=%s before the refresh, want the cached preference", p.Model)
		}
		clk.Add(2 * time.Second)
		p := plan(t, "discord:1", true, rich)
		if p.Model != codex || p.Learned {
			t.Fatalf("model=%s learned=%t after the refresh, want codex (the votes now agree with the router)", p.Model, p.Learned)
		}
		if got := votes.reads("discord:1"); got != base+1 {
			t.Fatalf("%d reads after the refresh, want 1", got-base)
		}
	})
}

// Reasoning effort by tier: the router proposes an effort per tier for
// models that reason, router.reasoning wins when it sets one, the user's
// effort wins over both; the room for thinking, and so the hold, follows
// the effort, and what is charged never exceeds what was held.
func TestEffortByTier(t *testing.T) {
	sim := MustSim(t, openroutertest.Options{})
	const mini = "openai/gpt-5-mini" // reasons, and thinks by default
	tiers := map[string][]string{router.TierFast: {mini}, router.TierReasoning: {mini}, router.TierGeneral: {"google/gemini-2.5-flash"}}
	r := MustRouter(t, sim.URL(), func(c *router.Config) { c.Tiers = tiers })
	ctx := context.Background()
	fast := []bot.ChatMessage{user("hi! what's the capital of France?")}
	proof := []bot.ChatMessage{user("Prove that the square root of 2 is irrational, step by step.")}
	plan := func(t *testing.T, r *router.Router, msgs []bot.ChatMessage, effort string) bot.Plan {
		t.Helper()
		req := bot.PlanRequest{Identity: "console:alice", Messages: msgs, Available: rich, Effort: effort}
		p, err := r.Plan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	q, hard := plan(t, r, fast, ""), plan(t, r, proof, "")
	if q.Tier != router.TierFast || hard.Tier != router.TierReasoning || q.Model != mini || hard.Model != mini {
		t.Fatalf("tiers %s/%s models %s/%s: the test's prompts", q.Tier, hard.Tier, q.Model, hard.Model)
	}
	if q.Reasoning != "low" || q.EffortFrom != "tier" || hard.Reasoning != "high" || hard.EffortFrom != "tier" {
		t.Fatalf("efforts fast=%q (%s) reasoning=%q (%s), want the tier proposals low and high", q.Reasoning, q.EffortFrom, hard.Reasoning, hard.EffortFrom)
	}
	if hard.Cost <= q.Cost || hard.MaxTokens <= q.MaxTokens {
		t.Fatalf("hold fast=%d (max_tokens %d) reasoning=%d (max_tokens %d): the reasoning prompt should hold more on the same model", q.Cost, q.MaxTokens, hard.Cost, hard.MaxTokens)
	}
	if !hasReason(q, "effort low: the router's proposal for the fast tier") {
		t.Fatalf("reasons=%q", q.Reasons)
	}
	for _, p := range []bot.Plan{q, hard} {
		res, _, err := stream(t, r, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Usage.ReasoningTokens == 0 || res.Cost <= 0 || res.Cost > p.Cost {
			t.Fatalf("%s: reasoning=%d charged=%d held=%d: the hold must cover the charge", p.Tier, res.Usage.ReasoningTokens, res.Cost, p.Cost)
		}
	}
	// A model that thinks only when asked is not made to think in a quick
	// tier.
	if g := plan(t, r, []bot.ChatMessage{user("Write a short product description for a steel water bottle.")}, ""); g.Tier == router.TierGeneral && g.Reasoning != "" {
		t.Fatalf("general tier effort=%q on %s, want none (it thinks only when asked)", g.Reasoning, g.Model)
	}
	// router.reasoning wins over the proposal; the user's effort over both.
	set := MustRouter(t, sim.URL(), func(c *router.Config) {
		c.Tiers = tiers
		c.Reasoning.Tiers = map[string]router.ReasoningSetting{router.TierFast: {Effort: "high"}}
	})
	if p := plan(t, set, fast, ""); p.Reasoning != "high" || p.EffortFrom != "config" || p.MaxTokens != hard.MaxTokens {
		t.Fatalf("configured: effort=%q from %s max_tokens=%d", p.Reasoning, p.EffortFrom, p.MaxTokens)
	}
	if p := plan(t, set, fast, "minimal"); p.Reasoning != "minimal" || p.EffortFrom != "you" || p.MaxTokens >= q.MaxTokens {
		t.Fatalf("asked: effort=%q from %s max_tokens=%d", p.Reasoning, p.EffortFrom, p.MaxTokens)
	}
	ex, err := r.Explain(ctx, bot.PlanRequest{Messages: proof, Available: rich})
	if err != nil || ex.Effort != "high" || ex.EffortFrom != "tier" {
		t.Fatalf("explain effort=%q from %q err=%v", ex.Effort, ex.EffortFrom, err)
	}
}
