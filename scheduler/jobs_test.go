package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/scheduler"
)

var start = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestHoldSweep(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(start)
	o := storeOptions(clock, time.UTC)
	o.HoldTTL = 5 * time.Minute
	store := MustOpenTempStore(t, o)
	const alice bot.Identity = "console:alice"
	if _, _, err := store.EnsureUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	// A request reserves its worst case and the process dies before it
	// settles: the hold stays open.
	hold, err := store.Reserve(ctx, alice, 4000, "crashed-request")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := store.Balance(ctx, alice); b.Held != 4000 || b.Available != 11_000 {
		t.Fatalf("balance after reserve=%+v, want 4,000 held", b)
	}

	m := &metrics{}
	MustStart(t, scheduler.Options{Clock: clock, Ledger: store, HoldSweep: time.Minute, Metrics: m})

	// The first sweep finds the hold still alive.
	advanceTo(t, clock, 1, start.Add(time.Minute))
	waitRuns(t, m, scheduler.JobHoldSweep, 1)
	if b, _ := store.Balance(ctx, alice); b.Held != 4000 {
		t.Fatalf("a live hold was released: %+v", b)
	}

	// Once it expired, the next sweep gives the tokens back.
	advanceTo(t, clock, 1, start.Add(6*time.Minute))
	waitRuns(t, m, scheduler.JobHoldSweep, 2)
	b, err := store.Balance(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if b.Balance != 15_000 || b.Held != 0 || b.Available != 15_000 {
		t.Fatalf("balance after the sweep=%+v, want 15,000 available and nothing held", b)
	}
	if count, tokens, err := store.OpenHolds(ctx); err != nil || count != 0 || tokens != 0 {
		t.Fatalf("OpenHolds=%d, %d, %v; want none", count, tokens, err)
	}
	if rep, err := store.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify=%+v, %v", rep, err)
	}
	// The late answer cannot charge the released hold.
	_, err = store.Settle(ctx, hold.ID, bot.Charge{Amount: 100})
	wantCode(t, err, bot.ECONFLICT)
	for _, r := range m.of(scheduler.JobHoldSweep) {
		if r.err != nil {
			t.Fatalf("JobRun reported %v", r.err)
		}
	}
}

// modelsJSON is a GET /models answer listing the given model ids.
func modelsJSON(ids ...string) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf(`{"id":%q,"name":%q,"context_length":8192,"pricing":{"prompt":"0.000001","completion":"0.000002"}}`, id, id))
	}
	return `{"data":[` + strings.Join(parts, ",") + `]}`
}

