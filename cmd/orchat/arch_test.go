package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/orchat/orchat"

// allowed lists, for each package, the module packages and outside
// libraries it may depend on (directly or not); the standard library is
// always allowed. DESIGN.md "Folders": the domain in bot, one job per
// package, one outside library per package, wired only in cmd/orchat.
var allowed = map[string][]string{
	"bot":                   {},
	"commands":              {"bot"},
	"console":               {"bot"},
	"router":                {"bot"},
	"router/openroutertest": {"bot", "router"},
	"accounts":              append([]string{"bot", "github.com/mattn/go-sqlite3"}, pgx...),
	"accounts/accountstest": {"bot"},
	"accounts/postgrestest": pgx,
	"scheduler":             {"bot", "github.com/go-co-op/gocron/v2", "github.com/jonboulle/clockwork", "github.com/robfig/cron/v3", "github.com/google/uuid"},
	"discord":               {"bot", "github.com/bwmarrin/discordgo", "github.com/gorilla/websocket", "golang.org/x/crypto"},
	"discord/discordtest":   {"github.com/gorilla/websocket"},
	"slack":                 {"bot", "github.com/slack-go/slack", "github.com/gorilla/websocket"},
	"slack/slackfake":       {"github.com/slack-go/slack", "github.com/gorilla/websocket"},
	"bot/platformtest":      append([]string{"bot", "accounts", "commands", "router", "router/openroutertest", "github.com/mattn/go-sqlite3"}, pgx...),
}

// pgx is the PostgreSQL driver and what it brings (one rule, several
// modules): only accounts, and the test-schema helper beside it, use it.
var pgx = []string{"github.com/jackc/pgx/v5", "github.com/jackc/pgpassfile", "github.com/jackc/pgservicefile", "github.com/jackc/puddle/v2", "golang.org/x/text", "golang.org/x/sync"}

// owners: only these packages may import these libraries directly.
var owners = map[string][]string{
	"github.com/bwmarrin/discordgo": {"discord"},
	"github.com/slack-go/slack":     {"slack", "slack/slackfake"},
	"github.com/mattn/go-sqlite3":   {"accounts"},
	"github.com/jackc/pgx/v5":       {"accounts", "accounts/postgrestest"},
	"github.com/go-co-op/gocron/v2": {"scheduler"},
}

// TestImportRules fails when a package depends on what DESIGN.md says it
// must not: go list is the source of truth, so an import added anywhere is
// caught.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg := strings.TrimPrefix(strings.TrimPrefix(parts[0], module), "/")
		if pkg == "cmd/orchat" {
			continue
		}
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %s has no import rule: add it to allowed in arch_test.go (and to DESIGN.md's table)", pkg)
			continue
		}
		for _, dep := range strings.Fields(parts[2]) {
			if name := strings.TrimPrefix(strings.TrimPrefix(dep, module), "/"); !isStd(dep) && !permitted(name, rules) {
				t.Errorf("%s depends on %s, which DESIGN.md does not allow", pkg, name)
			}
		}
		for _, imp := range strings.Fields(parts[1]) {
			for lib, who := range owners {
				if strings.HasPrefix(imp, lib) && !contains(who, pkg) {
					t.Errorf("%s imports %s; only %v may", pkg, lib, who)
				}
			}
		}
	}
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func permitted(dep string, rules []string) bool {
	for _, r := range rules {
		if dep == r || strings.HasPrefix(dep, r+"/") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
