package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchat/orchat/router/openroutertest"
)

// TestGracefulShutdown sends SIGTERM to the real binary while three
// answers stream: each either finishes or is cut with a note, every hold is
// settled or released, and the ledger verifies.
func TestGracefulShutdown(t *testing.T) {
	bin := orchatBinary(t)
	for _, tt := range []struct {
		name    string
		timeout string // shutdown_timeout
		tps     float64
		want    string // what every answer must show
	}{
		{"AnswersFinish", "20s", 150, `"status":"done"`},
		{"AnswersCutWithNote", "300ms", 20, "restarting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sim := openroutertest.MustStart(t, openroutertest.Options{TokensPerSecond: tt.tps})
			dir := t.TempDir()
			cfg := filepath.Join(dir, "orchat.toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("shutdown_timeout = %q\n[stream]\nedit_interval = \"100ms\"\n", tt.timeout)), 0o600)
			db := filepath.Join(dir, "orchat.db")
			cmd := exec.Command(bin, "console", "--json", "--parallel", "3", "--multi-user", "--config", cfg, "--db", db, "--upstream", sim.URL())
			cmd.Env = append(os.Environ(), "OPENROUTER_API_KEY=sk-or-v1-test")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			io.WriteString(stdin, "ann> tell me a long story\nben> tell me a long story\ncat> tell me a long story\n")
			eventually(t, "three answers streaming", func() bool { return sim.Stats().Streams >= 3 })
			time.Sleep(200 * time.Millisecond) // let text flow, so a cut has something to keep
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("orchat exited with %v after SIGTERM:\n%s", err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("orchat did not exit after SIGTERM:\n%s", stderr.String())
			}
			var answers []string
			for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
				if strings.Contains(line, `"kind":"reply"`) {
					answers = append(answers, line)
				}
			}
			if len(answers) != 3 {
				t.Fatalf("%d answers ended, want 3:\n%s", len(answers), stdout.String())
			}
			for _, a := range answers {
				if !strings.Contains(a, tt.want) {
					t.Errorf("an answer does not show %s: %s", tt.want, a)
				}
			}
			code, out, errOut := runCLI(t, nil, "ledger", "verify", "--db", db, "--json")
			if code != 0 || !strings.Contains(out, `"holds":0`) || !strings.Contains(out, `"ok":true`) {
				t.Fatalf("ledger verify after shutdown: exit %d %s %s", code, out, errOut)
			}
		})
	}
}
