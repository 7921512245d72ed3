package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchat/orchat/stack/stacktest"
)

// runWithStdin runs `orchat run` (no platform credentials, the simulator)
// with stdin, and returns the exit status, stdout and stderr.
func runWithStdin(t *testing.T, stdin io.Reader, db string) (int, string, string) {
	t.Helper()
	out, errb := &stacktest.SyncBuffer{}, &stacktest.SyncBuffer{}
	m := &Main{Stdin: stdin, Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
	code := m.Run(context.Background(), []string{"run", "--json", "--db", db, "--http", ""})
	if err := m.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	return code, out.String(), errb.String()
}

// TestRunWithStdinOnDevNull: `orchat run` with no platform token and stdin
// on /dev/null (a systemd service, `docker run -d`) has nothing to serve.
// It exits 1 saying which variables to set, instead of chatting with
// /dev/null and exiting 0 so that the missing token goes unnoticed; and it
// creates no ledger.
func TestRunWithStdinOnDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	db := filepath.Join(t.TempDir(), "orchat.db")
	code, _, stderr := runWithStdin(t, null, db)
	if code != exitUser || !strings.Contains(stderr, "Nothing to run") || !strings.Contains(stderr, "DISCORD_BOT_TOKEN") {
		t.Fatalf("exit %d, want 1 with 'Nothing to run' and the variables to set:\n%s", code, stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a ledger was created for a bot that had nothing to run")
	}
}

// TestRunReadsAPipeOrAFile: a person's `orchat < questions.txt` or
// `echo hi | orchat` chats on those lines, as a terminal would, without
// --console.
func TestRunReadsAPipeOrAFile(t *testing.T) {
	t.Run("File", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "questions.txt")
		if err := os.WriteFile(path, []byte("what is a monad?\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		code, stdout, stderr := runWithStdin(t, f, filepath.Join(dir, "orchat.db"))
		if code != 0 || !strings.Contains(stdout, `"charged"`) {
			t.Fatalf("exit %d, want 0 with an answer:\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	})
	t.Run("Pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() {
			io.WriteString(w, "what is a monad?\n")
			w.Close()
		}()
		code, stdout, stderr := runWithStdin(t, r, filepath.Join(t.TempDir(), "orchat.db"))
		if code != 0 || !strings.Contains(stdout, `"charged"`) {
			t.Fatalf("exit %d, want 0 with an answer:\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
	})
}
