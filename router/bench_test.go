package router_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// planMix is the mix of prompts the plan benchmarks plan.
func planMix() []bot.PlanRequest {
	var convo []bot.ChatMessage
	convo = append(convo, system("You are orchat, a helpful assistant in a Discord server."))
	for i := range 10 {
		convo = append(convo, user(fmt.Sprintf("message %d about the weekend plans and the weather", i)), assistant("Sounds good! Here is what I think about that plan."))
	}
	convo = append(convo, user("So what should we do on Sunday?"))
	return []bot.PlanRequest{
		{Messages: []bot.ChatMessage{system("Be brief."), user("hi! how are you?")}, Available: 15_000, FreeRemaining: 50},
		{Messages: []bot.ChatMessage{user("```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\nWhy does this not compile? I get an undefined: fmt error.")}, Available: 15_000},
		{Messages: []bot.ChatMessage{user("Prove step by step that the sum of the first n odd numbers is n^2.")}, Available: 15_000},
		{Messages: []bot.ChatMessage{user(strings.Repeat("Tell me about the history of the Hanseatic League and its cities. ", 8))}, Available: 15_000},
		{Messages: convo, Available: 15_000},
		{Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "What is in this photo?", Images: []string{cat}}}, Available: 15_000},
		{Messages: []bot.ChatMessage{user("hello")}, Available: 0, FreeRemaining: 5},
		{Messages: []bot.ChatMessage{user("hello")}, Model: "anthropic/claude-sonnet-4.6:nitro", Available: 15_000},
	}
}

// BenchmarkPlan: the local auto router over the full 344-model catalog,
// on a mix of prompts. Reports the 99th percentile of one Plan call.
func BenchmarkPlan(b *testing.B) {
	r := MustFullRouter(b, nil)
	reqs := planMix()
	ctx := context.Background()
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := r.Plan(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durs)
	if len(durs) > 0 {
		p99 := durs[min(len(durs)-1, len(durs)*99/100)]
		b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-us")
	}
}

// BenchmarkPlanLearning: the plan mix in a community whose votes rate
// every tier's candidates (in reverse of the router's order, so the votes
// decide), against the same mix without a community, alternately in the
// same run. p99-us is the learning plan's 99th percentile, ratio its mean
// over the plain plan's, reads-per-plan how often a plan read the votes
// store (the ratings are cached: one read per refresh).
func BenchmarkPlanLearning(b *testing.B) {
	var results []bot.TierResults
	for _, tier := range router.Tiers {
		ids := router.DefaultTiers()[tier]
		tr := bot.TierResults{Tier: tier, Votes: 100}
		for i := range ids {
			for j := i + 1; j < len(ids); j++ {
				tr.Pairs = append(tr.Pairs, bot.PairRecord{A: ids[j], B: ids[i], AWins: 10 + j - i, BWins: 3})
			}
		}
		results = append(results, tr)
	}
	votes := &fakeVotes{results: func(string) []bot.TierResults { return results }}
	r := MustFullRouter(b, func(c *router.Config) { c.Votes = votes })
	plain := planMix()
	learning := planMix()
	for i := range learning {
		learning[i].Community, learning[i].Learn = "discord:1", true
	}
	ctx := context.Background()
	if _, err := r.Plan(ctx, learning[0]); err != nil { // the first read fills the cache
		b.Fatal(err)
	}
	durs := make([]time.Duration, 0, b.N)
	var tl, tp time.Duration
	learned := 0
	b.ReportAllocs()
	b.ResetTimer()
	plainPlan := func(i int) {
		start := time.Now()
		if _, err := r.Plan(ctx, plain[i%len(plain)]); err != nil {
			b.Fatal(err)
		}
		tp += time.Since(start)
	}
	for i := 0; b.Loop(); i++ {
		// The plain plan goes first every other time: neither side gets
		// the caches the other warmed.
		b.StopTimer()
		if i%2 == 0 {
			plainPlan(i)
		}
		b.StartTimer()
		start := time.Now()
		p, err := r.Plan(ctx, learning[i%len(learning)])
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		durs, tl = append(durs, d), tl+d
		if p.Learned {
			learned++
		}
		b.StopTimer()
		if i%2 == 1 {
			plainPlan(i)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if learned == 0 {
		b.Fatal("the votes decided no plan: the benchmark would not measure learning")
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[min(len(durs)-1, len(durs)*99/100)].Nanoseconds())/1e3, "p99-us")
		b.ReportMetric(float64(tl)/float64(tp), "ratio")
		b.ReportMetric(float64(votes.reads("discord:1"))/float64(len(durs)), "reads-per-plan")
	}
}

// sseStream builds a realistic OpenRouter stream of n content chunks.
func sseStream(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(": OPENROUTER PROCESSING\n\n")
	for i := range n {
		fmt.Fprintf(&buf, `data: {"id":"gen-1763798400-a1B2c3D4e5F6g7H8i9J0","provider":"Google","model":"google/gemini-2.5-flash-lite","object":"chat.completion.chunk","created":1763798400,"choices":[{"index":0,"delta":{"role":"assistant","content":"token %d of a long and winding answer, "},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}`+"\n\n", i)
	}
	buf.WriteString(`data: {"id":"gen-1763798400-a1B2c3D4e5F6g7H8i9J0","provider":"Google","model":"google/gemini-2.5-flash-lite","object":"chat.completion.chunk","created":1763798400,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"STOP","logprobs":null}]}` + "\n\n")
	buf.WriteString(`data: {"id":"gen-1763798400-a1B2c3D4e5F6g7H8i9J0","provider":"Google","model":"google/gemini-2.5-flash-lite","object":"chat.completion.chunk","created":1763798400,"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":16,"total_tokens":29,"cost":0.000093,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":0.000093},"completion_tokens_details":{"reasoning_tokens":0}}}` + "\n\ndata: [DONE]\n\n")
	return buf.Bytes()
}

