package bot_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

func TestCache(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	t.Run("AddIsTrueOnceUntilTheTTL", func(t *testing.T) {
		c := bot.NewCache[struct{}](10, time.Hour, clock)
		if !c.Add("ev1", struct{}{}) {
			t.Fatal("a new id was not new")
		}
		now = now.Add(59 * time.Minute)
		if c.Add("ev1", struct{}{}) {
			t.Fatal("a redelivery within the hour was new")
		}
		now = now.Add(time.Minute)
		if !c.Add("ev1", struct{}{}) {
			t.Fatal("an id an hour old was still remembered")
		}
	})

	t.Run("OldestGoFirstWhenFull", func(t *testing.T) {
		c := bot.NewCache[int](3, 0, clock)
		for i := range 4 {
			c.Put(fmt.Sprint(i), i)
		}
		if _, ok := c.Get("0"); ok {
			t.Error("the oldest entry survived a full cache")
		}
		for _, k := range []string{"1", "2", "3"} {
			if v, ok := c.Get(k); !ok || fmt.Sprint(v) != k {
				t.Errorf("Get(%s)=%d,%v", k, v, ok)
			}
		}
		if got := c.Len(); got != 3 {
			t.Errorf("Len=%d, want 3", got)
		}
	})

	t.Run("PutRefreshes", func(t *testing.T) {
		c := bot.NewCache[string](2, time.Minute, clock)
		c.Put("a", "1")
		c.Put("b", "2")
		c.Put("a", "3") // a is now the newest
		c.Put("c", "4") // so b goes
		if _, ok := c.Get("b"); ok {
			t.Error("b survived although a was stored after it")
		}
		if v, _ := c.Get("a"); v != "3" {
			t.Errorf("a=%q, want the value stored last", v)
		}
		now = now.Add(time.Minute)
		if _, ok := c.Get("a"); ok {
			t.Error("a outlived its minute")
		}
	})

	t.Run("ExpiredEntriesDoNotPileUp", func(t *testing.T) {
		c := bot.NewCache[struct{}](1000, time.Second, clock)
		for i := range 100 {
			c.Add(fmt.Sprint(i), struct{}{})
			now = now.Add(100 * time.Millisecond)
		}
		if got := c.Len(); got > 11 {
			t.Errorf("Len=%d after 10 s of ids living 1 s, want at most 11", got)
		}
	})

	t.Run("ConcurrentAddsOfOneIDTellOne", func(t *testing.T) {
		c := bot.NewCache[struct{}](100, time.Hour, nil)
		var wg sync.WaitGroup
		var fresh atomic.Int32
		for range 16 {
			wg.Go(func() {
				if c.Add("same", struct{}{}) {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Fatalf("%d of 16 concurrent deliveries were told they were new, want 1", fresh.Load())
		}
	})
}
