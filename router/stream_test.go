package router_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

const (
	modelA = "google/gemini-2.5-flash-lite"
	modelB = "openai/gpt-4.1-nano"
	modelC = "mistralai/mistral-small-3.2-24b-instruct"
)

// requestLog records the chat requests a simulator served.
type requestLog struct {
	mu   sync.Mutex
	reqs []*openroutertest.Request
}

func (l *requestLog) hook(f func(*openroutertest.Request) *openroutertest.Fault) func(*openroutertest.Request) *openroutertest.Fault {
	return func(r *openroutertest.Request) *openroutertest.Fault {
		l.mu.Lock()
		l.reqs = append(l.reqs, r)
		l.mu.Unlock()
		if f != nil {
			return f(r)
		}
		return nil
	}
}

func (l *requestLog) models() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs {
		out = append(out, r.Model)
	}
	return out
}

func TestStream(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{})
		m := &metrics{}
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.Metrics = m })
		plan, err := r.Plan(context.Background(), bot.PlanRequest{Identity: "console:alice", Messages: []bot.ChatMessage{system("Be brief."), user("hello there")}, Available: 15_000})
		if err != nil {
			t.Fatal(err)
		}
		res, text, err := stream(t, r, plan)
		if err != nil {
			t.Fatal(err)
		}
		if want := "[simulated " + plan.Model + "] You said: hello there."; !strings.HasPrefix(text, want) {
			t.Fatalf("text=%q, want prefix %q", text, want)
		}
		if res.Model != plan.Model || res.Provider != "Simulated" || !strings.HasPrefix(res.GenerationID, "gen-sim-") || res.FinishReason != "stop" {
			t.Fatalf("result=%+v", res)
		}
		// The simulator counts prompt tokens the way the planner estimates them.
		if got, want := res.Usage.PromptTokens, int64(plan.PromptTokens); got != want {
			t.Fatalf("prompt tokens=%d, want %d", got, want)
		}
		if got, want := res.Usage.CompletionTokens, int64(router.EstimateTokens(text)); got != want {
			t.Fatalf("completion tokens=%d, want %d", got, want)
		}
		model, _ := r.Catalog().Lookup(res.Model)
		wantUSD := float64(res.Usage.PromptTokens)*model.PromptPrice + float64(res.Usage.CompletionTokens)*model.CompletionPrice
		if res.Usage.CostUSD != wantUSD || sim.BilledUSD() != wantUSD {
			t.Fatalf("cost=%g billed=%g, want %g", res.Usage.CostUSD, sim.BilledUSD(), wantUSD)
		}
		if got, want := res.Cost, r.Config().Billing.FromUSD(wantUSD); got != want || got > plan.Cost {
			t.Fatalf("charged=%d, want %d (hold %d)", got, want, plan.Cost)
		}
		// Tokens and charges are reported by the caller, which knows what the
		// ledger actually charged; the router reports the attempt.
		if len(m.upstream) != 1 || m.statuses[0] != 200 || m.tokens != 0 {
			t.Fatalf("metrics: upstream=%v statuses=%v tokens=%d", m.upstream, m.statuses, m.tokens)
		}
	})

	t.Run("FallbackOrder", func(t *testing.T) {
		var log requestLog
		sim := MustSim(t, openroutertest.Options{
			Faults:    map[string]openroutertest.Fault{modelA: {Status: 502}, modelB: {Status: 429, RetryAfter: "1"}},
			FaultFunc: log.hook(nil),
		})
		m := &metrics{}
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.Metrics = m })
		res, text, err := stream(t, r, chosenPlan(modelA, modelB, modelC))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "[simulated "+modelC+"]") || res.Model != modelC {
			t.Fatalf("model=%q text=%q", res.Model, text)
		}
		if want := []string{modelA, modelB, modelC}; !slices.Equal(res.Attempts, want) || !slices.Equal(log.models(), want) {
			t.Fatalf("attempts=%v sent=%v, want %v", res.Attempts, log.models(), want)
		}
		if want := [][2]string{{modelA, modelB}, {modelB, modelC}}; !slices.Equal(m.fallbacks, want) {
			t.Fatalf("fallbacks=%v, want %v", m.fallbacks, want)
		}
		if want := []int{502, 429, 200}; !slices.Equal(m.statuses, want) {
			t.Fatalf("statuses=%v, want %v", m.statuses, want)
		}
		// Each attempt offers OpenRouter the remaining candidates.
		if got := log.reqs[1].Models; !slices.Equal(got, []string{modelB, modelC}) {
			t.Fatalf("models sent with the second attempt=%v", got)
		}
	})

	for _, tt := range []struct {
		name  string
		fault openroutertest.Fault
		code  string
	}{
		{"NoRetry402", openroutertest.Fault{Status: 402}, bot.EINSUFFICIENT},
		{"NoRetry403", openroutertest.Fault{Status: 403, Reasons: []string{"violence"}}, bot.EINVALID},
		{"NoRetry400", openroutertest.Fault{Status: 400, Message: "bad request"}, bot.EINVALID},
		{"NoRetryDailyCap", openroutertest.Fault{Status: 429, DailyCap: true}, bot.ERATELIMIT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: tt.fault}})
			r := MustRouter(t, sim.URL(), nil)
			res, _, err := stream(t, r, chosenPlan(modelA, modelB))
			if got := bot.ErrorCode(err); got != tt.code {
				t.Fatalf("code=%s, want %s (err %v)", got, tt.code, err)
			}
			if !slices.Equal(res.Attempts, []string{modelA}) || sim.Requests() != 1 || res.Cost != 0 {
				t.Fatalf("attempts=%v requests=%d cost=%d: a non-retryable failure must return at once, free", res.Attempts, sim.Requests(), res.Cost)
			}
		})
	}

	t.Run("NoRestartAfterOutput", func(t *testing.T) {
		for _, f := range []openroutertest.Fault{
			{MidStreamError: true, AfterChunks: 2},
			{MidStreamError: true, AfterChunks: 2, ErrorCode: "server_error"},
			{Truncate: true, AfterChunks: 2},
			{Stall: true, AfterChunks: 2},
			{BadJSON: true, AfterChunks: 2},
		} {
			t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
				sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: f}})
				r := MustRouter(t, sim.URL(), func(c *router.Config) { c.IdleTimeout = 150 * time.Millisecond })
				plan := chosenPlan(modelA, modelB)
				res, text, err := stream(t, r, plan)
				if err == nil || res.Err == nil {
					t.Fatal("no error")
				}
				if text == "" || !strings.HasPrefix(text, "[simulated "+modelA+"]") {
					t.Fatalf("text=%q, want the partial answer", text)
				}
				if !slices.Equal(res.Attempts, []string{modelA}) || sim.Requests() != 1 {
					t.Fatalf("attempts=%v requests=%d: restarted after output", res.Attempts, sim.Requests())
				}
				// The cut stream is settled from GET /generation: exactly
				// what the upstream billed for it, within the hold.
				want := r.Config().Billing.FromUSD(sim.Stats().PartialUSD)
				if res.Settled != "generation" || res.Estimated || res.Cost != want || res.Cost <= 0 || res.Cost > plan.Cost {
					t.Fatalf("cost=%d settled=%q, want %d from /generation within the hold %d", res.Cost, res.Settled, want, plan.Cost)
				}
				if got := bot.ErrorCode(err); got != bot.EUNAVAILABLE {
					t.Fatalf("code=%s", got)
				}
			})
		}
	})

	t.Run("CutStreamEstimatedWithoutGeneration", func(t *testing.T) {
		// An OpenAI-compatible server has no /generation: the estimate,
		// at once; so does OpenRouter when it does not know the call in
		// time.
		for name, edit := range map[string]func(*router.Config){
			"OpenAIServer": func(c *router.Config) { c.API = "openai" },
			"NotRecorded":  func(c *router.Config) { c.GenerationRetry = 50 * time.Millisecond },
		} {
			t.Run(name, func(t *testing.T) {
				sim := MustSim(t, openroutertest.Options{GenerationDelay: time.Hour, Faults: map[string]openroutertest.Fault{modelA: {Truncate: true, AfterChunks: 2}}})
				r := MustRouter(t, sim.URL(), edit)
				plan := chosenPlan(modelA)
				res, _, err := stream(t, r, plan)
				if err == nil || !res.Estimated || res.Settled != "estimate" || res.Cost <= 0 || res.Cost > plan.Cost {
					t.Fatalf("cost=%d settled=%q err=%v: want an estimate within the hold", res.Cost, res.Settled, err)
				}
			})
		}
	})

	t.Run("RetryBeforeOutput", func(t *testing.T) {
		for _, f := range []openroutertest.Fault{
			{Stall: true},
			{Truncate: true},
			{MidStreamError: true},
			{HTML: true},
			{EmptyBody: true, Status: 500},
			{NoChoices: true},
			{Status: 404},
			{Status: 503, RetryAfter: "31536000"},
		} {
			t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
				sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: f}})
				r := MustRouter(t, sim.URL(), func(c *router.Config) { c.IdleTimeout = 150 * time.Millisecond })
				res, text, err := stream(t, r, chosenPlan(modelA, modelB))
				if err != nil {
					t.Fatal(err)
				}
				if res.Model != modelB || !strings.HasPrefix(text, "[simulated "+modelB+"]") || !slices.Equal(res.Attempts, []string{modelA, modelB}) {
					t.Fatalf("model=%q attempts=%v text=%q", res.Model, res.Attempts, text)
				}
			})
		}
	})

	t.Run("AllFail", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Status: 502}, modelB: {Status: 429, RetryAfter: "31536000"}}})
		r := MustRouter(t, sim.URL(), nil)
		res, text, err := stream(t, r, chosenPlan(modelA, modelB))
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Model != modelB || ue.Status != 429 {
			t.Fatalf("err=%v, want the last candidate's 429", err)
		}
		// A Retry-After of a year is capped.
		if ue.RetryAfter != r.Config().MaxRetryAfter {
			t.Fatalf("retry after=%v, want the cap %v", ue.RetryAfter, r.Config().MaxRetryAfter)
		}
		if text != "" || res.Cost != 0 || res.Estimated {
			t.Fatalf("text=%q cost=%d: a call that failed before any output costs nothing", text, res.Cost)
		}
		if got := bot.ErrorCode(err); got != bot.ERATELIMIT {
			t.Fatalf("code=%s", got)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{TokensPerSecond: 50})
		r := MustRouter(t, sim.URL(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got strings.Builder
		res, err := r.Stream(ctx, bot.ChatRequest{Plan: chosenPlan(modelA, modelB)}, func(d string) {
			got.WriteString(d)
			cancel()
		})
		if !errors.Is(err, context.Canceled) || res.Text == "" || res.Text != got.String() {
			t.Fatalf("err=%v text=%q", err, res.Text)
		}
		if len(res.Attempts) != 1 {
			t.Fatalf("attempts=%v: a cancelled call must not fall back", res.Attempts)
		}
	})

	t.Run("NonStreamingThroughSimulator", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{})
		c := router.NewClient(testConfig(sim.URL()))
		resp, err := c.Complete(context.Background(), router.Request{Model: modelA, Messages: []bot.ChatMessage{user("hi")}, MaxTokens: 50})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(resp.Text, "[simulated "+modelA+"]") || !resp.UsageReported || resp.Usage.CompletionTokens > 50 {
			t.Fatalf("resp=%+v", resp)
		}
	})
}

