package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the test reads the crashed file itself

	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestCrashWithAnswersInFlight is issue 8's crash test: the real binary
// answers 100 questions at once from 20 users against a slow upstream and is
// killed with SIGKILL mid-answer. After a restart no token is lost: the
// expired holds are released, `orchat ledger verify` passes, SQLite's
// integrity check is ok, and every balance is the signup bonus minus
// exactly the charges that were settled before the crash.
func TestCrashWithAnswersInFlight(t *testing.T) {
	const (
		users = 20
		quick = 1 // per user: answered and settled before the kill
		slow  = 5 // per user: in flight at the kill
		// bonus pays for five holds at once on any tier the auto router
		// may choose (o4-mini's worst case, with room to think in its
		// 8,192-token cap, is ~36,000 tokens a question).
		bonus   = 250000
		holdTTL = 3 * time.Second
	)
	bin := orchatBinary(t)
	// Every answer takes an hour to start, except the ones marked quick.
	sim := openroutertest.MustStart(t, openroutertest.Options{
		Latency: time.Hour,
		FaultFunc: func(r *openroutertest.Request) *openroutertest.Fault {
			if last := r.Messages[len(r.Messages)-1]; strings.HasPrefix(last.Content, "quick") {
				return &openroutertest.Fault{TTFT: time.Millisecond}
			}
			return nil
		},
	})

	dir := t.TempDir()
	db := filepath.Join(dir, "orchat.db")
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[accounts]
signup_bonus = %d
hold_ttl = %q

[bot]
rate_limit_per_minute = 0
`, bonus, holdTTL.String())), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", cfg, "--db", db, "--upstream", sim.URL()}
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, append(args, common...)...)
		cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err != nil && code < 0 {
			t.Fatalf("orchat %v: %v", args, err)
		}
		return code, out.String(), errb.String()
	}

	// 1. Start the console and keep its input open.
	cmd := exec.Command(bin, append([]string{"console", "--json", "--parallel", "100", "--multi-user"}, common...)...)
	cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr stacktest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var replies atomic.Int64
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m consoleMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Kind == "reply" && m.Status == "done" {
				replies.Add(1) // printed after its charge was settled
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	send := func(lines []string) {
		t.Helper()
		if _, err := io.WriteString(stdin, strings.Join(lines, "\n")+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case err := <-exited:
				t.Fatalf("the console exited (%v) while waiting for %s; stderr:\n%s", err, what, stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (upstream saw %d requests, %d replies printed); stderr:\n%s",
					what, sim.Requests(), replies.Load(), stderr.String())
			}
		}
	}
	name := func(u int) string { return fmt.Sprintf("u%02d", u) }

	var lines []string
	for u := range users {
		for i := range quick {
			lines = append(lines, fmt.Sprintf("%s> quick question %d from %s", name(u), i, name(u)))
		}
	}
	send(lines)
	waitFor("the quick answers to be settled", func() bool { return replies.Load() == users*quick })

	lines = lines[:0]
	for i := range slow {
		for u := range users {
			lines = append(lines, fmt.Sprintf("%s> slow question %d from %s: explain the history of the universe", name(u), i, name(u)))
		}
	}
	send(lines)
	waitFor("100 answers in flight", func() bool { return sim.Requests() == users*(quick+slow) })

	// 2. kill -9 mid-answer.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the console ended with %v, want killed; stderr:\n%s", err, stderr.String())
	}
	if got := replies.Load(); got != users*quick {
		t.Fatalf("%d replies before the kill, want only the %d quick ones", got, users*quick)
	}
	if ok := integrityCheck(t, db); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check of the crashed file: %q", ok)
	}
	if open := openHolds(t, db); open != users*slow {
		t.Fatalf("%d holds open in the crashed file, want the %d answers in flight", open, users*slow)
	}

	// 3. Restart until the holds have expired and start-up released them.
	// Every `orchat ledger verify` opens the store, which releases expired
	// holds; until then it still sees them open.
	type verifyReport struct {
		OK       bool     `json:"ok"`
		Users    int      `json:"users"`
		Holds    int      `json:"holds"`
		Problems []string `json:"problems"`
	}
	var rep verifyReport
	for deadline := time.Now().Add(holdTTL + 20*time.Second); ; {
		code, out, errOut := run("", "ledger", "verify", "--json")
		if code != exitOK {
			t.Fatalf("ledger verify after the crash: exit %d\n%s%s", code, out, errOut)
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("ledger verify --json printed %q: %v", out, err)
		}
		if !rep.OK || len(rep.Problems) > 0 {
			t.Fatalf("ledger verify: %+v", rep)
		}
		if rep.Holds == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d holds still open %s after the crash (hold_ttl %s)", rep.Holds, holdTTL+20*time.Second, holdTTL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rep.Users != users {
		t.Errorf("ledger verify counted %d users, want %d", rep.Users, users)
	}
	if ok := integrityCheck(t, db); ok != "ok" {
		t.Fatalf("PRAGMA integrity_check after the restart: %q", ok)
	}
	if open := openHolds(t, db); open != 0 {
		t.Fatalf("%d holds still open in the database", open)
	}

	// 4. Every balance is the bonus minus exactly what was settled.
	for u := range users {
		id := "console:" + name(u)
		code, out, errOut := run("", "balance", id, "--json")
		if code != exitOK {
			t.Fatalf("balance %s: exit %d\n%s", id, code, errOut)
		}
		var b struct {
			Balance, Held, Available int64
		}
		if err := json.Unmarshal([]byte(out), &b); err != nil {
			t.Fatalf("balance --json printed %q: %v", out, err)
		}
		code, out, errOut = run("", "ledger", id, "--json", "--limit", "10000")
		if code != exitOK {
			t.Fatalf("ledger %s: exit %d\n%s", id, code, errOut)
		}
		var rows []struct {
			Kind   string `json:"kind"`
			Amount int64  `json:"amount"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("ledger --json printed %q: %v", out, err)
		}
		var settled int64
		charges := 0
		for _, r := range rows {
			switch r.Kind {
			case "signup":
				if r.Amount != bonus {
					t.Errorf("%s: signup row of %d, want %d", id, r.Amount, bonus)
				}
			case "charge":
				settled += -r.Amount
				charges++
			default:
				t.Errorf("%s: unexpected %s row of %d", id, r.Kind, r.Amount)
			}
		}
		if charges != quick || settled <= 0 {
			t.Errorf("%s: %d charges of %d tokens in all, want %d (only the answers finished before the crash)", id, charges, settled, quick)
		}
		if b.Held != 0 || b.Available != b.Balance {
			t.Errorf("%s: %d tokens still held (balance %d, available %d)", id, b.Held, b.Balance, b.Available)
		}
		if got, want := b.Balance, bonus-settled; got != want {
			t.Errorf("%s: balance=%d, want the %d bonus minus the %d settled = %d", id, got, bonus, settled, want)
		}
	}

	// 5. The bot works again on the same file.
	code, out, errOut := run("u00> /balance\n", "console", "--json", "--multi-user")
	if code != exitOK || !strings.Contains(out, "**Balance:**") || strings.Contains(out, "held for answers in progress") {
		t.Fatalf("console after the crash: exit %d\n%s%s", code, out, errOut)
	}
}

