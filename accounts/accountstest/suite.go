// Package accountstest is the conformance suite of orchat's ledger: the
// behaviour DESIGN.md's "Ledger semantics" asks of every store, written
// once and run against each backend (SQLite and PostgreSQL), the way
// Litestream runs one replica-client suite against every backend. Besides
// one store's behaviour it pins down what several stores on one database
// (several processes) must never do: sign a user up twice, hand out more
// than a balance, charge a generation or a hold twice, answer an event
// twice, let a rate limit through twice, elect two leaders.
//
// A backend's test calls RunLedgerSuite with a Backend that opens its store
// on a fresh database. The suite imports only the standard library and bot.
package accountstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zones the suite uses must not depend on the machine's zoneinfo

	"github.com/orchat/orchat/bot"
)

// Store is what every ledger backend implements: balances, votes and
// preferences, the state several processes share, and the scheduler's
// records.
type Store interface {
	bot.Ledger
	bot.Votes
	bot.Feedback
	bot.TierVotes
	bot.Preferences

	// SeenEvent reports whether an event id is new within the event
	// window, once across every store on the database.
	SeenEvent(ctx context.Context, id string, now time.Time) (bool, error)
	// TakeToken takes one request from the rate-limit bucket key.
	TakeToken(ctx context.Context, key string, limit bot.RateLimit, now time.Time) (time.Duration, bool, error)
	// Prune forgets old event ids and full buckets.
	Prune(ctx context.Context, now time.Time) (events, buckets int, err error)
	// ReleasePreviousBoots releases the open holds of this store's
	// instance from its earlier boots.
	ReleasePreviousBoots(ctx context.Context) (holds int, tokens int64, err error)
	// RecordReset records a free-tier period's reset once.
	RecordReset(ctx context.Context, period string, at time.Time) (bool, error)
	// TryLead and ResignLead elect the scheduler leader.
	TryLead(ctx context.Context, name, holder string, ttl time.Duration) error
	ResignLead(ctx context.Context, name, holder string) error
	// Close ends the store as its process's exit would: its sessions
	// (and what they hold) end, its rows stay.
	Close() error
}

// Config is the behaviour a test asks of a store; each backend maps it to
// its own options. Every number is used as given (zero means zero).
type Config struct {
	SignupBonus        int64
	FreePerDay         int
	FreePerDayToppedUp int
	Location           *time.Location
	HoldTTL            time.Duration
	EventWindow        time.Duration
	// Instance and Boot name the process and its run (holds record
	// them); "" is a name too.
	Instance, Boot string
	Now            func() time.Time
}

// Backend opens stores for the suite.
type Backend struct {
	// Open returns a store on a new, empty database, closed when the test
	// ends.
	Open func(t *testing.T, cfg Config) Store
	// Reopen returns a new store on s's database, leaving s as it is: as
	// a crashed process would (nothing settled or released), or as a
	// second process beside a live one. The suite uses it for both.
	Reopen func(t *testing.T, s Store, cfg Config) Store
	// Exec runs one raw SQL statement on s's database, as an operator's
	// shell would, bypassing the store.
	Exec func(t *testing.T, s Store, query string) error
}

// Clock is an injectable clock that tests move by hand, never by sleeping.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time; pass it as a store's Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Add moves the clock forward by d and returns the new time.
func (c *Clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Start is when every suite test begins: noon UTC on 22 November 2026.
var Start = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// DefaultConfig is DESIGN.md's defaults on a clock stopped at Start.
func DefaultConfig(clock *Clock) Config {
	return Config{
		SignupBonus:        15_000,
		FreePerDay:         50,
		FreePerDayToppedUp: 1000,
		Location:           time.UTC,
		HoldTTL:            15 * time.Minute,
		EventWindow:        time.Hour,
		Now:                clock.Now,
	}
}

// Identities the suite uses.
const (
	alice bot.Identity = "console:alice"
	bob   bot.Identity = "console:bob"
	carol bot.Identity = "discord:123456789012345678"
	dave  bot.Identity = "slack:T0123:U0456"
	admin bot.Identity = "console:admin"
)

// fixture is one store on a fresh database with its clock.
type fixture struct {
	Store
	t     *testing.T
	b     Backend
	clock *Clock
	cfg   Config
	ctx   context.Context
}

func open(t *testing.T, b Backend, change ...func(*Config)) *fixture {
	t.Helper()
	clock := NewClock(Start)
	cfg := DefaultConfig(clock)
	for _, c := range change {
		c(&cfg)
	}
	return &fixture{Store: b.Open(t, cfg), t: t, b: b, clock: clock, cfg: cfg, ctx: t.Context()}
}

// on returns the fixture for a subtest, so its helpers fail the subtest.
func (f *fixture) on(t *testing.T) *fixture {
	g := *f
	g.t = t
	return &g
}

func (f *fixture) ensure(id bot.Identity) {
	f.t.Helper()
	if _, _, err := f.EnsureUser(f.ctx, id); err != nil {
		f.t.Fatalf("EnsureUser(%s): %v", id, err)
	}
}

func (f *fixture) balance(id bot.Identity) bot.Balance {
	f.t.Helper()
	b, err := f.Balance(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Balance(%s): %v", id, err)
	}
	return b
}

func (f *fixture) reserve(id bot.Identity, amount int64, key string) bot.Hold {
	f.t.Helper()
	h, err := f.Reserve(f.ctx, id, amount, key)
	if err != nil {
		f.t.Fatalf("Reserve(%s, %d, %q): %v", id, amount, key, err)
	}
	return h
}

func (f *fixture) settle(holdID int64, c bot.Charge) bot.Entry {
	f.t.Helper()
	e, err := f.Settle(f.ctx, holdID, c)
	if err != nil {
		f.t.Fatalf("Settle(%d, %+v): %v", holdID, c, err)
	}
	return e
}

func (f *fixture) topUp(id bot.Identity, amount int64, key string) bot.Entry {
	f.t.Helper()
	e, applied, err := f.TopUp(f.ctx, bot.Adjustment{Identity: id, Amount: amount, Key: key, Actor: admin, Note: "test"})
	if err != nil {
		f.t.Fatalf("TopUp(%s, %d, %q): %v", id, amount, key, err)
	} else if !applied {
		f.t.Fatalf("TopUp(%s, %d, %q): applied=false, want true", id, amount, key)
	}
	return e
}

// wantBalance checks a user's balance and held tokens.
func (f *fixture) wantBalance(id bot.Identity, balance, held int64) {
	f.t.Helper()
	b := f.balance(id)
	if b.Balance != balance || b.Held != held || b.Available != max(balance-held, 0) {
		f.t.Fatalf("%s: balance=%d held=%d available=%d, want %d, %d, %d", id, b.Balance, b.Held, b.Available, balance, held, max(balance-held, 0))
	}
}

func (f *fixture) wantOpenHolds(count int, tokens int64) {
	f.t.Helper()
	n, sum, err := f.OpenHolds(f.ctx)
	if err != nil {
		f.t.Fatalf("OpenHolds: %v", err)
	}
	if n != count || sum != tokens {
		f.t.Fatalf("OpenHolds=%d holds, %d tokens, want %d, %d", n, sum, count, tokens)
	}
}

// verify fails the test unless every invariant of the ledger holds.
func (f *fixture) verify() bot.VerifyReport {
	f.t.Helper()
	rep, err := f.Verify(f.ctx)
	if err != nil {
		f.t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		f.t.Fatalf("Verify found problems:\n%s", strings.Join(rep.Problems, "\n"))
	}
	return rep
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := bot.ErrorCode(err); got != code {
		t.Fatalf("error code=%q, want %q (err: %v)", got, code, err)
	}
	var e *bot.Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("error %v carries no *bot.Error with a message", err)
	}
}

func wantMessage(t testing.TB, err error, parts ...string) {
	t.Helper()
	msg := bot.ErrorMessage(err)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("message %q does not mention %q", msg, p)
		}
	}
}

