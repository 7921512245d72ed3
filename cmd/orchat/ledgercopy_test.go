package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
)

// TestLedgerCopyCLI moves a community's SQLite ledger to PostgreSQL the
// way the README says, and checks with the same commands that nothing
// changed: ledger verify says the same before and after, balances match,
// the password never shows, and a second copy is refused.
func TestLedgerCopyCLI(t *testing.T) {
	const password = "n0t-For-Logs"
	u, err := url.Parse(postgrestest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password) // the test server trusts local logins
	pg := u.String()
	file := filepath.Join(t.TempDir(), "orchat.db")

	run := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, args...)
		if strings.Contains(stdout+stderr, password) {
			t.Fatalf("orchat %s showed the password:\n%s%s", strings.Join(args, " "), stdout, stderr)
		}
		return code, stdout, stderr
	}
	mustRun := func(env map[string]string, args ...string) string {
		t.Helper()
		code, stdout, stderr := run(env, args...)
		if code != exitOK {
			t.Fatalf("orchat %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}

	for _, id := range []string{"console:alice", "console:bob", "discord:123456789012345678"} {
		mustRun(nil, "--db", file, "topup", id, "2,500", "--key", "k-"+id)
	}
	s, err := accounts.Open(file, accounts.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		h, err := s.Reserve(t.Context(), "console:alice", 300, "")
		if err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if _, err := s.Settle(t.Context(), h.ID, bot.Charge{Amount: int64(100 + i), Model: "openai/gpt-5"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()

	before := mustRun(nil, "--db", file, "ledger", "verify")
	if !strings.Contains(before, "3 users, 10 entries, 1 open holds") {
		t.Fatalf("ledger verify of the file: %s", before)
	}

	if code, _, stderr := run(nil, "--db", file, "ledger", "copy"); code != exitUsage || !strings.Contains(stderr, "--to") {
		t.Fatalf("ledger copy without --to: exit %d, %s", code, stderr)
	}
	out := mustRun(nil, "--db", file, "ledger", "copy", "--to", pg)
	if !strings.Contains(out, "Copied "+file) || !strings.Contains(out, "3 users, 10 entries") || !strings.Contains(out, "OK on both") {
		t.Fatalf("ledger copy printed:\n%s", out)
	}

	// The copy answers the same, through the variable the README names.
	env := map[string]string{"ORCHAT_DATABASE_URL": pg}
	if after := mustRun(env, "ledger", "verify"); after != before {
		t.Fatalf("ledger verify after the copy:\n%s\nbefore:\n%s", after, before)
	}
	for _, id := range []string{"console:alice", "console:bob"} {
		if a, b := mustRun(nil, "--db", file, "balance", id, "--json"), mustRun(env, "balance", id, "--json"); a != b {
			t.Fatalf("%s: %s in the copy, %s in the file", id, b, a)
		}
	}
	if out := mustRun(env, "migrate"); !strings.Contains(out, "xxxxx@") || !strings.Contains(out, "is at schema version") {
		t.Fatalf("orchat migrate on PostgreSQL printed %q", out)
	}

	code, _, stderr := run(nil, "--db", file, "ledger", "copy", "--to", pg)
	if code != exitUser || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "3 users") {
		t.Fatalf("a second copy: exit %d, %s", code, stderr)
	}
}
