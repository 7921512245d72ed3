package accounts_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
)

// benchChildEnv names the database a re-executed test binary runs
// reserve + settle pairs on, as one of several orchat processes
// (BenchmarkReserveSettleProcessesPostgres). ORCHAT_ACCOUNTS_BENCH_PAIRS
// says how many, ORCHAT_ACCOUNTS_BENCH_USERS over how many users.
const benchChildEnv = "ORCHAT_ACCOUNTS_BENCH_DB"

// benchWorkers is the goroutines of one process, as many answers in
// flight as one orchat process has under load.
const benchWorkers = 16

// benchChild opens its own store (its own pool), says "ready", waits for
// the parent's go, runs its pairs from benchWorkers goroutines and prints
// "done"; errors go to stderr and fail it.
func benchChild(db string) int {
	ctx := context.Background()
	opts := accounts.DefaultOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := accounts.Open(db, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	pairs, _ := strconv.Atoi(os.Getenv("ORCHAT_ACCOUNTS_BENCH_PAIRS"))
	users, _ := strconv.Atoi(os.Getenv("ORCHAT_ACCOUNTS_BENCH_USERS"))
	prefix := os.Getenv("ORCHAT_ACCOUNTS_BENCH_PREFIX")
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 1
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range benchWorkers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(pairs) {
					return
				}
				key := prefix + strconv.FormatInt(n, 10)
				h, err := s.Reserve(ctx, bot.Identity("console:user"+strconv.FormatInt(n%int64(users), 10)), 100, "event-"+key)
				if err == nil {
					_, err = s.Settle(ctx, h.ID, benchCharge("gen-"+key))
				}
				if err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 1
	}
	fmt.Println("done")
	return 0
}

// runProcesses runs procs child processes of pairs pairs in all on dsn,
// started and connected before the clock starts, and returns how long
// the pairs took.
func runProcesses(b *testing.B, dsn string, procs, pairs, users int, round string) time.Duration {
	b.Helper()
	type child struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	children := make([]child, procs)
	for i := range children {
		cmd, in, out := startChild(b, os.Stderr, benchChildEnv+"="+dsn,
			"ORCHAT_ACCOUNTS_BENCH_PAIRS="+strconv.Itoa(pairs/procs),
			"ORCHAT_ACCOUNTS_BENCH_USERS="+strconv.Itoa(users),
			fmt.Sprintf("ORCHAT_ACCOUNTS_BENCH_PREFIX=%s-%d-", round, i))
		children[i] = child{cmd, in, out}
	}
	for _, c := range children {
		if line, err := c.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
			b.Fatalf("a child process did not get ready: %q %v", line, err)
		}
	}
	start := time.Now()
	for _, c := range children {
		if _, err := io.WriteString(c.in, "go\n"); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range children {
		if line, err := c.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "done" {
			b.Fatalf("a child process failed: %q %v", line, err)
		}
	}
	took := time.Since(start)
	for _, c := range children {
		if err := c.cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	return took
}

// BenchmarkReserveSettleProcessesPostgres is issue 14's parallel figure:
// reserve + settle pairs a second from three real processes on one
// PostgreSQL database (each its own store, pool and 16 goroutines, over
// 64 users), and, in the same run on the same database, from one such
// process alone. pairs/s is the three processes', one_process_pairs/s
// the single one's, and scaling their ratio. b.N is the pairs of each
// half.
func BenchmarkReserveSettleProcessesPostgres(b *testing.B) {
	const users = 64
	_, _, dsn := benchPostgres(b, 1, users)
	n := max(b.N, 300)
	n -= n % 3
	one := runProcesses(b, dsn, 1, n, users, fmt.Sprintf("one%d", b.N))
	three := runProcesses(b, dsn, 3, n, users, fmt.Sprintf("three%d", b.N))
	b.ReportMetric(float64(n)/three.Seconds(), "pairs/s")
	b.ReportMetric(float64(n)/one.Seconds(), "one_process_pairs/s")
	b.ReportMetric(one.Seconds()/three.Seconds(), "scaling")
	b.ReportMetric(0, "ns/op")
}