// RunLedgerSuite runs every behaviour test of the ledger against b.
func RunLedgerSuite(t *testing.T, b Backend) {
	if b.Open == nil || b.Reopen == nil || b.Exec == nil {
		t.Fatal("accountstest: Backend needs Open, Reopen and Exec")
	}
	t.Run("EnsureUser", func(t *testing.T) { testEnsureUser(t, b) })
	t.Run("Reserve", func(t *testing.T) { testReserve(t, b) })
	t.Run("Settle", func(t *testing.T) { testSettle(t, b) })
	t.Run("Release", func(t *testing.T) { testRelease(t, b) })
	t.Run("ReleaseExpired", func(t *testing.T) { testReleaseExpired(t, b) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, b) })
	t.Run("FreeTier", func(t *testing.T) { testFreeTier(t, b) })
	t.Run("Adjustments", func(t *testing.T) { testAdjustments(t, b) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, b) })
	t.Run("Reads", func(t *testing.T) { testReads(t, b) })
	t.Run("Votes", func(t *testing.T) { testVotes(t, b) })
	t.Run("Preferences", func(t *testing.T) { testPreferences(t, b) })
	t.Run("AppendOnly", func(t *testing.T) { testAppendOnly(t, b) })
	t.Run("AcrossStores", func(t *testing.T) { testAcrossStores(t, b) })
	t.Run("SeenEvent", func(t *testing.T) { testSeenEvent(t, b) })
	t.Run("TakeToken", func(t *testing.T) { testTakeToken(t, b) })
	t.Run("HoldOwners", func(t *testing.T) { testHoldOwners(t, b) })
	t.Run("Leader", func(t *testing.T) { testLeader(t, b) })
	t.Run("Communities", func(t *testing.T) { testCommunities(t, b) })
}

func testEnsureUser(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		u, created, err := f.EnsureUser(f.ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if !created || u.Identity != alice || u.Blocked || !u.CreatedAt.Equal(Start) {
			t.Fatalf("EnsureUser=%+v created=%v, want alice created now", u, created)
		}
		if _, created, err := f.EnsureUser(f.ctx, alice); err != nil || created {
			t.Fatalf("second EnsureUser created=%v err=%v, want false, nil", created, err)
		}
		f.wantBalance(alice, 15_000, 0)
		hist, err := f.History(f.ctx, alice, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(hist), 1; got != want {
			t.Fatalf("history has %d rows, want %d", got, want)
		}
		if e := hist[0]; e.Kind != bot.EntrySignup || e.Amount != 15_000 || e.Actor != bot.ActorSystem || e.Identity != alice {
			t.Fatalf("signup row=%+v", e)
		}
		f.verify()
	})

	t.Run("ConcurrentFirstContact", func(t *testing.T) {
		f := open(t, b)
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		createdCount, errs := 0, []error{}
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				_, created, err := f.EnsureUser(f.ctx, alice)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else if created {
					createdCount++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("EnsureUser failed %d times, first: %v", len(errs), errs[0])
		}
		if got, want := createdCount, 1; got != want {
			t.Fatalf("created=true %d times, want %d", got, want)
		}
		f.wantBalance(alice, 15_000, 0)
		if hist, err := f.History(f.ctx, alice, 100); err != nil || len(hist) != 1 {
			t.Fatalf("history=%d rows (err %v), want 1 signup row", len(hist), err)
		}
		f.verify()
	})

	t.Run("ZeroBonus", func(t *testing.T) {
		f := open(t, b, func(c *Config) { c.SignupBonus = 0 })
		f.ensure(alice)
		f.wantBalance(alice, 0, 0)
		f.verify()
		_, err := f.Reserve(f.ctx, alice, 1, "")
		wantCode(t, err, bot.EINSUFFICIENT)
	})

	t.Run("BlockedUserIsReturned", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		if err := f.SetBlocked(f.ctx, alice, true, admin); err != nil {
			t.Fatal(err)
		}
		u, created, err := f.EnsureUser(f.ctx, alice)
		if err != nil || created || !u.Blocked {
			t.Fatalf("EnsureUser=%+v created=%v err=%v, want the blocked user", u, created, err)
		}
	})
}

func testReserve(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "event-1")
		if h.ID == 0 || h.Identity != alice || h.Amount != 1000 || h.Key != "event-1" {
			t.Fatalf("hold=%+v", h)
		}
		if !h.CreatedAt.Equal(Start) || !h.ExpiresAt.Equal(Start.Add(15*time.Minute)) {
			t.Fatalf("hold created %v expires %v, want %v and 15 minutes later", h.CreatedAt, h.ExpiresAt, Start)
		}
		f.wantBalance(alice, 15_000, 1000)
		f.wantOpenHolds(1, 1000)
		f.verify()
	})

	t.Run("ZeroAmount", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 0, "")
		f.wantBalance(alice, 15_000, 0)
		if e := f.settle(h.ID, bot.Charge{Model: "meta/llama:free"}); e.Amount != 0 {
			t.Fatalf("settle of a zero hold charged %d", e.Amount)
		}
		f.verify()
	})

	t.Run("AllOfTheBalance", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.reserve(alice, 15_000, "")
		f.wantBalance(alice, 15_000, 15_000)
		_, err := f.Reserve(f.ctx, alice, 1, "")
		wantCode(t, err, bot.EINSUFFICIENT)
	})

	t.Run("ErrInsufficientBalance", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.reserve(alice, 10_000, "")
		_, err := f.Reserve(f.ctx, alice, 6000, "event-2")
		wantCode(t, err, bot.EINSUFFICIENT)
		wantMessage(t, err, "15,000", "10,000", "6,000", "5,000")
		// Nothing was written: the refused key is still free.
		f.wantBalance(alice, 15_000, 10_000)
		f.wantOpenHolds(1, 10_000)
		if h := f.reserve(alice, 5000, "event-2"); h.Amount != 5000 {
			t.Fatalf("reserve with the refused key held %d, want 5000", h.Amount)
		}
		f.verify()
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := open(t, b)
		_, err := f.Reserve(f.ctx, alice, 10, "")
		wantCode(t, err, bot.ENOTFOUND)
		f.wantOpenHolds(0, 0)
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		if err := f.SetBlocked(f.ctx, alice, true, admin); err != nil {
			t.Fatal(err)
		}
		_, err := f.Reserve(f.ctx, alice, 10, "")
		wantCode(t, err, bot.EUNAUTHORIZED)
		if !f.balance(alice).Blocked {
			t.Fatal("Balance.Blocked=false for a blocked user")
		}
		if err := f.SetBlocked(f.ctx, alice, false, admin); err != nil {
			t.Fatal(err)
		}
		f.reserve(alice, 10, "")
	})

	t.Run("ErrNegativeAmount", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		_, err := f.Reserve(f.ctx, alice, -1, "")
		wantCode(t, err, bot.EINVALID)
		f.wantOpenHolds(0, 0)
	})

	t.Run("RepeatedKey", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h1 := f.reserve(alice, 15_000, "event-1")
		f.clock.Add(time.Minute)
		// The balance is all held now: a retry still gets its hold back
		// instead of a refusal.
		h2 := f.reserve(alice, 15_000, "event-1")
		if h2.ID != h1.ID || h2.Amount != h1.Amount || !h2.ExpiresAt.Equal(h1.ExpiresAt) {
			t.Fatalf("repeated key returned %+v, want %+v", h2, h1)
		}
		f.wantBalance(alice, 15_000, 15_000)
		f.wantOpenHolds(1, 15_000)
	})

	t.Run("ErrKeyOfAnotherUser", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.ensure(bob)
		f.reserve(alice, 100, "event-1")
		_, err := f.Reserve(f.ctx, bob, 100, "event-1")
		wantCode(t, err, bot.ECONFLICT)
		f.wantBalance(bob, 15_000, 0)
	})
}

