package config

import (
	"slices"
	"strings"
	"testing"
)

func TestFixedShards(t *testing.T) {
	for _, tt := range []struct {
		name, toml string
		want       []int
		count      int
	}{
		{"NoneClaimsOrServesAll", "", nil, 1},
		{"ShardCountAlone", "[discord]\nshard_count = 4", nil, 4},
		{"ShardIDZeroIsAShard", "[discord]\nshard_count = 2\nshard_id = 0", []int{0}, 2},
		{"ShardIDs", "[discord]\nshard_count = 8\nshard_ids = [1, 5, 3]", []int{1, 5, 3}, 8},
		{"AutoCount", "[discord]\nshard_count = 0\nshard_ids = [7]", []int{7}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(tt.toml), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Discord.FixedShards(); !slices.Equal(got, tt.want) {
				t.Fatalf("FixedShards() = %v, want %v", got, tt.want)
			}
			if cfg.Discord.ShardCount != tt.count {
				t.Fatalf("shard_count = %d, want %d", cfg.Discord.ShardCount, tt.count)
			}
		})
	}
	t.Run("ChangeNeedsRestart", func(t *testing.T) {
		old, _ := Parse(strings.NewReader("[discord]\nshard_ids = [0]"), noEnv)
		c, _ := Parse(strings.NewReader("[discord]\nshard_ids = [0, 1]\nshard_count = 2"), noEnv)
		if got := c.RestartNeeded(old); !slices.Contains(got, "discord.shard_ids") {
			t.Fatalf("RestartNeeded = %v, want discord.shard_ids", got)
		}
	})
}
