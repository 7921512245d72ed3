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
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/scheduler"
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
	// Clock, when set, is the stack's and its scheduler's clock, moved by
	// hand (allowance periods, days); nil is the real clock.
	Clock *clockwork.FakeClock
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
	// Scheduler runs the stack's ledger jobs for the communities
	// (allowance refills, alerts) on the stack's clock; RunJob runs one.
	Scheduler *scheduler.Scheduler

	jobs     *jobCounter
	mu       sync.Mutex
	requests []*openroutertest.Request // every chat request the simulator served
}

// Requests returns every chat request the simulator served so far, in
// order: what the models were sent (system prompts included).
func (st *Stack) Requests() []*openroutertest.Request {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.requests)
}

// LastSystemPrompt returns the system prompt of the last chat request the
// simulator served ("" when none had one).
func (st *Stack) LastSystemPrompt() string {
	reqs := st.Requests()
	if len(reqs) == 0 {
		return ""
	}
	for _, m := range reqs[len(reqs)-1].Messages {
		if m.Role == bot.RoleSystem {
			return m.Content
		}
	}
	return ""
}

// RunJob runs one of the scheduler's jobs now (scheduler.JobAllowances,
// scheduler.JobAlerts) and waits until that run ended.
func (st *Stack) RunJob(t testing.TB, name string) {
	t.Helper()
	before := st.jobs.count(name)
	if err := st.Scheduler.RunNow(name); err != nil {
		t.Fatalf("stacktest: run %s: %v", name, err)
	}
	st.jobs.await(t, name, before+1)
}

// jobCounter counts the scheduler's job runs, so a test can wait for one.
type jobCounter struct {
	bot.NopMetrics
	mu   sync.Mutex
	runs map[string]int
	errs []error
}

func (j *jobCounter) JobRun(name string, err error, _ time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.runs == nil {
		j.runs = map[string]int{}
	}
	j.runs[name]++
	if err != nil {
		j.errs = append(j.errs, err)
	}
}

func (j *jobCounter) count(name string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runs[name]
}

func (j *jobCounter) await(t testing.TB, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for j.count(name) < n {
		if time.Now().After(deadline) {
			t.Fatalf("stacktest: job %s did not run", name)
		}
		time.Sleep(time.Millisecond)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.errs) > 0 {
		t.Fatalf("stacktest: a job failed: %v", j.errs)
	}
}

// MustOpen starts a test stack. When the test ends it drains the engine,
// fails the test unless the ledger verifies, and closes everything.
func MustOpen(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Stack{jobs: &jobCounter{}}
	served := opts.Sim.OnServed
	opts.Sim.OnServed = func(sv openroutertest.Served) {
		if sv.Request != nil {
			s.mu.Lock()
			s.requests = append(s.requests, sv.Request)
			s.mu.Unlock()
		}
		if served != nil {
			served(sv)
		}
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
	deps := stack.Deps{Logger: log, Hooks: opts.Hooks}
	var clock clockwork.Clock = clockwork.NewRealClock()
	if opts.Clock != nil {
		clock, deps.Clock = opts.Clock, opts.Clock.Now
	}
	st, err := stack.Open(context.Background(), cfg, deps)
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	s.Stack, s.Sim, s.Handler = st, sim, &Counter{next: st.Engine}
	// The community jobs run when a test asks (RunJob), or, on a fake
	// clock, when it moves past their hour.
	sched, err := scheduler.New(scheduler.Options{
		Location: time.UTC, Clock: clock, Allowances: st.Store, AllowanceEvery: time.Hour,
		Alerts: st.Store, AlertEvery: time.Hour, Logger: log.With("component", "scheduler"), Metrics: s.jobs,
	})
	if err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	sched.Start()
	s.Scheduler = sched
	tb.Cleanup(func() {
		if err := sched.Shutdown(context.Background()); err != nil {
			tb.Errorf("stacktest: scheduler: %v", err)
		}
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