func testSettle(t *testing.T, b Backend) {
	usage := bot.Usage{PromptTokens: 120, CompletionTokens: 80, CachedTokens: 20, ReasoningTokens: 5, CostUSD: 0.0003, CostReported: true}

	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "event-1")
		f.clock.Add(3 * time.Second)
		e := f.settle(h.ID, bot.Charge{Amount: 300, Model: "openai/gpt-5", Usage: usage, GenerationID: "gen-1", Note: "ask"})
		if e.ID == 0 || e.Kind != bot.EntryCharge || e.Amount != -300 || e.Identity != alice || e.Model != "openai/gpt-5" ||
			e.Usage != usage || e.GenerationID != "gen-1" || e.Actor != bot.ActorSystem || !e.CreatedAt.Equal(f.clock.Now()) {
			t.Fatalf("charge=%+v", e)
		}
		f.wantBalance(alice, 14_700, 0)
		f.wantOpenHolds(0, 0)
		hist, err := f.History(f.ctx, alice, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0] != e {
			t.Fatalf("newest history row=%+v, want %+v", hist, e)
		}
		f.verify()
	})

	t.Run("ChargeCappedAtHold", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		if e := f.settle(h.ID, bot.Charge{Amount: 5000, Model: "m"}); e.Amount != -1000 {
			t.Fatalf("charge=%d, want -1000 (the hold)", e.Amount)
		}
		f.wantBalance(alice, 14_000, 0)
		f.verify()
	})

	t.Run("TwiceChargesOnce", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		e1 := f.settle(h.ID, bot.Charge{Amount: 400, Model: "m", GenerationID: "gen-1"})
		f.clock.Add(time.Second)
		e2 := f.settle(h.ID, bot.Charge{Amount: 900, Model: "m", GenerationID: "gen-2"})
		if e2 != e1 {
			t.Fatalf("second settle=%+v, want the first charge %+v", e2, e1)
		}
		f.wantBalance(alice, 14_600, 0)
		f.verify()
	})

	t.Run("ErrAfterRelease", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		if err := f.Release(f.ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		_, err := f.Settle(f.ctx, h.ID, bot.Charge{Amount: 400, Model: "m"})
		wantCode(t, err, bot.ECONFLICT)
		f.wantBalance(alice, 15_000, 0)
		if hist, _ := f.History(f.ctx, alice, 10); len(hist) != 1 {
			t.Fatalf("history has %d rows, want only the signup", len(hist))
		}
		f.verify()
	})

	t.Run("ErrAfterExpiry", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		f.clock.Set(h.ExpiresAt.Add(time.Second))
		_, err := f.Settle(f.ctx, h.ID, bot.Charge{Amount: 400, Model: "m"})
		wantCode(t, err, bot.ECONFLICT)
		f.wantBalance(alice, 15_000, 0)
		_, err = f.Settle(f.ctx, h.ID, bot.Charge{Amount: 400, Model: "m"})
		wantCode(t, err, bot.ECONFLICT)
		f.wantBalance(alice, 15_000, 0)
		f.verify()
	})

	t.Run("AtExpiryStillCharges", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		f.clock.Set(h.ExpiresAt)
		f.settle(h.ID, bot.Charge{Amount: 10, Model: "m"})
		f.wantBalance(alice, 14_990, 0)
	})

	t.Run("GenerationIDChargedOnce", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h1 := f.reserve(alice, 1000, "try-1")
		h2 := f.reserve(alice, 1000, "try-2")
		e1 := f.settle(h1.ID, bot.Charge{Amount: 700, Model: "m", GenerationID: "gen-1"})
		e2 := f.settle(h2.ID, bot.Charge{Amount: 700, Model: "m", GenerationID: "gen-1"})
		if e2.ID != e1.ID || e2.Amount != -700 {
			t.Fatalf("second settle of gen-1=%+v, want the first charge %+v", e2, e1)
		}
		f.wantBalance(alice, 14_300, 0)
		f.wantOpenHolds(0, 0)
		// The second hold is closed for good.
		if e3 := f.settle(h2.ID, bot.Charge{Amount: 700, Model: "m"}); e3.ID != e1.ID {
			t.Fatalf("third settle=%+v, want %+v", e3, e1)
		}
		f.wantBalance(alice, 14_300, 0)
		f.verify()
	})

	// Generation ids that repeat across users (an OpenAI-compatible server
	// whose ids are not unique) are different generations: each user's
	// call is charged, and nobody is answered with another user's charge.
	t.Run("GenerationIDOfAnotherUser", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.ensure(bob)
		ha := f.reserve(alice, 1000, "alice-1")
		hb := f.reserve(bob, 1000, "bob-1")
		ea := f.settle(ha.ID, bot.Charge{Amount: 700, Model: "m", GenerationID: "chatcmpl-123"})
		eb := f.settle(hb.ID, bot.Charge{Amount: 600, Model: "m", GenerationID: "chatcmpl-123"})
		if eb.ID == ea.ID || eb.Identity != bob || eb.Amount != -600 {
			t.Fatalf("bob's settle=%+v, want his own charge of 600 (alice's is %+v)", eb, ea)
		}
		f.wantBalance(alice, 14_300, 0)
		f.wantBalance(bob, 14_400, 0)
		if again := f.settle(hb.ID, bot.Charge{Amount: 600, Model: "m", GenerationID: "chatcmpl-123"}); again.ID != eb.ID {
			t.Fatalf("settling bob's hold again=%+v, want %+v", again, eb)
		}
		f.wantBalance(bob, 14_400, 0)
		f.verify()
	})

	t.Run("ZeroCharge", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		e := f.settle(h.ID, bot.Charge{Amount: 0, Model: "m", GenerationID: "gen-0"})
		if e.Amount != 0 || e.Identity != alice || e.Kind != bot.EntryCharge {
			t.Fatalf("zero charge=%+v", e)
		}
		f.wantBalance(alice, 15_000, 0)
		if e := f.settle(h.ID, bot.Charge{Amount: 500, Model: "m"}); e.Amount != 0 {
			t.Fatalf("settling a zero-charged hold again charged %d", e.Amount)
		}
		f.wantBalance(alice, 15_000, 0)
		if hist, _ := f.History(f.ctx, alice, 10); len(hist) != 1 {
			t.Fatalf("history has %d rows, want only the signup", len(hist))
		}
		f.verify()
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := open(t, b)
		_, err := f.Settle(f.ctx, 424242, bot.Charge{Amount: 1})
		wantCode(t, err, bot.ENOTFOUND)
	})

	t.Run("ErrNegativeCharge", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		_, err := f.Settle(f.ctx, h.ID, bot.Charge{Amount: -5})
		wantCode(t, err, bot.EINVALID)
		f.wantBalance(alice, 15_000, 1000)
	})
}

func testRelease(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		if err := f.Release(f.ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		f.wantBalance(alice, 15_000, 0)
		f.wantOpenHolds(0, 0)
		f.verify()
	})

	t.Run("TwiceIsNoOp", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		f.reserve(alice, 500, "")
		for range 2 {
			if err := f.Release(f.ctx, h.ID); err != nil {
				t.Fatal(err)
			}
		}
		f.wantBalance(alice, 15_000, 500)
		f.verify()
	})

	t.Run("AfterSettleIsNoOp", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 1000, "")
		f.settle(h.ID, bot.Charge{Amount: 250, Model: "m"})
		if err := f.Release(f.ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		f.wantBalance(alice, 14_750, 0)
		f.verify()
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		f := open(t, b)
		wantCode(t, f.Release(f.ctx, 424242), bot.ENOTFOUND)
	})
}