func TestCatalogRefresh(t *testing.T) {
	ctx := context.Background()
	var body atomic.Value
	var failing atomic.Bool
	body.Store(modelsJSON("test/a", "test/b"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/models" {
			http.NotFound(w, r)
			return
		}
		if failing.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":503,"message":"upstream is down"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body.Load().(string))
	}))
	defer srv.Close()

	cat := router.NewCatalog(router.Config{BaseURL: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if cat.Len() != 2 {
		t.Fatalf("catalog has %d models, want 2", cat.Len())
	}

	clock := clockwork.NewFakeClockAt(start)
	m := &metrics{}
	logs := newRecorder()
	MustStart(t, scheduler.Options{Clock: clock, Catalog: cat, CatalogRefresh: time.Hour, Metrics: m, Logger: logs.logger()})

	// OpenRouter fails: the refresh fails, is logged and counted, and
	// the catalog keeps its last good list.
	failing.Store(true)
	body.Store(modelsJSON("test/a", "test/b", "test/c"))
	advanceTo(t, clock, 1, start.Add(time.Hour))
	waitRuns(t, m, scheduler.JobCatalogRefresh, 1)
	if err := m.of(scheduler.JobCatalogRefresh)[0].err; err == nil {
		t.Fatal("JobRun reported no error for a failed refresh")
	}
	if cat.Len() != 2 {
		t.Fatalf("catalog has %d models after a failed refresh, want the last good 2", cat.Len())
	}
	if _, err := cat.Lookup("test/a"); err != nil {
		t.Fatalf("Lookup after a failed refresh: %v", err)
	}
	if recs := logs.find("job failed", "job", scheduler.JobCatalogRefresh); len(recs) != 1 || !strings.Contains(attr(recs[0], "error"), "503") {
		t.Fatalf("failure logs=%v, want one naming the 503", recs)
	}

	// OpenRouter is back: the next refresh takes the new list.
	failing.Store(false)
	advanceTo(t, clock, 1, start.Add(2*time.Hour))
	waitRuns(t, m, scheduler.JobCatalogRefresh, 2)
	if err := m.of(scheduler.JobCatalogRefresh)[1].err; err != nil {
		t.Fatalf("JobRun reported %v", err)
	}
	if cat.Len() != 3 {
		t.Fatalf("catalog has %d models after a good refresh, want 3", cat.Len())
	}
}

func TestJobRuns(t *testing.T) {
	// A panicking job is recovered, logged with its stack and reported;
	// the scheduler goes on.
	t.Run("PanicRecovered", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		var calls atomic.Int32
		cat := &catalog{RefreshFunc: func(context.Context) error {
			if calls.Add(1) == 1 {
				panic("catalog exploded")
			}
			return nil
		}}
		m := &metrics{}
		logs := newRecorder()
		MustStart(t, scheduler.Options{Clock: clock, Catalog: cat, Metrics: m, Logger: logs.logger()})

		advanceTo(t, clock, 1, start.Add(scheduler.DefaultCatalogRefresh))
		waitRuns(t, m, scheduler.JobCatalogRefresh, 1)
		if err := m.of(scheduler.JobCatalogRefresh)[0].err; err == nil || !strings.Contains(err.Error(), "catalog exploded") {
			t.Fatalf("JobRun error=%v, want the panic", err)
		}
		recs := logs.find("job panicked", "job", scheduler.JobCatalogRefresh)
		if len(recs) != 1 || !strings.Contains(attr(recs[0], "stack"), "scheduler_test") {
			t.Fatalf("panic logs=%v, want one with the stack", recs)
		}

		advanceTo(t, clock, 1, start.Add(2*scheduler.DefaultCatalogRefresh))
		waitRuns(t, m, scheduler.JobCatalogRefresh, 2)
		if err := m.of(scheduler.JobCatalogRefresh)[1].err; err != nil {
			t.Fatalf("the run after the panic reported %v", err)
		}
	})

	// A run that is still going when the next is due makes that one skip:
	// never two runs of one job at once.
	t.Run("Singleton", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		var running, most, calls atomic.Int32
		started := make(chan struct{}, 10)
		release := make(chan struct{})
		cat := &catalog{RefreshFunc: func(context.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			calls.Add(1)
			started <- struct{}{}
			<-release
			return nil
		}}
		m := &metrics{}
		logs := newRecorder()
		s := MustStart(t, scheduler.Options{Clock: clock, Catalog: cat, Metrics: m, Logger: logs.logger()})

		if err := s.RunNow(scheduler.JobCatalogRefresh); err != nil {
			t.Fatal(err)
		}
		<-started
		skipped := func() int {
			return len(logs.find("job run skipped: its previous run is still going", "job", scheduler.JobCatalogRefresh))
		}
		// Asked again, and due by the schedule, while it runs: both skip.
		if err := s.RunNow(scheduler.JobCatalogRefresh); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a skipped RunNow", func() bool { return skipped() == 1 })
		advanceTo(t, clock, 1, start.Add(scheduler.DefaultCatalogRefresh))
		eventually(t, "a skipped scheduled run", func() bool { return skipped() == 2 })

		close(release)
		waitRuns(t, m, scheduler.JobCatalogRefresh, 1)
		if got := calls.Load(); got != 1 {
			t.Fatalf("%d runs while the first was going, want 1", got)
		}
		if err := s.RunNow(scheduler.JobCatalogRefresh); err != nil {
			t.Fatal(err)
		}
		waitRuns(t, m, scheduler.JobCatalogRefresh, 2)
		if most.Load() != 1 {
			t.Fatalf("%d runs at once, want 1", most.Load())
		}
	})

	t.Run("LogsEachRun", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		var released atomic.Int32
		led := &ledger{ReleaseExpiredFunc: func(context.Context, time.Time) (int, error) { return int(released.Load()), nil }}
		m := &metrics{}
		logs := newRecorder()
		MustStart(t, scheduler.Options{Clock: clock, Ledger: led, Metrics: m, Logger: logs.logger()})

		advanceTo(t, clock, 1, start.Add(time.Minute))
		waitRuns(t, m, scheduler.JobHoldSweep, 1)
		released.Store(2)
		advanceTo(t, clock, 1, start.Add(2*time.Minute))
		waitRuns(t, m, scheduler.JobHoldSweep, 2)

		recs := logs.find("job done", "job", scheduler.JobHoldSweep)
		if len(recs) != 2 {
			t.Fatalf("%d run logs, want 2", len(recs))
		}
		if recs[0].Level != slog.LevelDebug || recs[1].Level != slog.LevelInfo || attr(recs[1], "released") != "2" {
			t.Fatalf("run logs=%v, want a routine one at debug and one that released 2 at info", recs)
		}
		for _, r := range recs {
			if attr(r, "duration") == "" {
				t.Fatalf("run log %v has no duration", r)
			}
		}
	})
}

