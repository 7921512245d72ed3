package scheduler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/accounts"
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
