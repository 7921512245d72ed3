package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// users is a function-field fake of bot.Users, the two ledger calls the
// engine makes: a test sets ensure or balance to what it needs; by default
// users live in a map and everyone has the signup bonus.
type users struct {
	ensure  func(ctx context.Context, id bot.Identity) (bot.User, bool, error)
	balance func(ctx context.Context, id bot.Identity) (bot.Balance, error)

	mu    sync.Mutex
	known map[bot.Identity]bot.User
}

var _ bot.Users = (*users)(nil)

func (u *users) EnsureUser(ctx context.Context, id bot.Identity) (bot.User, bool, error) {
	if u.ensure != nil {
		return u.ensure(ctx, id)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.known == nil {
		u.known = map[bot.Identity]bot.User{}
	}
	got, ok := u.known[id]
	if !ok {
		got = bot.User{Identity: id}
		u.known[id] = got
	}
	return got, !ok, nil
}

func (u *users) Balance(ctx context.Context, id bot.Identity) (bot.Balance, error) {
	if u.balance != nil {
		return u.balance(ctx, id)
	}
	return bot.Balance{Identity: id, Balance: 15000, Available: 15000, Free: bot.FreeUse{Limit: 50, Remaining: 50}}, nil
}

// engineWith builds an engine whose only commands are the given ones,
// parsed from the first word of the text.
func engineWith(t *testing.T, opts bot.EngineOptions, cmds ...*bot.Command) *bot.Engine {
	t.Helper()
	if opts.Users == nil {
		opts.Users = &users{}
	}
	opts.Commands = cmds
	opts.Parse = func(ev bot.Event) (bot.Invocation, error) {
		name, _, _ := strings.Cut(strings.TrimPrefix(ev.Text, "/"), " ")
		for _, c := range cmds {
			if c.Name == name {
				return bot.Invocation{Name: name}, nil
			}
		}
		return bot.Invocation{}, bot.Errorf(bot.EINVALID, "Unknown command /%s.", name)
	}
	opts.EditInterval = time.Millisecond
	return bot.NewEngine(opts)
}

func echo(name string) *bot.Command {
	return &bot.Command{Name: name, Run: func(ctx context.Context, req *bot.Request) error {
		return req.Reply.Notice(name + " ran")
	}}
}

func TestEngine(t *testing.T) {
	ev := func(id, user, text string) bot.Event {
		return bot.Event{ID: id, Platform: "console", Identity: bot.Identity(user), Text: text}
	}

	t.Run("WelcomesFirstTimeUsersOnce", func(t *testing.T) {
		e := engineWith(t, bot.EngineOptions{}, echo("help"))
		out := newRecorder(2000, time.Millisecond)
		e.Handle(context.Background(), ev("1", "console:ann", "/help"), out)
		e.Handle(context.Background(), ev("2", "console:ann", "/help"), out)
		if got := strings.Count(out.text(), "15,000 free tokens"); got != 1 {
			t.Fatalf("welcomed %d times: %q", got, out.text())
		}
	})

	t.Run("RedeliveredEventHandledOnce", func(t *testing.T) {
		var runs atomic.Int32
		c := &bot.Command{Name: "topup", Run: func(ctx context.Context, req *bot.Request) error { runs.Add(1); return nil }}
		e := engineWith(t, bot.EngineOptions{}, c)
		for i := 0; i < 3; i++ {
			e.Handle(context.Background(), ev("discord:int:42", "console:ann", "/topup"), newRecorder(2000, time.Millisecond))
		}
		if got := runs.Load(); got != 1 {
			t.Fatalf("ran %d times for one event id", got)
		}
	})

	t.Run("ErrBlockedUser", func(t *testing.T) {
		l := &users{known: map[bot.Identity]bot.User{"console:bad": {Identity: "console:bad", Blocked: true}}}
		e := engineWith(t, bot.EngineOptions{Users: l}, echo("help"))
		out := newRecorder(2000, time.Millisecond)
		err := e.Handle(context.Background(), ev("1", "console:bad", "/help"), out)
		if bot.ErrorCode(err) != bot.EUNAUTHORIZED || !strings.Contains(out.text(), "blocked") || strings.Contains(out.text(), "help ran") {
			t.Fatalf("err=%v output=%q", err, out.text())
		}
	})

	t.Run("ErrLedgerDown", func(t *testing.T) {
		// The database is gone: no command runs, and the user gets the
		// apology with a reference the host finds in the log.
		down := &users{ensure: func(context.Context, bot.Identity) (bot.User, bool, error) {
			return bot.User{}, false, errors.New("accounts: database is locked")
		}}
		var logs strings.Builder
		e := engineWith(t, bot.EngineOptions{Users: down, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, echo("help"))
		out := newRecorder(2000, time.Millisecond)
		err := e.Handle(context.Background(), ev("1", "console:ann", "/help"), out)
		if bot.ErrorCode(err) != bot.EINTERNAL || strings.Contains(out.text(), "help ran") || !strings.Contains(out.text(), "(ref ") {
			t.Fatalf("err=%v output=%q, want an internal error with a reference and no command run", err, out.text())
		}
		if strings.Contains(out.text(), "database is locked") || !strings.Contains(logs.String(), "database is locked") {
			t.Fatalf("the cause belongs in the log, not the reply: output=%q log=%q", out.text(), logs.String())
		}
	})

	t.Run("WelcomeWithoutBalanceStillAnswers", func(t *testing.T) {
		// Reading the new user's balance fails: no welcome, but the
		// command still runs.
		l := &users{balance: func(context.Context, bot.Identity) (bot.Balance, error) {
			return bot.Balance{}, errors.New("accounts: read failed")
		}}
		e := engineWith(t, bot.EngineOptions{Users: l}, echo("help"))
		out := newRecorder(2000, time.Millisecond)
		if err := e.Handle(context.Background(), ev("1", "console:ann", "/help"), out); err != nil || !strings.Contains(out.text(), "help ran") || strings.Contains(out.text(), "Welcome") {
			t.Fatalf("err=%v output=%q, want the command's answer and no welcome", err, out.text())
		}
	})

	t.Run("ErrAdminOnly", func(t *testing.T) {
		c := echo("topup")
		c.Admin = true
		e := engineWith(t, bot.EngineOptions{Admins: []bot.Identity{"console:boss"}}, c)
		out := newRecorder(2000, time.Millisecond)
		if err := e.Handle(context.Background(), ev("1", "console:ann", "/topup"), out); bot.ErrorCode(err) != bot.EUNAUTHORIZED {
			t.Fatalf("a non-admin ran an admin command: %v %q", err, out.text())
		}
		out = newRecorder(2000, time.Millisecond)
		if err := e.Handle(context.Background(), ev("2", "console:boss", "/topup"), out); err != nil || !strings.Contains(out.text(), "topup ran") {
			t.Fatalf("the admin was refused: %v %q", err, out.text())
		}
	})

	t.Run("RateLimitRefillsWithTime", func(t *testing.T) {
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		e := engineWith(t, bot.EngineOptions{Limit: bot.RateLimit{PerMinute: 6, Burst: 2}, Now: func() time.Time { return now }}, echo("help"))
		run := func(id string) error {
			return e.Handle(context.Background(), ev(id, "console:ann", "/help"), newRecorder(2000, time.Millisecond))
		}
		if run("1") != nil || run("2") != nil {
			t.Fatal("the burst was refused")
		}
		out := newRecorder(2000, time.Millisecond)
		err := e.Handle(context.Background(), ev("3", "console:ann", "/help"), out)
		if bot.ErrorCode(err) != bot.ERATELIMIT || !strings.Contains(out.text(), "Try again in 10s") {
			t.Fatalf("err=%v output=%q, want a refusal saying 10s", err, out.text())
		}
		now = now.Add(10 * time.Second)
		if err := run("4"); err != nil {
			t.Fatalf("still refused after the refill: %v", err)
		}
		if err := e.Handle(context.Background(), ev("5", "console:bob", "/help"), newRecorder(2000, time.Millisecond)); err != nil {
			t.Fatalf("another user was limited by ann's bucket: %v", err)
		}
	})

	t.Run("PanicBecomesAnApologyWithReference", func(t *testing.T) {
		boom := &bot.Command{Name: "boom", Run: func(context.Context, *bot.Request) error { panic("bad input") }}
		e := engineWith(t, bot.EngineOptions{}, boom)
		out := newRecorder(2000, time.Millisecond)
		err := e.Handle(context.Background(), ev("1", "console:ann", "/boom"), out)
		if bot.ErrorCode(err) != bot.EINTERNAL || !strings.Contains(out.text(), "Sorry") || !strings.Contains(out.text(), "(ref ") {
			t.Fatalf("err=%v output=%q", err, out.text())
		}
	})

	t.Run("InternalErrorsDoNotLeak", func(t *testing.T) {
		leak := &bot.Command{Name: "leak", Run: func(context.Context, *bot.Request) error {
			return errors.New("dial tcp 10.0.0.7:5432: password=hunter2")
		}}
		e := engineWith(t, bot.EngineOptions{}, leak)
		out := newRecorder(2000, time.Millisecond)
		e.Handle(context.Background(), ev("1", "console:ann", "/leak"), out)
		if strings.Contains(out.text(), "hunter2") || !strings.Contains(out.text(), "Sorry") {
			t.Fatalf("the user saw %q", out.text())
		}
	})

	t.Run("DrainFinishesInFlightThenRefuses", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		slow := &bot.Command{Name: "slow", Run: func(ctx context.Context, req *bot.Request) error {
			close(started)
			<-release
			return req.Reply.Notice("finished")
		}}
		e := engineWith(t, bot.EngineOptions{}, slow, echo("help"))
		out := newRecorder(2000, time.Millisecond)
		done := make(chan struct{})
		go func() { e.Handle(context.Background(), ev("1", "console:ann", "/slow"), out); close(done) }()
		<-started
		drained := make(chan struct{})
		go func() { e.Drain(context.Background()); close(drained) }()
		// Once the drain has begun, a new event is refused with a note.
		later := newRecorder(2000, time.Millisecond)
		for i := 0; !strings.Contains(later.text(), "restarting"); i++ {
			e.Handle(context.Background(), ev(fmt.Sprint("later-", i), "console:bob", "/help"), later)
		}
		close(release)
		<-drained
		<-done
		if !strings.Contains(out.text(), "finished") {
			t.Fatalf("the answer in flight was not let finish: %q", out.text())
		}
	})

	t.Run("DrainWhileEventsArrive", func(t *testing.T) {
		// Events keep arriving while the bot drains, often with nothing in
		// flight: each is answered or refused, and the drain neither races
		// nor panics ("WaitGroup is reused before previous Wait has returned").
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		for round := 0; round < 50; round++ {
			e := engineWith(t, bot.EngineOptions{Logger: quiet}, echo("help"))
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						err := e.Handle(context.Background(), ev(fmt.Sprint(round, "-", g, "-", i), "console:ann", "/help"), newRecorder(2000, time.Millisecond))
						if err != nil && bot.ErrorCode(err) != bot.EUNAVAILABLE {
							t.Errorf("an event during the drain failed with %v", err)
						}
					}
				}()
			}
			e.Drain(context.Background())
			wg.Wait()
		}
	})

	t.Run("DrainTimeoutCancelsInFlight", func(t *testing.T) {
		started := make(chan struct{})
		stuck := &bot.Command{Name: "stuck", Run: func(ctx context.Context, req *bot.Request) error {
			close(started)
			<-ctx.Done()
			return req.Reply.Notice("cut short")
		}}
		e := engineWith(t, bot.EngineOptions{}, stuck)
		out := newRecorder(2000, time.Millisecond)
		done := make(chan struct{})
		go func() { e.Handle(context.Background(), ev("1", "console:ann", "/stuck"), out); close(done) }()
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the shutdown timeout has already passed
		e.Drain(ctx)
		<-done
		if !strings.Contains(out.text(), "cut short") {
			t.Fatalf("the command was not cancelled and let end its reply: %q", out.text())
		}
	})
}

