// Package stacktest is the one home of orchat's test worlds (CONVENTIONS.md
// 15): MustOpen builds the real pipeline through stack.Open (the SQLite
// ledger under the test's temporary folder, the router against a loopback
// simulator, the real commands and engine) and tears it down with the test,
// verifying the ledger last. Run is the behaviour suite every platform
// adapter passes (CONVENTIONS.md 10): the console, Discord through its fake
// gateway and Slack through its fake Socket Mode implement Harness.
package stacktest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack"
)

// APIKey is the upstream key a test stack sends; a test that checks the
// log for secrets looks for it.
const APIKey = "sk-or-v1-test"

// History is the conversation a test stack reads back, for the adapters.
var History = bot.HistoryLimit{Messages: 20, Chars: 24000}

// Options change a test stack before it starts. Zero fields keep the
// defaults.
type Options struct {
	// Sim configures the upstream simulator (its pace, faults, a FaultFunc
	// that records the requests).
	Sim openroutertest.Options
	// Admins may run the admin commands.
	Admins []bot.Identity
	// Limit is the per-user rate limit (default off).
	Limit bot.RateLimit
	// EditInterval is the engine's pace (default 50 ms, fast for tests).
	EditInterval time.Duration
	// CompareModels are /compare's defaults (default Gemini 2.5 Flash and
	// GPT-5 mini).
	CompareModels []string
	// Logger receives every part's log (default: discarded).
	Logger *slog.Logger
	// Hooks reach inside the ledger (a commit that fails, as on a full
	// disk).
	Hooks stack.Hooks
}

// Stack is a real orchat without a platform, wired by stack.Open: what an
// adapter under test hands its events to.
type Stack struct {
	*stack.Stack
	// Sim is the simulator the stack answers from (the stack did not start
	// it, so the embedded Stack's own Sim is nil).
	Sim *openroutertest.Server
	// Handler is the Engine, counting the events it handles so a harness
	// can wait for an answer to be complete.
	Handler *Counter
}

// MustOpen starts a test stack. When the test ends it drains the engine,
// fails the test unless the ledger verifies, and closes everything.
func MustOpen(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sim := openroutertest.MustStart(tb, opts.Sim)
	compare := opts.CompareModels
	if compare == nil {
		compare = []string{"google/gemini-2.5-flash", "openai/gpt-5-mini"}
	}
	interval := opts.EditInterval
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	rc := router.DefaultConfig()
	rc.BaseURL, rc.APIKey, rc.API = sim.URL(), APIKey, "openrouter"
	rc.FallbackBackoff, rc.MaxFallbackWait = time.Millisecond, 20*time.Millisecond
	cfg := stack.Config{
		Accounts: stack.Accounts{Database: filepath.Join(tb.TempDir(), "orchat.db"), Options: accounts.DefaultOptions()},
		Router:   rc,
		Commands: commands.Config{
			SystemPrompt:        "You are orchat on {platform}, talking with {user}.",
			History:             History,
			AttachmentTextBytes: 100_000, AttachmentImageBytes: 1 << 20, AttachmentFileBytes: 1 << 20,
			HistoryImages: 4, HistoryImageBytes: 4 << 20, LowCreditsUSD: 1,
			CompareModels: compare, CompareMaxTokens: 256,
		},
		Engine: stack.Engine{Admins: opts.Admins, Limit: opts.Limit, EditInterval: interval},
	}
	st, err := stack.Open(context.Background(), cfg, stack.Deps{Logger: log, Hooks: opts.Hooks})
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	s := &Stack{Stack: st, Sim: sim, Handler: &Counter{next: st.Engine}}
	tb.Cleanup(func() {
		st.Drain(context.Background())
		s.Verify(tb)
		if err := st.Close(); err != nil {
			tb.Errorf("stacktest: close: %v", err)
		}
	})
	return s
}

// Verify fails the test when the ledger's invariants do not hold.
func (st *Stack) Verify(tb testing.TB) {
	tb.Helper()
	r, err := st.Store.Verify(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if !r.OK() {
		tb.Fatalf("ledger verify: %v", r.Problems)
	}
}

// Balance returns a user's balance (0 for an unknown user).
func (st *Stack) Balance(tb testing.TB, id bot.Identity) int64 {
	tb.Helper()
	b, err := st.Store.Balance(context.Background(), id)
	if bot.ErrorCode(err) == bot.ENOTFOUND {
		return 0
	} else if err != nil {
		tb.Fatal(err)
	}
	return b.Balance
}
