package accountstest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// This file is the suite's half about several processes on one ledger:
// every test opens several stores on one database (each with its own
// connections, as separate processes have) and races them.

// stores returns f's store and n-1 more on its database, each a process
// of its own, sharing f's clock.
func (f *fixture) stores(n int, change ...func(*Config)) []Store {
	f.t.Helper()
	cfg := f.cfg
	for _, c := range change {
		c(&cfg)
	}
	out := []Store{f.Store}
	for len(out) < n {
		out = append(out, f.b.Reopen(f.t, f.Store, cfg))
	}
	return out
}

// race runs fn n times at once, the i-th call on stores[i%len(stores)],
// and returns the errors in call order.
func race(stores []Store, n int, fn func(i int, s Store) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i, stores[i%len(stores)])
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// codes counts the error codes of errs ("" for success) and fails on any
// code not in allowed.
func codes(t *testing.T, errs []error, allowed ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, err := range errs {
		code := bot.ErrorCode(err)
		if err == nil {
			code = ""
		}
		ok := code == ""
		for _, a := range allowed {
			ok = ok || code == a
		}
		if !ok {
			t.Fatalf("unexpected error: %v", err)
		}
		out[code]++
	}
	return out
}

func testAppendOnly(t *testing.T, b Backend) {
	t.Run("UpdateAndDeleteRefused", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.topUp(alice, 500, "topup-1")
		for _, q := range []string{
			`UPDATE entries SET amount = 1`,
			`UPDATE entries SET note = 'edited' WHERE kind = 'topup'`,
			`DELETE FROM entries`,
			`DELETE FROM entries WHERE kind = 'signup'`,
		} {
			if err := b.Exec(t, f.Store, q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("%s: %v, want an append-only refusal", q, err)
			}
		}
		f.wantBalance(alice, 15_500, 0)
		if hist, err := f.History(f.ctx, alice, 10); err != nil || len(hist) != 2 || hist[0].Note != "test" {
			t.Fatalf("history after refused edits=%+v, %v", hist, err)
		}
		f.verify()
	})

	t.Run("IdempotencyKeysUnique", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.topUp(alice, 500, "topup-1")
		err := b.Exec(t, f.Store, `INSERT INTO entries (identity, kind, amount, key, actor, created_at)
			VALUES ('console:alice', 'topup', 500, 'topup-1', 'system', 0)`)
		if err == nil {
			t.Fatal("a second row with the key topup-1 was accepted")
		}
		if err := b.Exec(t, f.Store, `INSERT INTO holds (identity, amount, key, created_at, expires_at)
			VALUES ('console:alice', 1, 'h', 0, 0)`); err != nil {
			t.Fatalf("first hold with key h: %v", err)
		}
		if err := b.Exec(t, f.Store, `INSERT INTO holds (identity, amount, key, created_at, expires_at)
			VALUES ('console:alice', 1, 'h', 0, 0)`); err == nil {
			t.Fatal("a second hold with the key h was accepted")
		}
	})
}