// BenchmarkStreamParse: MB/s of SSE parsed (JSON decoding included).
func BenchmarkStreamParse(b *testing.B) {
	data := sseStream(2000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		resp, err := router.ParseStream(bytes.NewReader(data), func(string) { n++ })
		if err != nil || !resp.UsageReported {
			b.Fatal(resp, err)
		}
	}
}

// sseWhole builds a reasoning model's stream with web citations: n
// thinking chunks (delta.reasoning beside delta.reasoning_details, as
// OpenRouter sends them), n answer chunks, then url_citation annotations
// and the usage.
func sseWhole(n int) []byte {
	var buf bytes.Buffer
	const head = `data: {"id":"gen-1764000000-R3as0n1ngSampleAbCd","provider":"OpenAI","model":"openai/o4-mini","object":"chat.completion.chunk","created":1764000000,"choices":[{"index":0,"delta":{"role":"assistant",`
	const tail = `},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}` + "\n\n"
	buf.WriteString(": OPENROUTER PROCESSING\n\n")
	for i := range n {
		fmt.Fprintf(&buf, head+`"content":"","reasoning":"step %d: weigh the rooks again, ","reasoning_details":[{"type":"reasoning.text","text":"step %d: weigh the rooks again, ","format":"unknown","index":0}]`+tail, i, i)
	}
	for i := range n {
		fmt.Fprintf(&buf, head+`"content":"token %d of a long and winding answer, "`+tail, i)
	}
	buf.WriteString(head + `"content":"","annotations":[{"type":"url_citation","url_citation":{"url":"https://go.dev/doc/go1.26","title":"Go 1.26 Release Notes","content":"Go 1.26 is a major release.","start_index":0,"end_index":10}},{"type":"url_citation","url_citation":{"url":"https://go.dev/blog/go1.26","title":"Go 1.26 is released","content":"","start_index":0,"end_index":0}}]},"finish_reason":"stop","native_finish_reason":"completed","logprobs":null}]}` + "\n\n")
	buf.WriteString(`data: {"id":"gen-1764000000-R3as0n1ngSampleAbCd","provider":"OpenAI","model":"openai/o4-mini","object":"chat.completion.chunk","created":1764000000,"choices":[],"usage":{"prompt_tokens":24,"completion_tokens":310,"total_tokens":334,"cost":0.0013904,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":0.0013904,"upstream_inference_prompt_cost":0.0000264,"upstream_inference_completions_cost":0.001364},"completion_tokens_details":{"reasoning_tokens":298},"server_tool_use_details":{"web_search_requests":1}}}` + "\n\ndata: [DONE]\n\n")
	return buf.Bytes()
}

// BenchmarkStreamParseWhole: MB/s of a stream with thinking (and its
// reasoning_details) and citations; whole-ratio is its MB/s over the
// content-only stream's, measured in the same run.
func BenchmarkStreamParseWhole(b *testing.B) {
	whole, plain := sseWhole(1000), sseStream(2000)
	parse := func(data []byte) time.Duration {
		start := time.Now()
		resp, err := router.ParseStream(bytes.NewReader(data), func(string) {})
		if err != nil || !resp.UsageReported || resp.FinishReason != "stop" {
			b.Fatal(resp, err)
		}
		return time.Since(start)
	}
	b.SetBytes(int64(len(whole)))
	b.ReportAllocs()
	var tw, tp time.Duration
	for b.Loop() {
		tw += parse(whole)
		b.StopTimer()
		tp += parse(plain)
		b.StartTimer()
	}
	wholeMBs := float64(len(whole)) / tw.Seconds()
	plainMBs := float64(len(plain)) / tp.Seconds()
	b.ReportMetric(wholeMBs/plainMBs, "whole-ratio")
}

// BenchmarkCompare4: four simulated models whose first tokens come after
// 20, 40, 60 and 80 ms, compared at once. extra-ms is the wall time beyond
// the slowest model's latency: the overhead of the fan-out.
func BenchmarkCompare4(b *testing.B) {
	models := []string{"google/gemini-2.5-flash-lite", "openai/gpt-5-mini", "deepseek/deepseek-v3.2", "google/gemini-2.5-flash"}
	faults := map[string]openroutertest.Fault{}
	for i, m := range models {
		faults[m] = openroutertest.Fault{TTFT: time.Duration(20*(i+1)) * time.Millisecond}
	}
	sim := MustSim(b, openroutertest.Options{Faults: faults})
	r := MustRouter(b, sim.URL(), nil)
	reqs := make([]bot.ChatRequest, len(models))
	for i, m := range models {
		p := chosenPlan(m)
		p.MaxTokens = 128
		reqs[i] = bot.ChatRequest{Plan: p, User: "console:bench"}
	}
	ctx := context.Background()
	const slowest = 80 * time.Millisecond
	var extra time.Duration
	iters := 0
	for b.Loop() {
		start := time.Now()
		results := r.Compare(ctx, reqs, func(int, string) {})
		extra += time.Since(start) - slowest
		iters++
		for _, res := range results {
			if res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	}
	b.ReportMetric(float64(extra.Microseconds())/1e3/float64(iters), "extra-ms")
}
