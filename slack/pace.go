package slack

import (
	"context"
	"sync"
	"time"
)

// pacer keeps chat.update inside Slack's Tier 3 (about 50 a minute per
// workspace, shared by every answer streaming there). Each workspace has a
// token bucket, kept as a generic cell rate algorithm: calls are spaced by
// one interval, with a small burst. A caller that finds the bucket empty
// reserves the next free slot and waits for it, so waiters are served in
// order; the engine keeps coalescing text meanwhile, so the edit that
// finally goes out carries the latest text it had. In any window of length
// W a workspace sees at most burst + W×rate calls.
//
// A 429 from Slack closes the workspace's bucket until its Retry-After has
// passed, for every caller; callers that had a slot inside that time take a
// new one after it.
type pacer struct {
	interval time.Duration // between two calls at the steady rate
	tau      time.Duration // how far ahead of the steady rate a burst may run

	mu    sync.Mutex
	teams map[string]*bucket
}

type bucket struct {
	tat    time.Time // theoretical arrival time of the next call
	closed time.Time // no call before this (a 429's Retry-After)
}

func newPacer(perMinute int) *pacer {
	burst := min(max(perMinute/10, 1), 5)
	interval := time.Minute / time.Duration(perMinute)
	return &pacer{interval: interval, tau: time.Duration(burst-1) * interval, teams: map[string]*bucket{}}
}

func (p *pacer) bucket(team string) *bucket {
	b := p.teams[team]
	if b == nil {
		b = &bucket{}
		p.teams[team] = b
	}
	return b
}

// reserve takes the next slot of team's bucket and returns when it is.
func (p *pacer) reserve(team string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucket(team)
	now := time.Now()
	tat := latest(b.tat, now, b.closed)
	at := latest(tat.Add(-p.tau), b.closed, now)
	b.tat = tat.Add(p.interval)
	return at
}

// wait blocks until team may make one more call, or ctx ends.
func (p *pacer) wait(ctx context.Context, team string) error {
	for {
		if err := sleep(ctx, time.Until(p.reserve(team))); err != nil {
			return err
		}
		p.mu.Lock()
		closed := p.bucket(team).closed
		p.mu.Unlock()
		if !time.Now().Before(closed) {
			return nil
		}
	}
}

// block closes team's bucket for d (Slack's Retry-After).
func (p *pacer) block(team string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucket(team)
	if until := time.Now().Add(d); until.After(b.closed) {
		b.closed = until
	}
}

func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
