package openroutertest_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// TestServed: OnServed reports every chat request once its response has
// ended, with what it billed: usage.cost for a whole answer, the cost of
// the text sent for a stream cut before its usage chunk, nothing for an
// error status. The partial bill is what the router estimates for the
// text it received, token for token.
func TestServed(t *testing.T) {
	var mu sync.Mutex
	var served []openroutertest.Served
	s := MustServer(t, openroutertest.Options{
		Faults: map[string]openroutertest.Fault{
			"openai/gpt-4.1-mini":    {Truncate: true, AfterChunks: 2},
			"deepseek/deepseek-v3.2": {MidStreamError: true, AfterChunks: 1},
			"qwen/qwen3-coder":       {Status: 502},
		},
		OnServed: func(sv openroutertest.Served) {
			mu.Lock()
			served = append(served, sv)
			mu.Unlock()
		},
	})
	cat := router.NewCatalog(router.Config{})
	if err := cat.Load(openroutertest.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	billing := bot.Billing{Mode: bot.BillingCost, USDPerToken: 0.000001}
	msgs := []bot.ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "hello, simulator"}}
	texts := map[string]string{}
	thoughts := map[string]string{}
	for _, model := range []string{"google/gemini-2.5-flash", "openai/gpt-4.1-mini", "deepseek/deepseek-v3.2", "qwen/qwen3-coder"} {
		res, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(chat(model, "hello, simulator", 300, true)))
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := router.ParseStream(res.Body, nil) // a cut stream ends in an error
		res.Body.Close()
		texts[model], thoughts[model] = resp.Text, resp.Reasoning
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(served)
		mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reported, want 4", n)
		}
		time.Sleep(time.Millisecond)
	}
	var partial float64
	for _, sv := range served {
		model := sv.Request.Model
		if sv.End.Before(sv.Start) {
			t.Errorf("%s: ended before it started", model)
		}
		m, _ := cat.Lookup(model)
		estimate := billing.FromUSD(float64(router.EstimatePrompt(msgs))*m.PromptPrice + float64(router.EstimateTokens(texts[model])+router.EstimateTokens(thoughts[model]))*m.CompletionPrice)
		switch model {
		case "google/gemini-2.5-flash":
			if sv.Status != 200 || sv.BilledUSD <= 0 || sv.PartialUSD != 0 || sv.GenerationID == "" || sv.Fault != nil {
				t.Errorf("%s: %+v, want a whole answer billed", model, sv)
			}
		case "openai/gpt-4.1-mini", "deepseek/deepseek-v3.2":
			if sv.BilledUSD != 0 || sv.PartialUSD <= 0 || texts[model] == "" {
				t.Errorf("%s: billed %g, partial %g, want only a partial bill", model, sv.BilledUSD, sv.PartialUSD)
			}
			if got := billing.FromUSD(sv.PartialUSD); got != estimate {
				t.Errorf("%s: partial bill %d tokens, the router's estimate of the text received %d", model, got, estimate)
			}
			partial += sv.PartialUSD
		case "qwen/qwen3-coder":
			if sv.Status != 502 || sv.BilledUSD != 0 || sv.PartialUSD != 0 || sv.GenerationID != "" {
				t.Errorf("%s: %+v, want a 502 billed nothing", model, sv)
			}
		}
	}
	if st := s.Stats(); st.PartialUSD != partial {
		t.Errorf("Stats().PartialUSD=%g, want %g", st.PartialUSD, partial)
	}
}