func testReleaseExpired(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.ensure(bob)
		f.reserve(alice, 1000, "")
		f.reserve(bob, 300, "")
		f.clock.Add(10 * time.Minute)
		f.reserve(alice, 2000, "")
		release := func(at time.Duration, want int) {
			t.Helper()
			n, err := f.ReleaseExpired(f.ctx, Start.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("ReleaseExpired(start+%s)=%d, want %d", at, n, want)
			}
		}
		release(15*time.Minute, 0) // expiring exactly now is not yet expired
		release(16*time.Minute, 2)
		f.wantBalance(alice, 15_000, 2000)
		f.wantBalance(bob, 15_000, 0)
		release(26*time.Minute, 1)
		release(60*time.Minute, 0)
		f.wantBalance(alice, 15_000, 0)
		f.wantOpenHolds(0, 0)
		f.verify()
	})

	t.Run("AfterManySettled", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		old := f.reserve(alice, 1000, "")
		for range 5 {
			h := f.reserve(alice, 10, "")
			f.settle(h.ID, bot.Charge{Amount: 1, Model: "m"})
		}
		release := func(at time.Time, want int) {
			t.Helper()
			if n, err := f.ReleaseExpired(f.ctx, at); err != nil || n != want {
				t.Fatalf("ReleaseExpired(%v)=%d, %v; want %d", at, n, err, want)
			}
		}
		release(f.clock.Now(), 0)
		f.wantOpenHolds(1, 1000)
		f.clock.Add(10 * time.Minute)
		young := f.reserve(alice, 200, "")
		release(old.ExpiresAt.Add(time.Second), 1)
		f.wantOpenHolds(1, 200)
		f.wantBalance(alice, 15_000-5, 200)
		release(young.ExpiresAt.Add(time.Second), 1)
		f.wantOpenHolds(0, 0)
		f.reserve(alice, 300, "")
		f.wantOpenHolds(1, 300)
		f.verify()
	})

	t.Run("CrashRecovery", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		h := f.reserve(alice, 4000, "event-1")
		f.wantBalance(alice, 15_000, 4000)

		// The process dies between reserve and settle.
		f.Store = f.b.Reopen(t, f.Store, f.cfg)
		f.wantBalance(alice, 15_000, 4000)
		f.wantOpenHolds(1, 4000)
		f.verify()

		f.clock.Add(time.Hour)
		if n, err := f.ReleaseExpired(f.ctx, f.clock.Now()); err != nil || n != 1 {
			t.Fatalf("ReleaseExpired=%d, %v; want 1", n, err)
		}
		f.wantBalance(alice, 15_000, 0)
		f.wantOpenHolds(0, 0)
		_, err := f.Settle(f.ctx, h.ID, bot.Charge{Amount: 100, Model: "m"})
		wantCode(t, err, bot.ECONFLICT)
		f.wantBalance(alice, 15_000, 0)
		f.verify()
	})
}

