package scheduler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/scheduler"
)

// instance is one orchat process sharing the ledger file with others.
type instance struct {
	name  string
	store *accounts.Store
	s     *scheduler.Scheduler
	m     *metrics
	logs  *recorder
	rs    *resets
}

// startInstance opens the ledger at path and starts a scheduler on it with
// leader election, a sweeper every minute and the daily reset.
func startInstance(t *testing.T, clock *clockwork.FakeClock, path, name string) *instance {
	t.Helper()
	in := &instance{name: name, m: &metrics{}, logs: newRecorder()}
	in.store = MustOpenStore(t, path, storeOptions(clock, time.UTC))
	in.rs = &resets{Resets: in.store}
	in.s = MustStart(t, scheduler.Options{
		Clock: clock, Ledger: in.store, Resets: in.rs,
		HoldSweep: time.Minute, Leader: true, Lease: in.store, Instance: name, LeaseTTL: 3 * time.Minute,
		Metrics: in.m, Logger: in.logs.logger(),
	})
	return in
}

// sweeps is how many sweeps this instance ran.
func (in *instance) sweeps() int { return in.m.count(scheduler.JobHoldSweep) }

// skips is how many sweeps this instance left to the leader.
func (in *instance) skips() int {
	return len(in.logs.find("job run skipped: another instance is the scheduler leader", "job", scheduler.JobHoldSweep))
}

// decided is how many sweep ticks this instance has handled either way.
func (in *instance) decided() int { return in.sweeps() + in.skips() }

func wantHolder(t *testing.T, store *accounts.Store, want string) {
	t.Helper()
	holder, _, err := store.LeaseHolder(context.Background(), scheduler.LeaseName)
	if err != nil || holder != want {
		t.Fatalf("lease holder=%q (%v), want %q", holder, err, want)
	}
}

func TestLeader(t *testing.T) {
	// Two instances on one ledger: one sweeps, the other does not; when
	// the leader stops (and resigns), the other takes over.
	t.Run("OneSweepsThenTheOtherTakesOver", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		path := filepath.Join(t.TempDir(), "ledger.db")
		a := startInstance(t, clock, path, "a")
		b := startInstance(t, clock, path, "b")
		// Each start catches up on the reset; only one of them runs it.
		eventually(t, "both start-up resets decided", func() bool {
			return a.m.count(scheduler.JobFreeReset)+b.m.count(scheduler.JobFreeReset)+
				len(a.logs.find("job run skipped: another instance is the scheduler leader", "job", scheduler.JobFreeReset))+
				len(b.logs.find("job run skipped: another instance is the scheduler leader", "job", scheduler.JobFreeReset)) == 2
		})

		for tick := 1; tick <= 3; tick++ {
			advanceTo(t, clock, 4, start.Add(time.Duration(tick)*time.Minute))
			eventually(t, fmt.Sprintf("both instances to handle sweep %d", tick), func() bool {
				return a.decided() == tick && b.decided() == tick
			})
		}
		leader, follower := a, b
		if b.sweeps() > 0 {
			leader, follower = b, a
		}
		if leader.sweeps() != 3 || follower.sweeps() != 0 {
			t.Fatalf("sweeps: %s ran %d, %s ran %d; want one instance to run all 3", a.name, a.sweeps(), b.name, b.sweeps())
		}
		wantHolder(t, a.store, leader.name)

		shutdown(t, leader.s)
		advanceTo(t, clock, 2, start.Add(4*time.Minute))
		waitRuns(t, follower.m, scheduler.JobHoldSweep, 1)
		wantHolder(t, a.store, follower.name)
		// Taking over, it caught up on the reset (already done: no-op).
		waitRuns(t, follower.m, scheduler.JobFreeReset, 1)
		if got, _ := a.store.FreeResets(context.Background(), 0); len(got) != 1 {
			t.Fatalf("resets=%v, want yesterday's once", got)
		}
	})

	// A leader that crashed leaves its lease: the others wait until it
	// expires, then one takes over and catches up on the reset.
	t.Run("CrashedLeaderLeaseExpires", func(t *testing.T) {
		clock := clockwork.NewFakeClockAt(start)
		path := filepath.Join(t.TempDir(), "ledger.db")
		crashed := MustOpenStore(t, path, storeOptions(clock, time.UTC))
		if err := crashed.TryLead(context.Background(), scheduler.LeaseName, "crashed", 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		b := startInstance(t, clock, path, "b")
		eventually(t, "the skipped start-up reset", func() bool {
			return len(b.logs.find("job run skipped: another instance is the scheduler leader", "job", scheduler.JobFreeReset)) == 1
		})
		for tick := 1; tick <= 2; tick++ {
			advanceTo(t, clock, 2, start.Add(time.Duration(tick)*time.Minute))
			eventually(t, fmt.Sprintf("sweep %d skipped", tick), func() bool { return b.skips() == tick })
		}
		if b.sweeps() != 0 || b.rs.count() != 0 {
			t.Fatalf("b ran %d sweeps and %d resets under another's lease", b.sweeps(), b.rs.count())
		}

		advanceTo(t, clock, 2, start.Add(3*time.Minute)) // the lease ends now
		waitRuns(t, b.m, scheduler.JobHoldSweep, 1)
		wantHolder(t, b.store, "b")
		waitRuns(t, b.m, scheduler.JobFreeReset, 1)
		if c := b.rs.of("2026-11-21"); len(c) != 1 || !c[0].first {
			t.Fatalf("reset calls=%v, want the missed reset of 2026-11-21 recorded on taking over", c)
		}
	})
}

