package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestRunConsoleEndKeepsOtherPlatforms: `orchat run --console` with its
// input already at an end (stdin from /dev/null) keeps serving Discord; only
// a console that is the sole platform ends the bot with its input.
func TestRunConsoleEndKeepsOtherPlatforms(t *testing.T) {
	cfgPath, env := discordConfig(t, discordtest.Options{})
	logs := &stacktest.SyncBuffer{}
	addr := make(chan string, 1)
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stacktest.SyncBuffer{}, Stderr: logs, Getenv: func(k string) string { return env[k] },
		OpsListening: func(a string) { addr <- a }}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"run", "--console", "--json", "--config", cfgPath}) }()

	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case code := <-done:
		t.Fatalf("orchat run exited %d before serving:\n%s", code, logs.String())
	}
	eventually(t, "Discord connected", func() bool {
		select {
		case code := <-done:
			t.Fatalf("orchat run exited %d when the console's input ended, with Discord still to serve:\n%s", code, logs.String())
		default:
		}
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
	select {
	case code := <-done:
		t.Fatalf("orchat run exited %d when the console's input ended, with Discord still to serve:\n%s", code, logs.String())
	default:
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("orchat run exited %d:\n%s", code, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("orchat run did not stop after its context ended")
	}
}

// TestRunPlatformFailureStopsTheBot: when one platform fails for good (a
// Discord application whose Message Content intent is off), `orchat run`
// stops the others, drains, and exits 1 naming the platform and what to
// do, instead of serving on half its platforms.
func TestRunPlatformFailureStopsTheBot(t *testing.T) {
	cfgPath, env := discordConfig(t, discordtest.Options{DisallowedIntents: 1 << 15})
	logs := &stacktest.SyncBuffer{}
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stacktest.SyncBuffer{}, Stderr: logs, Getenv: func(k string) string { return env[k] }}
	defer m.Close()
	done := make(chan int, 1)
	go func() {
		done <- m.Run(context.Background(), []string{"run", "--console", "--json", "--config", cfgPath})
	}()
	select {
	case code := <-done:
		if code != exitUser || !strings.Contains(logs.String(), "orchat: discord:") || !strings.Contains(logs.String(), "Message Content intent") {
			t.Fatalf("exit %d, want 1 with the Discord error:\n%s", code, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("orchat run kept running after Discord failed for good:\n%s", logs.String())
	}
}

// discordConfig writes the config of a bot on a fake Discord (opts, with
// its token) and the simulator, with the HTTP server on a free port, and
// returns it with the environment holding the secrets.
func discordConfig(t *testing.T, opts discordtest.Options) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	apiKey, discordToken := secret("sk-or-v1-"), secret("discord-bot-token-")
	sim := openroutertest.MustStart(t, openroutertest.Options{APIKey: apiKey})
	opts.Token = discordToken
	dc := discordtest.MustStart(t, opts)
	cfgPath := filepath.Join(dir, "orchat.toml")
	cfg := fmt.Sprintf("[openrouter]\nbase_url = %q\n[accounts]\ndatabase = %q\n[discord]\napi_url = %q\n[http]\naddr = \"127.0.0.1:0\"\n",
		sim.URL(), filepath.Join(dir, "orchat.db"), dc.APIURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, map[string]string{"OPENROUTER_API_KEY": apiKey, "DISCORD_BOT_TOKEN": discordToken}
}

// startRun starts `orchat run --config cfgPath` with env as its
// environment and returns the base URL of its health and metrics server;
// it stops when the test ends, which fails if it exits other than 0.
func startRun(tb testing.TB, cfgPath string, env map[string]string) string {
	tb.Helper()
	logs := &stacktest.SyncBuffer{}
	addr := make(chan string, 1)
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stacktest.SyncBuffer{}, Stderr: logs, Getenv: func(k string) string { return env[k] },
		OpsListening: func(a string) { addr <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"run", "--config", cfgPath}) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				tb.Errorf("orchat run exited %d:\n%s", code, logs.String())
			}
		case <-time.After(60 * time.Second):
			tb.Error("orchat run did not stop after its context ended")
		}
		m.Close()
		if tb.Failed() {
			tb.Logf("orchat run:\n%s", logs)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case code := <-done:
		tb.Fatalf("orchat run exited %d before serving:\n%s", code, logs.String())
	}
	return ""
}
