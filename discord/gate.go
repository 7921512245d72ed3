package discord

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// DefaultIdentifyInterval is how often one rate-limit bucket may identify:
// Discord's max_concurrency is "the number of identify requests allowed
// per 5 seconds", one per bucket (shard_id % max_concurrency).
const DefaultIdentifyInterval = 5 * time.Second

// identifyGate lets one shard of each rate-limit bucket start a gateway
// connection at a time, and the next only DefaultIdentifyInterval after
// the previous one got its READY (or gave up). Every dial of a shard's
// websocket passes it, resumes included: discordgo answers an Invalid
// Session by identifying at once on the connection it has, so only a
// gate on the dial covers every IDENTIFY it can send.
//
// Across processes the bucket is also a lock (identifyLock) held from
// the dial until the interval after READY has passed (and a moment more,
// so the process's next shard keeps it), so processes sharing a database
// never identify in one bucket together. A process that takes the lock
// waits an interval first unless it was handed over (handoverLock): the
// one before may have died holding it, just after an IDENTIFY. Within the
// process the buckets below do the same for shards sharing a session of
// locks (a lock is re-entrant for its holder).
type identifyGate struct {
	every time.Duration
	log   *slog.Logger
	locks func() Locks // the current lock session, or nil (one process)

	mu          sync.Mutex
	concurrency int
	buckets     map[int]*bucket
}

// bucket is one rate-limit key's state.
type bucket struct {
	busy   bool      // a shard is connecting
	shard  int       // which
	since  time.Time // since when
	free   time.Time // the next IDENTIFY may start then
	locked Locks     // the lock session holding identifyLock, while held
	unlock *time.Timer
	// handing: the bucket's lock was taken from a live process that is
	// still handing it over (it holds handoverLock): wait for the end.
	handing bool
}

// staleAttempt is how long a connection attempt may keep its bucket
// without READY or an error before the gate counts it as over.
const staleAttempt = 30 * time.Second

// gatePoll is how often a shard waiting for a bucket another process
// holds asks again.
const gatePoll = 250 * time.Millisecond

func newIdentifyGate(every time.Duration, log *slog.Logger, locks func() Locks) *identifyGate {
	return &identifyGate{every: every, log: log, locks: locks, concurrency: 1, buckets: map[int]*bucket{}}
}

// identifyLock is the lock of rate-limit bucket key.
func identifyLock(key int) string { return "discord-identify/" + strconv.Itoa(key) }

// setConcurrency sets max_concurrency as GET /gateway/bot said.
func (g *identifyGate) setConcurrency(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.concurrency = max(n, 1)
}

func (g *identifyGate) bucketLocked(shard int) (int, *bucket) {
	key := shard % g.concurrency
	b := g.buckets[key]
	if b == nil {
		b = &bucket{}
		g.buckets[key] = b
	}
	return key, b
}

// wait blocks until shard may connect (and so identify), or ctx ends.
func (g *identifyGate) wait(ctx context.Context, shard int) error {
	for {
		delay, err := g.try(ctx, shard)
		if err != nil || delay == 0 {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// try takes shard's bucket if it is free: 0 when taken, else how long to
// wait before asking again.
func (g *identifyGate) try(ctx context.Context, shard int) (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	key, b := g.bucketLocked(shard)
	if b.busy && (b.shard == shard || now.Sub(b.since) > staleAttempt) {
		// The shard dials again: its last attempt ended without READY.
		g.finishLocked(key, b, now)
	}
	if b.busy {
		return gatePoll, nil
	}
	if wait := b.free.Sub(now); wait > 0 {
		return wait, nil
	}
	if l := g.locks(); l != nil {
		if b.locked != l {
			b.locked, b.unlock, b.handing = nil, nil, false
			ok, err := l.TryLock(ctx, identifyLock(key))
			if err != nil {
				g.log.Debug("identify lock unavailable; waiting", "bucket", key, "err", err)
				return gatePoll, nil
			}
			if !ok {
				return gatePoll, nil // another process identifies in this bucket
			}
			b.locked = l
			// The lock was free: handed over by a live process an
			// interval after its last IDENTIFY (it holds the handover
			// lock a moment longer), or freed by the death of one that
			// may have identified just before, or never taken: then
			// wait an interval, holding both locks.
			mine, err := l.TryLock(ctx, handoverLock(key))
			if err != nil || mine {
				b.free = now.Add(g.every)
				g.unlockLaterLocked(key, b, b.free) // should the shard stop waiting
				return g.every, nil
			}
			b.handing = true
			g.unlockLaterLocked(key, b, now.Add(g.every))
		}
		if b.handing {
			// Identify once the handover is over and the handover lock
			// is ours: should this process die then, the next one finds
			// both locks free and waits the interval out.
			mine, err := l.TryLock(ctx, handoverLock(key))
			if err != nil || !mine {
				return gatePoll, nil
			}
			b.handing = false
		}
		if b.unlock != nil {
			b.unlock.Stop() // still ours: keep it for this attempt
			b.unlock = nil
		}
	}
	b.busy, b.shard, b.since = true, shard, now
	return 0, nil
}

// finish ends shard's connection attempt (READY came, or it failed): the
// bucket's next IDENTIFY may start an interval from now.
func (g *identifyGate) finish(shard int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key, b := g.bucketLocked(shard)
	if b.busy && b.shard == shard {
		g.finishLocked(key, b, time.Now())
	}
}

func (g *identifyGate) finishLocked(key int, b *bucket, now time.Time) {
	b.busy = false
	b.free = now.Add(g.every)
	g.unlockLaterLocked(key, b, b.free)
}

// unlockLaterLocked gives the bucket's locks back a moment after at
// (the end of its interval), unless an attempt takes them again first:
// this process's next shard in the bucket, waiting for b.free, goes on
// without asking for the lock again, and the locks are given back when
// nothing comes. The bucket's lock is handed over: the handover lock is
// kept a moment longer (handoverHold), so the process taking the bucket
// next knows the interval is over; it waits for the handover lock before
// it identifies.
func (g *identifyGate) unlockLaterLocked(key int, b *bucket, at time.Time) {
	l := b.locked
	if l == nil {
		return
	}
	if b.unlock != nil {
		b.unlock.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(at)+2*gatePoll, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if b.unlock != t || b.busy {
			return // taken again meanwhile
		}
		handing := b.handing
		b.locked, b.unlock, b.handing = nil, nil, false
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Unlock(ctx, identifyLock(key)); err != nil {
			g.log.Debug("release the identify lock", "bucket", key, "err", err)
		}
		if handing {
			return // the handover lock is still the other process's
		}
		time.AfterFunc(handoverHold, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = l.Unlock(ctx, handoverLock(key))
		})
	})
	b.unlock = t
}

// handoverHold is how long a process keeps the handover lock after
// giving a bucket's lock back: a few polls of the processes waiting.
const handoverHold = 3 * gatePoll

// handoverLock is held by the process holding bucket key's lock, and a
// moment past it when it gives the bucket back an interval after its
// last IDENTIFY: a process that finds it held knows the one before it is
// alive and done.
func handoverLock(key int) string { return "discord-identify-handover/" + strconv.Itoa(key) }
