package stack_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/stack"
)

// config is a stack on a fresh ledger under t's temporary folder.
func config(t *testing.T) stack.Config {
	return stack.Config{
		Accounts: stack.Accounts{Database: filepath.Join(t.TempDir(), "orchat.db"), Options: accounts.DefaultOptions()},
		Router:   router.DefaultConfig(),
		Commands: commands.Config{CompareModels: []string{"google/gemini-2.5-flash", "openai/gpt-5-mini"}},
	}
}

// messages is a bot.Output keeping the last version of every message.
type messages struct {
	mu   sync.Mutex
	last map[string]bot.Message
	n    int
}

func (m *messages) Post(_ context.Context, msg bot.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	id := strconv.Itoa(m.n)
	if m.last == nil {
		m.last = map[string]bot.Message{}
	}
	m.last[id] = msg
	return id, nil
}

func (m *messages) Edit(_ context.Context, id string, msg bot.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[id] = msg
	return nil
}

func (m *messages) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, msg := range m.last {
		b.WriteString(msg.Text + "\n" + msg.Footer + "\n")
	}
	return b.String()
}

// ask has the engine answer one console question.
func ask(t *testing.T, st *stack.Stack, id, text string) string {
	t.Helper()
	out := &messages{}
	ev := bot.Event{ID: id, Platform: bot.PlatformConsole, Identity: "console:ann", Community: "console", Channel: "test", Text: text, Direct: true}
	if err := st.Engine.Handle(context.Background(), ev, out); err != nil {
		t.Fatalf("Handle: %v\n%s", err, out.text())
	}
	return out.text()
}

// countingTransport counts the requests the router sends upstream.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestOpen(t *testing.T) {
	t.Run("SimulateAnswersOffline", func(t *testing.T) {
		cfg := config(t)
		cfg.Simulate = true
		st, err := stack.Open(context.Background(), cfg, stack.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.Sim == nil || st.Catalog.Len() == 0 {
			t.Fatalf("sim=%v catalog=%d models: the simulator's catalog was not loaded", st.Sim, st.Catalog.Len())
		}
		if got := ask(t, st, "e1", "hello"); !strings.Contains(got, "simulated") || !strings.Contains(got, "charged") {
			t.Fatalf("the answer does not come from the simulator with a footer:\n%s", got)
		}
		st.Drain(context.Background())
		if r, err := st.Store.Verify(context.Background()); err != nil || !r.OK() {
			t.Fatalf("verify: %v %v", r.Problems, err)
		}
		url := st.Sim.URL()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("a second Close: %v", err)
		}
		if res, err := http.Get(url + "/models"); err == nil {
			res.Body.Close()
			t.Fatal("the simulator still answers after Close")
		}
	})

	t.Run("DepsReachEveryPart", func(t *testing.T) {
		// The load test measures the upstream through Deps.HTTPClient and
		// slows the disk through Hooks.BeforeCommit: both must be the ones
		// the pipeline uses.
		cfg := config(t)
		cfg.Simulate = true
		client := &countingTransport{}
		var commits atomic.Int64
		st, err := stack.Open(context.Background(), cfg, stack.Deps{
			HTTPClient: &http.Client{Transport: client},
			Hooks:      stack.Hooks{BeforeCommit: func() { commits.Add(1) }},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		before := commits.Load()
		ask(t, st, "e1", "hello")
		if client.n.Load() == 0 {
			t.Error("the router did not call the upstream through Deps.HTTPClient")
		}
		if commits.Load() <= before {
			t.Error("no ledger write ran Hooks.BeforeCommit")
		}
	})

	t.Run("ErrBadDatabaseLeavesNothingOpen", func(t *testing.T) {
		cfg := config(t)
		cfg.Simulate = true
		cfg.Accounts.Database = ":memory:"
		st, err := stack.Open(context.Background(), cfg, stack.Deps{})
		if err == nil {
			st.Close()
			t.Fatal("a :memory: ledger was accepted")
		}
		if !strings.Contains(bot.ErrorMessage(err), "database file path") {
			t.Fatalf("err=%v, want it to ask for a file path", err)
		}
	})

	t.Run("ErrUpstreamWithoutCatalog", func(t *testing.T) {
		cfg := config(t)
		cfg.Router.BaseURL = "http://127.0.0.1:1/api/v1" // nothing listens there
		_, err := stack.Open(context.Background(), cfg, stack.Deps{})
		if err == nil || !strings.Contains(err.Error(), "load the model catalog from http://127.0.0.1:1/api/v1") {
			t.Fatalf("err=%v, want it to name the upstream it could not load the catalog from", err)
		}
	})
}
