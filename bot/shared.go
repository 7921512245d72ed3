package bot

import (
	"context"
	"time"
)

// The state that keeps answers exactly-once when several processes serve
// one community lives in storage they all share, not in a process's
// memory (DESIGN.md "Scale"). accounts.Store implements these on SQLite
// and PostgreSQL; the engine and the adapters will take them in place of
// their in-memory seen-set and buckets.

// EventLog remembers the platform events already received, across
// restarts and processes, for an hour, so a redelivered event (a Slack
// retry, a Discord gateway replay) gets one answer and one charge.
type EventLog interface {
	// SeenEvent records id (namespaced by platform and kind, such as
	// "slack:event:Ev0123") as received at now and reports whether it is
	// new: true exactly once per id within the window, whichever process
	// asks. EINVALID for an empty or overlong id.
	SeenEvent(ctx context.Context, id string, now time.Time) (bool, error)
}

// SharedLimiter is a per-key token bucket that every process shares: the
// per-user rate limit holds however many processes a user's messages
// reach.
type SharedLimiter interface {
	// TakeToken takes one request from key's bucket under limit: ok, or
	// how long until one is back. A zero PerMinute allows everything.
	// EINVALID for an empty or overlong key.
	TakeToken(ctx context.Context, key string, limit RateLimit, now time.Time) (wait time.Duration, ok bool, err error)
}
