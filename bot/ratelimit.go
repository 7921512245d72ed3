package bot

import (
	"sync"
	"time"
)

// limiter is the engine's in-memory per-user token bucket. A bucket that
// has sat idle long enough to refill is the same as no bucket (a new one
// starts full), so it can go; keeping every bucket ever made grew the
// heap by about 200 bytes a user (300,000 users: 60 MB).
//
// Buckets live in two generations, swapped every window (the time an
// empty bucket takes to fill): a bucket touched in the current window is
// in cur; one last touched in the window before is in prev and moves to
// cur when touched; prev is dropped whole at the swap. A dropped bucket
// was untouched for at least a window, so it was full: eviction never
// lets anyone past the limit. Memory is the users seen in the last two
// windows, with no sweep over them.
type limiter struct {
	limit RateLimit

	mu        sync.Mutex
	window    time.Duration
	rotated   time.Time // when cur began
	cur, prev map[Identity]bucket
}

// bucket is one user's tokens as of at (unix nanoseconds of the engine's
// clock).
type bucket struct {
	tokens float64
	at     int64
}

func newLimiter(limit RateLimit) *limiter {
	l := &limiter{limit: limit, cur: map[Identity]bucket{}, prev: map[Identity]bucket{}}
	if limit.PerMinute > 0 {
		l.window = time.Duration(float64(max(limit.Burst, 1)) / (limit.PerMinute / 60) * float64(time.Second))
	}
	return l
}

// allow takes one token from id's bucket at now; when it is empty it
// returns how long until the next token.
func (l *limiter) allow(id Identity, now time.Time) (time.Duration, bool) {
	if l.limit.PerMinute <= 0 {
		return 0, true
	}
	burst := float64(max(l.limit.Burst, 1))
	perSec := l.limit.PerMinute / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rotate(now)
	b, ok := l.cur[id]
	if !ok {
		if b, ok = l.prev[id]; ok {
			delete(l.prev, id)
		} else {
			b = bucket{tokens: burst, at: now.UnixNano()}
		}
	}
	b.tokens = min(burst, b.tokens+max(0, float64(now.UnixNano()-b.at)/1e9)*perSec)
	b.at = now.UnixNano()
	var wait time.Duration
	if b.tokens >= 1 {
		b.tokens--
	} else {
		wait = time.Duration((1 - b.tokens) / perSec * float64(time.Second))
	}
	l.cur[id] = b
	return wait, wait == 0
}

// rotate drops the buckets untouched for a whole window.
func (l *limiter) rotate(now time.Time) {
	if l.rotated.IsZero() {
		l.rotated = now
	}
	switch since := now.Sub(l.rotated); {
	case since >= 2*l.window:
		l.prev, l.cur = map[Identity]bucket{}, map[Identity]bucket{}
		l.rotated = now
	case since >= l.window:
		l.prev, l.cur = l.cur, make(map[Identity]bucket, len(l.cur)/2)
		l.rotated = now
	}
}
