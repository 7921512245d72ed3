package router_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

// Explain plans exactly as Plan and shows the working: signals, the
// classifier's scores, the constraints, every candidate and its fate.
func TestExplain(t *testing.T) {
	r := MustFullRouter(t, nil)
	ctx := context.Background()
	explain := func(t *testing.T, req bot.PlanRequest) router.Explanation {
		t.Helper()
		ex, err := r.Explain(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.Plan(ctx, req)
		if err != nil || !reflect.DeepEqual(p, ex.Plan) {
			t.Fatalf("Explain planned\n%+v\nPlan planned\n%+v (%v)", ex.Plan, p, err)
		}
		var winners, fallbacks []string
		for _, c := range ex.Candidates {
			switch c.Outcome {
			case "winner":
				winners = append(winners, c.Model)
			case "fallback":
				fallbacks = append(fallbacks, c.Model)
			case "dropped", "skipped":
				if c.Why == "" {
					t.Fatalf("%s %s without a reason", c.Model, c.Outcome)
				}
			default:
				t.Fatalf("outcome %q", c.Outcome)
			}
		}
		if !slices.Equal(winners, []string{ex.Plan.Model}) || !slices.Equal(fallbacks, ex.Plan.Fallbacks) {
			t.Fatalf("winners %v fallbacks %v, plan %s then %v", winners, fallbacks, ex.Plan.Model, ex.Plan.Fallbacks)
		}
		if len(ex.Constraints) < 3 {
			t.Fatalf("constraints %q", ex.Constraints)
		}
		return ex
	}
	scored := func(t *testing.T, ex router.Explanation, best string) {
		t.Helper()
		if len(ex.Scores) != 4 || ex.Scores[0].Tier != best {
			t.Fatalf("scores %+v, want four with %s first", ex.Scores, best)
		}
		sum := 0.0
		for i, s := range ex.Scores {
			sum += s.P
			if i > 0 && s.P > ex.Scores[i-1].P {
				t.Fatalf("scores %+v are not best first", ex.Scores)
			}
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("scores sum to %v", sum)
		}
	}

	t.Run("Code", func(t *testing.T) {
		ex := explain(t, bot.PlanRequest{Messages: []bot.ChatMessage{system("Be brief."), user("```go\nfunc main() {\n\tfmt.Println(x)\n}\n```\nwhy does this fail")}, Available: rich})
		scored(t, ex, router.TierCode)
		if ex.Needed != router.TierCode || !ex.Signals.CodeFence || ex.Signals.CodeLines == 0 || ex.Signals.Turns != 1 || ex.Signals.Available != rich {
			t.Fatalf("needed %s signals %+v", ex.Needed, ex.Signals)
		}
	})
	t.Run("ImageStillScoresTheText", func(t *testing.T) {
		ex := explain(t, bot.PlanRequest{Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "what is wrong with this python traceback?", Images: []string{cat}}}, Available: rich})
		scored(t, ex, router.TierCode)
		if ex.Needed != router.TierVision || ex.Plan.Tier != router.TierVision || ex.Signals.Images != 1 ||
			!slices.ContainsFunc(ex.Constraints, func(s string) bool { return strings.Contains(s, "reads images") }) {
			t.Fatalf("needed %s tier %s signals %+v constraints %q", ex.Needed, ex.Plan.Tier, ex.Signals, ex.Constraints)
		}
	})
	t.Run("SkippedForTheBalance", func(t *testing.T) {
		ex := explain(t, bot.PlanRequest{Messages: []bot.ChatMessage{user("Prove that there are infinitely many primes.")}, Available: 100, FreeRemaining: 3})
		if ex.Needed != router.TierReasoning || ex.Plan.Tier != router.TierGeneral {
			t.Fatalf("needed %s served %s", ex.Needed, ex.Plan.Tier)
		}
		i := slices.IndexFunc(ex.Candidates, func(c router.Candidate) bool { return c.Model == "openai/o4-mini" })
		if i < 0 || ex.Candidates[i].Outcome != "skipped" || ex.Candidates[i].Tier != router.TierReasoning || !strings.Contains(ex.Candidates[i].Why, "more than the 100 available") {
			t.Fatalf("candidates %+v", ex.Candidates)
		}
	})
	t.Run("Chosen", func(t *testing.T) {
		ex := explain(t, bot.PlanRequest{Messages: []bot.ChatMessage{user("hi")}, Model: "openai/gpt-5-mini", Available: rich})
		if ex.Needed != router.TierChosen || ex.Scores != nil {
			t.Fatalf("needed %s scores %+v", ex.Needed, ex.Scores)
		}
	})
	t.Run("ErrorStillExplains", func(t *testing.T) {
		ex, err := r.Explain(ctx, bot.PlanRequest{Messages: []bot.ChatMessage{user("hello")}, Available: 0})
		if bot.ErrorCode(err) != bot.EINSUFFICIENT || ex.Needed != router.TierFast || len(ex.Candidates) == 0 {
			t.Fatalf("err=%v explanation %+v", err, ex)
		}
	})
}

// Config.Rank reorders a tier's candidates: the hook a community's votes
// will use. A function-field fake stands in for the ratings.
func TestRankHook(t *testing.T) {
	var gotTier string
	var gotCands []router.RankCandidate
	var gotReq bot.PlanRequest
	r := MustFullRouter(t, func(c *router.Config) {
		c.Rank = func(req bot.PlanRequest, tier string, cands []router.RankCandidate) ([]string, string) {
			gotReq, gotTier, gotCands = req, tier, cands
			if tier != router.TierCode {
				return nil, ""
			}
			// Reversed, plus an id that is no candidate.
			ids := []string{"not/a-candidate"}
			for i := len(cands) - 1; i >= 0; i-- {
				ids = append(ids, cands[i].ID)
			}
			return ids[:len(ids)-1], "this community prefers " + ids[1] + " for code"
		}
	})
	req := bot.PlanRequest{Identity: "discord:42", Messages: []bot.ChatMessage{user("Write a Go function that reverses a UTF-8 string")}, Available: rich}
	p, err := r.Plan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, r, p, req.Messages, req)
	code := router.DefaultTiers()[router.TierCode]
	if gotTier != router.TierCode || gotReq.Identity != "discord:42" || len(gotCands) != len(code) || gotCands[0].ID != code[0] || gotCands[0].Cost <= 0 {
		t.Fatalf("Rank saw tier %s req %s candidates %+v", gotTier, gotReq.Identity, gotCands)
	}
	// The ranked ones first (the last configured, then the second), the
	// one left out after them; the unknown id ignored.
	if want := []string{code[2], code[1], code[0]}; !slices.Equal(p.Candidates(), want) {
		t.Fatalf("candidates %v, want %v", p.Candidates(), want)
	}
	if !hasReason(p, "this community prefers "+code[2]+" for code") {
		t.Fatalf("reasons %q", p.Reasons)
	}
}
