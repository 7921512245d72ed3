package slack

import (
	"container/list"
	"sync"
	"time"
)

// cache is a bounded map with a time to live: the adapter's memory of
// events already handled, threads the bot takes part in and user names.
// The oldest entries go first when it is full.
type cache[V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[string]*list.Element
	order *list.List // front = newest
}

type cacheEntry[V any] struct {
	key string
	val V
	at  time.Time
}

func newCache[V any](max int, ttl time.Duration) *cache[V] {
	return &cache[V]{max: max, ttl: ttl, items: map[string]*list.Element{}, order: list.New()}
}

// get returns the value for key if it is there and fresh.
func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	e, ok := c.items[key]
	if !ok {
		return zero, false
	}
	ent := e.Value.(*cacheEntry[V])
	if c.ttl > 0 && time.Since(ent.at) > c.ttl {
		c.order.Remove(e)
		delete(c.items, key)
		return zero, false
	}
	return ent.val, true
}

// put stores key.
func (c *cache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, v)
}

func (c *cache[V]) putLocked(key string, v V) {
	if e, ok := c.items[key]; ok {
		ent := e.Value.(*cacheEntry[V])
		ent.val, ent.at = v, time.Now()
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry[V]{key: key, val: v, at: time.Now()})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*cacheEntry[V]).key)
	}
}

// add stores key and reports whether it was new (or expired): the check
// and the insert are one step, so two deliveries racing each other are
// told apart.
func (c *cache[V]) add(key string, v V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		ent := e.Value.(*cacheEntry[V])
		if c.ttl <= 0 || time.Since(ent.at) <= c.ttl {
			return false
		}
	}
	c.putLocked(key, v)
	return true
}

// remove forgets key.
func (c *cache[V]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.Remove(e)
		delete(c.items, key)
	}
}
