package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack/slacktest"
)

// startSlackHTTP runs `orchat run` in Slack's HTTP mode on a fake Slack,
// the health and metrics server (and /slack/events) on a free port, and
// returns its base URL and signing secret; it stops with the test.
func startSlackHTTP(tb testing.TB) (base, signingSecret string) {
	tb.Helper()
	dir := tb.TempDir()
	apiKey, signing := secret("sk-or-v1-"), secret("slack-signing-")
	sim := openroutertest.MustStart(tb, openroutertest.Options{APIKey: apiKey})
	sl := slacktest.MustStart(tb, slacktest.Options{})
	cfgPath := filepath.Join(dir, "orchat.toml")
	cfg := fmt.Sprintf("[openrouter]\nbase_url = %q\n[accounts]\ndatabase = %q\n[slack]\nmode = \"http\"\napi_url = %q\n[http]\naddr = \"127.0.0.1:0\"\n[log]\nlevel = \"error\"\n",
		sim.URL(), filepath.Join(dir, "orchat.db"), sl.APIURL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"OPENROUTER_API_KEY": apiKey, "SLACK_BOT_TOKEN": sl.BotToken, "SLACK_SIGNING_SECRET": signing}
	return startRun(tb, cfgPath, env), signing
}

// closedByServer writes raw to a new connection to addr and reads until
// the bot closes it, returning what it answered; it fails the test if the
// connection is still open after 30 s (a slow client must be cut sooner).
func closedByServer(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the bot kept the connection open (it answered %q)", got)
	}
	return string(got)
}

// slowBodies opens n connections to /slack/events that send their headers
// and the start of a body, then nothing, the way a slowloris client does.
// It waits up to limit for the server to close them and returns how long
// the last one took, and how many were still open at the limit.
func slowBodies(base string, n int, limit time.Duration) (last time.Duration, open int, err error) {
	host := strings.TrimPrefix(base, "http://")
	start := time.Now()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			wg.Wait()
			return 0, 0, err
		}
		if _, err := io.WriteString(c, "POST /slack/events HTTP/1.1\r\nHost: orchat\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"type\":"); err != nil {
			c.Close()
			wg.Wait()
			return 0, 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(start.Add(limit))
			_, err := io.Copy(io.Discard, c)
			mu.Lock()
			defer mu.Unlock()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open++
				return
			}
			last = max(last, time.Since(start))
		}()
	}
	wg.Wait()
	return last, open, nil
}

var goroutinesLine = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// goroutines reads the bot's goroutine count from its /metrics.
func goroutines(tb testing.TB, base string) int {
	tb.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatalf("/metrics: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	m := goroutinesLine.FindStringSubmatch(string(body))
	if res.StatusCode != 200 || m == nil {
		tb.Fatalf("/metrics = %d without go_goroutines", res.StatusCode)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestSlowSlackClientsAreClosed: in Slack's HTTP mode /slack/events is
// public. Clients that send a body and stop halfway are closed by the bot
// (they held a connection and a goroutine each for as long as they liked),
// while /metrics and /readyz keep answering.
func TestSlowSlackClientsAreClosed(t *testing.T) {
	base, _ := startSlackHTTP(t)
	eventually(t, "/readyz says ready", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	done := make(chan struct{})
	var (
		open int
		err  error
	)
	go func() {
		defer close(done)
		_, open, err = slowBodies(base, 20, time.Minute)
	}()
	for {
		select {
		case <-done:
			if err != nil {
				t.Fatal(err)
			}
			if open != 0 {
				t.Fatalf("%d of 20 slow clients still held their connection after a minute", open)
			}
			return
		case <-time.After(200 * time.Millisecond):
			if code, _ := get(t, base+"/readyz"); code != 200 {
				t.Fatalf("/readyz = %d while slow clients hang on", code)
			}
			goroutines(t, base)
		}
	}
}

// BenchmarkSlowSlackClients: 150 slowloris connections on /slack/events
// of a running bot (Slack's HTTP mode): the seconds until the bot had
// closed the last one (or how many were still open after a minute), and
// the bot's goroutines before, while they hang on, and after.
func BenchmarkSlowSlackClients(b *testing.B) {
	for b.Loop() {
		base, _ := startSlackHTTP(b)
		before := goroutines(b, base)
		type result struct {
			last time.Duration
			open int
			err  error
		}
		res := make(chan result, 1)
		go func() {
			last, open, err := slowBodies(base, 150, time.Minute)
			res <- result{last, open, err}
		}()
		time.Sleep(time.Second)
		during := goroutines(b, base)
		r := <-res
		if r.err != nil {
			b.Fatal(r.err)
		}
		time.Sleep(100 * time.Millisecond)
		after := goroutines(b, base)
		b.ReportMetric(r.last.Seconds(), "s-to-close")
		b.ReportMetric(float64(r.open), "open-after-60s")
		b.ReportMetric(float64(before), "goroutines-before")
		b.ReportMetric(float64(during), "goroutines-during")
		b.ReportMetric(float64(after), "goroutines-after")
	}
}