func TestCompare(t *testing.T) {
	const slow, failing, good = "openai/gpt-5-mini", "deepseek/deepseek-v3.2", "google/gemini-2.5-flash"
	sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{
		slow:    {TTFT: 150 * time.Millisecond, TokensPerSecond: 2000},
		failing: {Status: 502},
	}})
	r := MustRouter(t, sim.URL(), nil)
	var reqs []bot.ChatRequest
	for _, m := range []string{slow, failing, good} {
		reqs = append(reqs, bot.ChatRequest{Plan: chosenPlan(m), User: "console:alice"})
	}
	var mu sync.Mutex
	deltas := make([]strings.Builder, len(reqs))
	results := r.Compare(context.Background(), reqs, func(i int, d string) {
		mu.Lock()
		defer mu.Unlock()
		deltas[i].WriteString(d)
	})
	if len(results) != 3 {
		t.Fatalf("results=%d", len(results))
	}
	for i, m := range []string{slow, good} {
		res := results[i*2]
		if res.Err != nil || res.Model != m || !strings.HasPrefix(res.Text, "[simulated "+m+"]") || res.Text != deltas[i*2].String() {
			t.Fatalf("result %d: model=%q err=%v text=%q", i*2, res.Model, res.Err, res.Text)
		}
		if res.Cost <= 0 || res.TTFT <= 0 || res.Latency < res.TTFT {
			t.Fatalf("result %d: cost=%d ttft=%v latency=%v", i*2, res.Cost, res.TTFT, res.Latency)
		}
	}
	if res := results[1]; res.Err == nil || bot.ErrorCode(res.Err) != bot.EUNAVAILABLE || res.Text != "" || res.Cost != 0 {
		t.Fatalf("failing result=%+v", res)
	}

	t.Run("Cancelled", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{slow: {Stall: true}, good: {Stall: true}}})
		r := MustRouter(t, sim.URL(), nil)
		ctx, cancel := context.WithCancel(context.Background())
		var once sync.Once
		results := r.Compare(ctx, []bot.ChatRequest{{Plan: chosenPlan(slow)}, {Plan: chosenPlan(good)}, {Plan: chosenPlan(modelA)}}, func(i int, d string) {
			once.Do(cancel)
		})
		for i, res := range results[:2] {
			if !errors.Is(res.Err, context.Canceled) {
				t.Fatalf("result %d: err=%v, want cancelled", i, res.Err)
			}
		}
	})
	t.Run("TooMany", func(t *testing.T) {
		results := r.Compare(context.Background(), make([]bot.ChatRequest, 5), nil)
		for _, res := range results {
			if bot.ErrorCode(res.Err) != bot.EINVALID {
				t.Fatalf("err=%v", res.Err)
			}
		}
	})
}

