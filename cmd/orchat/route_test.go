package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

const fullCatalog = "../../router/openroutertest/models-2026-02-27.json"

// TestRouteCLI: orchat route --json plans offline, from a catalog file, a
// sound model for each kind of prompt.
func TestRouteCLI(t *testing.T) {
	longDoc := strings.Repeat("The committee met again to discuss the harbour accounts. ", 4000)
	for _, tt := range []struct {
		name, prompt string
		args         []string
		tier         string
	}{
		{"ChitChat", "hi there, how's your day?", nil, "fast"},
		{"Code", "Why does this fail?\n```go\nfunc main() { fmt.Println(x) }\n```", nil, "code"},
		{"Maths", "Prove step by step that the square root of 2 is irrational.", nil, "reasoning"},
		{"LongDocument", "Summarise this report:\n" + longDoc, []string{"--balance", "1000000"}, "long"},
		{"Image", "What is in this picture?", []string{"--image"}, "vision"},
		// What the keyword router sent to the fast tier (issue 17).
		{"CodeWithoutFence", "Write a Go function that reverses a UTF-8 string", nil, "code"},
		{"Writing", "Write a short product description for a handmade ceramic mug, warm and a bit playful", nil, "general"},
		{"WordProblem", "A store sells pencils at 3 for $1 and pens at $2 each. Maya spent $11 on 12 items. How many pens did she buy?", nil, "reasoning"},
		{"NotEnglish", "Schreib eine Funktion in Python, die prüft, ob eine IBAN gültig ist", nil, "code"},
		{"LongDocumentOnASmallBalance", "Summarise this report:\n" + longDoc, []string{"--balance", "10000"}, "long"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"route", "--catalog", fullCatalog, "--json"}, tt.args...)
			args = append(args, tt.prompt)
			code, out, stderr := runCLI(t, nil, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var plan struct {
				Model     string   `json:"model"`
				Tier      string   `json:"tier"`
				Fallbacks []string `json:"fallbacks"`
				Reasons   []string `json:"reasons"`
				CostUSD   float64  `json:"estimated_cost_usd"`
				Tokens    int      `json:"estimated_tokens"`
			}
			if err := json.Unmarshal([]byte(out), &plan); err != nil {
				t.Fatalf("not JSON: %q", out)
			}
			if plan.Tier != tt.tier || plan.Model == "" || len(plan.Reasons) == 0 || plan.Tokens <= 0 || plan.CostUSD <= 0 {
				t.Fatalf("plan %+v, want tier %s with a model, reasons and an estimate", plan, tt.tier)
			}
			cat := router.NewCatalog(router.Config{})
			if err := cat.LoadFile(fullCatalog); err != nil {
				t.Fatal(err)
			}
			for _, id := range append([]string{plan.Model}, plan.Fallbacks...) {
				m, err := cat.Lookup(id)
				if err != nil {
					t.Fatalf("planned %s, which is not in the catalog", id)
				}
				if tt.tier == "vision" && !m.Vision() {
					t.Fatalf("an image planned onto %s, which cannot read images", id)
				}
				if m.ContextLength < plan.Tokens {
					t.Fatalf("%s has %d tokens of context for a %d-token prompt", id, m.ContextLength, plan.Tokens)
				}
			}
		})
	}

	t.Run("Explain", func(t *testing.T) {
		code, out, stderr := runCLI(t, nil, "route", "--catalog", fullCatalog, "--explain", "so my python script crashes with KeyError: 'name' when i read the json")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"signals:", "classifier: code ", "needed tier: code", "constraints:", "candidates:", "qwen/qwen3-coder", " winner", "model:     qwen/qwen3-coder (tier code)"} {
			if !strings.Contains(out, want) {
				t.Errorf("--explain lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("ExplainJSON", func(t *testing.T) {
		var out strings.Builder
		m := &Main{Stdin: strings.NewReader("Summarise this report:\n" + longDoc), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if code := m.Run(context.Background(), []string{"route", "--catalog", fullCatalog, "--explain", "--json", "--balance", "3000", "-"}); code != exitOK {
			t.Fatalf("exit %d: %s", code, out.String())
		}
		m.Close()
		var ex struct {
			Needed  string `json:"needed"`
			Signals struct {
				PromptTokens int   `json:"prompt_tokens"`
				Available    int64 `json:"available_tokens"`
			} `json:"signals"`
			Scores      []struct{ Tier string } `json:"scores"`
			Constraints []string                `json:"constraints"`
			Candidates  []struct {
				Tier, Model, Outcome, Why string
			} `json:"candidates"`
			Plan struct {
				Model string `json:"model"`
				Tier  string `json:"tier"`
			} `json:"plan"`
		}
		if err := json.Unmarshal([]byte(out.String()), &ex); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if ex.Needed != "long" || ex.Plan.Tier != "free" || ex.Signals.Available != 3000 || ex.Signals.PromptTokens < 48_000 || len(ex.Scores) != 4 || len(ex.Constraints) == 0 {
			t.Fatalf("explanation %+v", ex)
		}
		skipped := 0
		for _, c := range ex.Candidates {
			if c.Outcome == "skipped" && strings.Contains(c.Why, "more than the 3000 available") {
				skipped++
			}
			if c.Outcome == "winner" && c.Model != ex.Plan.Model {
				t.Fatalf("winner %s, plan %s", c.Model, ex.Plan.Model)
			}
		}
		if skipped < 3 {
			t.Fatalf("candidates %+v: the long tier's models should be skipped for the balance", ex.Candidates)
		}
	})
	t.Run("ExplainWhyNothingFits", func(t *testing.T) {
		code, out, stderr := runCLI(t, nil, "route", "--catalog", fullCatalog, "--explain", "--balance", "0", "--free-left", "0", "hello")
		if code != exitUser || !strings.Contains(out, "skipped: even a 64-token answer costs") || !strings.Contains(stderr, "Ask an admin for a top-up") {
			t.Fatalf("exit %d stdout %q stderr %q", code, out, stderr)
		}
	})

	t.Run("PromptFromStdin", func(t *testing.T) {
		var out strings.Builder
		m := &Main{Stdin: strings.NewReader("Prove that there are infinitely many primes, step by step."), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if code := m.Run(context.Background(), []string{"route", "--catalog", fullCatalog, "--json", "-"}); code != exitOK {
			t.Fatalf("exit %d: %s", code, out.String())
		}
		m.Close()
		if !strings.Contains(out.String(), `"tier":"reasoning"`) {
			t.Fatalf("got %s", out.String())
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrUnknownModel", []string{"--model", "openai/gpt-9000", "hello"}, "Did you mean"},
		{"ErrImageToTextModel", []string{"--model", "openai/gpt-3.5-turbo", "--image", "what is this?"}, "cannot read images"},
		{"ErrNotACatalog", []string{"--catalog", "config_test.go", "hello"}, "--catalog config_test.go"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, append([]string{"route", "--catalog", fullCatalog}, tt.args...)...)
			if code != exitUser || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestModelsCLI lists the catalog with filters, offline.
func TestModelsCLI(t *testing.T) {
	code, out, stderr := runCLI(t, nil, "models", "--catalog", fullCatalog, "--free", "--vision", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var models []struct {
		ID     string `json:"id"`
		Free   bool   `json:"free"`
		Vision bool   `json:"vision"`
	}
	if err := json.Unmarshal([]byte(out), &models); err != nil || len(models) == 0 {
		t.Fatalf("models --json = %q (%v)", out, err)
	}
	for _, m := range models {
		if !m.Free || !m.Vision || !strings.HasSuffix(m.ID, ":free") {
			t.Fatalf("--free --vision listed %+v", m)
		}
	}
	code, out, _ = runCLI(t, nil, "models", "--catalog", fullCatalog, "claude")
	if code != exitOK || !strings.Contains(out, "anthropic/claude") || !strings.Contains(out, "context") {
		t.Fatalf("models claude: exit %d %q", code, out)
	}
}

// TestSimulateUpstream: orchat simulate-upstream prints its base URL and
// serves a stream the real client parses.
func TestSimulateUpstream(t *testing.T) {
	cmd := exec.Command(orchatBinary(t), "simulate-upstream", "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("simulate-upstream exited with %v on interrupt", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("simulate-upstream did not stop on interrupt")
		}
	}()
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q (%v), want the base URL", url, err)
	}
	c := router.NewClient(router.Config{BaseURL: strings.TrimSpace(url), APIKey: "sk-or-v1-test"})
	var text strings.Builder
	resp, err := c.Stream(context.Background(), router.Request{
		Model: "google/gemini-2.5-flash", MaxTokens: 200,
		Messages: []bot.ChatMessage{{Role: bot.RoleUser, Content: "hello, simulator"}},
	}, func(d string) { text.WriteString(d) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "simulated") || resp.Usage.CompletionTokens == 0 || !resp.Usage.CostReported {
		t.Fatalf("stream text %q usage %+v", text.String(), resp.Usage)
	}
}

// TestRouteCommunityVotes: orchat route --community plans as a community
// whose compare votes rate a tier's models: once the tier has enough votes
// the explanation shows the ratings and says the votes chose the model;
// after /settings routing learn off the router's own order stands.
func TestRouteCommunityVotes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "orchat.db")
	st, err := accounts.Open(db, accounts.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const devstral, qwen = "mistralai/devstral-2512", "qwen/qwen3-coder"
	for i := range 24 {
		id := fmt.Sprintf("c%02d", i)
		if err := st.RecordCompare(ctx, bot.CompareRecord{ID: id, Community: "discord:1", Requester: "discord:9", Models: []string{qwen, devstral}, Tier: router.TierCode}); err != nil {
			t.Fatal(err)
		}
		choice := "B"
		if i%4 == 0 {
			choice = "A"
		}
		if _, err := st.Vote(ctx, id, bot.Identity(fmt.Sprintf("discord:%d", 100+i)), choice); err != nil {
			t.Fatal(err)
		}
	}
	route := func(t *testing.T, community string) string {
		t.Helper()
		code, out, stderr := runCLI(t, nil, "--db", db, "route", "--catalog", fullCatalog, "--community", community, "--explain",
			"Write a Python function that parses a CSV file into a list of dicts.")
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return out
	}
	out := route(t, "discord:1")
	for _, want := range []string{"model:     " + devstral + " (tier code, chosen by this community's votes)", "votes of discord:1: 24 in the code tier (20 needed)",
		"1. " + devstral, "→ chosen by this community's votes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("route --community discord:1 --explain does not say %q:\n%s", want, out)
		}
	}
	code, js, stderr := runCLI(t, nil, "--db", db, "--json", "route", "--catalog", fullCatalog, "--community", "discord:1", "--explain",
		"Write a Python function that parses a CSV file into a list of dicts.")
	var ex struct {
		Votes router.VoteLearning `json:"votes"`
		Plan  struct {
			Model   string `json:"model"`
			ByVotes bool   `json:"chosen_by_votes"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(js), &ex); code != exitOK || err != nil || !ex.Votes.Decided || !ex.Plan.ByVotes || ex.Plan.Model != devstral ||
		ex.Votes.Votes != 24 || len(ex.Votes.Ratings) != 3 || ex.Votes.Ratings[0].Model != devstral || !ex.Votes.Ratings[0].Rated {
		t.Fatalf("--json: exit %d err %v %s\n%s", code, err, stderr, js)
	}
	if out := route(t, "discord:2"); !strings.Contains(out, "model:     "+qwen+" (tier code)") || strings.Contains(out, "chosen by this community's votes") {
		t.Fatalf("another community got discord:1's preference:\n%s", out)
	}
	if _, _, err := st.SetSetting(ctx, bot.SettingUpdate{Community: "discord:1", Key: bot.SettingRoutingLearn, Value: "off", Actor: "discord:9"}); err != nil {
		t.Fatal(err)
	}
	if out := route(t, "discord:1"); !strings.Contains(out, "model:     "+qwen+" (tier code)") || !strings.Contains(out, "votes of discord:1: off") {
		t.Fatalf("after routing learn off:\n%s", out)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, nil, "--db", db, "route", "--catalog", fullCatalog, "--community", "discord:dm", "hello")
	if code != exitUsage || !strings.Contains(stderr, "--community discord:dm") {
		t.Fatalf("exit %d stderr %q: a DM is no community", code, stderr)
	}
}
