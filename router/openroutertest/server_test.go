package openroutertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

func MustServer(tb testing.TB, opts openroutertest.Options) *openroutertest.Server {
	tb.Helper()
	return openroutertest.MustStart(tb, opts)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}

func post(tb testing.TB, s *openroutertest.Server, body string) (*http.Response, []byte) {
	tb.Helper()
	res, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res, b
}

func chat(model, text string, maxTokens int, stream bool) string {
	b, _ := json.Marshal(map[string]any{
		"model": model, "max_tokens": maxTokens, "stream": stream,
		"messages": []any{map[string]any{"role": "system", "content": "Be brief."}, map[string]any{"role": "user", "content": text}},
	})
	return string(b)
}

func TestStreamWireFormat(t *testing.T) {
	s := MustServer(t, openroutertest.Options{})
	res, body := post(t, s, chat("google/gemini-2.5-flash", "hello, simulator", 300, true))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status=%d type=%q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	text := string(body)
	if !strings.HasPrefix(text, ": OPENROUTER PROCESSING\n\n") || !strings.HasSuffix(text, "\n\ndata: [DONE]\n\n") || !strings.Contains(text, `"choices":[],"usage":{"prompt_tokens":`) {
		t.Fatalf("stream=%s", text)
	}
	resp, err := router.ParseStream(bytes.NewReader(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Text, "[simulated google/gemini-2.5-flash] You said: hello, simulator.") || resp.Provider != "Simulated" || resp.FinishReason != "stop" {
		t.Fatalf("resp=%+v", resp)
	}
	msgs := []bot.ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "hello, simulator"}}
	u := resp.Usage
	if u.PromptTokens != int64(router.EstimatePrompt(msgs)) || u.CompletionTokens != int64(router.EstimateTokens(resp.Text)) {
		t.Fatalf("usage=%+v", u)
	}
	cat := router.NewCatalog(router.Config{})
	cat.Load(openroutertest.DefaultCatalog())
	m, _ := cat.Lookup("google/gemini-2.5-flash")
	if want := float64(u.PromptTokens)*m.PromptPrice + float64(u.CompletionTokens)*m.CompletionPrice; u.CostUSD != want || s.BilledUSD() != want {
		t.Fatalf("cost=%g billed=%g, want exactly %g", u.CostUSD, s.BilledUSD(), want)
	}

	// The same request gets the same answer; another model another one.
	_, again := post(t, s, chat("google/gemini-2.5-flash", "hello, simulator", 300, true))
	r2, _ := router.ParseStream(bytes.NewReader(again), nil)
	if r2.Text != resp.Text {
		t.Fatal("the answer is not deterministic")
	}
	if st := s.Stats(); st.Requests != 2 || st.Streams != 2 || st.Completed != 2 {
		t.Fatalf("stats=%+v", st)
	}
}

func TestMaxTokens(t *testing.T) {
	s := MustServer(t, openroutertest.Options{})
	for _, mt := range []int{1, 5, 40, 1000, 100_000} {
		for _, stream := range []bool{true, false} {
			_, body := post(t, s, chat("openai/gpt-5-mini", strings.Repeat("long question ", 50), mt, stream))
			var resp router.Response
			var err error
			if stream {
				resp, err = router.ParseStream(bytes.NewReader(body), nil)
			} else {
				var c struct {
					Choices []struct {
						Message      struct{ Content string } `json:"message"`
						FinishReason string                   `json:"finish_reason"`
					} `json:"choices"`
					Usage struct {
						CompletionTokens int64 `json:"completion_tokens"`
					} `json:"usage"`
				}
				err = json.Unmarshal(body, &c)
				resp.Text, resp.FinishReason, resp.Usage.CompletionTokens = c.Choices[0].Message.Content, c.Choices[0].FinishReason, c.Usage.CompletionTokens
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Usage.CompletionTokens > int64(mt) || resp.Usage.CompletionTokens > 420 {
				t.Fatalf("max_tokens=%d: %d completion tokens", mt, resp.Usage.CompletionTokens)
			}
			if mt <= 40 && resp.FinishReason != "length" {
				t.Fatalf("max_tokens=%d: finish=%q", mt, resp.FinishReason)
			}
		}
	}
}

func TestFaults(t *testing.T) {
	s := MustServer(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{
		"openai/gpt-oss-120b:free": {Status: 429, DailyCap: true},
		"openai/gpt-5-mini":        {Status: 429, RetryAfter: "3"},
		"deepseek/deepseek-v3.2":   {Status: 403, Reasons: []string{"violence"}},
		"google/gemini-2.5-flash":  {HTML: true},
	}})
	for _, tt := range []struct {
		model, want string
		status      int
	}{
		{"openai/gpt-oss-120b:free", `"X-RateLimit-Reset":"`, 429},
		{"openai/gpt-5-mini", `"message":"Rate limit exceeded"`, 429},
		{"deepseek/deepseek-v3.2", `"reasons":["violence"]`, 403},
		{"google/gemini-2.5-flash", "<html>", 502},
		{"no/such-model", "is not a valid model ID", 400},
	} {
		res, body := post(t, s, chat(tt.model, "hi", 10, true))
		if res.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Fatalf("%s: status=%d body=%s", tt.model, res.StatusCode, body)
		}
		if tt.model == "openai/gpt-5-mini" && res.Header.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After=%q", res.Header.Get("Retry-After"))
		}
	}
	if s.BilledUSD() != 0 {
		t.Fatalf("faults billed %g", s.BilledUSD())
	}
}

