package scheduler_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/scheduler"
)

// date returns the local date days after t's, written as a period.
func date(t time.Time, days int) string {
	y, m, d := t.Date()
	return time.Date(y, m, d+days, 12, 0, 0, 0, t.Location()).Format("2006-01-02")
}

// wantOneResetEach checks that each period was reset exactly once, by the
// ledger's record and by the calls that recorded it.
func wantOneResetEach(t *testing.T, store *accounts.Store, rs *resets, periods []string) {
	t.Helper()
	for _, p := range periods {
		var firsts int
		for _, c := range rs.of(p) {
			if c.first {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("period %s: %d calls recorded a reset (%v), want exactly 1", p, firsts, rs.of(p))
		}
	}
	got, err := store.FreeResets(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, r := range got {
		recorded = append(recorded, r.Period)
	}
	want := slices.Clone(periods)
	slices.Sort(want)
	slices.Reverse(want)
	if !slices.Equal(recorded, want) {
		t.Errorf("recorded resets %v, want %v", recorded, want)
	}
}

func TestFreeReset(t *testing.T) {
	ctx := context.Background()

	// At local midnight in Europe/Berlin, across both daylight-saving
	// changes: one reset per period, each at the period's end, although
	// the day of the change is 23 or 25 hours long.
	t.Run("MidnightAcrossDST", func(t *testing.T) {
		loc := berlin(t)
		for _, tc := range []struct {
			name   string
			start  time.Time
			change time.Time // the midnight after the day clocks change
			length time.Duration
		}{
			{"Spring", time.Date(2026, 3, 27, 12, 0, 0, 0, loc), time.Date(2026, 3, 30, 0, 0, 0, 0, loc), 23 * time.Hour},
			{"Autumn", time.Date(2026, 10, 23, 12, 0, 0, 0, loc), time.Date(2026, 10, 26, 0, 0, 0, 0, loc), 25 * time.Hour},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clock := clockwork.NewFakeClockAt(tc.start)
				store := MustOpenTempStore(t, storeOptions(clock, loc))
				rs := &resets{Resets: store}
				m := &metrics{}
				s := MustStart(t, scheduler.Options{Location: loc, Clock: clock, Resets: rs, Metrics: m})

				// Start catches up on yesterday, whose reset never ran.
				periods := []string{date(tc.start, -1)}
				waitRuns(t, m, scheduler.JobFreeReset, 1)

				var prev time.Time
				for i := 1; i <= 5; i++ {
					midnight := time.Date(tc.start.Year(), tc.start.Month(), tc.start.Day()+i, 0, 0, 0, 0, loc)
					period := date(midnight, -1)
					advanceTo(t, clock, 1, midnight)
					waitRuns(t, m, scheduler.JobFreeReset, 1+i)
					c := rs.of(period)[0]
					if !ranAt(c.at, midnight) || !c.first {
						t.Fatalf("reset of %s ran at %v (first=%t), want at %v", period, c.at, c.first, midnight)
					}
					if midnight.Equal(tc.change) {
						if got := c.at.Sub(prev); got != tc.length {
							t.Fatalf("the day of the change lasted %v between resets, want %v", got, tc.length)
						}
					}
					prev = c.at
					periods = append(periods, period)
				}
				shutdown(t, s)
				wantOneResetEach(t, store, rs, periods)
			})
		}
	})

	// A reset time in the hour skipped in spring (02:30 on 29 March 2026
	// in Berlin does not exist) still runs that day, at the shifted time.
	t.Run("SkippedHour", func(t *testing.T) {
		loc := berlin(t)
		start := time.Date(2026, 3, 28, 12, 0, 0, 0, loc)
		clock := clockwork.NewFakeClockAt(start)
		store := MustOpenTempStore(t, storeOptions(clock, loc))
		rs := &resets{Resets: store}
		m := &metrics{}
		s := MustStart(t, scheduler.Options{Location: loc, Clock: clock, Resets: rs, DailyReset: "02:30", Metrics: m})
		waitRuns(t, m, scheduler.JobFreeReset, 1)

		waitTimers(t, clock, 1)
		shifted := time.Date(2026, 3, 29, 3, 30, 0, 0, loc)
		if next, err := s.NextRun(scheduler.JobFreeReset); err != nil || !next.Equal(shifted) {
			t.Fatalf("next reset at %v (%v), want %v: 02:30 is skipped, so 03:30 the same day", next, err, shifted)
		}
		advanceTo(t, clock, 1, shifted)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		if c := rs.of("2026-03-28")[0]; !ranAt(c.at, shifted) {
			t.Fatalf("reset of 2026-03-28 ran at %v, want %v", c.at, shifted)
		}

		next := time.Date(2026, 3, 30, 2, 30, 0, 0, loc)
		advanceTo(t, clock, 1, next)
		waitRuns(t, m, scheduler.JobFreeReset, 3)
		if c := rs.of("2026-03-29")[0]; !ranAt(c.at, next) {
			t.Fatalf("reset of 2026-03-29 ran at %v, want %v", c.at, next)
		}
		shutdown(t, s)
		wantOneResetEach(t, store, rs, []string{"2026-03-27", "2026-03-28", "2026-03-29"})
	})

	// A reset time that a clock change skips, where Go normalizes it back
	// to the hour before: 02:30 on 8 March 2026 in New York, and midnight
	// itself on 6 September 2026 in Santiago and 7 March 2026 in Havana
	// (the default 00:00, normalized to 23:00 the day before). Every
	// period is still reset, once, and the job keeps its schedule.
	t.Run("SkippedTimeWestOfUTC", func(t *testing.T) {
		for _, tc := range []struct {
			zone, at string
			start    time.Time // noon, two days before the change
		}{
			{"America/New_York", "02:30", time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)},
			{"America/Santiago", "00:00", time.Date(2026, 9, 4, 12, 0, 0, 0, time.UTC)},
			{"America/Havana", "00:00", time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)},
		} {
			t.Run(tc.zone, func(t *testing.T) {
				loc, err := time.LoadLocation(tc.zone)
				if err != nil {
					t.Skipf("no time zone data: %v", err)
				}
				start := time.Date(tc.start.Year(), tc.start.Month(), tc.start.Day(), 12, 0, 0, 0, loc)
				clock := clockwork.NewFakeClockAt(start)
				store := MustOpenTempStore(t, storeOptions(clock, loc))
				rs := &resets{Resets: store}
				m := &metrics{}
				s := MustStart(t, scheduler.Options{Location: loc, Clock: clock, Resets: rs, DailyReset: tc.at, Metrics: m})
				waitRuns(t, m, scheduler.JobFreeReset, 1)
				periods := []string{date(start, -1)}
				for i := 1; i <= 4; i++ {
					waitTimers(t, clock, 1)
					next, err := s.NextRun(scheduler.JobFreeReset)
					if err != nil || next.IsZero() {
						t.Fatalf("after %d runs the reset has no next run (%v, %v)", i, next, err)
					}
					advanceTo(t, clock, 1, next)
					waitRuns(t, m, scheduler.JobFreeReset, 1+i)
					periods = append(periods, date(start, i-1))
				}
				shutdown(t, s)
				wantOneResetEach(t, store, rs, periods)
			})
		}
	})

	// A reset time in the hour repeated in autumn (02:30 happens twice on
	// 25 October 2026 in Berlin) runs in both passes at most, here once
	// by gocron and once more as a second instance or a second firing
	// would: the period is reset, and its users notified, once.
	t.Run("RepeatedHour", func(t *testing.T) {
		loc := berlin(t)
		start := time.Date(2026, 10, 24, 12, 0, 0, 0, loc)
		clock := clockwork.NewFakeClockAt(start)
		o := storeOptions(clock, loc)
		o.FreePerDay = 1
		store := MustOpenTempStore(t, o)
		const alice bot.Identity = "console:alice"
		if _, _, err := store.EnsureUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := store.UseFree(ctx, alice, clock.Now()); err != nil {
			t.Fatal(err)
		}

		rs := &resets{Resets: store}
		n := &notices{}
		m := &metrics{}
		s := MustStart(t, scheduler.Options{Location: loc, Clock: clock, Resets: rs, DailyReset: "02:30",
			NotifyReset: true, Notifier: n.notifier(), Metrics: m})
		waitRuns(t, m, scheduler.JobFreeReset, 1)

		firstPass := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)  // 02:30 CEST
		secondPass := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC) // 02:30 CET
		for _, at := range []time.Time{firstPass, secondPass} {
			if l := at.In(loc); l.Hour() != 2 || l.Minute() != 30 {
				t.Fatalf("%v is %v in Berlin, want 02:30", at, l)
			}
		}
		// gocron runs the reset in one of the two passes; the other one is
		// run by hand.
		advanceTo(t, clock, 1, firstPass)
		advanceTo(t, clock, 1, secondPass)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		if err := s.RunNow(scheduler.JobFreeReset); err != nil {
			t.Fatal(err)
		}
		waitRuns(t, m, scheduler.JobFreeReset, 3)
		if got := len(rs.of("2026-10-24")); got != 2 {
			t.Fatalf("the reset of 2026-10-24 ran %d times, want 2 (both passes of 02:30)", got)
		}

		advanceTo(t, clock, 1, time.Date(2026, 10, 26, 2, 30, 0, 0, loc))
		waitRuns(t, m, scheduler.JobFreeReset, 4)
		shutdown(t, s)
		wantOneResetEach(t, store, rs, []string{"2026-10-23", "2026-10-24", "2026-10-25"})
		want := map[bot.Identity][]string{alice: {scheduler.ResetNotice(1)}}
		if got := n.get(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("notices=%v, want %v", got, want)
		}
	})

	// The process is down at midnight: users have their allowance in the
	// new day anyway (the counters are per period), and the next start
	// records the missed reset once and sends its notices once.
	t.Run("MissedReset", func(t *testing.T) {
		loc := berlin(t)
		clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 21, 10, 0, 0, 0, loc))
		o := storeOptions(clock, loc)
		o.FreePerDay = 2
		store := MustOpenTempStore(t, o)
		const alice, bob bot.Identity = "console:alice", "console:bob"
		for id, uses := range map[bot.Identity]int{alice: 2, bob: 1} {
			if _, _, err := store.EnsureUser(ctx, id); err != nil {
				t.Fatal(err)
			}
			for range uses {
				if _, err := store.UseFree(ctx, id, clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, err := store.UseFree(ctx, alice, clock.Now())
		wantCode(t, err, bot.ERATELIMIT)

		clock.Advance(23 * time.Hour) // 09:00 the next day; nothing ran at midnight
		if fu, err := store.FreeStatus(ctx, alice, clock.Now()); err != nil || fu.Remaining != 2 {
			t.Fatalf("alice's free use the next day=%+v, %v; want 2 remaining without any reset", fu, err)
		}

		rs := &resets{Resets: store}
		n := &notices{}
		m := &metrics{}
		opts := scheduler.Options{Location: loc, Clock: clock, Resets: rs, NotifyReset: true, Notifier: n.notifier(), Metrics: m}
		s := MustStart(t, opts)
		waitRuns(t, m, scheduler.JobFreeReset, 1)
		want := map[bot.Identity][]string{alice: {scheduler.ResetNotice(2)}}
		if got := n.get(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("notices=%v, want %v", got, want)
		}
		if fu, err := store.UseFree(ctx, alice, clock.Now()); err != nil || fu.Used != 1 {
			t.Fatalf("UseFree the next day=%+v, %v; want the first of a new allowance", fu, err)
		}
		shutdown(t, s)

		// A restart later that day finds the reset recorded: nothing again.
		clock.Advance(time.Hour)
		rs2 := &resets{Resets: store}
		opts.Resets = rs2
		s2 := MustStart(t, opts)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		shutdown(t, s2)
		if c := rs2.of("2026-11-21"); len(c) != 1 || c[0].first {
			t.Fatalf("second start's reset calls=%v, want one that found the reset recorded", c)
		}
		got, err := store.FreeResets(ctx, 0)
		if err != nil || len(got) != 1 || got[0].Period != "2026-11-21" || !got[0].RanAt.Equal(time.Date(2026, 11, 22, 9, 0, 0, 0, loc)) {
			t.Fatalf("FreeResets=%v, %v; want 2026-11-21 reset once, at the start at 09:00", got, err)
		}
		if n.total() != 1 {
			t.Fatalf("notices=%v, want only the first start's", n.get())
		}
	})
}

