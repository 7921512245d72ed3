package router_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

func fullCatalog(t testing.TB) *router.Catalog {
	t.Helper()
	c := router.NewCatalog(testConfig("http://127.0.0.1:1/api/v1"))
	if err := c.LoadFile(fullCatalogPath); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCatalogFullFixture(t *testing.T) {
	c := fullCatalog(t)
	if got, want := c.Len(), 344; got != want {
		t.Fatalf("len=%d, want %d", got, want)
	}
	free := c.Search(bot.ModelQuery{Free: true})
	if got, want := len(free), 25; got != want {
		t.Fatalf("free models=%d, want %d", got, want)
	}
	auto, err := c.Lookup(router.AutoModel)
	if err != nil || !auto.Router() || auto.PromptPrice != -1 || auto.CompletionPrice != -1 {
		t.Fatalf("openrouter/auto=%+v err=%v", auto, err)
	}
	m, err := c.Lookup("google/gemini-2.5-flash")
	if err != nil {
		t.Fatal(err)
	}
	if m.ContextLength != 1048576 || m.MaxCompletionTokens != 65535 || !m.Vision() || !m.Tools() || m.PromptPrice != 0.0000003 || m.CompletionPrice != 0.0000025 {
		t.Fatalf("model=%+v", m)
	}
	if m.Created.IsZero() || m.Name == "" || m.Description == "" || m.ImagePrice == 0 {
		t.Fatalf("model=%+v: created, name, description and image price expected", m)
	}
	// A model without top_provider.max_completion_tokens is limited only by its context.
	if m, _ := c.Lookup("openrouter/free"); m.MaxCompletionTokens != 0 || m.ContextLength != 200000 {
		t.Fatalf("openrouter/free=%+v", m)
	}
	if p, cpl := router.PricePerMillion(m); p != 0.3 || cpl != 2.5 {
		t.Fatalf("per million=%g/%g", p, cpl)
	}
	if p, cpl := router.PriceInTokens(router.DefaultConfig().Billing, m); p != 300_000 || cpl != 2_500_000 {
		t.Fatalf("in balance tokens=%d/%d", p, cpl)
	}
}

func TestLookup(t *testing.T) {
	c := fullCatalog(t)
	for _, tt := range []struct{ id, wantID string }{
		{"openai/gpt-5-mini", "openai/gpt-5-mini"},
		{"openai/gpt-5-mini:nitro", "openai/gpt-5-mini:nitro"},
		{"openai/gpt-5-mini:floor", "openai/gpt-5-mini:floor"},
		{"anthropic/claude-sonnet-4.6:thinking", "anthropic/claude-sonnet-4.6:thinking"},
		{"qwen/qwen3-coder:exacto", "qwen/qwen3-coder:exacto"},   // its own catalog entry
		{"z-ai/glm-4.5-air:exacto", "z-ai/glm-4.5-air:exacto"},   // a suffix on a base id
		{"openai/gpt-oss-120b:free", "openai/gpt-oss-120b:free"}, // :free is its own entry
		{router.AutoModel, router.AutoModel},
	} {
		m, err := c.Lookup(tt.id)
		if err != nil || m.ID != tt.wantID {
			t.Fatalf("Lookup(%q)=%q, %v; want %q", tt.id, m.ID, err, tt.wantID)
		}
	}
	base, _ := c.Lookup("openai/gpt-5-mini")
	online, _ := c.Lookup("openai/gpt-5-mini:online")
	if online.RequestPrice <= base.RequestPrice || online.PromptPrice != base.PromptPrice {
		t.Fatalf(":online must add the web search to the request price: %+v", online)
	}
	free, _ := c.Lookup("openai/gpt-oss-120b:free")
	if !free.Free() || free.PromptPrice != 0 {
		t.Fatalf(":free=%+v", free)
	}

	for _, tt := range []struct{ id, suggest string }{
		{"openai/gpt-5-minni", "openai/gpt-5-mini"},
		{"anthropic/claude-sonet-4.6", "anthropic/claude-sonnet-4.6"},
		{"claude-sonnet-4.6", "anthropic/claude-sonnet-4.6"},
		{"gemini-2.5-flash", "google/gemini-2.5-flash"},
		{"openai/gpt-5-mini:turbo", "openai/gpt-5-mini"},
		{"mistralai/mistral-nemo:free", "mistralai/mistral-nemo"},
	} {
		_, err := c.Lookup(tt.id)
		if bot.ErrorCode(err) != bot.ENOTFOUND {
			t.Fatalf("Lookup(%q): err=%v, want ENOTFOUND", tt.id, err)
		}
		msg := bot.ErrorMessage(err)
		if !strings.HasPrefix(msg, "Unknown model \""+tt.id+"\". Did you mean ") || !strings.Contains(msg, tt.suggest) || !strings.HasSuffix(msg, "Try /models.") {
			t.Fatalf("Lookup(%q) message %q, want a suggestion of %s", tt.id, msg, tt.suggest)
		}
	}
	if _, err := c.Lookup("zzzzqqqq/xxxxyyyy"); bot.ErrorMessage(err) != `Unknown model "zzzzqqqq/xxxxyyyy". Try /models.` {
		t.Fatalf("message=%q", bot.ErrorMessage(err))
	}
	if _, err := router.NewCatalog(testConfig("http://127.0.0.1:1")).Lookup("a/b"); bot.ErrorCode(err) != bot.EUNAVAILABLE {
		t.Fatalf("empty catalog: err=%v", err)
	}
}

func TestSearch(t *testing.T) {
	c := fullCatalog(t)
	res := c.Search(bot.ModelQuery{Text: "claude"})
	if len(res) == 0 || !strings.HasPrefix(res[0].ID, "anthropic/claude") {
		t.Fatalf("claude: %v", ids(res))
	}
	if res := c.Search(bot.ModelQuery{Text: "openai/gpt-5-mini"}); res[0].ID != "openai/gpt-5-mini" {
		t.Fatalf("exact id first: %v", ids(res)[:3])
	}
	for _, m := range c.Search(bot.ModelQuery{Free: true, Vision: true}) {
		if !m.Free() || !m.Vision() {
			t.Fatalf("free vision search returned %s", m.ID)
		}
	}
	for _, m := range c.Search(bot.ModelQuery{Tools: true, MaxPromptPrice: 0.0000001}) {
		if !m.Tools() || m.Router() || m.PromptPrice > 0.0000001 {
			t.Fatalf("cheap tools search returned %+v", m)
		}
	}
	if got := len(c.Search(bot.ModelQuery{Limit: 5})); got != 5 {
		t.Fatalf("limit: %d", got)
	}
	all := c.Search(bot.ModelQuery{})
	for i := 1; i < len(all); i++ {
		if all[i-1].ID > all[i].ID {
			t.Fatalf("unfiltered search not sorted by id at %d", i)
		}
	}
	if len(c.Search(bot.ModelQuery{Text: "no such model anywhere"})) != 0 {
		t.Fatal("nonsense matched")
	}
}

func ids(ms []bot.Model) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestCatalogParse(t *testing.T) {
	t.Run("MissingPricesAreZero", func(t *testing.T) {
		ms, err := router.ParseModels([]byte(`{"data":[{"id":"a/b","context_length":1000,"pricing":{"prompt":"0.000001"}},{"id":"c/d","context_length":10,"pricing":{"prompt":"-1","completion":"-1"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].CompletionPrice != 0 || ms[0].PromptPrice != 0.000001 || ms[0].Vision() || ms[0].InputModalities[0] != "text" {
			t.Fatalf("a/b=%+v", ms[0])
		}
		if !ms[1].Router() {
			t.Fatalf("c/d=%+v", ms[1])
		}
	})
	for _, tt := range []struct{ name, body, msg string }{
		{"NotJSON", `this is not json`, "not JSON"},
		{"HTML", `<html>oops</html>`, "HTML"},
		{"Empty", ``, "empty"},
		{"NoData", `{"models":[]}`, `no "data"`},
		{"EmptyData", `{"data":[]}`, "no models"},
		{"NoID", `{"data":[{"name":"nameless","context_length":5}]}`, "has no id"},
		{"NotAnObject", `{"data":[42]}`, "not a model object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := router.ParseModels([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err=%v, want %q", err, tt.msg)
			}
		})
	}
	t.Run("ControlCharactersNeverReachAScreen", func(t *testing.T) {
		// A hostile catalog: a name that sets the terminal's title, a
		// description that writes its clipboard, an id with an escape.
		ms, err := router.ParseModels([]byte(`{"data":[` +
			`{"id":"a/b","name":"Evil\u001b]0;pwned\u0007 Model\u202e","description":"Line one\nclip\u001b]52;c;eA==\u001b\\ \u009b2J end","context_length":1000},` +
			`{"id":"c/\u001b[31md","name":"x","context_length":1000}]}`))
		if err != nil || len(ms) != 1 {
			t.Fatalf("models=%v err=%v, want a/b alone", ms, err)
		}
		if got, want := ms[0].Name, "Evil]0;pwned Model"; got != want {
			t.Fatalf("name %q, want %q", got, want)
		}
		if got, want := ms[0].Description, "Line one\nclip]52;c;eA==\\ 2J end"; got != want {
			t.Fatalf("description %q, want %q", got, want)
		}
	})
	t.Run("BadPriceSkipsTheModel", func(t *testing.T) {
		ms, err := router.ParseModels([]byte(`{"data":[{"id":"a/b","context_length":1000,"pricing":{"prompt":"free!"}},{"id":"c/d","context_length":1000}]}`))
		if err != nil || len(ms) != 1 || ms[0].ID != "c/d" {
			t.Fatalf("models=%v err=%v", ms, err)
		}
	})
}

// flakyModels serves a catalog until told to fail in some way.
type flakyModels struct {
	body atomic.Value // []byte
	code atomic.Int64
}

func (f *flakyModels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if code := int(f.code.Load()); code != 0 {
		w.WriteHeader(code)
	}
	w.Write(f.body.Load().([]byte))
}

func TestCatalogPersistence(t *testing.T) {
	good := openroutertest.DefaultCatalog()
	f := &flakyModels{}
	f.body.Store(good)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cache := filepath.Join(t.TempDir(), "state", "models.json")
	cfg := testConfig(srv.URL)
	cfg.CatalogCache = cache

	c := router.NewCatalog(cfg)
	if c.Len() != 0 {
		t.Fatal("a catalog without cache starts empty")
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := c.Len()
	if saved, err := os.ReadFile(cache); err != nil || !bytes.Equal(saved, good) {
		t.Fatalf("cache not written: %v", err)
	}

	t.Run("StartsFromTheCacheWithoutNetwork", func(t *testing.T) {
		offline := testConfig("http://127.0.0.1:1/api/v1")
		offline.CatalogCache = cache
		c2 := router.NewCatalog(offline)
		if c2.Len() != n || c2.Source() != cache {
			t.Fatalf("len=%d source=%q, want %d from the cache", c2.Len(), c2.Source(), n)
		}
		if err := c2.Refresh(context.Background()); err == nil || c2.Len() != n {
			t.Fatalf("a failed refresh must keep the cached catalog: err=%v len=%d", err, c2.Len())
		}
	})

	for _, tt := range []struct {
		name string
		code int
		body string
	}{
		{"HTML", 200, "<html>maintenance</html>"},
		{"ServerError", 500, `{"error":{"code":500,"message":"down"}}`},
		{"NotJSON", 200, "{{{"},
		{"NoData", 200, `{"error":"nope"}`},
		{"ModelWithoutID", 200, `{"data":[{"name":"x","context_length":5}]}`},
		{"EmptyBody", 200, ""},
	} {
		t.Run("RefreshFails"+tt.name, func(t *testing.T) {
			f.code.Store(int64(tt.code))
			f.body.Store([]byte(tt.body))
			defer func() { f.code.Store(0); f.body.Store(good) }()
			if err := c.Refresh(context.Background()); err == nil {
				t.Fatal("refresh succeeded")
			}
			if c.Len() != n {
				t.Fatalf("len=%d, want the old %d", c.Len(), n)
			}
			if saved, _ := os.ReadFile(cache); !bytes.Equal(saved, good) {
				t.Fatal("a bad catalog overwrote the cache")
			}
		})
	}

	t.Run("BadFiles", func(t *testing.T) {
		dir := t.TempDir()
		for name, body := range map[string]string{"notjson.json": "nope", "nodata.json": `{"x":1}`, "noid.json": `{"data":[{"context_length":1}]}`} {
			p := filepath.Join(dir, name)
			os.WriteFile(p, []byte(body), 0o644)
			if err := c.LoadFile(p); err == nil || bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s: err=%v", name, err)
			}
		}
		if err := c.LoadFile(filepath.Join(dir, "missing.json")); err == nil {
			t.Fatal("a missing file loaded")
		}
		if c.Len() != n {
			t.Fatal("a bad file replaced the catalog")
		}
	})

	t.Run("ReadsDuringRefresh", func(t *testing.T) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := c.Lookup("google/gemini-2.5-flash"); err != nil {
						t.Error(err)
						return
					}
					c.Search(bot.ModelQuery{Text: "gemini"})
				}
			})
		}
		// A few refreshes of the 344-model catalog under the race detector
		// are enough to overlap the readers.
		for range 3 {
			if err := c.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		}
		close(stop)
		wg.Wait()
	})
}

// The simulator serves /models and /key like OpenRouter.
func TestSimulatorEndpoints(t *testing.T) {
	sim := MustSim(t, openroutertest.Options{APIKey: "sk-sim"})
	cfg := testConfig(sim.URL())
	cfg.APIKey = "sk-sim"
	cat := router.NewCatalog(cfg)
	if err := cat.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Lookup("openai/gpt-5-mini"); err != nil {
		t.Fatal(err)
	}
	key, err := router.NewClient(cfg).Key(context.Background())
	if err != nil || key.Label == "" {
		t.Fatalf("key=%+v err=%v", key, err)
	}
	cfg.APIKey = "wrong"
	if _, err := router.NewClient(cfg).Key(context.Background()); !strings.Contains(bot.ErrorMessage(err), "API key") {
		t.Fatalf("err=%v", err)
	}
}