// The random fault mix depends only on the seed and the requests.
func TestFailRateIsDeterministic(t *testing.T) {
	run := func(seed int64) []int {
		s := MustServer(t, openroutertest.Options{FailRate: 0.5, Seed: seed})
		var statuses []int
		for i := range 30 {
			res, _ := post(t, s, chat("google/gemini-2.5-flash-lite", fmt.Sprintf("q%d", i), 10, false))
			statuses = append(statuses, res.StatusCode)
		}
		return statuses
	}
	a, b := run(3), run(3)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	fails := 0
	for _, st := range a {
		if st != 200 {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Fatalf("statuses=%v", a)
	}
}

func TestStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.json")
	os.WriteFile(path, openroutertest.DefaultCatalog(), 0o644)
	s, err := openroutertest.Start(openroutertest.Options{Addr: "127.0.0.1:0", CatalogFile: path, Latency: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/api/v1") {
		t.Fatalf("url=%q", s.URL())
	}
	res, err := http.Get(s.URL() + "/models")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /models: %v", err)
	}
	res.Body.Close()

	os.WriteFile(path, []byte("not json"), 0o644)
	if _, err := openroutertest.Start(openroutertest.Options{CatalogFile: path}); err == nil {
		t.Fatal("a bad catalog started")
	}
	if _, err := openroutertest.Start(openroutertest.Options{Addr: s.Addr()}); err == nil {
		t.Fatal("a taken address started")
	}
}

// A thousand concurrent streams are served (under the race detector, two
// hundred).
func TestManyStreams(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 200
	}
	s := MustServer(t, openroutertest.Options{Latency: 20 * time.Millisecond, TokensPerSecond: 2000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sum float64
	for i := range n {
		wg.Go(func() {
			res, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(chat("google/gemini-2.5-flash-lite", fmt.Sprintf("question %d", i), 64, true)))
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			resp, err := router.ParseStream(res.Body, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sum += resp.Usage.CostUSD
			mu.Unlock()
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Completed != int64(n) || math.Abs(st.BilledUSD-sum) > 1e-12 {
		t.Fatalf("stats=%+v, client saw %g USD", st, sum)
	}
}

// TestEveryModelAnswers: the simulator serves OpenRouter's whole snapshot
// (344 models) and every one of them answers, the same words each time,
// so any model a person names works offline.
func TestEveryModelAnswers(t *testing.T) {
	s := MustServer(t, openroutertest.Options{})
	models, err := router.ParseModels(openroutertest.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 344 {
		t.Fatalf("the built-in catalog has %d models, want OpenRouter's 344", len(models))
	}
	for _, m := range models {
		if m.Router() {
			continue // openrouter/auto answers as one of its allowed models
		}
		var texts [2]string
		for i := range texts {
			// No thinking: a thinking model would spend 64 tokens on it.
			_, body := post(t, s, strings.Replace(chat(m.ID, "say hello", 64, true), "{", `{"reasoning":{"effort":"none"},`, 1))
			resp, err := router.ParseStream(bytes.NewReader(body), nil)
			if err != nil {
				t.Fatalf("%s: %v", m.ID, err)
			}
			if resp.Model != m.ID || !strings.HasPrefix(resp.Text, "[simulated "+m.ID+"]") {
				t.Fatalf("%s answered as %q: %q", m.ID, resp.Model, resp.Text)
			}
			texts[i] = resp.Text
		}
		if texts[0] != texts[1] {
			t.Fatalf("%s answered the same question differently:\n%q\n%q", m.ID, texts[0], texts[1])
		}
	}
}

// TestCatalogFileModelsAnswer: with a catalog file (simulate-upstream
// --catalog), its models are the ones served and answered.
func TestCatalogFileModelsAnswer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.json")
	cat := `{"data":[{"id":"acme/rocket-1","name":"Acme: Rocket 1","context_length":32768,"architecture":{"input_modalities":["text"],"output_modalities":["text"]},"pricing":{"prompt":"0.000001","completion":"0.000002"}}]}`
	if err := os.WriteFile(path, []byte(cat), 0o644); err != nil {
		t.Fatal(err)
	}
	s := MustServer(t, openroutertest.Options{CatalogFile: path})
	_, body := post(t, s, chat("acme/rocket-1", "say hello", 64, true))
	resp, err := router.ParseStream(bytes.NewReader(body), nil)
	if err != nil || !strings.HasPrefix(resp.Text, "[simulated acme/rocket-1]") {
		t.Fatalf("acme/rocket-1: %q, %v", resp.Text, err)
	}
	if res, body := post(t, s, chat("openai/gpt-4o-mini", "say hello", 64, true)); res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "is not a valid model ID") {
		t.Fatalf("a model outside the file: status %d %s", res.StatusCode, body)
	}
}