func TestShutdown(t *testing.T) {
	// Shutdown waits for a running job to finish; the job's context is
	// not cancelled while Shutdown's is alive.
	t.Run("WaitsForRunningJobs", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		started := make(chan struct{})
		release := make(chan struct{})
		var finished atomic.Bool
		var jobErr atomic.Value
		cat := &catalog{RefreshFunc: func(ctx context.Context) error {
			close(started)
			<-release
			jobErr.Store(fmt.Sprint(ctx.Err()))
			finished.Store(true)
			return nil
		}}
		m := &metrics{}
		s := MustStart(t, scheduler.Options{Clock: clock, Catalog: cat, Metrics: m})
		if err := s.RunNow(scheduler.JobCatalogRefresh); err != nil {
			t.Fatal(err)
		}
		<-started

		done := make(chan error, 1)
		go func() { done <- s.Shutdown(context.Background()) }()
		// Shutdown has begun once the scheduler refuses new runs.
		eventually(t, "shutdown to begin", func() bool {
			return errors.Is(s.RunNow(scheduler.JobCatalogRefresh), scheduler.ErrNotRunning)
		})
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if !finished.Load() || jobErr.Load() != "<nil>" {
			t.Fatalf("Shutdown returned with the job finished=%t, its context %v; want finished, not cancelled", finished.Load(), jobErr.Load())
		}
		if m.count(scheduler.JobCatalogRefresh) != 1 {
			t.Fatal("the run was not reported")
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("a second Shutdown: %v", err)
		}
	})

	// When Shutdown's context ends first, the job's context is cancelled
	// and Shutdown says so.
	t.Run("CancelsJobsWhenContextEnds", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		started := make(chan struct{})
		cat := &catalog{RefreshFunc: func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}}
		m := &metrics{}
		s := MustNew(t, scheduler.Options{Clock: clock, Catalog: cat, Metrics: m})
		s.Start()
		if err := s.RunNow(scheduler.JobCatalogRefresh); err != nil {
			t.Fatal(err)
		}
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Shutdown(ctx) }()
		eventually(t, "shutdown to begin", func() bool {
			return errors.Is(s.RunNow(scheduler.JobCatalogRefresh), scheduler.ErrNotRunning)
		})
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Shutdown=%v, want context.Canceled", err)
		}
		waitRuns(t, m, scheduler.JobCatalogRefresh, 1)
		if err := m.of(scheduler.JobCatalogRefresh)[0].err; !errors.Is(err, context.Canceled) {
			t.Fatalf("JobRun error=%v, want the cancellation", err)
		}
	})
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts scheduler.Options
		want string
	}{
		{"ErrDailyReset", scheduler.Options{DailyReset: "25:00"}, "scheduler.daily_reset"},
		{"ErrDailyResetWords", scheduler.Options{DailyReset: "midnight"}, "HH:MM"},
		{"ErrCatalogRefresh", scheduler.Options{CatalogRefresh: -time.Hour}, "scheduler.catalog_refresh"},
		{"ErrHoldSweep", scheduler.Options{HoldSweep: -time.Minute}, "scheduler.hold_sweep"},
		{"ErrLeaderWithoutLease", scheduler.Options{Leader: true}, "scheduler.leader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scheduler.New(tc.opts)
			wantCode(t, err, bot.EINVALID)
			if !strings.Contains(bot.ErrorMessage(err), tc.want) {
				t.Fatalf("message %q does not name %q", bot.ErrorMessage(err), tc.want)
			}
		})
	}

	t.Run("OnlyConfiguredJobs", func(t *testing.T) {
		s := MustNew(t, scheduler.Options{Catalog: &catalog{RefreshFunc: func(context.Context) error { return nil }}})
		if got := s.Jobs(); len(got) != 1 || got[0] != scheduler.JobCatalogRefresh {
			t.Fatalf("Jobs=%v, want only the catalog refresh", got)
		}
		wantCode(t, s.RunNow(scheduler.JobHoldSweep), bot.ENOTFOUND)
		if err := s.RunNow(scheduler.JobCatalogRefresh); !errors.Is(err, scheduler.ErrNotRunning) {
			t.Fatalf("RunNow before Start=%v, want ErrNotRunning", err)
		}
	})

	t.Run("ShutdownWithoutStart", func(t *testing.T) {
		s := MustNew(t, scheduler.Options{Ledger: &ledger{ReleaseExpiredFunc: func(context.Context, time.Time) (int, error) { return 0, nil }}})
		shutdown(t, s)
		s.Start() // after Shutdown: does nothing
		if err := s.RunNow(scheduler.JobHoldSweep); !errors.Is(err, scheduler.ErrNotRunning) {
			t.Fatalf("RunNow after Shutdown=%v, want ErrNotRunning", err)
		}
	})
}

