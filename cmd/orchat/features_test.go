package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchat/orchat/stack/stacktest"
)

// consoleRun runs `orchat console --json` in-process with the simulator,
// stdin lines from input, and returns what it printed.
func consoleRun(t *testing.T, input string, args ...string) []consoleMessage {
	t.Helper()
	var out, errb stacktest.SyncBuffer
	m := &Main{Stdin: strings.NewReader(input), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	args = append([]string{"console", "--json", "--simulate", "--multi-user"}, args...)
	if code := m.Run(t.Context(), args); code != exitOK {
		t.Fatalf("orchat %v exited %d:\n%s", args, code, errb.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return parseConsole(t, []byte(out.String()))
}

func texts(msgs []consoleMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Text + "\n" + m.Footer + "\n")
	}
	return b.String()
}

// TestLeaderboardRanksVotedModels: a vote on a compare shows up on the
// leaderboard, here and across communities.
func TestLeaderboardRanksVotedModels(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	var id string
	for _, m := range consoleRun(t, "ann> /compare models:google/gemini-2.5-flash,openai/gpt-5-mini Name a colour\n", "--db", db) {
		if m.Kind == "compare" {
			id = m.CompareID
		}
	}
	if id == "" {
		t.Fatal("no compare")
	}
	got := texts(consoleRun(t, "ben> /vote "+id+" B\ncat> /vote "+id+" B\nann> /leaderboard\n", "--db", db))
	here, everywhere, ok := strings.Cut(got, "Across every community")
	if !ok {
		t.Fatalf("leaderboard without a global part:\n%s", got)
	}
	for _, part := range []string{here, everywhere} {
		first := strings.Index(part, "1. openai/gpt-5-mini")
		second := strings.Index(part, "2. google/gemini-2.5-flash")
		if first < 0 || second < first || !strings.Contains(part, "2 won") {
			t.Fatalf("gpt-5-mini won both votes and should rank first with 2 wins:\n%s", got)
		}
	}
}

// TestLowBalanceNotice: a user is told once when a charge takes their
// balance below accounts.low_balance.
func TestLowBalanceNotice(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte("[accounts]\nlow_balance = 14990\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := texts(consoleRun(t, "ann> hello\nann> hello again\nann> and again\n", "--db", filepath.Join(dir, "t.db"), "--config", cfg))
	if n := strings.Count(got, "Heads up: your balance is down to"); n != 1 {
		t.Fatalf("low-balance notice shown %d times, want once:\n%s", n, got)
	}
}

// TestWholeCatalogOffline: offline, every model of OpenRouter's catalog
// can be chosen and answers from the simulator, not only the few the
// default tiers use.
func TestWholeCatalogOffline(t *testing.T) {
	dir := t.TempDir()
	got := texts(consoleRun(t, "ann> /model openai/gpt-4o-mini\nann> hello\nann> /ask model:qwen/qwen3-235b-a22b-2507 hello\n", "--db", filepath.Join(dir, "t.db")))
	for _, want := range []string{"openai/gpt-4o-mini", "[simulated openai/gpt-4o-mini] You said: hello.", "[simulated qwen/qwen3-235b-a22b-2507] You said: hello."} {
		if !strings.Contains(got, want) {
			t.Fatalf("want %q offline; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Unknown model") {
		t.Fatalf("a catalog model was unknown offline:\n%s", got)
	}
}

// TestAutoRouterLearnsFromVotes: a compare records its prompt's tier,
// the community's votes on it rate the tier's models, and once the tier
// has router.learn.min_votes votes the auto router answers with the model
// the community prefers and the footer says so; after an admin's
// /settings routing learn off, the router's own choice answers again.
func TestAutoRouterLearnsFromVotes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte("admins = [\"console:admin\"]\n[router.learn]\nmin_votes = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "t.db")
	const lite, nano = "google/gemini-2.5-flash-lite", "openai/gpt-4.1-nano"
	var id string
	for _, m := range consoleRun(t, "ann> /compare models:"+lite+","+nano+" Name a colour\n", "--db", db, "--config", cfg) {
		if m.Kind == "compare" {
			id = m.CompareID
		}
	}
	if id == "" {
		t.Fatal("no compare")
	}
	footer := func(msgs []consoleMessage, prompt string) string {
		t.Helper()
		for _, m := range msgs {
			if strings.Contains(m.Text, "You said: "+prompt) {
				return m.Footer
			}
		}
		t.Fatalf("no answer to %q:\n%s", prompt, texts(msgs))
		return ""
	}
	// One vote is below the threshold: the router's own choice answers.
	got := consoleRun(t, "ben> /vote "+id+" B\nann> Name a colour\n", "--db", db, "--config", cfg)
	if f := footer(got, "Name a colour"); !strings.HasPrefix(f, lite) || strings.Contains(f, "votes") {
		t.Fatalf("footer %q after one vote, want %s without a vote note", f, lite)
	}
	got = consoleRun(t, "cat> /vote "+id+" B\nann> Name a colour\n", "--db", db, "--config", cfg)
	if f := footer(got, "Name a colour"); !strings.HasPrefix(f, nano+" (chosen by this community's votes)") {
		t.Fatalf("footer %q after two votes, want %s chosen by the votes", f, nano)
	}
	got = consoleRun(t, "admin> /settings routing learn off\nann> Name a colour\n", "--db", db, "--config", cfg)
	if f := footer(got, "Name a colour"); !strings.HasPrefix(f, lite) || strings.Contains(f, "votes") {
		t.Fatalf("footer %q after routing learn off, want %s", f, lite)
	}
}