// patient is an Output that waits for its turn under the rate limit.
type patient struct {
	*recorder
	mu    sync.Mutex
	waits []time.Duration
}

func (p *patient) Waiting(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waits = append(p.waits, d)
}

// TestPatientOutputWaitsItsTurn: over the rate limit, a patient output
// (the console) waits for the next token and every request runs; any other
// output is refused with the wait.
func TestPatientOutputWaitsItsTurn(t *testing.T) {
	// 1,200 a minute is one token every 50 ms: quick, and still real waits.
	e := engineWith(t, bot.EngineOptions{Limit: bot.RateLimit{PerMinute: 1200, Burst: 1}}, echo("help"))
	out := &patient{recorder: newRecorder(2000, time.Millisecond)}
	for i := range 4 {
		if err := e.Handle(context.Background(), bot.Event{ID: fmt.Sprint("p", i), Platform: "console", Identity: "console:ann", Text: "/help"}, out); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := strings.Count(out.text(), "help ran"); got != 4 {
		t.Fatalf("%d of 4 requests ran: %q", got, out.text())
	}
	out.mu.Lock()
	waits := len(out.waits)
	out.mu.Unlock()
	if waits < 3 {
		t.Fatalf("Waiting was told %d times, want once per request over the limit (3)", waits)
	}
	// A platform is still refused.
	plain := newRecorder(2000, time.Millisecond)
	e.Handle(context.Background(), bot.Event{ID: "q1", Platform: "discord", Identity: "discord:1", Text: "/help"}, plain)
	err := e.Handle(context.Background(), bot.Event{ID: "q2", Platform: "discord", Identity: "discord:1", Text: "/help"}, plain)
	if bot.ErrorCode(err) != bot.ERATELIMIT || !strings.Contains(plain.text(), "Try again in") {
		t.Fatalf("err=%v output=%q, want a refusal", err, plain.text())
	}
	// A request that gives up while it waits is told so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.Handle(context.Background(), bot.Event{ID: "r1", Platform: "console", Identity: "console:cy", Text: "/help"}, out)
	if err := e.Handle(ctx, bot.Event{ID: "r2", Platform: "console", Identity: "console:cy", Text: "/help"}, out); bot.ErrorCode(err) != bot.EUNAVAILABLE {
		t.Fatalf("a cancelled wait: %v", err)
	}
}
