package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// fastLoad makes a load test quick without changing what it checks: a
// 20 ms model that answers at once, stalls cut after 300 ms, and upstream
// Retry-After waits capped at 50 ms.
var fastLoad = []string{"--latency", "20ms", "--tokens-per-second", "0", "--idle-timeout", "300ms", "--max-retry-after", "50ms", "--ramp", "20ms"}

// runCLI runs orchat-loadtest with args like the binary would and returns
// its exit status, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), args)
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return code, out.String(), errb.String()
}

// loadtest runs `orchat-loadtest --json` with args through Main and
// returns its report, failing the test unless it exits 0.
func loadtest(t *testing.T, args ...string) loadReport {
	t.Helper()
	args = append(append([]string{"--json", "--db", filepath.Join(t.TempDir(), "load.db")}, fastLoad...), args...)
	code, stdout, stderr := runCLI(t, args...)
	var rep loadReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("exit %d; stdout is not one JSON report: %v\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	if code != 0 {
		t.Fatalf("exit %d, want 0: %s\nunexplained: %q\nledger problems: %q", code, strings.TrimSpace(stderr), rep.UnexplainedSamples, rep.LedgerProblems)
	}
	return rep
}

// checkClean asserts what every load test must show: each request ended
// with exactly one answer or one clear error, nothing unexplained, a
// sound ledger with no hold left open, and the ledger's charges equal to
// the upstream's bill, token for token.
func checkClean(t *testing.T, rep loadReport, requests int) {
	t.Helper()
	if rep.Requests != requests || rep.Answers+rep.ClearErrors != requests {
		t.Errorf("requests=%d answers=%d clear_errors=%d, want %d requests each answered or refused once", rep.Requests, rep.Answers, rep.ClearErrors, requests)
	}
	if rep.Unexplained != 0 {
		t.Errorf("unexplained_failures=%d, want 0: %q", rep.Unexplained, rep.UnexplainedSamples)
	}
	if !rep.LedgerOK || rep.OpenHolds != 0 || rep.FailedCharged != 0 {
		t.Errorf("ledger_ok=%v open_holds=%d failed_requests_charged=%d: %q", rep.LedgerOK, rep.OpenHolds, rep.FailedCharged, rep.LedgerProblems)
	}
	if rep.ChargedTokens != rep.BilledTokens || rep.ChargedTokens == 0 {
		t.Errorf("charged_tokens=%d billed_tokens=%d, want them equal and positive", rep.ChargedTokens, rep.BilledTokens)
	}
}

// TestLoadtest runs the load test in process with 30 % upstream faults,
// platform 429s on edits and a slow disk.
func TestLoadtest(t *testing.T) {
	rep := loadtest(t, "--users", "20", "--requests", "200", "--fail-rate", "0.3",
		"--edit-429-rate", "0.05", "--edit-429-wait", "5ms", "--db-delay", "200us")
	checkClean(t, rep, 200)
	if rep.Upstream.Faults == 0 || rep.Upstream.Requests <= 200 {
		t.Errorf("upstream: %d calls with %d faults; the fault mix was not exercised", rep.Upstream.Requests, rep.Upstream.Faults)
	}
	if rep.Compares == 0 || rep.Asks == 0 {
		t.Errorf("asks=%d compares=%d, want both", rep.Asks, rep.Compares)
	}
	if rep.Messages.Edit429s == 0 {
		t.Errorf("no edit was answered with a 429")
	}
	if rep.PeakInFlight < 2 {
		t.Errorf("peak_in_flight=%d: the users did not run concurrently", rep.PeakInFlight)
	}
	// The community's allowance refilled members from its pool among the
	// requests, every hold counted against its daily budget.
	if rep.AllowanceRuns < 2 || rep.PoolGranted == 0 {
		t.Errorf("allowance_runs=%d pool_granted=%d: the allowance did not refill members during the run", rep.AllowanceRuns, rep.PoolGranted)
	}
}

