package config

import "fmt"

// FixedShards are the Discord shards this process serves when the file
// fixes them: shard_ids, or shard_id when set; nil when neither is (the
// process serves every shard, or claims its share on a shared database).
func (d DiscordConfig) FixedShards() []int {
	switch {
	case len(d.ShardIDs) > 0:
		return append([]int(nil), d.ShardIDs...)
	case d.ShardIDSet:
		return []int{d.ShardID}
	}
	return nil
}

// validateShards checks discord.shard_count, shard_id and shard_ids.
func (c *Config) validateShards(bad func(key string, val any, allowed string)) {
	d := c.Discord
	if d.ShardCount < 0 {
		bad("discord.shard_count", d.ShardCount, "must be 0 (as many shards as Discord recommends) or more")
		return
	}
	inRange := func(id int) bool { return id >= 0 && (d.ShardCount == 0 || id < d.ShardCount) }
	rangeText := "must be 0 or more"
	if d.ShardCount > 0 {
		rangeText = fmt.Sprintf("must be between 0 and discord.shard_count-1 (shard_count = %d)", d.ShardCount)
	}
	if d.ShardIDSet && len(d.ShardIDs) > 0 {
		bad("discord.shard_ids", d.ShardIDs, "cannot be set beside discord.shard_id: list every shard of this process in discord.shard_ids and remove shard_id")
		return
	}
	if d.ShardIDSet && !inRange(d.ShardID) {
		bad("discord.shard_id", d.ShardID, rangeText)
	}
	seen := map[int]bool{}
	for _, id := range d.ShardIDs {
		switch {
		case !inRange(id):
			bad("discord.shard_ids", d.ShardIDs, fmt.Sprintf("has shard %d: each shard %s", id, rangeText))
			return
		case seen[id]:
			bad("discord.shard_ids", d.ShardIDs, fmt.Sprintf("lists shard %d twice: list each shard once", id))
			return
		}
		seen[id] = true
	}
}