func testConcurrency(t *testing.T, b Backend) {
	const goroutines = 64

	t.Run("ReservesNeverExceedBalance", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			holds []bot.Hold
			other []error
		)
		refused := 0
		start := make(chan struct{})
		for i := range goroutines {
			wg.Go(func() {
				<-start
				h, err := f.Reserve(f.ctx, alice, 1000, fmt.Sprintf("event-%d", i))
				mu.Lock()
				defer mu.Unlock()
				switch bot.ErrorCode(err) {
				case "":
					holds = append(holds, h)
				case bot.EINSUFFICIENT:
					refused++
				default:
					other = append(other, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
		}
		if got, want := len(holds), 15; got != want {
			t.Fatalf("%d reserves of 1,000 succeeded on 15,000, want %d", got, want)
		}
		if got, want := refused, goroutines-15; got != want {
			t.Fatalf("%d reserves refused, want %d", got, want)
		}
		f.wantBalance(alice, 15_000, 15_000)

		for _, h := range holds {
			wg.Go(func() {
				if _, err := f.Settle(f.ctx, h.ID, bot.Charge{Amount: 700, Model: "m"}); err != nil {
					mu.Lock()
					other = append(other, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("settle failed: %v", other[0])
		}
		f.wantBalance(alice, 15_000-15*700, 0)
		f.verify()
	})

	t.Run("ReserveSettleNeverOverspends", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		const rounds, hold = 5, 300
		var (
			wg                sync.WaitGroup
			mu                sync.Mutex
			charged           int64
			settled, refusals int
			other             []error
		)
		start := make(chan struct{})
		for i := range goroutines {
			wg.Go(func() {
				<-start
				for j := range rounds {
					h, err := f.Reserve(f.ctx, alice, hold, "")
					if bot.ErrorCode(err) == bot.EINSUFFICIENT {
						mu.Lock()
						refusals++
						mu.Unlock()
						continue
					}
					var e bot.Entry
					if err == nil {
						want := int64((i*37 + j*11) % (hold + 1))
						e, err = f.Settle(f.ctx, h.ID, bot.Charge{Amount: want, Model: "m", GenerationID: fmt.Sprintf("gen-%d-%d", i, j)})
					}
					mu.Lock()
					if err != nil {
						other = append(other, err)
					} else {
						charged -= e.Amount
						settled++
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
		}
		if charged > 15_000 {
			t.Fatalf("charged %d on a balance of 15,000", charged)
		}
		if settled == 0 || settled+refusals != goroutines*rounds {
			t.Fatalf("settled %d and refused %d of %d calls", settled, refusals, goroutines*rounds)
		}
		f.wantBalance(alice, 15_000-charged, 0)
		f.wantOpenHolds(0, 0)
		f.verify()
	})
}

func testFreeTier(t *testing.T, b Backend) {
	small := func(c *Config) { c.FreePerDay, c.FreePerDayToppedUp = 3, 5 }

	t.Run("OK", func(t *testing.T) {
		f := open(t, b, small)
		f.ensure(alice)
		for i := 1; i <= 3; i++ {
			fu, err := f.UseFree(f.ctx, alice, f.clock.Now())
			if err != nil {
				t.Fatalf("free request %d: %v", i, err)
			}
			if fu.Used != i || fu.Limit != 3 || fu.Remaining != 3-i || fu.Period != "2026-11-22" ||
				!fu.ResetsAt.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("free request %d: %+v", i, fu)
			}
		}
		fu, err := f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.ERATELIMIT)
		if fu.Used != 3 || fu.Remaining != 0 || fu.ResetsAt.IsZero() {
			t.Fatalf("refused free request reported %+v", fu)
		}
		if b := f.balance(alice); b.Free.Used != 3 || b.Free.Remaining != 0 || b.Free.Period != "2026-11-22" {
			t.Fatalf("Balance.Free=%+v", b.Free)
		}
		f.verify()
	})

	t.Run("FreeStatusDoesNotCount", func(t *testing.T) {
		f := open(t, b, small)
		f.ensure(alice)
		for range 5 {
			fu, err := f.FreeStatus(f.ctx, alice, f.clock.Now())
			if err != nil || fu.Used != 0 || fu.Remaining != 3 {
				t.Fatalf("FreeStatus=%+v, %v", fu, err)
			}
		}
	})

	t.Run("ErrRateLimitSaysWhenItResets", func(t *testing.T) {
		la, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			t.Fatal(err)
		}
		f := open(t, b, small, func(c *Config) { c.Location = la })
		f.ensure(alice)
		f.clock.Set(time.Date(2026, 11, 22, 23, 30, 0, 0, la))
		for range 3 {
			if _, err := f.UseFree(f.ctx, alice, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		_, err = f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.ERATELIMIT)
		wantMessage(t, err, "daily allowance", "00:00", "America/Los_Angeles", "in 30m")
	})

	// The period boundary is local midnight: in each zone, requests used
	// up late in the day still count at UTC midnight (when the zone is not
	// UTC) and stop counting at the next local midnight.
	for _, zone := range []string{"UTC", "America/Los_Angeles", "Asia/Tokyo"} {
		t.Run("YesterdayDoesNotLimitToday/"+zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			f := open(t, b, small, func(c *Config) { c.Location = loc })
			f.ensure(alice)
			use := func(at time.Time) (bot.FreeUse, error) {
				f.clock.Set(at)
				return f.UseFree(f.ctx, alice, at)
			}
			day := time.Date(2026, 11, 22, 0, 0, 0, 0, loc)
			next := day.AddDate(0, 0, 1)
			// A UTC midnight inside the local day, if the zone is not UTC:
			// 16:00 in Los Angeles, 09:00 in Tokyo.
			var utcMidnight time.Time
			for _, m := range []time.Time{time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)} {
				if m.After(day) && m.Before(next) {
					utcMidnight = m
				}
			}
			first := day.Add(20 * time.Hour)
			if !utcMidnight.IsZero() {
				first = utcMidnight.Add(-time.Minute)
			}
			for range 3 {
				if _, err := use(first); err != nil {
					t.Fatal(err)
				}
			}
			if !utcMidnight.IsZero() {
				_, err := use(utcMidnight)
				wantCode(t, err, bot.ERATELIMIT) // a new UTC day, the same local day
			}
			_, err = use(day.AddDate(0, 0, 1).Add(-time.Second)) // 23:59:59 local
			wantCode(t, err, bot.ERATELIMIT)
			fu, err := use(day.AddDate(0, 0, 1)) // local midnight
			if err != nil {
				t.Fatalf("first request of the new local day: %v", err)
			}
			if fu.Period != "2026-11-23" || fu.Used != 1 || fu.Remaining != 2 {
				t.Fatalf("new day=%+v, want period 2026-11-23 with 1 used", fu)
			}
			if got, want := fu.ResetsAt, time.Date(2026, 11, 24, 0, 0, 0, 0, loc); !got.Equal(want) {
				t.Fatalf("ResetsAt=%v, want %v", got, want)
			}
		})
	}

	t.Run("ResetsAtLocalMidnightAcrossDST", func(t *testing.T) {
		la, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			t.Fatal(err)
		}
		f := open(t, b, small, func(c *Config) { c.Location = la })
		f.ensure(alice)
		for _, tc := range []struct {
			now    time.Time
			resets time.Time
			wait   time.Duration
		}{
			{time.Date(2026, 11, 1, 0, 30, 0, 0, la), time.Date(2026, 11, 2, 0, 0, 0, 0, la), 24*time.Hour + 30*time.Minute}, // a 25-hour day
			{time.Date(2026, 3, 8, 0, 30, 0, 0, la), time.Date(2026, 3, 9, 0, 0, 0, 0, la), 22*time.Hour + 30*time.Minute},   // a 23-hour day
		} {
			fu, err := f.FreeStatus(f.ctx, alice, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !fu.ResetsAt.Equal(tc.resets) || fu.ResetsAt.Sub(tc.now) != tc.wait {
				t.Fatalf("at %v: ResetsAt=%v (in %v), want %v (in %v)", tc.now, fu.ResetsAt, fu.ResetsAt.Sub(tc.now), tc.resets, tc.wait)
			}
		}
	})

	// Where clocks skip midnight itself (Chile, 6 September 2026: 00:00
	// becomes 01:00), the allowance comes back when the new day starts,
	// at 01:00, not an hour before it, while the old day still runs.
	t.Run("ResetsAtSkippedMidnight", func(t *testing.T) {
		scl, err := time.LoadLocation("America/Santiago")
		if err != nil {
			t.Skipf("no time zone data: %v", err)
		}
		f := open(t, b, small, func(c *Config) { c.Location = scl })
		f.ensure(alice)
		dayStart := time.Date(2026, 9, 6, 1, 0, 0, 0, scl)
		if got := dayStart.Add(-time.Second).In(scl).Format("2006-01-02"); got != "2026-09-05" {
			t.Skipf("tzdata has no clock change at midnight on 2026-09-06 in Santiago (%s)", got)
		}
		now := time.Date(2026, 9, 5, 22, 30, 0, 0, scl)
		fu, err := f.FreeStatus(f.ctx, alice, now)
		if err != nil {
			t.Fatal(err)
		}
		if fu.Period != "2026-09-05" || !fu.ResetsAt.Equal(dayStart) {
			t.Fatalf("at %v: period %s, ResetsAt=%v, want 2026-09-05 until %v", now, fu.Period, fu.ResetsAt, dayStart)
		}
		if fu, err := f.FreeStatus(f.ctx, alice, fu.ResetsAt); err != nil || fu.Period != "2026-09-06" {
			t.Fatalf("at ResetsAt: period %s (%v), want 2026-09-06", fu.Period, err)
		}
	})

	t.Run("ToppedUpGetsLargerLimit", func(t *testing.T) {
		f := open(t, b, small)
		f.ensure(alice)
		f.ensure(bob)
		for range 3 {
			if _, err := f.UseFree(f.ctx, alice, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		_, err := f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.ERATELIMIT)
		f.topUp(alice, 1, "topup-1")
		for i := 4; i <= 5; i++ {
			fu, err := f.UseFree(f.ctx, alice, f.clock.Now())
			if err != nil || fu.Used != i || fu.Limit != 5 {
				t.Fatalf("after a top-up, free request %d: %+v, %v", i, fu, err)
			}
		}
		_, err = f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.ERATELIMIT)

		// A grant is not a top-up.
		if _, _, err := f.Grant(f.ctx, bot.Adjustment{Identity: bob, Amount: 100, Key: "grant-1", Actor: admin}); err != nil {
			t.Fatal(err)
		}
		if fu, err := f.FreeStatus(f.ctx, bob, f.clock.Now()); err != nil || fu.Limit != 3 {
			t.Fatalf("after a grant, FreeStatus=%+v, %v; want limit 3", fu, err)
		}
	})

	t.Run("ReturnFree", func(t *testing.T) {
		f := open(t, b, small)
		f.ensure(alice)
		var fu bot.FreeUse
		for range 3 {
			var err error
			if fu, err = f.UseFree(f.ctx, alice, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.ReturnFree(f.ctx, alice, fu.Period); err != nil {
			t.Fatal(err)
		}
		if fu, err := f.UseFree(f.ctx, alice, f.clock.Now()); err != nil || fu.Used != 3 {
			t.Fatalf("after a return, UseFree=%+v, %v; want used 3", fu, err)
		}
		for range 5 {
			if err := f.ReturnFree(f.ctx, alice, fu.Period); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := f.FreeStatus(f.ctx, alice, f.clock.Now()); got.Used != 0 {
			t.Fatalf("used=%d after returning more than was used, want 0", got.Used)
		}
		if err := f.ReturnFree(f.ctx, alice, "2026-01-01"); err != nil {
			t.Fatalf("returning to an unused period: %v", err)
		}
		wantCode(t, f.ReturnFree(f.ctx, alice, "yesterday"), bot.EINVALID)
		wantCode(t, f.ReturnFree(f.ctx, bob, fu.Period), bot.ENOTFOUND)
		f.verify()
	})

	t.Run("ErrNoFreeTier", func(t *testing.T) {
		f := open(t, b, func(c *Config) { c.FreePerDay = 0 })
		f.ensure(alice)
		_, err := f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.ERATELIMIT)
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		f := open(t, b, small)
		f.ensure(alice)
		if err := f.SetBlocked(f.ctx, alice, true, admin); err != nil {
			t.Fatal(err)
		}
		_, err := f.UseFree(f.ctx, alice, f.clock.Now())
		wantCode(t, err, bot.EUNAUTHORIZED)
	})
}

func testAdjustments(t *testing.T, b Backend) {
	t.Run("TopUpOK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		e, applied, err := f.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 500, Key: "interaction-1", Actor: admin, Note: "paid by card"})
		if err != nil || !applied {
			t.Fatalf("TopUp applied=%v err=%v", applied, err)
		}
		if e.ID == 0 || e.Kind != bot.EntryTopUp || e.Amount != 500 || e.Actor != admin || e.Note != "paid by card" || e.Key != "interaction-1" {
			t.Fatalf("top-up row=%+v", e)
		}
		f.wantBalance(alice, 15_500, 0)
		if got := f.balance(alice).ToppedUp; got != 500 {
			t.Fatalf("ToppedUp=%d, want 500", got)
		}
		f.verify()
	})

	t.Run("TopUpCreatesUserWithBonus", func(t *testing.T) {
		f := open(t, b)
		f.topUp(alice, 500, "interaction-1")
		f.wantBalance(alice, 15_500, 0)
		hist, err := f.History(f.ctx, alice, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].Kind != bot.EntryTopUp || hist[1].Kind != bot.EntrySignup {
			t.Fatalf("history=%+v, want the top-up then the signup", hist)
		}
		if _, created, err := f.EnsureUser(f.ctx, alice); err != nil || created {
			t.Fatalf("EnsureUser after a top-up: created=%v err=%v", created, err)
		}
		f.wantBalance(alice, 15_500, 0)
		f.verify()
	})

	t.Run("GrantOK", func(t *testing.T) {
		f := open(t, b)
		e, applied, err := f.Grant(f.ctx, bot.Adjustment{Identity: alice, Amount: 250, Key: "grant-1", Actor: admin})
		if err != nil || !applied || e.Kind != bot.EntryGrant || e.Amount != 250 {
			t.Fatalf("Grant=%+v applied=%v err=%v", e, applied, err)
		}
		f.wantBalance(alice, 15_250, 0)
		if got := f.balance(alice).ToppedUp; got != 0 {
			t.Fatalf("ToppedUp=%d after a grant, want 0", got)
		}
		f.verify()
	})

	t.Run("DeductOK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		e, applied, err := f.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 5000, Key: "deduct-1", Actor: admin, Note: "refund reversed"})
		if err != nil || !applied || e.Kind != bot.EntryDeduct || e.Amount != -5000 {
			t.Fatalf("Deduct=%+v applied=%v err=%v", e, applied, err)
		}
		f.wantBalance(alice, 10_000, 0)
		f.verify()
	})

	t.Run("ErrDeductBelowZero", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		_, _, err := f.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 15_001, Key: "deduct-1", Actor: admin})
		wantCode(t, err, bot.EINSUFFICIENT)
		f.reserve(alice, 10_000, "")
		_, _, err = f.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 5001, Key: "deduct-1", Actor: admin})
		wantCode(t, err, bot.EINSUFFICIENT)
		wantMessage(t, err, "5,000", "10,000")
		f.wantBalance(alice, 15_000, 10_000)
		if _, applied, err := f.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 5000, Key: "deduct-1", Actor: admin}); err != nil || !applied {
			t.Fatalf("deducting what is available: applied=%v err=%v", applied, err)
		}
		f.wantBalance(alice, 10_000, 10_000)
		f.verify()
	})

	t.Run("ErrDeductUnknownUser", func(t *testing.T) {
		f := open(t, b)
		_, _, err := f.Deduct(f.ctx, bot.Adjustment{Identity: alice, Amount: 1, Key: "deduct-1", Actor: admin})
		wantCode(t, err, bot.ENOTFOUND)
		_, err = f.Balance(f.ctx, alice)
		wantCode(t, err, bot.ENOTFOUND)
	})

	t.Run("RepeatedKeyIsNoOp", func(t *testing.T) {
		f := open(t, b)
		first := f.topUp(alice, 500, "interaction-1")
		f.clock.Add(time.Minute)
		e, applied, err := f.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 500, Key: "interaction-1", Actor: admin, Note: "test"})
		if err != nil || applied {
			t.Fatalf("repeated TopUp applied=%v err=%v, want false, nil", applied, err)
		}
		if e != first {
			t.Fatalf("repeated TopUp returned %+v, want the first %+v", e, first)
		}
		f.wantBalance(alice, 15_500, 0)
		f.verify()
	})

	t.Run("ErrKeyReusedForOtherAdjustment", func(t *testing.T) {
		f := open(t, b)
		f.ensure(bob)
		f.topUp(alice, 500, "interaction-1")
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"OtherAmount", func() error {
				_, _, err := f.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 501, Key: "interaction-1", Actor: admin})
				return err
			}},
			{"OtherUser", func() error {
				_, _, err := f.TopUp(f.ctx, bot.Adjustment{Identity: bob, Amount: 500, Key: "interaction-1", Actor: admin})
				return err
			}},
			{"OtherKind", func() error {
				_, _, err := f.Grant(f.ctx, bot.Adjustment{Identity: alice, Amount: 500, Key: "interaction-1", Actor: admin})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), bot.ECONFLICT) })
		}
		f.wantBalance(alice, 15_500, 0)
		f.wantBalance(bob, 15_000, 0)
	})

	t.Run("MaxAmount", func(t *testing.T) {
		f := open(t, b)
		f.topUp(alice, bot.MaxAmount, "big")
		f.wantBalance(alice, bot.MaxAmount+15_000, 0)
		f.verify()
	})
}

