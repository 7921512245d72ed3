package accounts_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/accountstest"
	"github.com/orchat/orchat/bot"
)

// jobOptions are the test options on a clock the test moves.
func jobOptions(clock *accountstest.Clock) accounts.Options {
	o := testOptions()
	o.Now = clock.Now
	return o
}

func TestRecordReset(t *testing.T) {
	ctx := context.Background()
	at := accountstest.Start

	t.Run("OK", func(t *testing.T) {
		s := MustOpen(t, testOptions())
		first, err := s.RecordReset(ctx, "2026-11-21", at)
		if err != nil {
			t.Fatal(err)
		}
		if !first {
			t.Fatal("first RecordReset of a period: first=false, want true")
		}
		if _, err := s.RecordReset(ctx, "2026-11-22", at.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.FreeResets(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []accounts.FreeReset{{Period: "2026-11-22", RanAt: at.Add(24 * time.Hour)}, {Period: "2026-11-21", RanAt: at}}
		if !slices.Equal(got, want) {
			t.Fatalf("FreeResets=%v, want %v (newest first)", got, want)
		}
		if got, err := s.FreeResets(ctx, 1); err != nil || len(got) != 1 || got[0].Period != "2026-11-22" {
			t.Fatalf("FreeResets(1)=%v, %v; want the newest only", got, err)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := MustOpen(t, testOptions())
		if first, err := s.RecordReset(ctx, "2026-11-21", at); err != nil || !first {
			t.Fatalf("RecordReset=%t, %v; want true", first, err)
		}
		first, err := s.RecordReset(ctx, "2026-11-21", at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if first {
			t.Fatal("second RecordReset of a period: first=true, want false")
		}
		got, _ := s.FreeResets(ctx, 0)
		if len(got) != 1 || !got[0].RanAt.Equal(at) {
			t.Fatalf("FreeResets=%v, want one reset at %v (the first)", got, at)
		}
	})

	t.Run("OncePerPeriodAcrossRestartsAndInstances", func(t *testing.T) {
		path := t.TempDir() + "/ledger.db"
		a := MustOpenPath(t, path, testOptions())
		b := MustOpenPath(t, path, testOptions())
		var mu sync.Mutex
		var firsts int
		var wg sync.WaitGroup
		for i := range 16 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				first, err := s.RecordReset(ctx, "2026-11-21", at)
				if err != nil {
					t.Error(err)
					return
				}
				if first {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if firsts != 1 {
			t.Fatalf("%d calls recorded the reset, want exactly 1", firsts)
		}
		a.Close()
		c := MustOpenPath(t, path, testOptions())
		if first, err := c.RecordReset(ctx, "2026-11-21", at); err != nil || first {
			t.Fatalf("RecordReset after a restart=%t, %v; want false", first, err)
		}
	})

	t.Run("ErrInvalidPeriod", func(t *testing.T) {
		s := MustOpen(t, testOptions())
		for _, p := range []string{"", "yesterday", "2026-13-01", "2026-11-22T00:00"} {
			_, err := s.RecordReset(ctx, p, at)
			wantCode(t, err, bot.EINVALID)
			wantMessage(t, err, "2026-11-22")
			_, err = s.FreeExhausted(ctx, p)
			wantCode(t, err, bot.EINVALID)
		}
	})
}

func TestFreeExhausted(t *testing.T) {
	ctx := context.Background()
	clock := accountstest.NewClock(accountstest.Start)
	o := jobOptions(clock)
	o.FreePerDay, o.FreePerDayToppedUp = 2, 3
	s := MustOpen(t, o)

	const (
		spent     bot.Identity = "console:spent"     // used 2 of 2
		some      bot.Identity = "console:some"      // used 1 of 2
		paid      bot.Identity = "console:paid"      // topped up, used 2 of 3
		paidSpent bot.Identity = "console:paidspent" // topped up, used 3 of 3
		blocked   bot.Identity = "console:blocked"   // used 2 of 2, then blocked
		returned  bot.Identity = "console:returned"  // used 2 of 2, gave one back
		tomorrow  bot.Identity = "console:tomorrow"  // used 2 of 2, the next day
	)
	use := func(id bot.Identity, n int) {
		t.Helper()
		if _, _, err := s.EnsureUser(ctx, id); err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := s.UseFree(ctx, id, clock.Now()); err != nil {
				t.Fatalf("UseFree(%s): %v", id, err)
			}
		}
	}
	for _, id := range []bot.Identity{paid, paidSpent} {
		if _, _, err := s.TopUp(ctx, bot.Adjustment{Identity: id, Amount: 1000, Key: "topup:" + string(id), Actor: "console:admin"}); err != nil {
			t.Fatal(err)
		}
	}
	use(spent, 2)
	use(some, 1)
	use(paid, 2)
	use(paidSpent, 3)
	use(blocked, 2)
	if err := s.SetBlocked(ctx, blocked, true, "console:admin"); err != nil {
		t.Fatal(err)
	}
	use(returned, 2)
	if err := s.ReturnFree(ctx, returned, "2026-11-22"); err != nil {
		t.Fatal(err)
	}
	clock.Add(24 * time.Hour)
	use(tomorrow, 2)

	got, err := s.FreeExhausted(ctx, "2026-11-22")
	if err != nil {
		t.Fatal(err)
	}
	if want := []bot.Identity{paidSpent, spent}; !slices.Equal(got, want) {
		t.Fatalf("FreeExhausted(2026-11-22)=%v, want %v", got, want)
	}
	if got, err := s.FreeExhausted(ctx, "2026-11-23"); err != nil || !slices.Equal(got, []bot.Identity{tomorrow}) {
		t.Fatalf("FreeExhausted(2026-11-23)=%v, %v; want [%s]", got, err, tomorrow)
	}
	if got, err := s.FreeExhausted(ctx, "2020-01-01"); err != nil || len(got) != 0 {
		t.Fatalf("FreeExhausted of an empty period=%v, %v; want none", got, err)
	}
}

func TestTryLead(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Minute

	t.Run("OK", func(t *testing.T) {
		clock := accountstest.NewClock(accountstest.Start)
		s := MustOpen(t, jobOptions(clock))
		if err := s.TryLead(ctx, "scheduler", "a", ttl); err != nil {
			t.Fatalf("TryLead of a free lease: %v", err)
		}
		holder, until, err := s.LeaseHolder(ctx, "scheduler")
		if err != nil || holder != "a" || !until.Equal(clock.Now().Add(ttl)) {
			t.Fatalf("LeaseHolder=%q, %v, %v; want a until %v", holder, until, err, clock.Now().Add(ttl))
		}
		clock.Add(30 * time.Second)
		if err := s.TryLead(ctx, "scheduler", "a", ttl); err != nil {
			t.Fatalf("renewing one's own lease: %v", err)
		}
		if _, until, _ := s.LeaseHolder(ctx, "scheduler"); !until.Equal(clock.Now().Add(ttl)) {
			t.Fatalf("renewed lease ends %v, want %v", until, clock.Now().Add(ttl))
		}
		if err := s.TryLead(ctx, "other", "b", ttl); err != nil {
			t.Fatalf("another lease name is another lease: %v", err)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		clock := accountstest.NewClock(accountstest.Start)
		s := MustOpen(t, jobOptions(clock))
		if err := s.TryLead(ctx, "scheduler", "a", ttl); err != nil {
			t.Fatal(err)
		}
		clock.Add(ttl - time.Second)
		err := s.TryLead(ctx, "scheduler", "b", ttl)
		wantCode(t, err, bot.ECONFLICT)
		wantMessage(t, err, "scheduler", "held by a")
		if holder, _, _ := s.LeaseHolder(ctx, "scheduler"); holder != "a" {
			t.Fatalf("holder=%q after a refused take-over, want a", holder)
		}
	})

	t.Run("TakeOverExpired", func(t *testing.T) {
		clock := accountstest.NewClock(accountstest.Start)
		path := t.TempDir() + "/ledger.db"
		a := MustOpenPath(t, path, jobOptions(clock))
		b := MustOpenPath(t, path, jobOptions(clock))
		if err := a.TryLead(ctx, "scheduler", "a", ttl); err != nil {
			t.Fatal(err)
		}
		clock.Add(ttl) // a stopped renewing: its lease ends now
		if err := b.TryLead(ctx, "scheduler", "b", ttl); err != nil {
			t.Fatalf("taking over an expired lease: %v", err)
		}
		wantCode(t, a.TryLead(ctx, "scheduler", "a", ttl), bot.ECONFLICT)
	})

	t.Run("Resign", func(t *testing.T) {
		clock := accountstest.NewClock(accountstest.Start)
		s := MustOpen(t, jobOptions(clock))
		if err := s.TryLead(ctx, "scheduler", "a", ttl); err != nil {
			t.Fatal(err)
		}
		if err := s.ResignLead(ctx, "scheduler", "b"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.TryLead(ctx, "scheduler", "b", ttl), bot.ECONFLICT) // b cannot resign a's lease
		if err := s.ResignLead(ctx, "scheduler", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.ResignLead(ctx, "scheduler", "a"); err != nil {
			t.Fatalf("resigning twice: %v", err)
		}
		_, _, err := s.LeaseHolder(ctx, "scheduler")
		wantCode(t, err, bot.ENOTFOUND)
		if err := s.TryLead(ctx, "scheduler", "b", ttl); err != nil {
			t.Fatalf("taking a resigned lease at once: %v", err)
		}
	})

	t.Run("OneLeaderUnderConcurrency", func(t *testing.T) {
		clock := accountstest.NewClock(accountstest.Start)
		path := t.TempDir() + "/ledger.db"
		stores := []*accounts.Store{MustOpenPath(t, path, jobOptions(clock)), MustOpenPath(t, path, jobOptions(clock))}
		var mu sync.Mutex
		var leaders []string
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				holder := fmt.Sprintf("i%d", i)
				err := stores[i%2].TryLead(ctx, "scheduler", holder, ttl)
				if err == nil {
					mu.Lock()
					leaders = append(leaders, holder)
					mu.Unlock()
				} else if bot.ErrorCode(err) != bot.ECONFLICT {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(leaders) != 1 {
			t.Fatalf("leaders=%v, want exactly one", leaders)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		s := MustOpen(t, testOptions())
		wantCode(t, s.TryLead(ctx, "", "a", ttl), bot.EINVALID)
		wantCode(t, s.TryLead(ctx, "scheduler", "", ttl), bot.EINVALID)
		wantCode(t, s.TryLead(ctx, "scheduler", "a", 0), bot.EINVALID)
		wantCode(t, s.ResignLead(ctx, "scheduler", ""), bot.EINVALID)
	})
}
