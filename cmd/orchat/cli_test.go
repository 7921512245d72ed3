package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs orchat with args like the binary would and returns its exit
// status, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := m.Run(context.Background(), args)
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return code, out.String(), errb.String()
}

func TestLedgerCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sub", "orchat.db")

	t.Run("UnknownUserOnFreshDatabase", func(t *testing.T) {
		code, _, stderr := runCLI(t, nil, "balance", "console:alice", "--db", db)
		if code != exitUser || !strings.Contains(stderr, "console:alice is unknown") {
			t.Fatalf("exit=%d stderr=%q, want 1 and 'unknown'", code, stderr)
		}
	})

	t.Run("TopUpTwiceWithOneKeyCreditsOnce", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			if code, _, stderr := runCLI(t, nil, "--db", db, "topup", "console:alice", "500", "--key", "k1"); code != exitOK {
				t.Fatalf("topup %d: exit=%d stderr=%s", i, code, stderr)
			}
		}
		code, stdout, _ := runCLI(t, nil, "balance", "console:alice", "--db", db, "--json")
		if code != exitOK {
			t.Fatalf("balance exit=%d", code)
		}
		var b struct {
			Identity       string `json:"identity"`
			Balance        int64  `json:"balance"`
			Held           int64  `json:"held"`
			Available      int64  `json:"available"`
			FreeUsedToday  *int   `json:"free_used_today"`
			FreeLimitToday *int   `json:"free_limit_today"`
		}
		if err := json.Unmarshal([]byte(stdout), &b); err != nil {
			t.Fatalf("balance --json printed %q: %v", stdout, err)
		}
		if got, want := b.Balance, int64(15500); got != want {
			t.Fatalf("balance=%d, want %d (signup bonus plus one top-up)", got, want)
		}
		if b.Identity != "console:alice" || b.Available != 15500 || b.Held != 0 || b.FreeUsedToday == nil || b.FreeLimitToday == nil {
			t.Fatalf("balance --json = %s", stdout)
		}
	})

	t.Run("VerifyExitsZero", func(t *testing.T) {
		if code, stdout, stderr := runCLI(t, nil, "ledger", "verify", "--db", db); code != exitOK || !strings.Contains(stdout, "ledger OK") {
			t.Fatalf("exit=%d stdout=%q stderr=%q", code, stdout, stderr)
		}
	})

	t.Run("LedgerListsRowsNewestFirst", func(t *testing.T) {
		_, stdout, _ := runCLI(t, nil, "ledger", "console:alice", "--db", db, "--limit", "5")
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "topup +500") || !strings.Contains(lines[1], "signup +15000") {
			t.Fatalf("ledger printed %q", stdout)
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"ErrNegativeAmount", []string{"topup", "console:alice", "-5"}, exitUser, "must be positive"},
		{"ErrZeroAmount", []string{"topup", "console:alice", "0"}, exitUser, "must be positive"},
		{"ErrFractionalAmount", []string{"topup", "console:alice", "2.5"}, exitUser, "whole number"},
		{"ErrHugeAmount", []string{"topup", "console:alice", "1e30"}, exitUser, "over the limit"},
		{"ErrNotANumber", []string{"topup", "console:alice", "abc"}, exitUser, "not an amount"},
		{"ErrMalformedIdentity", []string{"topup", "discord:", "5"}, exitUser, "not a Discord user"},
		{"ErrSlackWithoutUser", []string{"balance", "slack:T1"}, exitUser, "not a Slack user"},
		{"ErrLongIdentity", []string{"balance", "console:" + strings.Repeat("a", 500)}, exitUser, "limit is 128"},
		{"ErrMissingArgs", []string{"topup"}, exitUsage, "usage: orchat topup"},
		{"ErrUnknownFlag", []string{"balance", "--frobnicate"}, exitUsage, "flag provided but not defined"},
		{"ErrUnknownCommand", []string{"blance"}, exitUsage, `unknown command "blance"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append(tt.args, "--db", db)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit=%d stderr=%q; want exit %d mentioning %q", code, stderr, tt.code, tt.want)
			}
		})
	}

	t.Run("BadInputChangedNothing", func(t *testing.T) {
		_, stdout, _ := runCLI(t, nil, "balance", "console:alice", "--db", db, "--json")
		if !strings.Contains(stdout, `"balance":15500`) {
			t.Fatalf("balance changed by refused commands: %s", stdout)
		}
	})

	t.Run("ErrNotADatabase", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.db")
		if err := writeFile(bad, "this is not sqlite"); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runCLI(t, nil, "balance", "console:alice", "--db", bad)
		if code != exitUser || !strings.Contains(stderr, "not an SQLite database") {
			t.Fatalf("exit=%d stderr=%q", code, stderr)
		}
	})
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o644)
}

// TestPoolCLI: the host funds a community's pool from the command line as
// pool:<community>; a guild's id, which has the shape of a user's, is
// refused as a user once the ledger knows the guild.
func TestPoolCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "orchat.db")
	const guild = "discord:123456789012345678"
	for i := 0; i < 2; i++ {
		code, stdout, stderr := runCLI(t, nil, "--db", db, "topup", "pool:"+guild, "20000", "--key", "fund-1", "--note", "season 1")
		if code != exitOK || !strings.Contains(stdout, "pool of "+guild) {
			t.Fatalf("topup %d of the pool: exit=%d stdout=%q stderr=%q", i, code, stdout, stderr)
		}
	}
	code, stdout, _ := runCLI(t, nil, "--db", db, "balance", "pool:"+guild, "--json")
	var p struct {
		Pool    string `json:"pool"`
		Balance int64  `json:"balance"`
		Funded  int64  `json:"funded"`
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil || code != exitOK {
		t.Fatalf("balance of the pool: exit=%d %q %v", code, stdout, err)
	}
	if p.Pool != guild || p.Balance != 20000 || p.Funded != 20000 {
		t.Fatalf("pool=%+v, want 20,000 funded once", p)
	}
	_, stdout, _ = runCLI(t, nil, "--db", db, "ledger", "pool:"+guild)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "fund +20000") || !strings.Contains(lines[0], "season 1") {
		t.Fatalf("ledger of the pool printed %q", stdout)
	}
	// The guild's id as a user: refused, with the pool's name.
	code, _, stderr := runCLI(t, nil, "--db", db, "topup", guild, "500")
	if code != exitUser || !strings.Contains(stderr, "is a community here, not a user") || !strings.Contains(stderr, "pool:"+guild) {
		t.Fatalf("topup of the guild as a user: exit=%d stderr=%q", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "--db", db, "balance", guild); code != exitUser || !strings.Contains(stderr, "not a user") {
		t.Fatalf("balance of the guild as a user: exit=%d stderr=%q", code, stderr)
	}
	if code, stdout, _ := runCLI(t, nil, "ledger", "verify", "--db", db); code != exitOK || !strings.Contains(stdout, "1 community pools with 1 rows") {
		t.Fatalf("verify: exit=%d %q", code, stdout)
	}
	for _, bad := range []string{"pool:discord:dm", "pool:console:alice", "pool:"} {
		if code, _, stderr := runCLI(t, nil, "--db", db, "topup", bad, "5"); code != exitUser || !strings.Contains(stderr, "not a pool") {
			t.Errorf("topup %s: exit=%d stderr=%q", bad, code, stderr)
		}
	}
}