func testBadInput(t *testing.T, b Backend) {
	parent := open(t, b)
	parent.ensure(alice)
	f := parent
	adjust := map[string]func(bot.Adjustment) (bot.Entry, bool, error){
		"TopUp":  func(a bot.Adjustment) (bot.Entry, bool, error) { return f.TopUp(f.ctx, a) },
		"Grant":  func(a bot.Adjustment) (bot.Entry, bool, error) { return f.Grant(f.ctx, a) },
		"Deduct": func(a bot.Adjustment) (bot.Entry, bool, error) { return f.Deduct(f.ctx, a) },
	}

	t.Run("ErrInvalidAmount", func(t *testing.T) {
		f := parent.on(t)
		for name, call := range adjust {
			for _, amount := range []int64{-1, 0, bot.MaxAmount + 1} {
				t.Run(fmt.Sprintf("%s/%d", name, amount), func(t *testing.T) {
					_, applied, err := call(bot.Adjustment{Identity: alice, Amount: amount, Key: fmt.Sprintf("k-%s-%d", name, amount), Actor: admin})
					wantCode(t, err, bot.EINVALID)
					wantMessage(t, err, "1,000,000,000,000")
					if applied {
						t.Fatal("applied=true")
					}
				})
			}
		}
		f.wantBalance(alice, 15_000, 0)
	})

	t.Run("ErrEmptyKey", func(t *testing.T) {
		for name, call := range adjust {
			_, _, err := call(bot.Adjustment{Identity: alice, Amount: 1, Actor: admin})
			if bot.ErrorCode(err) != bot.EINVALID {
				t.Fatalf("%s without a key: %v, want EINVALID", name, err)
			}
		}
	})

	t.Run("ErrReservedKey", func(t *testing.T) {
		_, _, err := f.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 1, Key: "signup:" + string(bob), Actor: admin})
		wantCode(t, err, bot.EINVALID)
	})

	t.Run("ErrInvalidIdentity", func(t *testing.T) {
		f := parent.on(t)
		for _, id := range []bot.Identity{"", "discord:", "slack:T1", "console:al ice", "console: alice", "telegram:42",
			"alice", bot.Identity("console:" + strings.Repeat("a", 500)), bot.Identity(strings.Repeat("x", 500))} {
			calls := map[string]func() error{
				"EnsureUser": func() error { _, _, err := f.EnsureUser(f.ctx, id); return err },
				"Balance":    func() error { _, err := f.Balance(f.ctx, id); return err },
				"Reserve":    func() error { _, err := f.Reserve(f.ctx, id, 1, ""); return err },
				"UseFree":    func() error { _, err := f.UseFree(f.ctx, id, f.clock.Now()); return err },
				"History":    func() error { _, err := f.History(f.ctx, id, 10); return err },
				"SetBlocked": func() error { return f.SetBlocked(f.ctx, id, true, admin) },
				"Vote":       func() error { _, err := f.Vote(f.ctx, "c1", id, "A"); return err },
				"SetDefault": func() error { return f.SetDefaultModel(f.ctx, id, "m") },
			}
			for name, call := range adjust {
				calls[name] = func() error {
					_, _, err := call(bot.Adjustment{Identity: id, Amount: 1, Key: "k-" + name, Actor: admin})
					return err
				}
			}
			for name, call := range calls {
				if err := call(); bot.ErrorCode(err) != bot.EINVALID {
					t.Fatalf("%s(%.40q): %v, want EINVALID", name, id, err)
				}
			}
		}
		if rep := f.verify(); rep.Users != 1 {
			t.Fatalf("%d users after bad input, want 1", rep.Users)
		}
	})

	t.Run("ErrUnknownUser", func(t *testing.T) {
		calls := map[string]func() error{
			"Balance":         func() error { _, err := f.Balance(f.ctx, bob); return err },
			"History":         func() error { _, err := f.History(f.ctx, bob, 10); return err },
			"SpendByModel":    func() error { _, err := f.SpendByModel(f.ctx, bob, time.Time{}); return err },
			"FreeStatus":      func() error { _, err := f.FreeStatus(f.ctx, bob, f.clock.Now()); return err },
			"UseFree":         func() error { _, err := f.UseFree(f.ctx, bob, f.clock.Now()); return err },
			"ReturnFree":      func() error { return f.ReturnFree(f.ctx, bob, "2026-11-22") },
			"SetBlocked":      func() error { return f.SetBlocked(f.ctx, bob, true, admin) },
			"DefaultModel":    func() error { _, err := f.DefaultModel(f.ctx, bob); return err },
			"SetDefaultModel": func() error { return f.SetDefaultModel(f.ctx, bob, "m") },
			"Reserve":         func() error { _, err := f.Reserve(f.ctx, bob, 1, ""); return err },
			"Deduct": func() error {
				_, _, err := f.Deduct(f.ctx, bot.Adjustment{Identity: bob, Amount: 1, Key: "d", Actor: admin})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) { wantCode(t, call(), bot.ENOTFOUND) })
		}
	})
}