// TestLeaderPostgres: three instances on one PostgreSQL ledger, the lease
// an advisory lock. One leads; when its session dies (the process killed,
// here its store closed under it) another takes over within a few seconds
// through the campaign, not at the next job's tick; the day's reset is
// recorded once however many instances run it.
func TestLeaderPostgres(t *testing.T) {
	dsn := postgrestest.DSN(t)
	clock := clockwork.NewFakeClockAt(start)
	var all []*instance
	dead := map[string]*atomic.Bool{}
	for _, name := range []string{"a", "b", "c"} {
		in := &instance{name: name, m: &metrics{}, logs: newRecorder()}
		in.store = MustOpenStore(t, dsn, storeOptions(clock, time.UTC))
		in.rs = &resets{Resets: in.store}
		dead[name] = &atomic.Bool{}
		in.s = MustStart(t, scheduler.Options{
			Clock: clock, Ledger: in.store, Resets: in.rs,
			HoldSweep: time.Hour, Leader: true, Lease: killable{in.store, dead[name]}, Instance: name, Campaign: 100 * time.Millisecond,
			Metrics: in.m, Logger: in.logs.logger(),
		})
		all = append(all, in)
	}
	leaders := func(among []*instance) []*instance {
		var out []*instance
		for _, in := range among {
			if in.s.Leader() {
				out = append(out, in)
			}
		}
		return out
	}
	firsts := func(period string) int {
		n := 0
		for _, in := range all {
			for _, c := range in.rs.of(period) {
				if c.first {
					n++
				}
			}
		}
		return n
	}
	if l := leaders(all); len(l) != 1 {
		t.Fatalf("%d leaders after start, want 1", len(l))
	}
	old := leaders(all)[0]
	select {
	case <-old.s.Elected():
	default:
		t.Fatal("the leader's Elected channel is not closed")
	}
	eventually(t, "the start-up reset", func() bool { return firsts("2026-11-21") == 1 })

	// The leader dies: its session ends, and with it the advisory lock
	// (what is left of it can no longer reach the database).
	died := time.Now()
	dead[old.name].Store(true)
	if err := old.store.Close(); err != nil {
		t.Fatal(err)
	}
	var rest []*instance
	for _, in := range all {
		if in != old {
			rest = append(rest, in)
		}
	}
	eventually(t, "another instance to lead", func() bool { return len(leaders(rest)) == 1 })
	if took := time.Since(died); took > 5*time.Second {
		t.Errorf("the take-over took %s, want a few seconds", took)
	}
	next := leaders(rest)[0]
	// The new leader caught up on the reset (a no-op: it was recorded),
	// and a reset every instance is asked for runs on the leader only.
	waitRuns(t, next.m, scheduler.JobFreeReset, 1)
	for _, in := range rest {
		if err := in.s.RunNow(scheduler.JobFreeReset); err != nil {
			t.Fatal(err)
		}
	}
	waitRuns(t, next.m, scheduler.JobFreeReset, 2)
	for _, in := range rest {
		if in != next && in.m.count(scheduler.JobFreeReset) != 0 {
			t.Errorf("%s, a follower, ran the reset %d times", in.name, in.m.count(scheduler.JobFreeReset))
		}
	}
	if n := firsts("2026-11-21"); n != 1 {
		t.Fatalf("the reset of 2026-11-21 was recorded %d times, want exactly once", n)
	}
	if got, _ := next.store.FreeResets(context.Background(), 0); len(got) != 1 {
		t.Fatalf("resets=%v, want yesterday's once", got)
	}
}

// killable is a Lease that a dead process can no longer reach.
type killable struct {
	scheduler.Lease
	dead *atomic.Bool
}

func (k killable) TryLead(ctx context.Context, name, holder string, ttl time.Duration) error {
	if k.dead.Load() {
		return bot.Errorf(bot.EUNAVAILABLE, "killed")
	}
	return k.Lease.TryLead(ctx, name, holder, ttl)
}
