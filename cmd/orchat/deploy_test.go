package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/orchat/orchat/config"
)

// TestComposeFile checks deploy/compose.yaml against the config it runs
// orchat with: every replica's config parses and validates (no unknown
// key), the replicas have distinct instance names and split the Discord
// shards between them (all claiming through the database, or fixed shards
// that cover the count once), the ledger is the compose file's PostgreSQL through
// ORCHAT_DATABASE_URL, and every variable it passes is one orchat reads.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Configs     []struct {
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"configs"`
			DependsOn map[string]any `yaml:"depends_on"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	pg, ok := f.Services["postgres"]
	if !ok || !strings.HasPrefix(pg.Image, "postgres:") {
		t.Fatalf("no postgres service: %+v", f.Services)
	}
	known := []string{"OPENROUTER_API_KEY", "DISCORD_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "ORCHAT_DATABASE_URL"}
	// Compose's ${NAME:-default} and ${NAME:?message}, as compose fills them.
	interpolate := regexp.MustCompile(`\$\{([A-Z_]+)(:[-?][^}]*)?\}`)
	var instances []string
	shards := map[int]string{}
	counts := map[int]bool{}
	claiming := 0
	for name, svc := range f.Services {
		if !strings.HasPrefix(name, "orchat") {
			continue
		}
		if _, ok := svc.DependsOn["postgres"]; !ok {
			t.Errorf("%s does not wait for postgres", name)
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if !slices.Contains(known, k) {
				t.Errorf("%s sets %s, which orchat does not read", name, k)
			}
			env[k] = interpolate.ReplaceAllString(v, "secret")
		}
		if db := env["ORCHAT_DATABASE_URL"]; !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, "@postgres:5432/") {
			t.Errorf("%s: ORCHAT_DATABASE_URL=%q is not the compose file's PostgreSQL", name, db)
		}
		if len(svc.Configs) != 1 || !slices.Contains(svc.Command, svc.Configs[0].Target) {
			t.Fatalf("%s: command %v does not read its config %+v", name, svc.Command, svc.Configs)
		}
		content := f.Configs[svc.Configs[0].Source].Content
		c, err := config.Parse(strings.NewReader(content), func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s's config does not parse: %v\n%s", name, err, content)
		}
		if c.Accounts.Database != env["ORCHAT_DATABASE_URL"] {
			t.Errorf("%s: the ledger is %q, want ORCHAT_DATABASE_URL's", name, c.Accounts.Database)
		}
		instances = append(instances, c.InstanceName())
		counts[c.Discord.ShardCount] = true
		fixed := c.Discord.FixedShards()
		if len(fixed) == 0 {
			claiming++
		}
		for _, id := range fixed {
			if other, dup := shards[id]; dup {
				t.Errorf("%s and %s both run Discord shard %d", name, other, id)
			}
			shards[id] = name
		}
	}
	if len(instances) < 2 {
		t.Fatalf("%d orchat replicas, want at least two", len(instances))
	}
	slices.Sort(instances)
	if len(slices.Compact(slices.Clone(instances))) != len(instances) {
		t.Errorf("instance names %v are not distinct", instances)
	}
	if len(counts) != 1 {
		t.Errorf("the replicas disagree on discord.shard_count: %v", counts)
	}
	switch {
	case claiming == len(instances):
		// Every replica claims its share through the database.
	case claiming > 0:
		t.Errorf("%d replicas claim shards and %d fix theirs: fix every replica's or none", claiming, len(instances)-claiming)
	default:
		for count := range counts {
			if len(shards) != count {
				t.Errorf("the replicas run shards %v of %d", shards, count)
			}
		}
	}
}
