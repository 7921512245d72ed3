package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack/stacktest"
)

// consoleBot runs `orchat console --json --multi-user` in process on a
// config file, with a SIGHUP channel of the test's own; say types a line
// and waits for the printed line holding want.
type consoleBot struct {
	t      *testing.T
	in     *io.PipeWriter
	out    *stacktest.SyncBuffer
	logs   *stacktest.SyncBuffer
	hup    chan os.Signal
	done   chan int
	config string
}

func startConsoleBot(t *testing.T, config string) *consoleBot {
	t.Helper()
	sim := openroutertest.MustStart(t, openroutertest.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	b := &consoleBot{t: t, in: w, out: &stacktest.SyncBuffer{}, logs: &stacktest.SyncBuffer{}, hup: make(chan os.Signal, 1), done: make(chan int, 1), config: path}
	env := map[string]string{"OPENROUTER_API_KEY": "sk-or-v1-test"}
	m := &Main{Stdin: r, Stdout: b.out, Stderr: b.logs, Getenv: func(k string) string { return env[k] }, Hangups: b.hup}
	go func() {
		b.done <- m.Run(context.Background(), []string{"console", "--json", "--multi-user", "--config", path,
			"--db", filepath.Join(dir, "orchat.db"), "--upstream", sim.URL()})
	}()
	t.Cleanup(func() {
		w.Close()
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			t.Error("the console did not end with its input")
		}
		m.Close()
	})
	return b
}

func (b *consoleBot) say(line, want string) {
	b.t.Helper()
	mark := len(b.out.String())
	if _, err := io.WriteString(b.in, line+"\n"); err != nil {
		b.t.Fatal(err)
	}
	eventually(b.t, "an answer with "+want, func() bool { return strings.Contains(b.out.String()[mark:], want) })
}

func (b *consoleBot) rewrite(config string) {
	b.t.Helper()
	if err := os.WriteFile(b.config, []byte(config), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

func (b *consoleBot) logged(what string, n int) {
	b.t.Helper()
	eventually(b.t, what+" in the log", func() bool { return strings.Count(b.logs.String(), what) >= n })
}

// TestConfigReload: SIGHUP re-reads the file; admins, the system prompt,
// limits apply at once; a bad file keeps the running config and the log
// says why; what needs a restart is named.
func TestConfigReload(t *testing.T) {
	b := startConsoleBot(t, "[bot]\nrate_limit_per_minute = 0\n")
	b.say("ada> /topup console:bob 500", "can use /topup")

	b.rewrite("admins = [\"console:ada\"]\n[bot]\nrate_limit_per_minute = 0\nsystem_prompt = \"You are a terse helper.\"\n")
	b.hup <- syscall.SIGHUP
	b.logged("config reloaded", 1)
	b.say("ada> /topup console:bob 500", "Added 500 tokens to console:bob")

	// A file that does not validate keeps the running config.
	b.rewrite("admins = [\"nobody\"]\n")
	b.hup <- syscall.SIGHUP
	b.logged("config reload failed; the running config stays in force", 1)
	if !strings.Contains(b.logs.String(), "admins") {
		t.Fatalf("the log does not say which key was wrong:\n%s", b.logs.String())
	}
	b.say("ada> /topup console:bob 1", "Added 1 tokens to console:bob")

	// A change a running bot cannot make is named, and the rest applies.
	b.rewrite("admins = [\"console:ada\"]\n[log]\nformat = \"json\"\n[accounts]\nsignup_bonus = 7\n")
	b.hup <- syscall.SIGHUP
	b.logged("need a restart to apply", 1)
	if logs := b.logs.String(); !strings.Contains(logs, "log") || strings.Contains(logs, "sk-or-v1-test") {
		t.Fatalf("the log does not name the key needing a restart, or shows the key:\n%s", logs)
	}
	b.say("cat> /balance", "7 tokens")
}

// TestConfigWatch: with config_watch = true a change of the file reloads
// it, with no signal.
func TestConfigWatch(t *testing.T) {
	b := startConsoleBot(t, "config_watch = true\n")
	b.say("ada> /topup console:bob 500", "can use /topup")
	b.rewrite("config_watch = true\nadmins = [\"console:ada\"]\n")
	b.logged("config reloaded", 1)
	b.say("ada> /topup console:bob 500", "Added 500 tokens")
}

// TestSIGHUPReloadsTheBinary sends a real SIGHUP to the orchat binary: it
// reloads instead of ending, and a later SIGTERM still stops it cleanly.
func TestSIGHUPReloadsTheBinary(t *testing.T) {
	bin := orchatBinary(t)
	sim := openroutertest.MustStart(t, openroutertest.Options{})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "orchat.toml")
	os.WriteFile(cfg, []byte("[bot]\nrate_limit_per_minute = 0\n"), 0o600)
	cmd := exec.Command(bin, "console", "--json", "--multi-user", "--config", cfg, "--db", filepath.Join(dir, "orchat.db"), "--upstream", sim.URL())
	cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=sk-or-v1-test")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := &stacktest.SyncBuffer{}, &stacktest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	io.WriteString(stdin, "ada> /topup console:bob 5\n")
	eventually(t, "the refusal", func() bool { return strings.Contains(stdout.String(), "can use /topup") })
	os.WriteFile(cfg, []byte("admins = [\"console:ada\"]\n[bot]\nrate_limit_per_minute = 0\n"), 0o600)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reload", func() bool { return strings.Contains(stderr.String(), "config reloaded") })
	io.WriteString(stdin, "ada> /topup console:bob 5\n")
	eventually(t, "the top-up", func() bool { return strings.Contains(stdout.String(), "Added 5 tokens") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil && !bytes.Contains([]byte(err.Error()), []byte("signal")) {
			t.Fatalf("orchat exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("orchat did not exit after SIGTERM:\n%s", stderr.String())
	}
}
