package ops_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/ops"
)

// serve starts a server with short timeouts, a Slack-like endpoint that
// reads its body, and parts for /readyz.
func serve(t *testing.T, parts []ops.Part) *ops.Server {
	t.Helper()
	slack := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "request body too slow", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv, err := ops.Listen("127.0.0.1:0", ops.NewMetrics(), parts, map[string]http.Handler{"POST /slack/events": slack})
	if err != nil {
		t.Fatal(err)
	}
	srv.Timeouts = ops.Timeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Write: 600 * time.Millisecond, Idle: 200 * time.Millisecond, Body: 200 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

// closedByServer writes raw to a new connection and reads until the
// server closes it, returning what it answered; it fails the test if the
// connection is still open after 30 s (the timeouts under test are far
// shorter).
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
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a slow client's connection open (it answered %q)", got)
	}
	return string(got)
}

// TestSlowClientsAreCut: a public endpoint's connection cannot be held by
// a client that sends its body slowly, its headers slowly, or nothing
// after a request; /readyz is still answered in full when its checks
// hang.
func TestSlowClientsAreCut(t *testing.T) {
	hang := ops.Part{Name: "database", Check: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	srv := serve(t, []ops.Part{hang})
	addr := srv.Addr()

	t.Run("SlowBody", func(t *testing.T) {
		t.Parallel()
		got := closedByServer(t, addr, "POST /slack/events HTTP/1.1\r\nHost: orchat\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"type\":")
		if !strings.Contains(got, "408") {
			t.Fatalf("the slow body was answered %q, want 408", got)
		}
	})
	t.Run("SlowHeaders", func(t *testing.T) {
		t.Parallel()
		closedByServer(t, addr, "POST /slack/events HTTP/1.1\r\nHost: orch")
	})
	t.Run("IdleAfterARequest", func(t *testing.T) {
		t.Parallel()
		got := closedByServer(t, addr, "GET /healthz HTTP/1.1\r\nHost: orchat\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("/healthz answered %q", got)
		}
	})
	t.Run("ReadyzWithAHangingCheck", func(t *testing.T) {
		t.Parallel()
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatalf("/readyz was not answered: %v", err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(bufio.NewReader(res.Body))
		if err != nil || res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"database":"context deadline exceeded"`) {
			t.Fatalf("/readyz = %d %q (%v), want a whole 503 naming the database", res.StatusCode, body, err)
		}
	})
}
