// Package platformtest is the behaviour suite every platform adapter passes
// (CONVENTIONS.md 10): the same user-visible behaviours, run against the
// console, Discord (through its fake gateway) and Slack (through its fake
// Socket Mode). An adapter's test implements Harness; Run does the rest on a
// real stack: the SQLite ledger, the router against its simulator, the real
// commands and engine.
package platformtest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// StackOptions change a Stack before it starts.
type StackOptions struct {
	Admins []bot.Identity
	// Faults by model id, served by the simulator.
	Faults map[string]openroutertest.Fault
	Limit  bot.RateLimit
	// EditInterval is the engine's pace (default 50 ms, fast for tests).
	EditInterval time.Duration
	// CompareModels are /compare's defaults.
	CompareModels []string
	Logger        *slog.Logger
}

// Stack is a real orchat without a platform: what an adapter under test
// hands its events to.
type Stack struct {
	Store    *accounts.Store
	Sim      *openroutertest.Server
	Catalog  *router.Catalog
	Router   *router.Router
	Commands []*bot.Command
	Engine   *bot.Engine
	// Handler is the Engine, counting the events it handles so a harness
	// can wait for an answer to be complete.
	Handler *Counter
}

// NewStack starts a stack that stops with the test.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := &Stack{}
	st.Sim = openroutertest.NewServer(openroutertest.Options{TokensPerSecond: 2000, Faults: opts.Faults})
	t.Cleanup(st.Sim.Close)

	var err error
	ao := accounts.DefaultOptions()
	ao.Logger = log
	st.Store, err = accounts.Open(filepath.Join(t.TempDir(), "orchat.db"), ao)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Store.Close() })

	rc := router.DefaultConfig()
	rc.BaseURL, rc.APIKey, rc.Logger = st.Sim.URL(), "sk-or-v1-platformtest", log
	rc.FallbackBackoff, rc.MaxFallbackWait = time.Millisecond, 20*time.Millisecond
	st.Catalog = router.NewCatalog(rc)
	if err := st.Catalog.Load(openroutertest.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	if st.Router, err = router.New(rc, st.Catalog); err != nil {
		t.Fatal(err)
	}
	compare := opts.CompareModels
	if compare == nil {
		compare = []string{"google/gemini-2.5-flash", "openai/gpt-5-mini"}
	}
	st.Commands = commands.New(commands.Deps{
		Ledger: st.Store, Votes: st.Store, Prefs: st.Store, Catalog: st.Catalog, Chat: st.Router, Logger: log,
		Config: commands.Config{
			SystemPrompt:        "You are orchat on {platform}, talking with {user}.",
			History:             bot.HistoryLimit{Messages: 20, Chars: 24000},
			AttachmentTextBytes: 100_000, AttachmentImageBytes: 1 << 20,
			CompareModels: compare, CompareMaxTokens: 256,
		},
	})
	interval := opts.EditInterval
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	st.Engine = bot.NewEngine(bot.EngineOptions{
		Users: st.Store, Commands: st.Commands, Parse: commands.NewParser(st.Commands),
		Admins: opts.Admins, Limit: opts.Limit, EditInterval: interval, Logger: log,
	})
	st.Handler = &Counter{next: st.Engine}
	t.Cleanup(func() { st.Engine.Drain(context.Background()) })
	return st
}

// Verify fails the test when the ledger's invariants do not hold.
func (st *Stack) Verify(t testing.TB) {
	t.Helper()
	r, err := st.Store.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("ledger verify: %v", r.Problems)
	}
}

// Balance returns a user's balance (0 for an unknown user).
func (st *Stack) Balance(t testing.TB, id bot.Identity) int64 {
	t.Helper()
	b, err := st.Store.Balance(context.Background(), id)
	if bot.ErrorCode(err) == bot.ENOTFOUND {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return b.Balance
}

// Counter is a bot.Handler that counts the events it has finished, so a
// harness can wait until the answer to what it just sent is complete.
type Counter struct {
	next     bot.Handler
	mu       sync.Mutex
	cv       *sync.Cond
	started  int
	finished int
}

// Handle passes the event on and counts it.
func (c *Counter) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	c.mu.Lock()
	c.started++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.finished++
		c.condLocked().Broadcast()
		c.mu.Unlock()
	}()
	return c.next.Handle(ctx, ev, out)
}

func (c *Counter) condLocked() *sync.Cond {
	if c.cv == nil {
		c.cv = sync.NewCond(&c.mu)
	}
	return c.cv
}

// Finished returns how many events have been handled to the end.
func (c *Counter) Finished() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finished
}

// Await waits until at least n events have finished and none is in
// flight, failing the test after a generous timeout (a hung adapter, not
// a slow one).
func (c *Counter) Await(t testing.TB, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for c.finished < n || c.started != c.finished {
			c.condLocked().Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("gave up waiting for %d handled events: %d started, %d finished", n, c.started, c.finished)
	}
}