func testReads(t *testing.T, b Backend) {
	t.Run("HistoryNewestFirst", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		for i := range 5 {
			f.clock.Add(time.Minute)
			f.topUp(alice, int64(i+1), fmt.Sprintf("k%d", i))
		}
		hist, err := f.History(f.ctx, alice, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 3 {
			t.Fatalf("History(3) returned %d rows", len(hist))
		}
		for i, e := range hist {
			if want := int64(5 - i); e.Amount != want {
				t.Fatalf("row %d: amount %d, want %d (newest first)", i, e.Amount, want)
			}
		}
		if all, _ := f.History(f.ctx, alice, 0); len(all) != 6 {
			t.Fatalf("History(0) returned %d rows, want all 6", len(all))
		}
	})

	t.Run("SpendByModelMostChargedFirst", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.ensure(bob)
		charge := func(id bot.Identity, model string, amount, prompt, completion int64) {
			t.Helper()
			h := f.reserve(id, amount, "")
			f.settle(h.ID, bot.Charge{Amount: amount, Model: model, Usage: bot.Usage{PromptTokens: prompt, CompletionTokens: completion}})
		}
		charge(alice, "old/model", 999, 1, 1)
		since := f.clock.Add(time.Hour)
		charge(alice, "a/model", 100, 10, 20)
		charge(alice, "a/model", 200, 30, 40)
		charge(alice, "b/model", 500, 5, 5)
		charge(alice, "c/model", 50, 1, 2)
		charge(bob, "b/model", 10_000, 1, 1)
		h := f.reserve(alice, 100, "") // a free call: nothing charged, no row
		f.settle(h.ID, bot.Charge{Model: "free/model:free"})
		got, err := f.SpendByModel(f.ctx, alice, since)
		if err != nil {
			t.Fatal(err)
		}
		want := []bot.ModelSpend{
			{Model: "b/model", Requests: 1, PromptTokens: 5, CompletionTokens: 5, Charged: 500},
			{Model: "a/model", Requests: 2, PromptTokens: 40, CompletionTokens: 60, Charged: 300},
			{Model: "c/model", Requests: 1, PromptTokens: 1, CompletionTokens: 2, Charged: 50},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("SpendByModel=%+v\nwant %+v", got, want)
		}
		if got, err := f.SpendByModel(f.ctx, bob, f.clock.Now().Add(time.Hour)); err != nil || len(got) != 0 {
			t.Fatalf("SpendByModel in the future=%+v, %v; want none", got, err)
		}
	})

	t.Run("VerifyCounts", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		f.ensure(bob)
		h := f.reserve(alice, 100, "")
		f.reserve(bob, 100, "")
		f.settle(h.ID, bot.Charge{Amount: 10, Model: "m"})
		rep := f.verify()
		if rep.Users != 2 || rep.Entries != 3 || rep.Holds != 1 {
			t.Fatalf("Verify counted %d users, %d entries, %d open holds; want 2, 3, 1", rep.Users, rep.Entries, rep.Holds)
		}
	})
}

