package stacktest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// Counter is a bot.Handler that counts the events it has finished, so a
// harness can wait until the answer to what it just sent is complete.
type Counter struct {
	next     bot.Handler
	mu       sync.Mutex
	cv       *sync.Cond
	started  int
	finished int
}

// Handle passes the event on and counts it.
func (c *Counter) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	c.mu.Lock()
	c.started++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.finished++
		c.condLocked().Broadcast()
		c.mu.Unlock()
	}()
	return c.next.Handle(ctx, ev, out)
}

func (c *Counter) condLocked() *sync.Cond {
	if c.cv == nil {
		c.cv = sync.NewCond(&c.mu)
	}
	return c.cv
}

// Finished returns how many events have been handled to the end.
func (c *Counter) Finished() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finished
}

// Await waits until at least n events have finished and none is in
// flight, failing the test after a generous timeout (a hung adapter, not
// a slow one).
func (c *Counter) Await(t testing.TB, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for c.finished < n || c.started != c.finished {
			c.condLocked().Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("gave up waiting for %d handled events: %d started, %d finished", n, c.started, c.finished)
	}
}