// Under a random fault mix, every request ends cleanly and the bot never
// charges less than the upstream billed for calls that reported usage.
func TestFaultMix(t *testing.T) {
	run := func(seed int64) (openroutertest.Stats, int64) {
		sim := MustSim(t, openroutertest.Options{FailRate: 0.4, Seed: seed})
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.IdleTimeout = 200 * time.Millisecond })
		var wg sync.WaitGroup
		var mu sync.Mutex
		var charged int64
		for i := range 60 {
			wg.Go(func() {
				plan := chosenPlan(modelA, modelB, modelC)
				plan.Messages = []bot.ChatMessage{user(fmt.Sprintf("question number %d", i))}
				res, err := r.Stream(context.Background(), bot.ChatRequest{Plan: plan}, nil)
				if err == nil && (res.Text == "" || !strings.HasPrefix(res.Text, "[simulated")) {
					t.Errorf("success without text: %+v", res)
				}
				if err != nil && bot.ErrorCode(err) == bot.EINTERNAL {
					t.Errorf("internal error: %v", err)
				}
				if res.Usage.CostReported {
					mu.Lock()
					charged += res.Cost
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return sim.Stats(), charged
	}
	st1, charged := run(7)
	if st1.Faults == 0 || st1.Requests < 60 {
		t.Fatalf("stats=%+v: the fault mix did nothing", st1)
	}
	// Each charge rounds up, except for float noise of under a token.
	if billed := router.DefaultConfig().Billing.FromUSD(st1.BilledUSD); charged < billed-st1.Requests {
		t.Fatalf("charged %d tokens for calls the upstream billed %d tokens", charged, billed)
	}
	st2, _ := run(7)
	if st1.Requests != st2.Requests || st1.Faults != st2.Faults || math.Abs(st1.BilledUSD-st2.BilledUSD) > 1e-9 {
		t.Fatalf("same seed, different runs: %+v vs %+v", st1, st2)
	}
}

func TestStreamRetriesARateLimitedLastCandidate(t *testing.T) {
	var log requestLog
	var n atomic.Int64
	sim := MustSim(t, openroutertest.Options{FaultFunc: log.hook(func(r *openroutertest.Request) *openroutertest.Fault {
		if n.Add(1) <= 2 {
			return &openroutertest.Fault{Status: 429}
		}
		return nil
	})})
	r := MustRouter(t, sim.URL(), nil)
	// A fallback, then the last candidate twice.
	res, _, err := stream(t, r, chosenPlan(modelA, modelB))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{modelA, modelB, modelB}; !slices.Equal(res.Attempts, want) || res.Model != modelB {
		t.Fatalf("attempts=%v model=%s, want %v", res.Attempts, res.Model, want)
	}
	// Twice rate-limited on the only candidate: give up with ERATELIMIT.
	n.Store(0)
	res, _, err = stream(t, r, chosenPlan(modelA))
	if bot.ErrorCode(err) != bot.ERATELIMIT || len(res.Attempts) != 2 {
		t.Fatalf("attempts=%v err=%v", res.Attempts, err)
	}
}

// A rate limit longer than the router will wait is not retried early, even
// when router.max_retry_after is set below router.max_fallback_wait.
func TestStreamHonoursALongRetryAfterOnTheLastCandidate(t *testing.T) {
	sim := MustSim(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{modelA: {Status: 429, RetryAfter: "3600"}}})
	r := MustRouter(t, sim.URL(), func(c *router.Config) {
		c.MaxRetryAfter = time.Millisecond
		c.MaxFallbackWait = time.Minute
	})
	res, _, err := stream(t, r, chosenPlan(modelA))
	if bot.ErrorCode(err) != bot.ERATELIMIT {
		t.Fatalf("err=%v, want ERATELIMIT", err)
	}
	if !slices.Equal(res.Attempts, []string{modelA}) || sim.Requests() != 1 {
		t.Fatalf("attempts=%v requests=%d: retried an hour's rate limit at once", res.Attempts, sim.Requests())
	}
}

func TestStreamOpenRouterAuto(t *testing.T) {
	var log requestLog
	sim := MustSim(t, openroutertest.Options{FaultFunc: log.hook(nil)})
	r := MustRouter(t, sim.URL(), nil)
	plan, err := r.Plan(context.Background(), bot.PlanRequest{Messages: []bot.ChatMessage{user("hi")}, Model: router.AutoModel, Available: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	res, text, err := stream(t, r, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(plan.AutoModels, res.Model) || !strings.Contains(text, "[simulated "+res.Model+"]") {
		t.Fatalf("answered by %q, allowed %v", res.Model, plan.AutoModels)
	}
	body := string(log.reqs[0].Body)
	if !strings.Contains(body, `"model":"openrouter/auto"`) || !strings.Contains(body, `"plugins":[{"id":"auto-router","allowed_models":[`) || strings.Contains(body, `"models"`) {
		t.Fatalf("body=%s", body)
	}
	// Charged from the answering model's reported cost, never from "-1".
	if res.Cost <= 0 || res.Cost > plan.Cost {
		t.Fatalf("cost=%d hold=%d", res.Cost, plan.Cost)
	}
}
