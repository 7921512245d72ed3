package main

import (
	"context"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/ops"
)

var _ discord.Locks = (*accounts.Locks)(nil)
var _ discord.LockHolders = (*accounts.Store)(nil)
var _ discord.ShardMetrics = (*ops.Metrics)(nil)

// shareDiscord fills opts for processes sharing store (PostgreSQL): the
// locks through which they claim shards and take turns to identify, and
// who holds them. With SQLite (one process owns the file) opts is left
// as it is, so the process serves every shard not fixed. instance names
// this process in the lock holders (as in the scheduler's lease).
func shareDiscord(store *accounts.Store, opts *discord.Options, instance string) {
	opts.OpenLocks = func(ctx context.Context) (discord.Locks, error) {
		l, err := store.OpenLocks(ctx, "discord "+instance, 0)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	opts.Holders = store
}
