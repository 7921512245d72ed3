package bot_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// quietOutput takes every message and keeps none.
type quietOutput struct{}

func (quietOutput) Post(context.Context, bot.Message) (string, error) { return "m", nil }
func (quietOutput) Edit(context.Context, string, bot.Message) error   { return nil }

// crowd sends one /noop from each of n distinct Discord users, one every
// step of the engine's clock, and returns the heap the engine keeps for
// them (bytes live after a collection, over what was live before).
func crowd(tb testing.TB, e *bot.Engine, clock *time.Time, n int, step time.Duration) uint64 {
	tb.Helper()
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := range n {
		*clock = clock.Add(step)
		ev := bot.Event{Platform: bot.PlatformDiscord, Identity: bot.Identity("discord:" + strconv.Itoa(100_000_000_000_000_000+i)), Text: "/noop"}
		if err := e.Handle(context.Background(), ev, quietOutput{}); err != nil {
			tb.Fatalf("user %d: %v", i, err)
		}
	}
	after := heap()
	runtime.KeepAlive(e)
	if after < before {
		return 0
	}
	return after - before
}

// limitedEngine is an engine with the default rate limit (10 a minute,
// bursts of 5: a bucket refills in 30 s), a noop command, users who all
// exist already, and a clock the test moves.
func limitedEngine(clock *time.Time) *bot.Engine {
	known := &users{ensure: func(_ context.Context, id bot.Identity) (bot.User, bool, error) {
		return bot.User{Identity: id}, false, nil
	}}
	noop := &bot.Command{Name: "noop", Run: func(context.Context, *bot.Request) error { return nil }}
	return bot.NewEngine(bot.EngineOptions{
		Users: known, Commands: []*bot.Command{noop},
		Parse:  func(bot.Event) (bot.Invocation, error) { return bot.Invocation{Name: "noop"}, nil },
		Limit:  bot.RateLimit{PerMinute: 10, Burst: 5},
		Now:    func() time.Time { return *clock },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// TestRateLimitMemoryStaysBounded: 50,000 distinct users, one every 20 ms
// for 1,000 s. A bucket left idle until it is full is dropped, so the
// engine keeps the last minute's users (about 3,000), not all of them:
// when no bucket was ever removed, these took 10 MB, and a million users
// 200 MB (BenchmarkRateLimitMillionUsers measures that).
func TestRateLimitMemoryStaysBounded(t *testing.T) {
	clock := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := limitedEngine(&clock)
	kept := crowd(t, e, &clock, 50_000, 20*time.Millisecond)
	if kept > 2<<20 {
		t.Fatalf("the engine keeps %.1f MB for 50,000 users' rate limits, most idle for minutes; want what the last minute's users need", float64(kept)/1e6)
	}
}

// BenchmarkRateLimitMillionUsers: the heap the rate limit keeps after a
// million distinct users, one every millisecond (heap-MB); ns/op is the
// million events through the engine.
func BenchmarkRateLimitMillionUsers(b *testing.B) {
	var kept uint64
	for b.Loop() {
		clock := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		kept = crowd(b, limitedEngine(&clock), &clock, 1_000_000, time.Millisecond)
	}
	b.ReportMetric(float64(kept)/1e6, "heap-MB")
}

// TestRateLimitEvictionNeverLoosensIt: a user who used up the burst is
// still refused while a crowd passes through (their bucket is not full,
// so it stays), and after an idle spell long enough to drop the bucket
// gets exactly the burst again, as a full bucket would give.
func TestRateLimitEvictionNeverLoosensIt(t *testing.T) {
	clock := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := limitedEngine(&clock)
	ask := func() error {
		return e.Handle(context.Background(), bot.Event{Platform: bot.PlatformDiscord, Identity: "discord:42", Text: "/noop"}, quietOutput{})
	}
	burst := func() int {
		n := 0
		for ask() == nil {
			n++
		}
		return n
	}
	if got := burst(); got != 5 {
		t.Fatalf("the burst let %d through, want 5", got)
	}
	// 25 s of other users, 200 a second: a token has come back (one per
	// 6 s) for each of four, and no more.
	crowd(t, e, &clock, 5000, 5*time.Millisecond)
	if got := burst(); got != 4 {
		t.Fatalf("after 25 s the user got %d through, want the 4 tokens that came back", got)
	}
	// Three minutes of others: the user's bucket filled and was dropped.
	crowd(t, e, &clock, 18000, 10*time.Millisecond)
	if got := burst(); got != 5 {
		t.Fatalf("after a long idle spell the user got %d through, want the burst of 5", got)
	}
	err := ask()
	if bot.ErrorCode(err) != bot.ERATELIMIT || !strings.Contains(bot.ErrorMessage(err), "Try again in 6s") {
		t.Fatalf("err=%v, want a refusal saying 6s", err)
	}
}
