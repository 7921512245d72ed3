package ops_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/ops"
)

// TestDiscordShards: /metrics shows the shards this process serves, and
// a shard handed to another process drops to 0.
func TestDiscordShards(t *testing.T) {
	m := ops.NewMetrics()
	srv, err := ops.Listen("127.0.0.1:0", m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	scrape := func() string {
		t.Helper()
		res, err := http.Get("http://" + srv.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	m.DiscordShards([]int{0, 1, 2}, 4)
	m.DiscordShards([]int{0, 2}, 4) // shard 1 went to another process
	got := scrape()
	for _, want := range []string{
		"orchat_discord_shards_owned 2", "orchat_discord_shards 4",
		`orchat_discord_shard_served{shard="0"} 1`, `orchat_discord_shard_served{shard="1"} 0`,
		`orchat_discord_shard_served{shard="2"} 1`, `orchat_discord_shard_served{shard="3"} 0`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
