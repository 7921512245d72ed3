package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/ops"
	"github.com/orchat/orchat/scheduler"
)

var _ discord.Locks = (*accounts.Locks)(nil)
var _ discord.LockHolders = (*accounts.Store)(nil)
var _ discord.ShardMetrics = (*ops.Metrics)(nil)

// commandsLease is the lease that elects the process registering
// Discord's commands when the scheduler holds no election of its own
// (scheduler.leader off).
const commandsLease = "discord-commands"

// discordShares is how processes sharing a PostgreSQL database share
// Discord: shards and identify turns through the store's locks, and the
// commands registered by the leader alone.
type discordShares struct {
	store  *accounts.Store
	holder string
	log    *slog.Logger
	leader atomic.Pointer[scheduler.LeaseElector]
}

// shareDiscord fills opts for processes sharing store: with PostgreSQL,
// the locks and the leader; with SQLite (one process owns the file)
// nothing, so the process serves every shard not fixed and, serving
// shard 0, registers the commands. elect must then be given the
// scheduler.
func shareDiscord(store *accounts.Store, opts *discord.Options, log *slog.Logger) *discordShares {
	if store.Engine() != accounts.Postgres {
		return nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "orchat"
	}
	sh := &discordShares{store: store, holder: fmt.Sprintf("%s-%d", host, os.Getpid()), log: log}
	opts.OpenLocks = func(ctx context.Context) (discord.Locks, error) {
		l, err := store.OpenLocks(ctx, "discord "+sh.holder, 0)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	opts.Holders = store
	opts.Leader = sh.leads
	return sh
}

// elect makes the scheduler's leader the one that registers the
// commands, or, without a scheduler election, a lease of its own.
func (sh *discordShares) elect(s *scheduler.Scheduler) {
	if sh == nil {
		return
	}
	e := s.Elector()
	if e == nil {
		e = scheduler.NewLeaseElector(sh.store, commandsLease, sh.holder, 30*time.Second, sh.log)
	}
	sh.leader.Store(e)
}

// leads reports whether this process is the leader (false until the
// election is known).
func (sh *discordShares) leads() bool {
	e := sh.leader.Load()
	if e == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.IsLeader(ctx) == nil
}