// TestLoadtestBudgets runs each platform with a member's daily budget
// small enough that users reach it: they are refused with the reset time,
// while the pool refills them and every billed token is charged once.
func TestLoadtestBudgets(t *testing.T) {
	for _, platform := range []string{"console", "discord", "slack"} {
		t.Run(platform, func(t *testing.T) {
			t.Parallel()
			rep := loadtest(t, "--platform", platform, "--users", "5", "--requests", "60", "--fail-rate", "0.2", "--member-budget", "3000")
			checkClean(t, rep, 60)
			if rep.BudgetRefusals == 0 {
				t.Errorf("no request was refused by the member budget of 3,000 tokens: %v", rep.ClearErrorKinds)
			}
			if rep.PoolGranted == 0 {
				t.Errorf("the pool gave nothing")
			}
		})
	}
}

// TestLoadtestPlatforms drives the real Discord and Slack adapters against
// their fakes under the same fault mix.
func TestLoadtestPlatforms(t *testing.T) {
	for _, platform := range []string{"discord", "slack"} {
		t.Run(platform, func(t *testing.T) {
			t.Parallel()
			args := []string{"--platform", platform, "--users", "6", "--requests", "48", "--fail-rate", "0.3"}
			if platform == "discord" {
				args = append(args, "--edit-429-rate", "0.05", "--edit-429-wait", "10ms")
			}
			rep := loadtest(t, args...)
			checkClean(t, rep, 48)
			if rep.Platform != platform || rep.HandlerRuns != 48 {
				t.Errorf("platform=%s handler_runs=%d, want %s and 48", rep.Platform, rep.HandlerRuns, platform)
			}
		})
	}
}

// TestLoadtestFirstVisible reports, per platform, the first-visible-token
// delay of every answered ask, with edits paced, native streams (Slack) or
// chat.update, and the platform's 429s in the mix and counted.
func TestLoadtestFirstVisible(t *testing.T) {
	for _, c := range []struct{ name, platform, stream string }{
		{"discord", "discord", ""}, {"slack-native", "slack", "native"}, {"slack-update", "slack", "update"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--platform", c.platform, "--users", "6", "--requests", "24", "--compare-share", "0",
				"--tokens-per-second", "400", "--edit-interval", "50ms", "--edit-429-rate", "0.1", "--edit-429-wait", "10ms"}
			if c.stream != "" {
				args = append(args, "--slack-stream", c.stream)
			}
			rep := loadtest(t, args...)
			checkClean(t, rep, 24)
			if rep.FirstVisibleN != rep.Answers || rep.FirstVisibleN == 0 {
				t.Errorf("first_visible_n=%d, want one per answered ask (%d)", rep.FirstVisibleN, rep.Answers)
			}
			if rep.FirstVisibleP50 <= 0 || rep.FirstVisibleP99 < rep.FirstVisibleP50 || rep.FirstVisibleMax < rep.FirstVisibleP99 {
				t.Errorf("first visible p50 %dµs p99 %dµs max %dµs: not a distribution", rep.FirstVisibleP50, rep.FirstVisibleP99, rep.FirstVisibleMax)
			}
			if rep.Messages.Platform429s == 0 {
				t.Errorf("platform_429s=0: the 429s were not in the mix")
			}
		})
	}
}

// TestLoadtestDuplicates delivers every Discord interaction and Slack
// event twice and three times while other users' answers stream: each
// gets one answer and is charged once, and the adapter drops the copies
// before they reach the engine.
func TestLoadtestDuplicates(t *testing.T) {
	for _, platform := range []string{"discord", "slack", "console"} {
		for _, n := range []string{"2", "3"} {
			t.Run(platform+"/"+n, func(t *testing.T) {
				t.Parallel()
				rep := loadtest(t, "--platform", platform, "--duplicates", n, "--users", "5", "--requests", "30", "--fail-rate", "0.3")
				checkClean(t, rep, 30)
				k := int(n[0] - '0')
				if rep.Deliveries != 30*k {
					t.Errorf("deliveries=%d, want %d", rep.Deliveries, 30*k)
				}
				want := 30 // the adapter drops the copies
				if platform == "console" {
					want = 30 * k // the engine drops them
				}
				if rep.HandlerRuns != want {
					t.Errorf("handler_runs=%d, want %d", rep.HandlerRuns, want)
				}
			})
		}
	}
}

