package bot

import (
	"container/list"
	"sync"
	"time"
)

// Cache is the one bounded memory every part keeps for a while: the event
// ids already handled (so an event a platform delivers again, after a
// gateway resume or a Slack retry, is handled once), the Slack threads the
// bot takes part in and the names it looked up, the Discord compares that
// can still be voted on. It holds at most max entries, dropping the oldest
// first, and forgets an entry ttl after it was stored (ttl 0: never), so
// neither a flood of events nor a long uptime grows it without bound. It is
// safe for concurrent use.
type Cache[V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	items map[string]*list.Element
	order *list.List // of *cacheEntry[V], front = most recently stored
}

type cacheEntry[V any] struct {
	key string
	val V
	at  time.Time
}

// NewCache returns a cache of at most max entries that live for ttl (0:
// until they are the oldest of a full cache), on the clock now (nil:
// time.Now; the engine passes its own, which tests set).
func NewCache[V any](max int, ttl time.Duration, now func() time.Time) *Cache[V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{max: max, ttl: ttl, now: now, items: map[string]*list.Element{}, order: list.New()}
}

// Get returns the value stored for key, unless it has expired.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	e, ok := c.items[key]
	if !ok {
		return zero, false
	}
	ent := e.Value.(*cacheEntry[V])
	if c.expired(ent, c.now()) {
		c.order.Remove(e)
		delete(c.items, key)
		return zero, false
	}
	return ent.val, true
}

// Put stores v for key (again: its time to live starts over).
func (c *Cache[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(key, v, c.now())
}

// Add stores v for key unless a live entry is there, and reports whether it
// stored it. The check and the store are one step, so of two deliveries of
// one event racing each other exactly one is told it is new.
func (c *Cache[V]) Add(key string, v V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if e, ok := c.items[key]; ok && !c.expired(e.Value.(*cacheEntry[V]), now) {
		return false
	}
	c.put(key, v, now)
	return true
}

// Delete forgets key.
func (c *Cache[V]) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.Remove(e)
		delete(c.items, key)
	}
}

// Len returns how many entries the cache holds, expired ones not yet
// dropped included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// put stores an entry at now and drops, from the oldest end, what is over
// the size or has expired; c.mu is held.
func (c *Cache[V]) put(key string, v V, now time.Time) {
	if e, ok := c.items[key]; ok {
		ent := e.Value.(*cacheEntry[V])
		ent.val, ent.at = v, now
		c.order.MoveToFront(e)
	} else {
		c.items[key] = c.order.PushFront(&cacheEntry[V]{key: key, val: v, at: now})
	}
	for old := c.order.Back(); old != nil; old = c.order.Back() {
		ent := old.Value.(*cacheEntry[V])
		if c.order.Len() <= c.max && !c.expired(ent, now) {
			break
		}
		c.order.Remove(old)
		delete(c.items, ent.key)
	}
}

func (c *Cache[V]) expired(ent *cacheEntry[V], now time.Time) bool {
	return c.ttl > 0 && now.Sub(ent.at) >= c.ttl
}
