package stack_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack"
)

// openOn opens a stack on database, answering from sim, as instance.
func openOn(t *testing.T, database, instance string, sim *openroutertest.Server, limit bot.RateLimit) *stack.Stack {
	t.Helper()
	cfg := config(t)
	cfg.Accounts.Database = database
	cfg.Accounts.Options.Instance = instance
	cfg.Router.BaseURL, cfg.Router.CatalogCache = sim.URL(), ""
	cfg.Engine.Limit = limit
	st, err := stack.Open(context.Background(), cfg, stack.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func balance(t *testing.T, st *stack.Stack, id bot.Identity) int64 {
	t.Helper()
	b, err := st.Store.Balance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b.Balance
}

// TestRedeliveryAfterRestart is issue 12's "redelivery after a restart":
// an event answered before a restart and redelivered after it (a Slack
// retry with the same event_id) gets no second upstream call and no
// second charge.
func TestRedeliveryAfterRestart(t *testing.T) {
	sim := openroutertest.MustStart(t, openroutertest.Options{})
	db := filepath.Join(t.TempDir(), "orchat.db")
	first := openOn(t, db, "web-1", sim, bot.RateLimit{})
	if got := ask(t, first, "slack:Ev0123", "hello"); !strings.Contains(got, "charged") {
		t.Fatalf("the first delivery was not answered:\n%s", got)
	}
	first.Drain(context.Background())
	calls, bal := sim.Requests(), balance(t, first, "console:ann")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	again := openOn(t, db, "web-1", sim, bot.RateLimit{})
	if got := ask(t, again, "slack:Ev0123", "hello"); got != "" {
		t.Fatalf("the redelivery after the restart was answered again:\n%s", got)
	}
	if got := sim.Requests(); got != calls {
		t.Errorf("upstream calls=%d after the redelivery, want still %d", got, calls)
	}
	if got := balance(t, again, "console:ann"); got != bal {
		t.Errorf("balance=%d after the redelivery, want still %d", got, bal)
	}
	if got := ask(t, again, "slack:Ev0124", "hello"); !strings.Contains(got, "charged") {
		t.Fatalf("a new event after the restart was not answered:\n%s", got)
	}
}

// TestSharedAcrossProcesses runs two stacks on one PostgreSQL ledger, as
// two orchat processes: an event redelivered to the other one is dropped
// there, and a user's rate limit is one bucket whichever process their
// messages reach.
func TestSharedAcrossProcesses(t *testing.T) {
	dsn := postgrestest.DSN(t)
	sim := openroutertest.MustStart(t, openroutertest.Options{})
	limit := bot.RateLimit{PerMinute: 1, Burst: 2}
	a := openOn(t, dsn, "web-1", sim, limit)
	b := openOn(t, dsn, "web-2", sim, limit)
	if !a.Shared() || !b.Shared() {
		t.Fatal("a PostgreSQL stack does not say it is shared")
	}

	t.Run("RedeliveryToAnotherProcess", func(t *testing.T) {
		if got := ask(t, a, "discord:message:1001", "hello"); !strings.Contains(got, "charged") {
			t.Fatalf("not answered:\n%s", got)
		}
		calls, bal := sim.Requests(), balance(t, a, "console:ann")
		if got := ask(t, b, "discord:message:1001", "hello"); got != "" {
			t.Fatalf("the other process answered the redelivery:\n%s", got)
		}
		if got := sim.Requests(); got != calls {
			t.Errorf("upstream calls=%d, want still %d", got, calls)
		}
		if got := balance(t, b, "console:ann"); got != bal {
			t.Errorf("balance=%d, want still %d", got, bal)
		}
	})

	t.Run("OneRateLimit", func(t *testing.T) {
		// The first subtest took one of ann's two; one more anywhere, then
		// both processes refuse.
		if got := ask(t, b, "discord:message:1002", "hello"); !strings.Contains(got, "charged") {
			t.Fatalf("the second request was refused:\n%s", got)
		}
		for i, st := range []*stack.Stack{a, b} {
			out := &messages{}
			ev := bot.Event{ID: "discord:message:" + strconv.Itoa(2001+i), Platform: bot.PlatformConsole, Identity: "console:ann", Community: "console", Channel: "test", Text: "hello", Direct: true}
			err := st.Engine.Handle(context.Background(), ev, out)
			if bot.ErrorCode(err) != bot.ERATELIMIT || !strings.Contains(out.text(), "faster than this bot allows") {
				t.Fatalf("a third request within the minute was not refused (%v):\n%s", err, out.text())
			}
		}
	})
	t.Run("VoteOnAnotherProcessesPanel", func(t *testing.T) {
		// a posts the compare; a vote reaching b counts, the same voter
		// again through a does not, another voter through a does.
		panel := &messages{}
		ev := bot.Event{ID: "discord:interaction:3001", Platform: bot.PlatformConsole, Identity: "console:bo", Community: "console", Channel: "test", Text: "/compare hello", Direct: true}
		if err := a.Engine.Handle(context.Background(), ev, panel); err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, m := range panel.last {
			if m.Compare != nil {
				id = m.Compare.ID
			}
		}
		if id == "" {
			t.Fatalf("no compare panel:\n%s", panel.text())
		}
		vote := func(st *stack.Stack, who bot.Identity, n int, choice string) (bot.Tally, error) {
			out := &messages{}
			ev := bot.Event{ID: "discord:interaction:" + strconv.Itoa(n), Platform: bot.PlatformConsole, Identity: who, Community: "console", Channel: "test", Text: "/vote " + id + " " + choice, Direct: true}
			err := st.Engine.Handle(context.Background(), ev, out)
			for _, m := range out.last {
				if m.Vote != nil {
					return m.Vote.Tally, err
				}
			}
			return nil, err
		}
		if tally, err := vote(b, "console:cy", 3002, "A"); err != nil || tally["A"] != 1 {
			t.Fatalf("the vote through the other process: tally %v, %v", tally, err)
		}
		if _, err := vote(a, "console:cy", 3003, "B"); bot.ErrorCode(err) != bot.ECONFLICT {
			t.Fatalf("a second vote by the same member through the first process: %v, want ECONFLICT", err)
		}
		if tally, err := vote(a, "console:di", 3004, "B"); err != nil || tally["A"] != 1 || tally["B"] != 1 {
			t.Fatalf("another member's vote: tally %v, %v; want one each", tally, err)
		}
	})
	for _, st := range []*stack.Stack{a, b} {
		st.Drain(context.Background())
	}
	if r, err := a.Store.Verify(context.Background()); err != nil || !r.OK() {
		t.Fatalf("verify: %v %v", r.Problems, err)
	}
}

// TestSameInstanceNameTwice: a second process started under the name of
// a live one (two replicas left with one accounts.instance) still starts,
// but frees none of the live one's holds: they may be answers in flight.
func TestSameInstanceNameTwice(t *testing.T) {
	dsn := postgrestest.DSN(t)
	sim := openroutertest.MustStart(t, openroutertest.Options{})
	live := openOn(t, dsn, "web-1", sim, bot.RateLimit{})
	ctx := context.Background()
	if _, _, err := live.Store.EnsureUser(ctx, "console:ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Store.Reserve(ctx, "console:ann", 500, "in-flight"); err != nil {
		t.Fatal(err)
	}
	twin := openOn(t, dsn, "web-1", sim, bot.RateLimit{})
	if n, tokens, err := twin.Store.OpenHolds(ctx); err != nil || n != 1 || tokens != 500 {
		t.Fatalf("open holds=%d (%d tokens, %v) after a second process named web-1 started, want the live one's hold kept", n, tokens, err)
	}
}
