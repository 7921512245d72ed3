package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/stack/stacktest"
)

// busyAddr holds a port on loopback for the test, as another orchat on
// the machine would, and returns its address.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestSecondInstance: `go run ./cmd/orchat` while another orchat holds
// the health and metrics port. A chat in the terminal goes on without
// them, saying so; a bot with platforms stops and says how to choose.
func TestSecondInstance(t *testing.T) {
	busy := busyAddr(t)

	t.Run("ConsoleChatsWithoutHealth", func(t *testing.T) {
		out, errb := &stacktest.SyncBuffer{}, &stacktest.SyncBuffer{}
		m := &Main{Stdin: strings.NewReader("what is a monad?\n"), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
		code := m.Run(context.Background(), []string{"run", "--console", "--json", "--db", filepath.Join(t.TempDir(), "orchat.db"), "--http", busy})
		m.Close()
		if code != 0 || !strings.Contains(out.String(), `"charged"`) {
			t.Fatalf("exit %d, want 0 with an answer:\nstdout: %s\nstderr: %s", code, out, errb)
		}
		if !strings.Contains(errb.String(), "health and metrics are off") || !strings.Contains(errb.String(), "address already in use") {
			t.Fatalf("stderr does not say that health and metrics are off and why:\n%s", errb)
		}
	})

	t.Run("PlatformsStopNamingTheKey", func(t *testing.T) {
		cfgPath, env := discordConfig(t, discordtest.Options{})
		errb := &stacktest.SyncBuffer{}
		m := &Main{Stdin: strings.NewReader(""), Stdout: &stacktest.SyncBuffer{}, Stderr: errb, Getenv: func(k string) string { return env[k] }}
		done := make(chan int, 1)
		go func() { done <- m.Run(context.Background(), []string{"run", "--config", cfgPath, "--http", busy}) }()
		select {
		case code := <-done:
			m.Close()
			if code != exitUser || !strings.Contains(errb.String(), "http.addr") || !strings.Contains(errb.String(), `--http ""`) {
				t.Fatalf("exit %d, want 1 naming http.addr and --http \"\":\n%s", code, errb)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("orchat run kept running without its health and metrics server:\n%s", errb)
		}
	})
}

// TestHTTPFlagEmptyTurnsTheServerOff: --http "" turns the health and
// metrics server off, whatever http.addr says (it used to be taken for
// "not given", and the server listened anyway).
func TestHTTPFlagEmptyTurnsTheServerOff(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfgPath, []byte("[http]\naddr = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--http", ""}, {"--http="}} {
		listened := ""
		out, errb := &stacktest.SyncBuffer{}, &stacktest.SyncBuffer{}
		m := &Main{Stdin: strings.NewReader("hello\n"), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" },
			OpsListening: func(a string) { listened = a }}
		argv := append([]string{"run", "--console", "--json", "--config", cfgPath, "--db", filepath.Join(dir, "orchat.db")}, args...)
		code := m.Run(context.Background(), argv)
		m.Close()
		if code != 0 || !strings.Contains(out.String(), `"charged"`) {
			t.Fatalf("%q: exit %d, want 0 with an answer:\n%s", args, code, errb)
		}
		if listened != "" {
			t.Fatalf("%q: the health and metrics server listened on %s", args, listened)
		}
	}
}