func testVotes(t *testing.T, b Backend) {
	const (
		gpt    = "openai/gpt-5"
		claude = "anthropic/claude-sonnet-4.5"
		gemini = "google/gemini-2.5-pro"
	)
	record := func(f *fixture, id, community string, models ...string) {
		f.t.Helper()
		if err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: id, Community: community, Requester: alice, Models: models}); err != nil {
			f.t.Fatalf("RecordCompare(%s): %v", id, err)
		}
	}
	vote := func(f *fixture, id string, voter bot.Identity, choice string) bot.Tally {
		f.t.Helper()
		tally, err := f.Vote(f.ctx, id, voter, choice)
		if err != nil {
			f.t.Fatalf("Vote(%s, %s, %s): %v", id, voter, choice, err)
		}
		return tally
	}

	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		record(f, "c1", "discord:1", gpt, claude, gemini)
		if got := vote(f, "c1", alice, "A"); fmt.Sprint(got) != fmt.Sprint(bot.Tally{"A": 1}) {
			t.Fatalf("tally=%v", got)
		}
		vote(f, "c1", bob, "TIE")
		if got, want := vote(f, "c1", carol, " c "), (bot.Tally{"A": 1, "C": 1, "tie": 1}); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("tally=%v, want %v", got, want)
		}
	})

	t.Run("ErrSecondVote", func(t *testing.T) {
		f := open(t, b)
		record(f, "c1", "discord:1", gpt, claude)
		vote(f, "c1", alice, "A")
		_, err := f.Vote(f.ctx, "c1", alice, "B")
		wantCode(t, err, bot.ECONFLICT)
		if got, want := vote(f, "c1", bob, "B"), (bot.Tally{"A": 1, "B": 1}); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("tally=%v, want %v", got, want)
		}
	})

	t.Run("ErrUnknownCompare", func(t *testing.T) {
		f := open(t, b)
		_, err := f.Vote(f.ctx, "nope", alice, "A")
		wantCode(t, err, bot.ENOTFOUND)
	})

	t.Run("ErrInvalidChoice", func(t *testing.T) {
		f := open(t, b)
		record(f, "c1", "discord:1", gpt, claude, gemini)
		for _, choice := range []string{"D", "x", "", "AB", "tied"} {
			_, err := f.Vote(f.ctx, "c1", alice, choice)
			wantCode(t, err, bot.EINVALID)
		}
		vote(f, "c1", alice, "c") // the refusals recorded nothing
	})

	t.Run("ErrFailedPanel", func(t *testing.T) {
		// A panel whose model failed cannot win a vote; the others still
		// win over it, and a tie still counts.
		f := open(t, b)
		if err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{gpt, claude, gemini}, Failed: []string{"C"}}); err != nil {
			t.Fatal(err)
		}
		for _, choice := range []string{"C", "c"} {
			_, err := f.Vote(f.ctx, "c1", alice, choice)
			wantCode(t, err, bot.EINVALID)
			if msg := bot.ErrorMessage(err); !strings.Contains(msg, "Answer C ("+gemini+") failed") || !strings.Contains(msg, "vote A, B or tie") {
				t.Fatalf("the refusal says %q; want it to say answer C failed and what may be voted", msg)
			}
		}
		vote(f, "c1", alice, "B")
		vote(f, "c1", bob, "tie")
		ps, err := f.Pairs(f.ctx, "discord:1")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if (p.A == gemini && p.AWins > 0) || (p.B == gemini && p.BWins > 0) {
				t.Fatalf("the failed model won a head-to-head: %+v", ps)
			}
		}
		err = f.RecordCompare(f.ctx, bot.CompareRecord{ID: "c2", Community: "discord:1", Requester: alice, Models: []string{gpt, claude}, Failed: []string{"C"}})
		wantCode(t, err, bot.EINVALID)
	})

	t.Run("TierResults", func(t *testing.T) {
		// A compare keeps the tier of its prompt; the votes group by it,
		// per community, and a compare without a tier teaches no tier.
		f := open(t, b)
		rec := func(id, community, tier string, models ...string) {
			t.Helper()
			if err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: id, Community: community, Requester: alice, Models: models, Tier: tier, Blind: id == "c3"}); err != nil {
				t.Fatalf("RecordCompare(%s): %v", id, err)
			}
		}
		rec("c1", "discord:1", "code", gpt, claude)
		rec("c2", "discord:1", "code", claude, gemini, gpt)
		rec("c3", "discord:1", "fast", gemini, gpt)
		rec("c4", "discord:1", "", gpt, claude)
		rec("c5", "discord:2", "code", gpt, claude)
		vote(f, "c1", alice, "B")
		vote(f, "c1", bob, "B")
		vote(f, "c2", alice, "A")
		vote(f, "c2", bob, "tie")
		vote(f, "c3", alice, "A")
		vote(f, "c4", alice, "A")
		vote(f, "c5", alice, "A")
		if c, err := f.Compare(f.ctx, "c2"); err != nil || c.Tier != "code" {
			t.Fatalf("Compare(c2) tier=%q err=%v, want code", c.Tier, err)
		}
		got, err := f.TierResults(f.ctx, "discord:1")
		if err != nil {
			t.Fatal(err)
		}
		want := []bot.TierResults{
			{Tier: "code", Votes: 4, Pairs: []bot.PairRecord{
				{A: claude, B: gemini, AWins: 1, Ties: 1},
				{A: claude, B: gpt, AWins: 3, Ties: 1},
				{A: gemini, B: gpt, Ties: 1},
			}},
			{Tier: "fast", Votes: 1, Pairs: []bot.PairRecord{{A: gemini, B: gpt, AWins: 1, BlindAWins: 1}}},
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("TierResults(discord:1)=\n%+v\nwant\n%+v", got, want)
		}
		other, err := f.TierResults(f.ctx, "discord:2")
		if err != nil || len(other) != 1 || other[0].Votes != 1 || other[0].Pairs[0].AWins != 0 || other[0].Pairs[0].BWins != 1 {
			t.Fatalf("TierResults(discord:2)=%+v err=%v: another community's votes are its own", other, err)
		}
		if none, err := f.TierResults(f.ctx, "discord:3"); err != nil || len(none) != 0 {
			t.Fatalf("TierResults(discord:3)=%+v err=%v, want none", none, err)
		}
		_, err = f.TierResults(f.ctx, "")
		wantCode(t, err, bot.EINVALID)
		err = f.RecordCompare(f.ctx, bot.CompareRecord{ID: "c9", Community: "discord:1", Requester: alice, Models: []string{gpt, claude}, Tier: "bogus"})
		wantCode(t, err, bot.EINVALID)
	})

	t.Run("ErrInvalidCompare", func(t *testing.T) {
		f := open(t, b)
		for _, c := range []bot.CompareRecord{
			{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{gpt}},
			{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{gpt, claude, gemini, "a", "b"}},
			{ID: "", Community: "discord:1", Requester: alice, Models: []string{gpt, claude}},
			{ID: "c1", Community: "", Requester: alice, Models: []string{gpt, claude}},
			{ID: "c1", Community: "discord:1", Requester: "nobody", Models: []string{gpt, claude}},
		} {
			wantCode(t, f.RecordCompare(f.ctx, c), bot.EINVALID)
		}
	})

	t.Run("ErrDuplicateCompare", func(t *testing.T) {
		f := open(t, b)
		record(f, "c1", "discord:1", gpt, claude)
		err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{gpt, gemini}})
		wantCode(t, err, bot.ECONFLICT)
	})

	t.Run("Pairs", func(t *testing.T) {
		f := open(t, b)
		// In discord:1, gpt wins twice over both others and one member
		// calls it a tie; in discord:2, claude beats gpt once.
		record(f, "c1", "discord:1", gpt, claude, gemini)
		vote(f, "c1", alice, "A")
		vote(f, "c1", bob, "a")
		vote(f, "c1", carol, "tie")
		record(f, "c2", "discord:2", claude, gpt)
		vote(f, "c2", alice, "A")
		record(f, "c3", "discord:2", gemini, claude) // no votes

		pairs := func(community string) string {
			t.Helper()
			ps, err := f.Pairs(f.ctx, community)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(ps)
		}
		// Pairs are written A < B: claude < gemini < gpt.
		want1 := fmt.Sprint([]bot.PairRecord{
			{A: claude, B: gemini, Ties: 1},
			{A: claude, B: gpt, BWins: 2, Ties: 1},
			{A: gemini, B: gpt, BWins: 2, Ties: 1},
		})
		if got := pairs("discord:1"); got != want1 {
			t.Fatalf("Pairs(discord:1)=%s\nwant %s", got, want1)
		}
		want2 := fmt.Sprint([]bot.PairRecord{{A: claude, B: gpt, AWins: 1}})
		if got := pairs("discord:2"); got != want2 {
			t.Fatalf("Pairs(discord:2)=%s\nwant %s", got, want2)
		}
		wantAll := fmt.Sprint([]bot.PairRecord{
			{A: claude, B: gemini, Ties: 1},
			{A: claude, B: gpt, AWins: 1, BWins: 2, Ties: 1},
			{A: gemini, B: gpt, BWins: 2, Ties: 1},
		})
		if got := pairs(""); got != wantAll {
			t.Fatalf("Pairs(all)=%s\nwant %s", got, wantAll)
		}
		if got := pairs("discord:3"); got != "[]" {
			t.Fatalf("Pairs(discord:3)=%s, want none", got)
		}
	})
}

func testPreferences(t *testing.T, b Backend) {
	t.Run("OK", func(t *testing.T) {
		f := open(t, b)
		f.ensure(alice)
		get := func() string {
			t.Helper()
			m, err := f.DefaultModel(f.ctx, alice)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		if got := get(); got != "" {
			t.Fatalf("default model=%q, want \"\" (auto)", got)
		}
		if err := f.SetDefaultModel(f.ctx, alice, "openai/gpt-5:nitro"); err != nil {
			t.Fatal(err)
		}
		if got, want := get(), "openai/gpt-5:nitro"; got != want {
			t.Fatalf("default model=%q, want %q", got, want)
		}
		if err := f.SetDefaultModel(f.ctx, alice, ""); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != "" {
			t.Fatalf("default model=%q after reset, want \"\"", got)
		}
	})

	t.Run("ErrUnknownUser", func(t *testing.T) {
		f := open(t, b)
		wantCode(t, f.SetDefaultModel(f.ctx, alice, "m"), bot.ENOTFOUND)
		_, err := f.DefaultModel(f.ctx, alice)
		wantCode(t, err, bot.ENOTFOUND)
	})
}
