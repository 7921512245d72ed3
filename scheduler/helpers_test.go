package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/scheduler"
)

// The real implementations satisfy the scheduler's small interfaces.
var (
	_ scheduler.Ledger     = (*accounts.Store)(nil)
	_ scheduler.Resets     = (*accounts.Store)(nil)
	_ scheduler.Lease      = (*accounts.Store)(nil)
	_ scheduler.Resigner   = (*accounts.Store)(nil)
	_ scheduler.Catalog    = (*router.Catalog)(nil)
	_ scheduler.Allowances = (*accounts.Store)(nil)
	_ scheduler.Alerts     = (*accounts.Store)(nil)
)

// waitTimeout bounds every wait for something the scheduler does in its
// own goroutines. Nothing is timed: the wait ends as soon as it holds.
const waitTimeout = 15 * time.Second

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitTimers waits until the fake clock has n timers: every scheduled job
// has planned its next run, so an Advance will fire them.
func waitTimers(t testing.TB, clock *clockwork.FakeClock, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("timed out waiting for %d scheduled jobs: %v", n, err)
	}
}

// slack is how far past a job's due time advanceTo moves the clock. A
// real clock is always a little late when a timer fires; a fake one is
// exactly on time, and gocron, rescheduling a singleton job at exactly its
// due time, can plan the next run at that same instant and run it twice.
const slack = time.Millisecond

// advanceTo waits for n scheduled jobs and moves the fake clock to just
// after at, so that every job due at or before at runs once.
func advanceTo(t testing.TB, clock *clockwork.FakeClock, n int, at time.Time) {
	t.Helper()
	waitTimers(t, clock, n)
	if d := at.Add(slack).Sub(clock.Now()); d > 0 {
		clock.Advance(d)
	}
}

// ranAt reports whether a run at got is the run due at want.
func ranAt(got, want time.Time) bool {
	d := got.Sub(want)
	return d >= 0 && d <= slack
}

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	return loc
}

