package router_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// fullCatalogPath is the unmodified /models of 27 February 2026 (344 models).
const fullCatalogPath = "openroutertest/models-2026-02-27.json"

// testConfig returns a config for tests: quick fallbacks, short timeouts,
// a silent logger.
func testConfig(baseURL string) router.Config {
	cfg := router.DefaultConfig()
	cfg.BaseURL = baseURL
	cfg.API = "openrouter" // the simulator and the stand-ins speak OpenRouter's API
	cfg.APIKey = "sk-or-v1-test"
	cfg.Referer = "https://example.org/orchat"
	cfg.Title = "orchat-test"
	cfg.FallbackBackoff = time.Millisecond
	cfg.MaxFallbackWait = 20 * time.Millisecond
	cfg.FirstByteTimeout = 5 * time.Second
	cfg.IdleTimeout = 5 * time.Second
	cfg.RequestTimeout = 20 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// MustSim starts a simulator that closes with the test.
func MustSim(tb testing.TB, opts openroutertest.Options) *openroutertest.Server {
	tb.Helper()
	return openroutertest.MustStart(tb, opts)
}

// MustRouter returns a router on baseURL whose catalog is loaded from the
// embedded simulator catalog (no network needed for planning).
func MustRouter(tb testing.TB, baseURL string, edit func(*router.Config)) *router.Router {
	tb.Helper()
	cfg := testConfig(baseURL)
	if edit != nil {
		edit(&cfg)
	}
	cat := router.NewCatalog(cfg)
	if err := cat.Load(openroutertest.DefaultCatalog()); err != nil {
		tb.Fatal(err)
	}
	r, err := router.New(cfg, cat)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// MustFullRouter returns a router over the full fixture catalog.
func MustFullRouter(tb testing.TB, edit func(*router.Config)) *router.Router {
	tb.Helper()
	cfg := testConfig("http://127.0.0.1:1/api/v1")
	if edit != nil {
		edit(&cfg)
	}
	cat := router.NewCatalog(cfg)
	if err := cat.LoadFile(fullCatalogPath); err != nil {
		tb.Fatal(err)
	}
	r, err := router.New(cfg, cat)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// serveFile answers every request with a file's bytes and a status.
func serveFile(tb testing.TB, path string, status int, contentType string) *httptest.Server {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", path))
	if err != nil {
		tb.Fatal(err)
	}
	return serveBytes(tb, b, status, contentType, nil)
}

func serveBytes(tb testing.TB, b []byte, status int, contentType string, header http.Header) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header()[k] = v
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write(b)
	}))
	tb.Cleanup(s.Close)
	return s
}

func user(text string) bot.ChatMessage { return bot.ChatMessage{Role: bot.RoleUser, Content: text} }

func system(text string) bot.ChatMessage {
	return bot.ChatMessage{Role: bot.RoleSystem, Content: text}
}

func assistant(text string) bot.ChatMessage {
	return bot.ChatMessage{Role: bot.RoleAssistant, Content: text}
}

// chosenPlan is a plan for one model, as Plan would make for a user's
// explicit choice, with fallbacks.
func chosenPlan(models ...string) bot.Plan {
	return bot.Plan{
		Model:        models[0],
		Fallbacks:    models[1:],
		Tier:         router.TierChosen,
		MaxTokens:    200,
		Messages:     []bot.ChatMessage{system("You are terse."), user("hello there")},
		PromptTokens: 20,
		Cost:         100_000,
		Reasoning:    "none", // the answer only: tests of thinking ask for it
	}
}

func stream(tb testing.TB, r *router.Router, plan bot.Plan) (bot.Result, string, error) {
	tb.Helper()
	var got []byte
	res, err := r.Stream(context.Background(), bot.ChatRequest{Plan: plan, User: "console:alice", SessionID: "s1"}, func(d string) {
		got = append(got, d...)
	})
	if string(got) != res.Text {
		tb.Fatalf("deltas %q != Result.Text %q", got, res.Text)
	}
	return res, string(got), err
}

// metrics records what the router reports.
type metrics struct {
	bot.NopMetrics
	mu        sync.Mutex
	upstream  []string
	statuses  []int
	fallbacks [][2]string
	tokens    int
}

func (m *metrics) Upstream(model string, status int, ttft, latency time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.upstream = append(m.upstream, model)
	m.statuses = append(m.statuses, status)
}

func (m *metrics) Fallback(from, to string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fallbacks = append(m.fallbacks, [2]string{from, to})
}

func (m *metrics) Tokens(model string, prompt, completion, charged int64, usd float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens++
}
