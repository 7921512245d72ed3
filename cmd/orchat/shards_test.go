package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router/openroutertest"
)

// TestRunSharesDiscordShards: two `orchat run` on one PostgreSQL ledger,
// with no shard configured but shard_count = 0, split the two shards
// Discord recommends, register the commands once, and /metrics of each
// shows the shard it serves.
func TestRunSharesDiscordShards(t *testing.T) {
	db := postgrestest.DSN(t)
	apiKey, token := secret("sk-or-v1-"), secret("discord-bot-token-")
	sim := openroutertest.MustStart(t, openroutertest.Options{APIKey: apiKey})
	dc := discordtest.MustStart(t, discordtest.Options{Token: token, Shards: 2, MaxConcurrency: 2})
	env := map[string]string{"OPENROUTER_API_KEY": apiKey, "DISCORD_BOT_TOKEN": token}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "orchat.toml")
	// A PostgreSQL ledger has no folder for the catalog cache: one here.
	cfg := fmt.Sprintf("[openrouter]\nbase_url = %q\n[router]\ncatalog_cache = %q\n[accounts]\ndatabase = %q\n[discord]\napi_url = %q\nshard_count = 0\n[http]\naddr = \"127.0.0.1:0\"\n",
		sim.URL(), filepath.Join(dir, "models.json"), db, dc.APIURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bases := []string{startRun(t, cfgPath, env), startRun(t, cfgPath, env)}
	eventually(t, "both shards served, one by each process", func() bool {
		got, n := dc.ConnectedShards()
		if len(got) != 2 || n != 2 {
			return false
		}
		for _, b := range bases {
			_, body := get(t, b+"/metrics")
			if !strings.Contains(body, "orchat_discord_shards_owned 1\n") {
				return false
			}
		}
		return true
	})
	if refused := dc.RefusedIdentifies(); len(refused) > 0 {
		t.Fatalf("the gateway refused %d identifies: %s", len(refused), refused[0].Refused)
	}
	eventually(t, "the commands registered", func() bool { return dc.Registrations() > 0 })
	time.Sleep(3 * time.Second) // a second process's registration would come within a round or two
	if got := dc.Registrations(); got != 1 {
		t.Fatalf("%d bulk overwrites of the commands from two processes, want 1", got)
	}
}
