package accounts_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
)

// childEnv names the database a re-executed test binary works on as one
// of several processes (TestAcrossProcesses).
const childEnv = "ORCHAT_ACCOUNTS_CHILD_DB"

func TestMain(m *testing.M) {
	if db := os.Getenv(childEnv); db != "" {
		os.Exit(child(db))
	}
	if db := os.Getenv(benchChildEnv); db != "" {
		os.Exit(benchChild(db))
	}
	os.Exit(m.Run())
}

// childReport is what one process did, printed as JSON on its stdout.
type childReport struct {
	Created  bool
	Charged  int64
	Settled  int
	Refused  int
	NewEvent int
	Allowed  int
	Lead     bool
	Errors   []string
}

// child is one process of TestAcrossProcesses: it opens the store (the
// first processes migrate the new database together), waits for the
// parent's go on stdin, then races its siblings at everything a user's
// messages make the ledger do.
func child(db string) int {
	ctx := context.Background()
	opts := accounts.DefaultOptions()
	opts.Instance = "proc-" + os.Getenv("ORCHAT_ACCOUNTS_CHILD_ID")
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := accounts.Open(db, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	go1 := make([]byte, 1)
	if _, err := os.Stdin.Read(go1); err != nil { // the parent's go
		return 1
	}
	defer os.Stdin.Read(go1) // stay alive, holding what it holds, until the parent has every report
	var rep childReport
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		rep.Errors = append(rep.Errors, err.Error())
	}
	_, rep.Created, err = s.EnsureUser(ctx, alice)
	if err != nil {
		fail(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				h, err := s.Reserve(ctx, alice, 250, "")
				if bot.ErrorCode(err) == bot.EINSUFFICIENT {
					mu.Lock()
					rep.Refused++
					mu.Unlock()
					return
				} else if err != nil {
					fail(err)
					return
				}
				e, err := s.Settle(ctx, h.ID, bot.Charge{Amount: int64(50 + (g*31+j*17)%201), Model: "m",
					GenerationID: fmt.Sprintf("gen-%s-%d-%d", opts.Instance, g, j)})
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				rep.Charged -= e.Amount
				rep.Settled++
				mu.Unlock()
			}
		})
	}
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				first, err := s.SeenEvent(ctx, fmt.Sprintf("slack:event:Ev%d", (i+g*13)%50), time.Now())
				if err != nil {
					fail(err)
					return
				}
				_, ok, err := s.TakeToken(ctx, string(alice), bot.RateLimit{PerMinute: 0.001, Burst: 10}, time.Now())
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				if first {
					rep.NewEvent++
				}
				if ok {
					rep.Allowed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rep.Lead = s.TryLead(ctx, "scheduler", opts.Instance, time.Minute) == nil
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// TestAcrossProcesses runs three real processes (this test binary,
// re-executed) on one new database: they migrate it together, race the
// first contact of one user, spend her balance from 24 goroutines, see 50
// event ids, share one rate-limit bucket and try to lead. Exactly one
// signs her up, the charges add up to her balance and never past it, each
// event is new once, the bucket lets its burst through once, and one of
// the three (alive together) leads.
func TestAcrossProcesses(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		db := e.database(t)
		var cmds []*exec.Cmd
		var stdouts []*bufio.Reader
		var stderrs []*bytes.Buffer
		var stdins []io.WriteCloser
		for i := range 3 {
			stderr := &bytes.Buffer{}
			cmd, in, out := startChild(t, stderr, childEnv+"="+db, "ORCHAT_ACCOUNTS_CHILD_ID="+strconv.Itoa(i))
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			cmds, stdouts, stderrs, stdins = append(cmds, cmd), append(stdouts, out), append(stderrs, stderr), append(stdins, in)
		}
		// Wait until every process has opened the store, then let them go
		// at once.
		for i, out := range stdouts {
			if line, err := out.ReadString('\n'); line != "ready\n" {
				t.Fatalf("process %d did not open the store: %q, %v", i, line, err)
			}
		}
		for _, in := range stdins {
			if _, err := in.Write([]byte("g")); err != nil {
				t.Fatal(err)
			}
		}
		// Each process reports and stays alive until all have reported,
		// so the leaders counted were alive at the same time.
		reports := make([][]byte, len(cmds))
		for i, out := range stdouts {
			line, err := out.ReadString('\n')
			if err != nil {
				t.Fatalf("process %d: %v", i, err)
			}
			reports[i] = []byte(line)
		}
		for _, in := range stdins {
			in.Close()
		}
		var total childReport
		created, leaders := 0, 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("process %d: %v\n%s", i, err, stderrs[i])
			}
			var rep childReport
			if err := json.Unmarshal(reports[i], &rep); err != nil {
				t.Fatalf("process %d printed %q: %v\n%s", i, reports[i], err, stderrs[i])
			}
			if len(rep.Errors) > 0 {
				t.Fatalf("process %d failed: %v", i, rep.Errors)
			}
			if rep.Created {
				created++
			}
			if rep.Lead {
				leaders++
			}
			total.Charged += rep.Charged
			total.Settled += rep.Settled
			total.NewEvent += rep.NewEvent
			total.Allowed += rep.Allowed
		}
		if created != 1 {
			t.Fatalf("%d processes signed the user up, want 1", created)
		}
		if total.NewEvent != 50 || total.Allowed != 10 || leaders != 1 {
			t.Fatalf("across 3 processes: %d new events (want 50), %d requests through a burst of 10, %d leaders (want 1)",
				total.NewEvent, total.Allowed, leaders)
		}
		s := MustOpenPath(t, db, testOptions())
		b, err := s.Balance(t.Context(), alice)
		if err != nil {
			t.Fatal(err)
		}
		if total.Charged > 15_000 || b.Balance != 15_000-total.Charged || b.Held != 0 || total.Settled == 0 {
			t.Fatalf("charged %d in %d settles; balance %+v", total.Charged, total.Settled, b)
		}
		if rep, err := s.Verify(t.Context()); err != nil || !rep.OK() {
			t.Fatalf("Verify=%+v, %v", rep, err)
		}
	})
}

// startChild starts this test binary again as a child process (running no
// test of its own: env says what it does), with its stdin and stdout piped
// to the caller and its stderr to stderr.
func startChild(tb testing.TB, stderr io.Writer, env ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, in, bufio.NewReader(out)
}
