package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// orchatBinary builds the real binary once per test run.
func orchatBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orchat-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "orchat")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// consoleMessage is one line of `orchat console --json`.
type consoleMessage struct {
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Text    string `json:"text"`
	Footer  string `json:"footer"`
	Model   string `json:"model"`
	Charged *int64 `json:"charged"`
	Balance *int64 `json:"balance"`
	Usage   *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
	CompareID string `json:"compare_id"`
	Panels    []struct {
		Label, Model, Status, Text, Error string
		Charged                           int64
	} `json:"panels"`
}

func parseConsole(t *testing.T, out []byte) []consoleMessage {
	t.Helper()
	var msgs []consoleMessage
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m consoleMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestConsoleEndToEnd runs the binary as a newcomer's script would:
// questions on stdin, JSON on stdout, the simulator upstream.
func TestConsoleEndToEnd(t *testing.T) {
	bin := orchatBinary(t)
	db := filepath.Join(t.TempDir(), "t.db")
	run := func(stdin string, args ...string) ([]byte, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("orchat %v: %v\n%s", args, err, stderr.String())
		}
		return out, stderr.String()
	}

	t.Run("ReplyThenBalance", func(t *testing.T) {
		out, stderr := run("hello\n/balance\n", "console", "--json", "--db", db, "--simulate")
		if first := strings.SplitN(stderr, "\n", 2)[0]; !strings.Contains(first, "simulator") {
			t.Errorf("the first line does not say the simulator answers: %q", first)
		}
		msgs := parseConsole(t, out)
		var reply, balance *consoleMessage
		for i := range msgs {
			switch {
			case msgs[i].Kind == "reply":
				reply = &msgs[i]
			case msgs[i].Balance != nil && strings.Contains(msgs[i].Text, "Balance"):
				balance = &msgs[i]
			}
		}
		if reply == nil || balance == nil {
			t.Fatalf("want a reply and a balance, got %+v", msgs)
		}
		if reply.Charged == nil || *reply.Charged <= 0 || reply.Usage == nil || reply.Model == "" {
			t.Fatalf("reply lacks model, usage or charge: %+v", reply)
		}
		if got, want := *balance.Balance, 15000-*reply.Charged; got != want {
			t.Fatalf("balance=%d, want 15,000 minus the %d charged = %d", got, *reply.Charged, want)
		}
	})

	t.Run("CompareAndVote", func(t *testing.T) {
		out, _ := run("/compare models:google/gemini-2.5-flash,openai/gpt-5-mini Name a colour\n", "console", "--json", "--db", db, "--simulate", "--user", "bob")
		var cmp *consoleMessage
		for _, m := range parseConsole(t, out) {
			if m.Kind == "compare" {
				cmp = &m
			}
		}
		if cmp == nil || cmp.CompareID == "" || len(cmp.Panels) != 2 {
			t.Fatalf("want a compare with two panels, got %s", out)
		}
		out, _ = run("/vote "+cmp.CompareID+" B\n/vote "+cmp.CompareID+" A\n", "console", "--json", "--db", db, "--simulate", "--user", "carol")
		msgs := parseConsole(t, out)
		if !strings.Contains(string(out), "Your vote for B is in") || !strings.Contains(msgs[len(msgs)-1].Text, "already") {
			t.Fatalf("want one vote recorded and the second refused, got %s", out)
		}
	})

	t.Run("LedgerVerifiesAfterwards", func(t *testing.T) {
		out, _ := run("", "ledger", "verify", "--db", db)
		if !strings.Contains(string(out), "ledger OK") {
			t.Fatalf("ledger verify: %s", out)
		}
	})
}
