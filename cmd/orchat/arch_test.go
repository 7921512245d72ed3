package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/orchat/orchat"

// The rules of DESIGN.md "Folders", checked against go list, the source of
// truth, so an import added anywhere is caught:
//
//   - bot, the domain, and everything under it import only the standard
//     library;
//   - every other package does one job in terms of bot, with one outside
//     library (allowed lists what each may depend on, directly or not);
//   - stack, the one place the pipeline is wired, may import the domain
//     packages and the simulator, and config maps the file onto it;
//   - only ops imports prometheus, only accounts go-sqlite3, and so on
//     (owners);
//   - the binaries (cmd/...) may use everything, but orchat, the product,
//     links no platform fake and no test support (TestProductLinksNoFake).
var allowed = map[string][]string{
	"bot":      {},
	"commands": {"bot"},
	"console":  append([]string{"bot"}, glamour...),
	"router":   {"bot", "router/internal/tiermodel", "router/internal/tierset"},
	// The auto router's tier model, its labelled prompts and its trainer
	// (go generate) are the router's own.
	"router/internal/tierset":   {"bot"},
	"router/internal/tiermodel": {"bot", "router/internal/tierset"},
	"router/internal/train":     {"bot", "router/internal/tiermodel", "router/internal/tierset"},
	"router/openroutertest":     {"bot", "router"},
	"accounts":                  append([]string{"bot", "github.com/mattn/go-sqlite3"}, pgx...),
	"accounts/accountstest":     {"bot"},
	"accounts/postgrestest":     pgx,
	"scheduler":                 {"bot", "github.com/go-co-op/gocron/v2", "github.com/jonboulle/clockwork", "github.com/robfig/cron/v3", "github.com/google/uuid"},
	"discord":                   {"bot", "github.com/bwmarrin/discordgo", "github.com/gorilla/websocket", "golang.org/x/crypto"},
	"discord/discordtest":       {"github.com/gorilla/websocket"},
	"slack":                     {"bot", "github.com/slack-go/slack", "github.com/gorilla/websocket"},
	"slack/slacktest":           {"github.com/slack-go/slack", "github.com/gorilla/websocket"},
	"stack":                     append([]string{"bot", "accounts", "commands", "router", "router/openroutertest", "github.com/mattn/go-sqlite3"}, pgx...),
	"stack/stacktest":           append([]string{"bot", "stack", "accounts", "commands", "router", "router/openroutertest", "github.com/mattn/go-sqlite3"}, pgx...),
	"config":                    append([]string{"bot", "stack", "accounts", "commands", "router", "router/openroutertest", "github.com/mattn/go-sqlite3", "github.com/BurntSushi/toml"}, pgx...),
	"ops": {"bot", "github.com/prometheus", "github.com/beorn7/perks", "github.com/cespare/xxhash", "github.com/munnerz/goautoneg",
		"google.golang.org/protobuf", "golang.org/x/sys"},
}

// pgx is the PostgreSQL driver and what it brings (one rule, several
// modules): only accounts, and the test-schema helper beside it, use it.
var pgx = []string{"github.com/jackc/pgx/v5", "github.com/jackc/pgpassfile", "github.com/jackc/pgservicefile", "github.com/jackc/puddle/v2", "golang.org/x/text", "golang.org/x/sync"}

// glamour renders Markdown for the terminal, with what it brings: only
// console uses it.
var glamour = []string{"github.com/charmbracelet", "github.com/alecthomas/chroma", "github.com/aymanbagabas/go-osc52",
	"github.com/aymerick/douceur", "github.com/dlclark/regexp2", "github.com/gorilla/css", "github.com/lucasb-eyer/go-colorful",
	"github.com/mattn/go-isatty", "github.com/mattn/go-runewidth", "github.com/microcosm-cc/bluemonday", "github.com/muesli/reflow",
	"github.com/muesli/termenv", "github.com/rivo/uniseg", "github.com/xo/terminfo", "github.com/yuin/goldmark", "github.com/yuin/goldmark-emoji",
	"golang.org/x/net", "golang.org/x/sys", "golang.org/x/term", "golang.org/x/text"}

// owners: only these packages may import these libraries directly.
var owners = map[string][]string{
	"github.com/bwmarrin/discordgo": {"discord"},
	"github.com/slack-go/slack":     {"slack", "slack/slacktest"},
	"github.com/mattn/go-sqlite3":   {"accounts"},
	"github.com/jackc/pgx/v5":       {"accounts", "accounts/postgrestest"},
	"github.com/go-co-op/gocron/v2": {"scheduler"},
	"github.com/prometheus":         {"ops"},
	"github.com/BurntSushi/toml":    {"config"},
	"github.com/charmbracelet/":     {"console"},
}

// notInProduct are what `go list -deps ./cmd/orchat` must never contain:
// the platform fakes, slack-go's test server, the load test and the test
// support packages.
var notInProduct = []string{
	module + "/discord/discordtest", module + "/slack/slacktest", "github.com/slack-go/slack/slacktest",
	"net/http/httptest", module + "/cmd/orchat-loadtest", module + "/stack/stacktest", module + "/accounts/accountstest",
}

// TestImportRules fails when a package depends on what DESIGN.md says it
// must not.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg := strings.TrimPrefix(strings.TrimPrefix(parts[0], module), "/")
		if strings.HasPrefix(pkg, "cmd/") {
			continue // the binaries; the product's own rule is TestProductLinksNoFake
		}
		rules, ok := allowed[pkg]
		if strings.HasPrefix(pkg, "bot/") {
			rules, ok = nil, true // under the domain: the standard library only
		}
		if !ok {
			t.Errorf("package %s has no import rule: add it to allowed in arch_test.go (and to the README's folder table)", pkg)
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

// TestProductLinksNoFake fails when the orchat binary would link a
// platform fake, the load test or test support.
func TestProductLinksNoFake(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !contains(deps, module+"/stack") || !contains(deps, module+"/router/openroutertest") {
		t.Fatalf("go list -deps lists neither the stack nor the simulator: %d deps", len(deps))
	}
	for _, bad := range notInProduct {
		if contains(deps, bad) {
			t.Errorf("cmd/orchat links %s; the product binary must not", bad)
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