// storeOptions are a ledger's options on the fake clock.
func storeOptions(clock clockwork.Clock, loc *time.Location) accounts.Options {
	o := accounts.DefaultOptions()
	o.Location = loc
	o.Now = clock.Now
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// MustOpenStore opens a ledger at path and closes it when the test ends.
func MustOpenStore(t testing.TB, path string, o accounts.Options) *accounts.Store {
	t.Helper()
	s, err := accounts.Open(path, o)
	if err != nil {
		t.Fatalf("accounts.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// MustOpenTempStore opens a ledger on a new file under the test's folder.
func MustOpenTempStore(t testing.TB, o accounts.Options) *accounts.Store {
	t.Helper()
	return MustOpenStore(t, filepath.Join(t.TempDir(), "ledger.db"), o)
}

// MustStart builds and starts a scheduler, shut down when the test ends
// (before the ledger closes: cleanups run last first).
func MustStart(t testing.TB, o scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	s := MustNew(t, o)
	s.Start()
	return s
}

// MustNew builds a scheduler without starting it.
func MustNew(t testing.TB, o scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := scheduler.New(o)
	if err != nil {
		t.Fatalf("scheduler.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func shutdown(t testing.TB, s *scheduler.Scheduler) {
	t.Helper()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// metrics records JobRun; the rest is discarded.
type metrics struct {
	bot.NopMetrics
	mu   sync.Mutex
	runs []jobRun
}

type jobRun struct {
	job string
	err error
}

func (m *metrics) JobRun(job string, err error, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, jobRun{job, err})
}

// of returns the runs of one job.
func (m *metrics) of(job string) []jobRun {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []jobRun
	for _, r := range m.runs {
		if r.job == job {
			out = append(out, r)
		}
	}
	return out
}

func (m *metrics) count(job string) int { return len(m.of(job)) }

// waitRuns waits until job finished n runs. Tests wait for a run to end
// before they move the clock on: a tick that comes while the job is still
// running is skipped, as singleton mode wants.
func waitRuns(t testing.TB, m *metrics, job string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d runs of %s", n, job), func() bool { return m.count(job) >= n })
}

// catalog is a fake Catalog with a function field.
type catalog struct {
	RefreshFunc func(ctx context.Context) error
}

func (c *catalog) Refresh(ctx context.Context) error { return c.RefreshFunc(ctx) }

// ledger is a fake Ledger with a function field.
type ledger struct {
	ReleaseExpiredFunc func(ctx context.Context, now time.Time) (int, error)
}

func (l *ledger) ReleaseExpired(ctx context.Context, now time.Time) (int, error) {
	return l.ReleaseExpiredFunc(ctx, now)
}

// notifier is a fake Notifier with a function field.
type notifier struct {
	NotifyFunc func(ctx context.Context, id bot.Identity, text string) error
}

func (n *notifier) Notify(ctx context.Context, id bot.Identity, text string) error {
	return n.NotifyFunc(ctx, id, text)
}

// notices collects what a notifier sent.
type notices struct {
	mu   sync.Mutex
	sent map[bot.Identity][]string
}

func (n *notices) notifier() *notifier {
	return &notifier{NotifyFunc: func(_ context.Context, id bot.Identity, text string) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.sent == nil {
			n.sent = map[bot.Identity][]string{}
		}
		n.sent[id] = append(n.sent[id], text)
		return nil
	}}
}

func (n *notices) get() map[bot.Identity][]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[bot.Identity][]string{}
	for id, texts := range n.sent {
		out[id] = slices.Clone(texts)
	}
	return out
}

func (n *notices) total() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var c int
	for _, texts := range n.sent {
		c += len(texts)
	}
	return c
}

// resets wraps the real ledger and records every RecordReset call, so a
// test sees how often the reset ran, not only what it recorded.
type resets struct {
	scheduler.Resets
	mu    sync.Mutex
	calls []resetCall
}

type resetCall struct {
	period string
	at     time.Time
	first  bool
}

func (r *resets) RecordReset(ctx context.Context, period string, at time.Time) (bool, error) {
	first, err := r.Resets.RecordReset(ctx, period, at)
	if err == nil {
		r.mu.Lock()
		r.calls = append(r.calls, resetCall{period, at, first})
		r.mu.Unlock()
	}
	return first, err
}

// of returns the calls for one period.
func (r *resets) of(period string) []resetCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []resetCall
	for _, c := range r.calls {
		if c.period == period {
			out = append(out, c)
		}
	}
	return out
}

func (r *resets) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// recorder is a slog handler that keeps every record, for tests that wait
// on what the scheduler logged.
type recorder struct {
	root  *recorderRoot
	attrs []slog.Attr
}

type recorderRoot struct {
	mu   sync.Mutex
	recs []slog.Record
}

func newRecorder() *recorder { return &recorder{root: &recorderRoot{}} }

func (h *recorder) logger() *slog.Logger { return slog.New(h) }

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.root.mu.Lock()
	defer h.root.mu.Unlock()
	h.root.recs = append(h.root.recs, r)
	return nil
}

func (h *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{root: h.root, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *recorder) WithGroup(string) slog.Handler { return h }

// find returns the records with message msg whose attributes include
// every key=value of want.
func (h *recorder) find(msg string, want ...string) []slog.Record {
	h.root.mu.Lock()
	defer h.root.mu.Unlock()
	var out []slog.Record
	for _, r := range h.root.recs {
		if r.Message != msg {
			continue
		}
		got := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			got[a.Key] = a.Value.String()
			return true
		})
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if got[want[i]] != want[i+1] {
				ok = false
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := bot.ErrorCode(err); got != code {
		t.Fatalf("error code=%q, want %q (err: %v)", got, code, err)
	}
}

var errBoom = errors.New("boom")

// lease is a fake Lease with a function field.
type lease struct {
	TryLeadFunc func(ctx context.Context, name, holder string, ttl time.Duration) error
}

func (l *lease) TryLead(ctx context.Context, name, holder string, ttl time.Duration) error {
	return l.TryLeadFunc(ctx, name, holder, ttl)
}
