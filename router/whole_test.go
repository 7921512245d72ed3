package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// The whole answer from real wire samples: thinking with its
// reasoning_details merged across chunks, url_citation annotations, an
// image, a refusal, cached tokens and a cut at the cap.
func TestWholeAnswerSamples(t *testing.T) {
	t.Run("Reasoning", func(t *testing.T) {
		srv := serveFile(t, "stream-reasoning.sse", http.StatusOK, "text/event-stream")
		r := MustRouter(t, srv.URL, nil)
		var thought strings.Builder
		plan := chosenPlan("openai/o4-mini")
		res, err := r.Stream(context.Background(), bot.ChatRequest{Plan: plan, OnReasoning: func(d string) { thought.WriteString(d) }}, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		const want = "**Checking the rooks** Eight rooks, none attacking: one per row and column, so 8! placements."
		if res.Reasoning != want || thought.String() != want {
			t.Fatalf("reasoning=%q streamed=%q, want %q", res.Reasoning, thought.String(), want)
		}
		if res.Text != "There are 40,320 ways." || res.Usage.ReasoningTokens != 298 || res.Cost != 1391 {
			t.Fatalf("text=%q reasoning tokens=%d cost=%d", res.Text, res.Usage.ReasoningTokens, res.Cost)
		}
		var details []map[string]any
		if err := json.Unmarshal(res.ReasoningDetails, &details); err != nil || len(details) != 2 {
			t.Fatalf("reasoning_details=%s (%v), want the summary and the encrypted item", res.ReasoningDetails, err)
		}
		if details[0]["summary"] != "**Checking the rooks** Eight rooks, none attacking: one per row and column, so 8! placements." || details[1]["data"] != "gAAAAABo-encrypted-sample==" {
			t.Fatalf("reasoning_details not merged by index: %s", res.ReasoningDetails)
		}
	})
	t.Run("WebCitations", func(t *testing.T) {
		srv := serveFile(t, "stream-web-annotations.sse", http.StatusOK, "text/event-stream")
		res, _, err := stream(t, MustRouter(t, srv.URL, nil), chosenPlan("google/gemini-2.5-flash"))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Citations) != 2 || res.Citations[0] != (bot.Citation{URL: "https://go.dev/doc/go1.26", Title: "Go 1.26 Release Notes"}) {
			t.Fatalf("citations=%+v", res.Citations)
		}
		if res.Cost != 20618 {
			t.Fatalf("cost=%d, want usage.cost with the search (20,618)", res.Cost)
		}
	})
	for _, tt := range []struct {
		file  string
		check func(t *testing.T, res bot.Result)
	}{
		{"completion-image.json", func(t *testing.T, res bot.Result) {
			if len(res.Images) != 1 || res.Images[0].MIME != "image/png" || !bytes.HasPrefix(res.Images[0].Data, []byte("\x89PNG")) {
				t.Fatalf("images=%d, want the PNG decoded", len(res.Images))
			}
		}},
		{"completion-refusal.json", func(t *testing.T, res bot.Result) {
			if res.Refusal != "I'm sorry, but I can't help with that." || res.Text != "" {
				t.Fatalf("refusal=%q text=%q", res.Refusal, res.Text)
			}
		}},
		{"completion-cached-length.json", func(t *testing.T, res bot.Result) {
			if res.Usage.CachedTokens != 2048 || res.FinishReason != "length" || res.Cost != 456 {
				t.Fatalf("cached=%d finish=%q cost=%d, want 2048 cached, length, the discounted usage.cost (456)", res.Usage.CachedTokens, res.FinishReason, res.Cost)
			}
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			srv := serveFile(t, tt.file, http.StatusOK, "application/json")
			res, _, err := stream(t, MustRouter(t, srv.URL, nil), chosenPlan("google/gemini-2.5-flash"))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, res)
		})
	}
}