// openHolds counts the holds of the file that are still open, read-only.
func openHolds(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM holds WHERE state = 'open'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// integrityCheck runs SQLite's own consistency check on the file, read-only.
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res []string
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		res = append(res, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(res, "; ")
}

// TestCrashHoldsReleasedAtNextStart is issue 12's "holds after a crash":
// the real binary is killed with SIGKILL with ten answers in flight, and
// the next start of the same instance frees their holds at once (and says
// so), not after the 15-minute hold_ttl.
func TestCrashHoldsReleasedAtNextStart(t *testing.T) {
	const inFlight = 10
	bin := orchatBinary(t)
	sim := openroutertest.MustStart(t, openroutertest.Options{Latency: time.Hour})
	dir := t.TempDir()
	db := filepath.Join(dir, "orchat.db")
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte("[accounts]\nsignup_bonus = 1000000\n\n[bot]\nrate_limit_per_minute = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", cfg, "--db", db, "--upstream", sim.URL()}

	cmd := exec.Command(bin, append([]string{"console", "--json", "--parallel", "20", "--multi-user"}, common...)...)
	cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr stacktest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var lines []string
	for i := range inFlight {
		lines = append(lines, fmt.Sprintf("u%02d> a slow question %d", i, i))
	}
	if _, err := io.WriteString(stdin, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); sim.Requests() < inFlight; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d answers reached the upstream; stderr:\n%s", sim.Requests(), inFlight, stderr.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if open := openHolds(t, db); open != inFlight {
		t.Fatalf("%d holds open after the kill, want the %d answers in flight", open, inFlight)
	}

	// The next start, long before hold_ttl (15 minutes), frees them.
	next := exec.Command(bin, append([]string{"console", "--json", "--multi-user"}, common...)...)
	next.Env = append(os.Environ(), "OPENROUTER_API_KEY=")
	next.Stdin = strings.NewReader("u00> /balance\n")
	var out, errOut bytes.Buffer
	next.Stdout, next.Stderr = &out, &errOut
	if err := next.Run(); err != nil {
		t.Fatalf("the next start: %v\n%s%s", err, out.String(), errOut.String())
	}
	if open := openHolds(t, db); open != 0 {
		t.Fatalf("%d holds still open after the next start, want 0 (released at start, not after the TTL)\n%s", open, errOut.String())
	}
	if log := errOut.String(); !strings.Contains(log, "holds of a previous boot released") || !strings.Contains(log, fmt.Sprintf("holds=%d", inFlight)) {
		t.Errorf("the next start did not log the %d holds it released:\n%s", inFlight, log)
	}
	if strings.Contains(out.String(), "held for answers in progress") {
		t.Errorf("u00's balance still shows tokens held:\n%s", out.String())
	}
}
