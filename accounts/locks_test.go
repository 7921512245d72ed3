package accounts_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
)

// mustLocks opens a lock session on s, closed when the test ends.
func mustLocks(t *testing.T, s *accounts.Store, holder string, ttl time.Duration) *accounts.Locks {
	t.Helper()
	l, err := s.OpenLocks(t.Context(), holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func tryLock(t *testing.T, l *accounts.Locks, name string) bool {
	t.Helper()
	ok, err := l.TryLock(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// waitLost waits for l to be lost; the minute is a bound on a hang, not a
// measurement.
func waitLost(t *testing.T, l *accounts.Locks) {
	t.Helper()
	select {
	case <-l.Lost():
	case <-time.After(time.Minute):
		t.Fatal("the locks were never declared lost")
	}
}

func TestLocks(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		t.Run("Exclusive", func(t *testing.T) {
			db := e.database(t)
			a, b := MustOpenPath(t, db, testOptions()), MustOpenPath(t, db, testOptions())
			la, lb := mustLocks(t, a, "web-1", 0), mustLocks(t, b, "web-2", 0)
			if !tryLock(t, la, "scheduler") {
				t.Fatal("a free lock was refused")
			}
			if !tryLock(t, la, "scheduler") {
				t.Fatal("taking a lock one holds again was refused")
			}
			if tryLock(t, lb, "scheduler") {
				t.Fatal("two holders took one lock")
			}
			if who, err := b.WhoHolds(t.Context(), "scheduler"); err != nil || who != "web-1" {
				t.Fatalf("WhoHolds=%q, %v; want web-1", who, err)
			}
			if !tryLock(t, lb, "other") {
				t.Fatal("another name is another lock")
			}
			if err := la.Unlock(t.Context(), "scheduler"); err != nil {
				t.Fatal(err)
			}
			if !tryLock(t, lb, "scheduler") {
				t.Fatal("an unlocked lock was refused")
			}
			if err := lb.Close(); err != nil {
				t.Fatal(err)
			}
			if !tryLock(t, la, "scheduler") {
				t.Fatal("a closed session's lock was refused")
			}
			_, err := b.WhoHolds(t.Context(), "other")
			wantCode(t, err, bot.ENOTFOUND)
			if _, err := lb.TryLock(t.Context(), "x"); bot.ErrorCode(err) != bot.EUNAVAILABLE {
				t.Fatalf("TryLock on closed locks: %v, want EUNAVAILABLE", err)
			}
		})

		// Shards split over processes: each claims its share, and what a
		// process gives back (or leaves when it dies) another takes over.
		t.Run("Claim", func(t *testing.T) {
			db := e.database(t)
			var ls []*accounts.Locks
			for _, h := range []string{"p1", "p2", "p3"} {
				ls = append(ls, mustLocks(t, MustOpenPath(t, db, testOptions()), h, 0))
			}
			all := map[int]string{}
			for _, l := range ls {
				got, err := l.Claim(t.Context(), "discord-shard", 6, 2)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 2 {
					t.Fatalf("%s claimed %v, want 2 of 6", l.Holder(), got)
				}
				for _, n := range got {
					if prev, taken := all[n]; taken {
						t.Fatalf("shard %d claimed by %s and %s", n, prev, l.Holder())
					}
					all[n] = l.Holder()
				}
			}
			if len(all) != 6 {
				t.Fatalf("claims=%v, want all 6 shards", all)
			}
			gone := ls[1].Numbers("discord-shard", 6)
			if err := ls[1].Close(); err != nil {
				t.Fatal(err)
			}
			got, err := ls[0].Claim(t.Context(), "discord-shard", 6, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 || !slices.Contains(got, gone[0]) || !slices.Contains(got, gone[1]) {
				t.Fatalf("after p2 ended, p1 claimed %v, want its own and p2's %v", got, gone)
			}
			if err := ls[0].Unlock(t.Context(), accounts.Numbered("discord-shard", got[0])); err != nil {
				t.Fatal(err)
			}
			if got, err := ls[2].Claim(t.Context(), "discord-shard", 6, 0); err != nil || len(got) != 3 {
				t.Fatalf("p3 claiming every free shard: %v, %v; want its 2 and the one p1 gave back", got, err)
			}
			if _, err := ls[0].Claim(t.Context(), "discord-shard", 0, 1); bot.ErrorCode(err) != bot.EINVALID {
				t.Fatalf("Claim of 0 locks: %v, want EINVALID", err)
			}
		})

		t.Run("ErrInvalid", func(t *testing.T) {
			s := MustOpenPath(t, e.database(t), testOptions())
			for _, holder := range []string{"", string(make([]byte, 201))} {
				_, err := s.OpenLocks(t.Context(), holder, 0)
				wantCode(t, err, bot.EINVALID)
			}
		})
	})
}

// A process that dies, or whose connection is cut, loses its locks on
// the server at once; the survivor notices through Lost, and another
// process takes them over.
func TestLocksLostWithSession(t *testing.T) {
	e := engines[1]
	db := e.database(t)
	a, b := MustOpenPath(t, db, testOptions()), MustOpenPath(t, db, testOptions())
	la, lb := mustLocks(t, a, "web-1", 300*time.Millisecond), mustLocks(t, b, "web-2", 0)
	if v, err := accounts.LockSessionSetting(la, "idle_session_timeout"); err != nil || v != "300ms" {
		t.Fatalf("idle_session_timeout=%q, %v; want 300ms: a frozen holder's session ends", v, err)
	}
	if !tryLock(t, la, "scheduler") {
		t.Fatal("a free lock was refused")
	}
	if _, err := e.raw(t, db).Exec(`SELECT pg_terminate_backend($1, 30000)`, accounts.LockSessionPID(la)); err != nil {
		t.Fatal(err)
	}
	if !tryLock(t, lb, "scheduler") {
		t.Fatal("the lock of an ended session was refused")
	}
	waitLost(t, la)
	wantCode(t, la.Err(), bot.EUNAVAILABLE)
	if la.Held("scheduler") {
		t.Fatal("lost locks still say they hold the lock")
	}
	if _, err := la.TryLock(context.Background(), "scheduler"); bot.ErrorCode(err) != bot.EUNAVAILABLE {
		t.Fatalf("TryLock after the loss: %v, want EUNAVAILABLE", err)
	}
}

// The scheduler's lease on PostgreSQL: when the leader's session ends
// (kill -9 of its process), another instance leads at its next try, and
// the old leader finds out at its next renewal, or at once through
// LeaseLost.
func TestLeaseFailoverPostgres(t *testing.T) {
	e := engines[1]
	db := e.database(t)
	a, b := MustOpenPath(t, db, testOptions()), MustOpenPath(t, db, testOptions())
	const ttl = time.Minute
	if err := a.TryLead(t.Context(), "scheduler", "a", ttl); err != nil {
		t.Fatal(err)
	}
	lost, err := a.LeaseLost("scheduler")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.TryLead(t.Context(), "scheduler", "b", ttl), bot.ECONFLICT)
	if holder, _, err := b.LeaseHolder(t.Context(), "scheduler"); err != nil || holder != "a" {
		t.Fatalf("LeaseHolder=%q, %v; want a", holder, err)
	}
	if _, err := e.raw(t, db).Exec(`SELECT pg_terminate_backend($1, 30000)`, accounts.LeaseSessionPID(a, "scheduler")); err != nil {
		t.Fatal(err)
	}
	if err := b.TryLead(t.Context(), "scheduler", "b", ttl); err != nil {
		t.Fatalf("taking over from a dead leader: %v", err)
	}
	err = a.TryLead(t.Context(), "scheduler", "a", ttl)
	wantCode(t, err, bot.ECONFLICT)
	wantMessage(t, err, "held by b")
	select {
	case <-lost:
	case <-time.After(time.Minute):
		t.Fatal("LeaseLost never fired")
	}
	if err := b.ResignLead(t.Context(), "scheduler", "b"); err != nil {
		t.Fatal(err)
	}
	if err := a.TryLead(t.Context(), "scheduler", "a", ttl); err != nil {
		t.Fatalf("taking a resigned lease: %v", err)
	}
}

// TestWhoHoldsEach: one question names the holders of many locks, across
// processes (stores), and leaves the free ones out.
func TestWhoHoldsEach(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		db := e.database(t)
		a, b := MustOpenPath(t, db, testOptions()), MustOpenPath(t, db, testOptions())
		la, lb := mustLocks(t, a, "web-1", 0), mustLocks(t, b, "web-2", 0)
		tryLock(t, la, "discord-process/0")
		tryLock(t, lb, "discord-process/2")
		got, err := b.WhoHoldsEach(t.Context(), []string{"discord-process/0", "discord-process/1", "discord-process/2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["discord-process/0"] != "web-1" || got["discord-process/2"] != "web-2" {
			t.Fatalf("WhoHoldsEach = %v, want /0 web-1 and /2 web-2", got)
		}
		if err := la.Close(); err != nil {
			t.Fatal(err)
		}
		got, err = b.WhoHoldsEach(t.Context(), []string{"discord-process/0", "discord-process/2"})
		if err != nil || len(got) != 1 || got["discord-process/2"] != "web-2" {
			t.Fatalf("after web-1 closed: %v, %v; want only /2 web-2", got, err)
		}
	})
}