// TestLoadtestIdle builds the stack without sending anything: the report
// is clean and empty.
func TestLoadtestIdle(t *testing.T) {
	rep := loadtest(t, "--users", "3", "--requests", "0")
	if rep.Requests != 0 || rep.Unexplained != 0 || !rep.LedgerOK || rep.PeakRSS <= 0 {
		t.Errorf("requests=%d unexplained=%d ledger_ok=%v peak_rss_mb=%g", rep.Requests, rep.Unexplained, rep.LedgerOK, rep.PeakRSS)
	}
}

func TestLoadtestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--platform", "irc"},
		{"--fail-rate", "1.5"},
		{"--duplicates", "4"},
		{"--requests", "10", "--duration", "1s"},
		{"--compare-models", "a/b"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "--") {
			t.Errorf("orchat-loadtest %v: exit %d, stderr %q; want exit %d naming the flag", args, code, stderr, exitUsage)
		}
	}
	db := filepath.Join(t.TempDir(), "live.db")
	if err := os.WriteFile(db, []byte("SQLite format 3\x00 not empty"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "--db", db)
	if code != exitUser || !strings.Contains(stderr, "already exists") {
		t.Errorf("loadtest on an existing database: exit %d, stderr %q; want a refusal", code, stderr)
	}
}

// BenchmarkEndToEnd is the whole bot at work: 200 concurrent users asking
// 10 questions each through the in-process adapter, the engine, the
// commands, the router over loopback HTTP to the simulator (50 ms to the
// first token, then 200 tokens/s) and the SQLite ledger on disk. One
// iteration is that whole run (so -benchtime 3x runs it three times). It
// reports the bot's own time per answer, pooled over the iterations
// (overhead_*_us of loadReport), and fails unless every answer came and
// the ledger matches the upstream's bill afterwards.
func BenchmarkEndToEnd(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(200)) // as main does
	}
	ctx := context.Background()
	var overheads []time.Duration
	var answers int
	var busy time.Duration
	b.StopTimer()
	for range b.N {
		m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
		if err := m.loadConfig(""); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		m.Config.Accounts.Database = filepath.Join(dir, "bench.db")
		m.Config.Router.CatalogCache = filepath.Join(dir, "models.json")
		o := loadOptions{
			Users: 200, Requests: 2000, Compare: defaultCompareModels, Platform: "console", Duplicates: 1,
			Latency: 50 * time.Millisecond, TokensPerSecond: 200, Seed: 1, MaxTokens: 256, IdleTimeout: 5 * time.Second,
			EditInterval: time.Millisecond, Ramp: 200 * time.Millisecond, TopUp: 10_000_000, HangAfter: time.Minute, LogLevel: "error",
		}
		lt, err := newLoadRun(ctx, m, o)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		elapsed := lt.drive(ctx)
		b.StopTimer()
		rep, err := lt.finish(ctx, elapsed)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.clean() || rep.Answers != rep.Requests {
			b.Fatalf("answers=%d of %d, unexplained=%d %q, ledger_ok=%v %q, charged=%d billed=%d",
				rep.Answers, rep.Requests, rep.Unexplained, rep.UnexplainedSamples, rep.LedgerOK, rep.LedgerProblems, rep.ChargedTokens, rep.BilledTokens)
		}
		overheads = append(overheads, rep.overheads...)
		answers += rep.Answers
		busy += elapsed
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(overheads, 0.50).Microseconds()), "overhead-p50-us")
	b.ReportMetric(float64(percentile(overheads, 0.99).Microseconds()), "overhead-p99-us")
	b.ReportMetric(float64(answers)/busy.Seconds(), "answers/s")
}
