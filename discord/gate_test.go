package discord

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// lockTable is the database's advisory locks, for sessions in one test.
type lockTable struct {
	mu    sync.Mutex
	owner map[string]*testLocks
}

// testLocks is one session of a lockTable: a process's lock connection.
// Die frees every lock at once, as PostgreSQL does when a process dies.
type testLocks struct {
	t    *lockTable
	lost chan struct{}
	// onTry, when set, sees every TryLock and its answer.
	onTry func(name string, ok bool)
}

func (t *lockTable) session() *testLocks { return &testLocks{t: t, lost: make(chan struct{})} }

func (l *testLocks) TryLock(_ context.Context, name string) (bool, error) {
	l.t.mu.Lock()
	o := l.t.owner[name]
	ok := o == nil || o == l
	if ok {
		l.t.owner[name] = l
	}
	l.t.mu.Unlock()
	if l.onTry != nil {
		l.onTry(name, ok)
	}
	return ok, nil
}

func (l *testLocks) Unlock(_ context.Context, name string) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if l.t.owner[name] == l {
		delete(l.t.owner, name)
	}
	return nil
}

func (l *testLocks) Lost() <-chan struct{} { return l.lost }
func (l *testLocks) Close() error          { l.Die(); return nil }

func (l *testLocks) Die() {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	for n, o := range l.t.owner {
		if o == l {
			delete(l.t.owner, n)
		}
	}
}

// TestIdentifyGateAcrossProcesses: two processes' gates on one bucket
// (max_concurrency 1). B never identifies within an interval of A's
// IDENTIFY: when A hands the bucket over it goes on at once; when A dies
// holding it (perhaps just after identifying), B waits the interval out.
func TestIdentifyGateAcrossProcesses(t *testing.T) {
	const every = 300 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	newGate := func(l Locks) *identifyGate { return newIdentifyGate(every, log, func() Locks { return l }) }
	ctx := context.Background()

	t.Run("HandedOver", func(t *testing.T) {
		table := &lockTable{owner: map[string]*testLocks{}}
		la, lb := table.session(), table.session()
		var mu sync.Mutex
		sawHandover := false
		lb.onTry = func(name string, ok bool) {
			if name == handoverLock(0) && !ok {
				mu.Lock()
				sawHandover = true
				mu.Unlock()
			}
		}
		a, b := newGate(la), newGate(lb)
		if err := a.wait(ctx, 0); err != nil {
			t.Fatal(err)
		}
		a.finish(0) // READY: A's IDENTIFY is behind it
		ready := time.Now()
		if err := b.wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if gap := time.Since(ready); gap < every {
			t.Fatalf("B identified %s after A's READY, within the interval %s", gap, every)
		}
		mu.Lock()
		defer mu.Unlock()
		if !sawHandover {
			t.Fatal("B took the bucket without seeing A's handover")
		}
	})

	t.Run("HolderDied", func(t *testing.T) {
		table := &lockTable{owner: map[string]*testLocks{}}
		la, lb := table.session(), table.session()
		a, b := newGate(la), newGate(lb)
		if err := a.wait(ctx, 0); err != nil {
			t.Fatal(err)
		}
		identified := time.Now() // A identifies, then dies at once
		la.Die()
		if err := b.wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if gap := time.Since(identified); gap < every {
			t.Fatalf("B identified %s after the dead A's IDENTIFY, within the interval %s", gap, every)
		}
	})

	t.Run("HandedOverThenDied", func(t *testing.T) {
		// A hands the bucket to B, B identifies and dies at once; C, which
		// takes the bucket while A's handover may still show, must not
		// count on it: it waits an interval after B's IDENTIFY.
		table := &lockTable{owner: map[string]*testLocks{}}
		la, lb, lc := table.session(), table.session(), table.session()
		a, b, c := newGate(la), newGate(lb), newGate(lc)
		if err := a.wait(ctx, 0); err != nil {
			t.Fatal(err)
		}
		a.finish(0)
		if err := b.wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		identified := time.Now()
		lb.Die()
		if err := c.wait(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if gap := time.Since(identified); gap < every {
			t.Fatalf("C identified %s after the dead B's IDENTIFY, within the interval %s", gap, every)
		}
	})

	t.Run("SameProcessKeepsTheBucket", func(t *testing.T) {
		// Shards 0 and 1 of one process in one bucket: the second waits
		// the interval after the first's READY, without giving the bucket
		// to another process in between.
		table := &lockTable{owner: map[string]*testLocks{}}
		la, lb := table.session(), table.session()
		a, b := newGate(la), newGate(lb)
		if err := a.wait(ctx, 0); err != nil {
			t.Fatal(err)
		}
		a.finish(0)
		ready := time.Now()
		bDone := make(chan time.Time, 1)
		go func() {
			_ = b.wait(ctx, 2)
			bDone <- time.Now()
		}()
		if err := a.wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if gap := time.Since(ready); gap < every {
			t.Fatalf("shard 1 identified %s after shard 0's READY, within %s", gap, every)
		}
		select {
		case <-bDone:
			t.Fatal("another process got the bucket while this one was identifying in it")
		default:
		}
		a.finish(1)
		if at := <-bDone; at.Sub(ready) < 2*every {
			t.Fatalf("the other process identified %s after this one's first READY, want two intervals", at.Sub(ready))
		}
	})
}