// recorder is a stand-in upstream that keeps every request body and
// answers with a stream sample.
func recorder(t *testing.T) (*httptest.Server, func() []map[string]any) {
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(sample(t, "stream-usage-empty-choices.sse"))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return bodies
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The request carries the whole answer's parts in the chat spec's shape
// to OpenRouter, and none of OpenRouter's extras to another server.
func TestWholeRequestShape(t *testing.T) {
	yes := true
	prefs := router.ProviderPrefs{Sort: "exacto", SortPartition: "model", ZDR: &yes, RequireParameters: &yes, Quantizations: []string{"fp8", "bf16"},
		MaxPrice: router.MaxPrice{Prompt: 1, Completion: 2, Request: 0.01, Image: 0.04}, PreferredMaxLatency: 2.5, PreferredMinThroughput: 50}
	msgs := []bot.ChatMessage{
		system(strings.Repeat("You are a careful assistant. ", 200)),
		user("earlier question"),
		{Role: bot.RoleAssistant, Content: "earlier answer", ReasoningDetails: []byte(`[{"type":"reasoning.encrypted","data":"abc"}]`)},
		{Role: bot.RoleUser, Content: "read this", Files: []bot.FilePart{{Name: "a.pdf", Data: "data:application/pdf;base64,JVBERi0=", Tokens: 800}}},
	}
	plan := chosenPlan("anthropic/claude-haiku-4.5")
	plan.Messages, plan.Reasoning, plan.Web, plan.WebResults = msgs, "high", true, 3

	t.Run("OpenRouter", func(t *testing.T) {
		srv, bodies := recorder(t)
		r := MustRouter(t, srv.URL, func(c *router.Config) { c.Provider = prefs })
		if _, _, err := stream(t, r, plan); err != nil {
			t.Fatal(err)
		}
		body := jsonOf(bodies()[0])
		for _, part := range []string{
			`"reasoning":{"effort":"high"}`,
			`{"id":"web","max_results":3}`,
			`{"id":"file-parser","pdf":{"engine":"pdf-text"}}`,
			`{"file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"},"type":"file"}`,
			`"cache_control":{"type":"ephemeral"}`,
			`"reasoning_details":[{"data":"abc","type":"reasoning.encrypted"}]`,
			`"sort":{"by":"exacto","partition":"model"}`, `"zdr":true`, `"require_parameters":true`, `"quantizations":["fp8","bf16"]`,
			`"max_price":{"completion":"2","image":"0.04","prompt":"1","request":"0.01"}`, `"preferred_max_latency":2.5`, `"preferred_min_throughput":50`,
		} {
			if !strings.Contains(body, part) {
				t.Errorf("body lacks %s\n%s", part, body)
			}
		}
		for _, banned := range []string{`"exclude"`, `"reasoning":{"max_tokens"`} {
			if strings.Contains(body, banned) {
				t.Errorf("body has %s, which the chat spec does not define", banned)
			}
		}
		if n := strings.Count(body, "cache_control"); n != 2 {
			t.Errorf("%d cache breakpoints, want the system prompt and the end of the earlier turns", n)
		}
	})
	t.Run("OtherOpenAIServer", func(t *testing.T) {
		srv, bodies := recorder(t)
		r := MustRouter(t, srv.URL, func(c *router.Config) { c.API, c.Provider = "openai", prefs })
		p := plan
		p.Fallbacks = []string{"openai/gpt-5-mini"}
		if _, _, err := stream(t, r, p); err != nil {
			t.Fatal(err)
		}
		body := jsonOf(bodies()[0])
		if !strings.Contains(body, `"reasoning_effort":"high"`) {
			t.Errorf("an OpenAI-compatible server gets the effort as reasoning_effort:\n%s", body)
		}
		for _, extra := range []string{`"provider"`, `"plugins"`, `"models"`, `"session_id"`, `"cache_control"`, `"reasoning_details"`, `"reasoning":`} {
			if strings.Contains(body, extra) {
				t.Errorf("an OpenAI-compatible server was sent OpenRouter's %s:\n%s", extra, body)
			}
		}
		if c, err := r.RefreshCredits(context.Background()); err != nil || c.Known {
			t.Errorf("credits=%+v err=%v: /key is OpenRouter's, never asked of another server", c, err)
		}
	})
}

// Against the simulator: a cap too small for the thinking gives an empty
// answer that is still billed and charged, never above the hold; the
// planner gives a reasoning model room to think.
func TestReasoningCap(t *testing.T) {
	sim := MustSim(t, openroutertest.Options{})
	r := MustRouter(t, sim.URL(), nil)
	small := chosenPlan("openai/o4-mini")
	small.Reasoning, small.MaxTokens, small.Cost = "high", 1024, 5000
	res, _, err := stream(t, r, small)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "" || res.FinishReason != "length" || res.Usage.ReasoningTokens != 1024 || res.Cost <= 0 || res.Cost > small.Cost {
		t.Fatalf("text=%q finish=%q reasoning=%d cost=%d: want an empty answer cut at the cap, charged within the hold", res.Text, res.FinishReason, res.Usage.ReasoningTokens, res.Cost)
	}
	plan, err := r.Plan(context.Background(), bot.PlanRequest{Identity: "console:alice", Model: "openai/o4-mini", Effort: "high",
		Messages: []bot.ChatMessage{user("prove it")}, Available: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if plan.MaxTokens != 8192 || plan.Reasoning != "high" || !plan.ShowReasoning {
		t.Fatalf("plan max_tokens=%d effort=%q show=%t, want the 8,192-token reasoning cap", plan.MaxTokens, plan.Reasoning, plan.ShowReasoning)
	}
	res, _, err = stream(t, r, plan)
	if err != nil || !strings.HasPrefix(res.Text, "[simulated openai/o4-mini]") || res.Usage.ReasoningTokens == 0 {
		t.Fatalf("text=%q reasoning=%d err=%v: with room to think, the model answers", res.Text, res.Usage.ReasoningTokens, err)
	}
}

// The catalog is fetched with the models that draw: OpenRouter lists only
// text writers without output_modalities; an OpenAI-compatible server gets
// the plain /models.
func TestCatalogListsImageModels(t *testing.T) {
	cat := []byte(`{"data":[
{"id":"acme/writer","name":"Writer","created":1,"context_length":8000,"architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]},"pricing":{"prompt":"0.000001","completion":"0.000002"},"top_provider":{"is_moderated":false},"supported_parameters":[]},
{"id":"acme/painter","name":"Painter","created":1,"context_length":8000,"architecture":{"modality":"text->image","input_modalities":["text"],"output_modalities":["image"]},"pricing":{"prompt":"0.000001","completion":"0.00004"},"top_provider":{"is_moderated":false},"supported_parameters":[]}]}`)
	sim := MustSim(t, openroutertest.Options{Catalog: cat})
	res, err := http.Get(sim.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(b), "acme/painter") {
		t.Fatal("the simulator's default /models lists a model that only draws; OpenRouter's lists text writers")
	}
	for api, want := range map[string]int{"openrouter": 2, "openai": 1} {
		c := router.NewCatalog(func() router.Config { cfg := testConfig(sim.URL()); cfg.API = api; return cfg }())
		if err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := c.Len(); got != want {
			t.Errorf("%s: %d models, want %d", api, got, want)
		}
		if api == "openrouter" {
			if found := c.Search(bot.ModelQuery{ImageOutput: true}); len(found) != 1 || found[0].ID != "acme/painter" {
				t.Errorf("/models image would list %v", found)
			}
		}
	}
}

// An ask to a model that draws asks for its images.
func TestAskToAnImageModel(t *testing.T) {
	r := MustFullRouter(t, nil)
	plan, err := r.Plan(context.Background(), bot.PlanRequest{Identity: "console:alice", Model: "google/gemini-2.5-flash-image",
		Messages: []bot.ChatMessage{user("a red square")}, Available: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(plan.Modalities) != `["image","text"]` {
		t.Fatalf("modalities=%v, want image and text", plan.Modalities)
	}
}