func testAcrossStores(t *testing.T, b Backend) {
	const n = 48

	t.Run("SignupOnce", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		var mu sync.Mutex
		created := 0
		errs := race(ss, n, func(i int, s Store) error {
			_, c, err := s.EnsureUser(f.ctx, alice)
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
			return err
		})
		codes(t, errs)
		if created != 1 {
			t.Fatalf("created=true %d times across 3 stores, want 1", created)
		}
		f.wantBalance(alice, 15_000, 0)
		if hist, err := ss[2].History(f.ctx, alice, 100); err != nil || len(hist) != 1 {
			t.Fatalf("history=%d rows (err %v), want 1 signup row", len(hist), err)
		}
		f.verify()
	})

	t.Run("ReservesNeverExceedBalance", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		errs := race(ss, n, func(i int, s Store) error {
			_, err := s.Reserve(f.ctx, alice, 1000, fmt.Sprintf("event-%d", i))
			return err
		})
		if got := codes(t, errs, bot.EINSUFFICIENT); got[""] != 15 || got[bot.EINSUFFICIENT] != n-15 {
			t.Fatalf("outcomes %v, want 15 holds and %d refusals", got, n-15)
		}
		f.wantBalance(alice, 15_000, 15_000)
		f.verify()
	})

	t.Run("ReserveSettleNeverOverspends", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		var mu sync.Mutex
		var charged int64
		errs := race(ss, n, func(i int, s Store) error {
			for j := range 4 {
				h, err := s.Reserve(f.ctx, alice, 400, "")
				if bot.ErrorCode(err) == bot.EINSUFFICIENT {
					continue
				} else if err != nil {
					return err
				}
				e, err := s.Settle(f.ctx, h.ID, bot.Charge{Amount: int64(100 + (i*7+j)%301), Model: "m", GenerationID: fmt.Sprintf("gen-%d-%d", i, j)})
				if err != nil {
					return err
				}
				mu.Lock()
				charged -= e.Amount
				mu.Unlock()
			}
			return nil
		})
		codes(t, errs)
		if charged > 15_000 {
			t.Fatalf("charged %d on a balance of 15,000", charged)
		}
		f.wantBalance(alice, 15_000-charged, 0)
		f.wantOpenHolds(0, 0)
		f.verify()
	})

	t.Run("SettleSameHoldOnce", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		h := f.reserve(alice, 1000, "event-1")
		entries := make([]bot.Entry, n)
		errs := race(ss, n, func(i int, s Store) error {
			var err error
			entries[i], err = s.Settle(f.ctx, h.ID, bot.Charge{Amount: 300, Model: "m", GenerationID: "gen-1"})
			return err
		})
		codes(t, errs)
		for i, e := range entries {
			if e != entries[0] || e.Amount != -300 {
				t.Fatalf("settle %d answered %+v, want the one charge %+v", i, e, entries[0])
			}
		}
		f.wantBalance(alice, 14_700, 0)
		f.wantOpenHolds(0, 0)
		if hist, _ := f.History(f.ctx, alice, 10); len(hist) != 2 {
			t.Fatalf("history has %d rows, want the signup and one charge", len(hist))
		}
		f.verify()
	})

	t.Run("GenerationChargedOnceAcrossHolds", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		holds := make([]bot.Hold, 6)
		for i := range holds {
			holds[i] = f.reserve(alice, 1000, fmt.Sprintf("try-%d", i))
		}
		entries := make([]bot.Entry, len(holds))
		errs := race(ss, len(holds), func(i int, s Store) error {
			var err error
			entries[i], err = s.Settle(f.ctx, holds[i].ID, bot.Charge{Amount: 700, Model: "m", GenerationID: "gen-1"})
			return err
		})
		codes(t, errs)
		for i, e := range entries {
			if e.ID != entries[0].ID || e.Amount != -700 {
				t.Fatalf("settle of hold %d answered %+v, want the one charge %+v", i, e, entries[0])
			}
		}
		f.wantBalance(alice, 14_300, 0)
		f.wantOpenHolds(0, 0)
		f.verify()
	})

	t.Run("TopUpKeyAppliedOnce", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		var mu sync.Mutex
		applied := 0
		entries := make([]bot.Entry, 12)
		errs := race(ss, len(entries), func(i int, s Store) error {
			e, ok, err := s.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 500, Key: "interaction-1", Actor: admin})
			entries[i] = e
			if ok {
				mu.Lock()
				applied++
				mu.Unlock()
			}
			return err
		})
		codes(t, errs)
		if applied != 1 {
			t.Fatalf("applied=true %d times, want 1", applied)
		}
		for i, e := range entries {
			if e != entries[0] {
				t.Fatalf("top-up %d answered %+v, want %+v", i, e, entries[0])
			}
		}
		f.wantBalance(alice, 15_500, 0)
		f.verify()
	})

	t.Run("DeductsNeverBelowZero", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		errs := race(ss, 12, func(i int, s Store) error {
			_, _, err := s.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 2000, Key: fmt.Sprintf("deduct-%d", i), Actor: admin})
			return err
		})
		if got := codes(t, errs, bot.EINSUFFICIENT); got[""] != 7 {
			t.Fatalf("outcomes %v, want 7 deductions of 2,000 from 15,000", got)
		}
		f.wantBalance(alice, 1000, 0)
		f.verify()
	})

	t.Run("FreeTierOncePerRequest", func(t *testing.T) {
		f := open(t, b, func(c *Config) { c.FreePerDay = 5 })
		f.ensure(alice)
		ss := f.stores(3)
		errs := race(ss, 30, func(i int, s Store) error {
			_, err := s.UseFree(f.ctx, alice, f.clock.Now())
			return err
		})
		if got := codes(t, errs, bot.ERATELIMIT); got[""] != 5 {
			t.Fatalf("outcomes %v, want 5 free requests", got)
		}
		if fu, err := ss[1].FreeStatus(f.ctx, alice, f.clock.Now()); err != nil || fu.Used != 5 {
			t.Fatalf("FreeStatus=%+v, %v; want 5 used", fu, err)
		}
	})

	t.Run("OneVotePerVoter", func(t *testing.T) {
		f := open(t, b)
		if err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{"a/x", "b/y"}}); err != nil {
			t.Fatal(err)
		}
		ss := f.stores(3)
		errs := race(ss, 12, func(i int, s Store) error {
			_, err := s.Vote(f.ctx, "c1", bob, []string{"A", "B"}[i%2])
			return err
		})
		if got := codes(t, errs, bot.ECONFLICT); got[""] != 1 {
			t.Fatalf("outcomes %v, want exactly one vote", got)
		}
		tally, err := f.Vote(f.ctx, "c1", carol, "tie")
		if err != nil || tally["A"]+tally["B"] != 1 || tally["tie"] != 1 {
			t.Fatalf("tally=%v, %v; want bob's one vote and carol's tie", tally, err)
		}
	})

	t.Run("OneAnswerVotePerMember", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		vote := func(voter bot.Identity, answer, model string, up bool) bot.AnswerVote {
			return bot.AnswerVote{Answer: answer, Voter: voter, Community: "slack:T1", Model: model, Up: up}
		}
		errs := race(ss, 12, func(i int, s Store) error {
			return s.RecordFeedback(f.ctx, vote(bob, "slack:C1:1.000100", "a/x", i%2 == 0))
		})
		if got := codes(t, errs, bot.ECONFLICT); got[""] != 1 {
			t.Fatalf("outcomes %v, want exactly one vote", got)
		}
		for _, v := range []bot.AnswerVote{
			vote(carol, "slack:C1:1.000100", "a/x", false),
			vote(bob, "slack:C1:2.000100", "b/y", true),
			{Answer: "discord:9:1", Voter: carol, Community: "discord:9", Model: "a/x", Up: true},
		} {
			if err := f.RecordFeedback(f.ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		here, err := f.FeedbackCounts(f.ctx, "slack:T1")
		if err != nil {
			t.Fatal(err)
		}
		if len(here) != 2 || here[0].Model != "a/x" || here[0].Up+here[0].Down != 2 || here[0].Down < 1 || here[1] != (bot.ModelFeedback{Model: "b/y", Up: 1}) {
			t.Fatalf("feedback here=%+v, want a/x 2 votes (bob's one and carol's down) and b/y one up", here)
		}
		all, err := f.FeedbackCounts(f.ctx, "")
		if err != nil || len(all) != 2 || all[0].Up+all[0].Down != 3 {
			t.Fatalf("feedback everywhere=%+v, %v; want a/x's 3 votes counted", all, err)
		}
		if err := f.RecordFeedback(f.ctx, bot.AnswerVote{Answer: "x", Voter: bob, Community: "slack:T1"}); bot.ErrorCode(err) != bot.EINVALID {
			t.Fatalf("a vote without its model: %v, want EINVALID", err)
		}
	})

	t.Run("SweeperRacesSettles", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		ss := f.stores(3)
		holds := make([]bot.Hold, 20)
		for i := range holds {
			holds[i] = f.reserve(alice, 100, "")
		}
		at := f.clock.Now().Add(time.Hour)
		errs := race(ss, len(holds)+3, func(i int, s Store) error {
			if i >= len(holds) {
				_, err := s.ReleaseExpired(f.ctx, at)
				return err
			}
			_, err := s.Settle(f.ctx, holds[i].ID, bot.Charge{Amount: 60, Model: "m"})
			return err
		})
		// A settle that lost its hold to the sweeper is refused, and
		// charges nothing.
		got := codes(t, errs, bot.ECONFLICT)
		if got[""]+got[bot.ECONFLICT] != len(holds)+3 {
			t.Fatalf("outcomes %v", got)
		}
		f.wantOpenHolds(0, 0)
		rep := f.verify()
		if rep.Holds != 0 {
			t.Fatalf("verify counts %d open holds, want 0", rep.Holds)
		}
		bal := f.balance(alice)
		if bal.Held != 0 || 15_000-bal.Balance != int64(60*(got[""]-3)) {
			t.Fatalf("balance=%+v after %d settles: every hold is either charged 60 or released", bal, got[""]-3)
		}
	})

	t.Run("ResetOncePerPeriod", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		var mu sync.Mutex
		firsts := 0
		errs := race(ss, 24, func(i int, s Store) error {
			first, err := s.RecordReset(f.ctx, "2026-11-21", f.clock.Now())
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
			return err
		})
		codes(t, errs)
		if firsts != 1 {
			t.Fatalf("%d stores recorded the reset, want exactly 1", firsts)
		}
	})
}