func TestResetNotices(t *testing.T) {
	ctx := context.Background()
	const (
		spent     bot.Identity = "console:spent"     // used 2 of 2
		some      bot.Identity = "console:some"      // used 1 of 2
		paid      bot.Identity = "console:paid"      // topped up: used 2 of 3
		paidSpent bot.Identity = "console:paidspent" // topped up: used 3 of 3
		blocked   bot.Identity = "console:blocked"   // used 2 of 2, then blocked
		idle      bot.Identity = "console:idle"      // used none
	)
	// setup opens a ledger where the users above used the free tier on 22
	// November, the day the clock starts.
	setup := func(t *testing.T) (*clockwork.FakeClock, *accounts.Store) {
		clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
		o := storeOptions(clock, time.UTC)
		o.FreePerDay, o.FreePerDayToppedUp = 2, 3
		store := MustOpenTempStore(t, o)
		for _, id := range []bot.Identity{paid, paidSpent} {
			if _, _, err := store.TopUp(ctx, bot.Adjustment{Identity: id, Amount: 1000, Key: "topup:" + string(id), Actor: "console:admin"}); err != nil {
				t.Fatal(err)
			}
		}
		for id, uses := range map[bot.Identity]int{spent: 2, some: 1, paid: 2, paidSpent: 3, blocked: 2, idle: 0} {
			if _, _, err := store.EnsureUser(ctx, id); err != nil {
				t.Fatal(err)
			}
			for range uses {
				if _, err := store.UseFree(ctx, id, clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := store.SetBlocked(ctx, blocked, true, "console:admin"); err != nil {
			t.Fatal(err)
		}
		return clock, store
	}
	midnight := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

	t.Run("OnceToWhoHitTheLimit", func(t *testing.T) {
		clock, store := setup(t)
		n := &notices{}
		m := &metrics{}
		s := MustStart(t, scheduler.Options{Clock: clock, Resets: store, NotifyReset: true, Notifier: n.notifier(), Metrics: m})
		waitRuns(t, m, scheduler.JobFreeReset, 1)
		if n.total() != 0 {
			t.Fatalf("the catch-up of a day without use sent %v", n.get())
		}

		advanceTo(t, clock, 1, midnight)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		want := map[bot.Identity][]string{
			spent:     {"Your free-model requests are back: 2 for today."},
			paidSpent: {"Your free-model requests are back: 3 for today."},
		}
		if got := n.get(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("notices=%v, want %v", got, want)
		}

		// Running it again (a restart, another instance) notifies nobody.
		if err := s.RunNow(scheduler.JobFreeReset); err != nil {
			t.Fatal(err)
		}
		waitRuns(t, m, scheduler.JobFreeReset, 3)
		if got := n.get(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("notices after a second run=%v, want %v", got, want)
		}
		for _, r := range m.of(scheduler.JobFreeReset) {
			if r.err != nil {
				t.Fatalf("JobRun reported %v", r.err)
			}
		}
	})

	t.Run("WithoutNotifyReset", func(t *testing.T) {
		clock, store := setup(t)
		n := &notices{}
		m := &metrics{}
		MustStart(t, scheduler.Options{Clock: clock, Resets: store, Notifier: n.notifier(), Metrics: m})
		waitRuns(t, m, scheduler.JobFreeReset, 1)
		advanceTo(t, clock, 1, midnight)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		if n.total() != 0 {
			t.Fatalf("notify_reset off sent %v", n.get())
		}
		if got, _ := store.FreeResets(ctx, 1); len(got) != 1 || got[0].Period != "2026-11-22" {
			t.Fatalf("FreeResets=%v, want 2026-11-22 recorded", got)
		}
	})

	// A notice that fails is reported and not retried; the others go out.
	t.Run("NotifierFails", func(t *testing.T) {
		clock, store := setup(t)
		n := &notices{}
		ok := n.notifier()
		m := &metrics{}
		failing := &notifier{NotifyFunc: func(ctx context.Context, id bot.Identity, text string) error {
			if id == spent {
				return errBoom
			}
			return ok.Notify(ctx, id, text)
		}}
		s := MustStart(t, scheduler.Options{Clock: clock, Resets: store, NotifyReset: true, Notifier: failing, Metrics: m})
		waitRuns(t, m, scheduler.JobFreeReset, 1)
		advanceTo(t, clock, 1, midnight)
		waitRuns(t, m, scheduler.JobFreeReset, 2)
		if runs := m.of(scheduler.JobFreeReset); runs[1].err == nil {
			t.Fatal("JobRun reported no error for a failed notice")
		}
		if err := s.RunNow(scheduler.JobFreeReset); err != nil {
			t.Fatal(err)
		}
		waitRuns(t, m, scheduler.JobFreeReset, 3)
		want := map[bot.Identity][]string{paidSpent: {scheduler.ResetNotice(3)}}
		if got := n.get(); !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("notices=%v, want %v", got, want)
		}
	})
}