// credits is a fake Credits with a function field.
type credits struct {
	RefreshFunc func(ctx context.Context) (bot.Credits, error)
}

func (c *credits) RefreshCredits(ctx context.Context) (bot.Credits, error) { return c.RefreshFunc(ctx) }

// The host's credits are read at start and on the interval; a key below
// the low mark is a warning the host sees in the log.
func TestCreditsCheck(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	m := &metrics{}
	logs := newRecorder()
	var reads atomic.Int32
	left := 0.5
	cr := &credits{RefreshFunc: func(context.Context) (bot.Credits, error) {
		reads.Add(1)
		return bot.Credits{Known: true, RemainingUSD: &left}, nil
	}}
	MustStart(t, scheduler.Options{Clock: clock, Credits: cr, CreditsCheck: 5 * time.Minute, LowCredits: 1, Metrics: m, Logger: logs.logger()})
	waitRuns(t, m, scheduler.JobCreditsCheck, 1)
	if recs := logs.find("the OpenRouter key's credit is low: add credits on OpenRouter (paid answers are refused once it is out)"); len(recs) != 1 {
		t.Fatalf("low-credit warnings=%v, want one at start", recs)
	}
	advanceTo(t, clock, 1, start.Add(5*time.Minute))
	waitRuns(t, m, scheduler.JobCreditsCheck, 2)
	if reads.Load() < 2 {
		t.Fatalf("the credits were read %d times, want at start and after the interval", reads.Load())
	}
}