func testSeenEvent(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		seen := func(s Store, id string, want bool) {
			t.Helper()
			got, err := s.SeenEvent(f.ctx, id, f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("SeenEvent(%s)=%v, want %v", id, got, want)
			}
		}
		seen(f.Store, "slack:event:Ev1", true)
		seen(f.Store, "slack:event:Ev1", false)
		seen(f.Store, "discord:message:1", true)
		f.clock.Add(59 * time.Minute)
		// A restart: the new process still knows what the last one saw.
		restarted := f.b.Reopen(t, f.Store, f.cfg)
		seen(restarted, "slack:event:Ev1", false)
		f.clock.Add(2 * time.Minute)
		seen(restarted, "slack:event:Ev1", true) // an hour is the window
		seen(restarted, "slack:event:Ev1", false)
	})

	t.Run("OnceAcrossStores", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		for round := range 5 {
			var mu sync.Mutex
			first := 0
			id := fmt.Sprintf("discord:interaction:%d", round)
			errs := race(ss, 24, func(i int, s Store) error {
				ok, err := s.SeenEvent(f.ctx, id, f.clock.Now())
				if ok {
					mu.Lock()
					first++
					mu.Unlock()
				}
				return err
			})
			codes(t, errs)
			if first != 1 {
				t.Fatalf("%s was new %d times across 3 stores, want 1", id, first)
			}
		}
	})

	t.Run("Prune", func(t *testing.T) {
		f := open(t, b)
		for i := range 5 {
			if _, err := f.SeenEvent(f.ctx, fmt.Sprintf("e%d", i), f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		f.clock.Add(30 * time.Minute)
		if _, err := f.SeenEvent(f.ctx, "young", f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(31 * time.Minute)
		events, _, err := f.Prune(f.ctx, f.clock.Now())
		if err != nil || events != 5 {
			t.Fatalf("Prune=%d, %v; want the 5 events older than an hour", events, err)
		}
		if ok, err := f.SeenEvent(f.ctx, "young", f.clock.Now()); err != nil || ok {
			t.Fatalf("SeenEvent(young) after pruning=%v, %v; want still seen", ok, err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		f := open(t, b)
		for _, id := range []string{"", strings.Repeat("x", 201)} {
			_, err := f.SeenEvent(f.ctx, id, f.clock.Now())
			wantCode(t, err, bot.EINVALID)
		}
	})
}

func testTakeToken(t *testing.T, b Backend) {
	limit := bot.RateLimit{PerMinute: 6, Burst: 3} // a token every 10 s

	t.Run("BurstThenWait", func(t *testing.T) {
		f := open(t, b)
		take := func(key string) (time.Duration, bool) {
			t.Helper()
			wait, ok, err := f.TakeToken(f.ctx, key, limit, f.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return wait, ok
		}
		for i := range 3 {
			if _, ok := take(string(alice)); !ok {
				t.Fatalf("request %d of a burst of 3 refused", i+1)
			}
		}
		if wait, ok := take(string(alice)); ok || wait != 10*time.Second {
			t.Fatalf("4th request: ok=%v wait=%s, want refused for 10s", ok, wait)
		}
		if _, ok := take(string(bob)); !ok {
			t.Fatal("bob is limited by alice's bucket")
		}
		f.clock.Add(4 * time.Second)
		if wait, ok := take(string(alice)); ok || wait != 6*time.Second {
			t.Fatalf("4 s later: ok=%v wait=%s, want refused for 6s", ok, wait)
		}
		f.clock.Add(6 * time.Second)
		if _, ok := take(string(alice)); !ok {
			t.Fatal("a token did not come back after 10 s")
		}
		if _, ok := take(string(alice)); ok {
			t.Fatal("two tokens came back after 10 s")
		}
		f.clock.Add(time.Hour)
		for i := range 3 {
			if _, ok := take(string(alice)); !ok {
				t.Fatalf("after an hour, request %d of a full burst refused", i+1)
			}
		}
	})

	t.Run("OnceAcrossStores", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		var mu sync.Mutex
		allowed := 0
		errs := race(ss, 30, func(i int, s Store) error {
			_, ok, err := s.TakeToken(f.ctx, string(alice), bot.RateLimit{PerMinute: 1, Burst: 5}, f.clock.Now())
			if ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
			return err
		})
		codes(t, errs)
		if allowed != 5 {
			t.Fatalf("%d of 30 racing requests allowed by a burst of 5", allowed)
		}
	})

	t.Run("Unlimited", func(t *testing.T) {
		f := open(t, b)
		for range 20 {
			if _, ok, err := f.TakeToken(f.ctx, string(alice), bot.RateLimit{}, f.clock.Now()); err != nil || !ok {
				t.Fatalf("a zero limit refused: ok=%v err=%v", ok, err)
			}
		}
	})

	t.Run("PruneFullBuckets", func(t *testing.T) {
		f := open(t, b)
		for _, id := range []bot.Identity{alice, bob, carol} {
			if _, _, err := f.TakeToken(f.ctx, string(id), limit, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		_, buckets, err := f.Prune(f.ctx, f.clock.Now().Add(5*time.Second))
		if err != nil || buckets != 0 {
			t.Fatalf("Prune while buckets refill=%d, %v; want 0", buckets, err)
		}
		_, buckets, err = f.Prune(f.ctx, f.clock.Now().Add(10*time.Second))
		if err != nil || buckets != 3 {
			t.Fatalf("Prune of full buckets=%d, %v; want 3", buckets, err)
		}
		for i := range 3 {
			if _, ok, err := f.TakeToken(f.ctx, string(alice), limit, f.clock.Now().Add(10*time.Second)); err != nil || !ok {
				t.Fatalf("request %d after the bucket was pruned: ok=%v err=%v, want a full burst", i+1, ok, err)
			}
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		f := open(t, b)
		_, _, err := f.TakeToken(f.ctx, "", limit, f.clock.Now())
		wantCode(t, err, bot.EINVALID)
	})
}

func testHoldOwners(t *testing.T, b Backend) {
	as := func(instance, boot string) func(*Config) {
		return func(c *Config) { c.Instance, c.Boot = instance, boot }
	}

	t.Run("PreviousBootReleasedAtStart", func(t *testing.T) {
		f := open(t, b, as("web-1", "boot-1"))
		f.ensure(alice)
		f.ensure(bob)
		h1 := f.reserve(alice, 1000, "event-1")
		f.reserve(alice, 2000, "event-2")
		other := f.stores(2, as("web-2", "boot-1"))[1]
		if _, err := other.Reserve(f.ctx, bob, 500, "event-3"); err != nil {
			t.Fatal(err)
		}
		// web-1 crashes and starts again.
		next := f.stores(2, as("web-1", "boot-2"))[1]
		mine, err := next.Reserve(f.ctx, alice, 300, "event-4")
		if err != nil {
			t.Fatal(err)
		}
		holds, tokens, err := next.ReleasePreviousBoots(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if holds != 2 || tokens != 3000 {
			t.Fatalf("ReleasePreviousBoots=%d holds, %d tokens; want web-1 boot-1's 2 holds of 3,000", holds, tokens)
		}
		f.wantBalance(alice, 15_000, 300) // the new boot's own hold stays
		f.wantBalance(bob, 15_000, 500)   // another instance's hold stays
		f.wantOpenHolds(2, 800)
		_, err = f.Settle(f.ctx, h1.ID, bot.Charge{Amount: 10, Model: "m"})
		wantCode(t, err, bot.ECONFLICT)
		if _, err := next.Settle(f.ctx, mine.ID, bot.Charge{Amount: 100, Model: "m"}); err != nil {
			t.Fatal(err)
		}
		if holds, _, err := next.ReleasePreviousBoots(f.ctx); err != nil || holds != 0 {
			t.Fatalf("second ReleasePreviousBoots=%d, %v; want 0", holds, err)
		}
		f.verify()
	})

	t.Run("ErrSameInstanceAlive", func(t *testing.T) {
		f := open(t, b, as("web-1", "boot-1"))
		f.ensure(alice)
		if _, _, err := f.ReleasePreviousBoots(f.ctx); err != nil {
			t.Fatal(err)
		}
		h := f.reserve(alice, 1000, "")
		twin := f.stores(2, as("web-1", "boot-2"))[1]
		_, _, err := twin.ReleasePreviousBoots(f.ctx)
		wantCode(t, err, bot.ECONFLICT)
		wantMessage(t, err, "web-1", "instance")
		f.wantBalance(alice, 15_000, 1000) // the live boot's hold stays
		// Once the first process is gone, its holds are the twin's to free.
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		holds, _, err := twin.ReleasePreviousBoots(f.ctx)
		if err != nil || holds != 1 {
			t.Fatalf("after the first process ended: ReleasePreviousBoots=%d, %v; want its 1 hold", holds, err)
		}
		if _, err := twin.Settle(f.ctx, h.ID, bot.Charge{Amount: 1, Model: "m"}); bot.ErrorCode(err) != bot.ECONFLICT {
			t.Fatalf("settling a released hold: %v, want ECONFLICT", err)
		}
	})
}

func testLeader(t *testing.T, b Backend) {
	const ttl = time.Minute

	t.Run("OneLeaderAcrossStores", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		var mu sync.Mutex
		var leaders []string
		errs := race(ss, 9, func(i int, s Store) error {
			holder := fmt.Sprintf("i%d", i%3)
			err := s.TryLead(f.ctx, "scheduler", holder, ttl)
			if err == nil {
				mu.Lock()
				leaders = append(leaders, holder)
				mu.Unlock()
			}
			return err
		})
		codes(t, errs, bot.ECONFLICT)
		for _, l := range leaders {
			if l != leaders[0] {
				t.Fatalf("leaders=%v, want one", leaders)
			}
		}
		if len(leaders) == 0 {
			t.Fatal("nobody leads")
		}
	})

	t.Run("RenewResignTakeOver", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(2)
		a, other := ss[0], ss[1]
		if err := a.TryLead(f.ctx, "scheduler", "a", ttl); err != nil {
			t.Fatal(err)
		}
		err := other.TryLead(f.ctx, "scheduler", "b", ttl)
		wantCode(t, err, bot.ECONFLICT)
		wantMessage(t, err, "scheduler", "held by a")
		f.clock.Add(ttl / 2)
		if err := a.TryLead(f.ctx, "scheduler", "a", ttl); err != nil {
			t.Fatalf("renewing: %v", err)
		}
		if err := a.ResignLead(f.ctx, "scheduler", "a"); err != nil {
			t.Fatal(err)
		}
		if err := other.TryLead(f.ctx, "scheduler", "b", ttl); err != nil {
			t.Fatalf("taking a resigned lease at once: %v", err)
		}
		wantCode(t, a.TryLead(f.ctx, "scheduler", "a", ttl), bot.ECONFLICT)
	})

	// A leader that dies (its process, and so its sessions, end) is
	// replaced: at once where the lease is a session's lock, after the
	// lease expires where it is a row.
	t.Run("LeaderDies", func(t *testing.T) {
		f := open(t, b)
		ss := f.stores(3)
		if err := ss[1].TryLead(f.ctx, "scheduler", "b", ttl); err != nil {
			t.Fatal(err)
		}
		wantCode(t, ss[2].TryLead(f.ctx, "scheduler", "c", ttl), bot.ECONFLICT)
		if err := ss[1].Close(); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(ttl)
		if err := ss[2].TryLead(f.ctx, "scheduler", "c", ttl); err != nil {
			t.Fatalf("taking over from a dead leader: %v", err)
		}
		wantCode(t, ss[0].TryLead(f.ctx, "scheduler", "a", ttl), bot.ECONFLICT)
	})
}
