package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

func secret(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunningBot runs `orchat run` on every platform at once (Discord and
// Slack through their fakes, the console from a pipe, the upstream behind a
// key) and checks what an operator relies on: health and readiness, the
// metrics after a few console requests, readiness turning 503 when the
// database stops taking writes, and not one secret in the whole log.
func TestRunningBot(t *testing.T) {
	dir := t.TempDir()
	apiKey, discordToken, signing := secret("sk-or-v1-"), secret("discord-bot-token-"), secret("slack-signing-")
	limit := 10.0
	sim := openroutertest.MustStart(t, openroutertest.Options{APIKey: apiKey, TokensPerSecond: 2000, KeyLimit: &limit})
	dc := discordtest.MustStart(t, discordtest.Options{Token: discordToken})
	sl := slacktest.MustStart(t, slacktest.Options{})

	cfgPath := filepath.Join(dir, "orchat.toml")
	db := filepath.Join(dir, "orchat.db")
	cfg := fmt.Sprintf(`
[openrouter]
base_url = %q
api = "openrouter"
[accounts]
database = %q
[discord]
api_url = %q
[slack]
api_url = %q
[http]
addr = "127.0.0.1:0"
[log]
level = "debug"
`, sim.URL(), db, dc.APIURL, sl.APIURL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OPENROUTER_API_KEY": apiKey, "DISCORD_BOT_TOKEN": discordToken,
		"SLACK_BOT_TOKEN": sl.BotToken, "SLACK_APP_TOKEN": sl.AppToken, "SLACK_SIGNING_SECRET": signing,
	}

	logs := &stacktest.SyncBuffer{}
	log.SetOutput(logs) // discordgo and slack-go write here
	defer log.SetOutput(os.Stderr)
	stdin, feed := io.Pipe()
	stdout := &stacktest.SyncBuffer{}
	addr := make(chan string, 1)
	m := &Main{Stdin: stdin, Stdout: stdout, Stderr: logs, Getenv: func(k string) string { return env[k] },
		OpsListening: func(a string) { addr <- a }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"run", "--console", "--json", "--config", cfgPath}) }()
	defer func() {
		cancel()
		feed.Close()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("orchat run exited %d:\n%s", code, logs.String())
			}
		case <-time.After(60 * time.Second):
			t.Error("orchat run did not stop after its context ended")
		}
		m.Close()
		for name, s := range env {
			if strings.Contains(logs.String(), s) || strings.Contains(stdout.String(), s) {
				t.Errorf("the secret in %s appeared in the output", name)
			}
		}
	}()

	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case code := <-done:
		t.Fatalf("orchat run exited %d before serving:\n%s", code, logs.String())
	}

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	eventually(t, "/readyz reports every part ready", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
	_, body := get(t, base+"/readyz")
	var ready struct {
		Ready bool              `json:"ready"`
		Parts map[string]string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("/readyz is not JSON: %q", body)
	}
	for _, part := range []string{"database", "catalog", "discord", "slack"} {
		if ready.Parts[part] != "ok" {
			t.Errorf("/readyz part %s = %q, want ok", part, ready.Parts[part])
		}
	}
	// The key's credit, read at start from GET /key.
	if got := ready.Parts["openrouter_credits"]; !strings.HasSuffix(got, "USD left of 10.00") {
		t.Errorf("/readyz part openrouter_credits = %q, want what is left of the 10 USD limit", got)
	}

	io.WriteString(feed, "hello\n/balance\n")
	eventually(t, "two console answers", func() bool { return strings.Count(stdout.String(), "\n") >= 3 })
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`orchat_requests_total{command="ask",outcome="ok",platform="console"} 1`,
		`orchat_requests_total{command="balance",outcome="ok",platform="console"} 1`,
		"orchat_upstream_latency_seconds_bucket", "orchat_upstream_ttft_seconds_bucket",
		`orchat_tokens_total{kind="completion"`, "orchat_charged_tokens_total", "orchat_upstream_cost_usd_total",
		"orchat_ledger_write_seconds_bucket", "orchat_holds_open 0", "orchat_db_connections_open", "orchat_db_connection_waits_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The disk turns read-only under the bot: readiness must say so.
	undo := makeReadOnly(t, db)
	code, body := get(t, base+"/readyz")
	undo()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"database"`) || strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("/readyz with a read-only database = %d %s, want 503 naming the database", code, body)
	}
	eventually(t, "/readyz recovers once the database takes writes again", func() bool {
		code, _ := get(t, base+"/readyz")
		return code == 200
	})
}

// makeReadOnly makes the database and its WAL refuse writes, the way a
// file system remounted read-only would, and returns how to undo it. As
// root, permissions do not stop writes, so it marks the files immutable.
func makeReadOnly(t *testing.T, db string) func() {
	t.Helper()
	files := []string{db, db + "-wal"}
	if os.Geteuid() == 0 {
		args := append([]string{"+i"}, files...)
		if out, err := exec.Command("chattr", args...).CombinedOutput(); err != nil {
			t.Fatalf("chattr +i (needed to make a file read-only for root): %v %s", err, out)
		}
		return func() {
			args := append([]string{"-i"}, files...)
			if out, err := exec.Command("chattr", args...).CombinedOutput(); err != nil {
				t.Errorf("chattr -i: %v %s", err, out)
			}
		}
	}
	for _, f := range files {
		if err := os.Chmod(f, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for _, f := range files {
			os.Chmod(f, 0o644)
		}
	}
}