// TestHoldSweepPrunesSeenEvents: the sweeper forgets the event ids older
// than the ledger's hour, so the shared table stays about an hour of
// events; a younger id is still known.
func TestHoldSweepPrunesSeenEvents(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(start)
	store := MustOpenTempStore(t, storeOptions(clock, time.UTC))
	if first, err := store.SeenEvent(ctx, "slack:event:Ev1", start); err != nil || !first {
		t.Fatalf("SeenEvent=%v, %v", first, err)
	}
	m := &metrics{}
	MustStart(t, scheduler.Options{Clock: clock, Ledger: store, HoldSweep: 61 * time.Minute, Metrics: m})
	if first, err := store.SeenEvent(ctx, "slack:event:Ev2", start.Add(59*time.Minute)); err != nil || !first {
		t.Fatalf("SeenEvent=%v, %v", first, err)
	}
	advanceTo(t, clock, 1, start.Add(61*time.Minute))
	waitRuns(t, m, scheduler.JobHoldSweep, 1)
	// What is left to prune is nothing: the sweep forgot Ev1 already.
	if events, _, err := store.Prune(ctx, start.Add(61*time.Minute)); err != nil || events != 0 {
		t.Fatalf("Prune after the sweep removed %d event ids (%v), want 0: the sweep did not prune", events, err)
	}
	if first, err := store.SeenEvent(ctx, "slack:event:Ev2", start.Add(61*time.Minute)); err != nil || first {
		t.Fatalf("SeenEvent(Ev2)=%v, %v: an id younger than an hour was forgotten", first, err)
	}
}

// TestCreditsLowTellsHostAdmins: when the key falls below the low mark the
// host admins get one direct notice, not one a check; running out is told
// again; a recovery and a new fall is told again; a follower (another
// instance leads) tells nobody, so several processes send one notice.
func TestCreditsLowTellsHostAdmins(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	m := &metrics{}
	var mu sync.Mutex
	left := 0.5
	set := func(v float64) { mu.Lock(); left = v; mu.Unlock() }
	cr := &credits{RefreshFunc: func(context.Context) (bot.Credits, error) {
		mu.Lock()
		defer mu.Unlock()
		v := left
		return bot.Credits{Known: true, RemainingUSD: &v}, nil
	}}
	var sent notices
	admins := []bot.Identity{"discord:1", "slack:T1:U1"}
	MustStart(t, scheduler.Options{Clock: clock, Credits: cr, CreditsCheck: 5 * time.Minute, LowCredits: 1,
		HostAdmins: admins, Notifier: sent.notifier(), Metrics: m})
	check := func(n int) {
		t.Helper()
		advanceTo(t, clock, 1, start.Add(time.Duration(n-1)*5*time.Minute))
		waitRuns(t, m, scheduler.JobCreditsCheck, n)
	}
	told := func(want ...string) {
		t.Helper()
		got := sent.get()
		for _, id := range admins {
			if len(got[id]) != len(want) {
				t.Fatalf("%s was told %q, want %d notices", id, got[id], len(want))
			}
			for i, w := range want {
				if !strings.Contains(got[id][i], w) {
					t.Fatalf("%s notice %d = %q, want it to say %q", id, i, got[id][i], w)
				}
			}
		}
	}
	waitRuns(t, m, scheduler.JobCreditsCheck, 1)
	told("$0.50 of credit left, below your mark of $1.00")
	check(2) // still low: no second notice
	told("$0.50 of credit left")
	set(0)
	check(3)
	told("$0.50", "out of credit")
	set(20)
	check(4) // recovered: nothing to say
	told("$0.50", "out of credit")
	set(0.25)
	check(5)
	told("$0.50", "out of credit", "$0.25 of credit left")

	// A follower: another instance holds the lease, so it tells nobody.
	var other notices
	m2 := &metrics{}
	clock2 := clockwork.NewFakeClockAt(start)
	MustStart(t, scheduler.Options{Clock: clock2, Credits: cr, LowCredits: 1, HostAdmins: admins, Notifier: other.notifier(), Metrics: m2,
		Leader: true, Lease: &lease{TryLeadFunc: func(context.Context, string, string, time.Duration) error {
			return bot.Errorf(bot.ECONFLICT, "another instance leads")
		}}, Ledger: &ledger{ReleaseExpiredFunc: func(context.Context, time.Time) (int, error) { return 0, nil }}})
	waitRuns(t, m2, scheduler.JobCreditsCheck, 1)
	if got := other.get(); len(got) != 0 {
		t.Fatalf("a follower told %v; only the leader tells the host admins", got)
	}
}
