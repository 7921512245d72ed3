package bot

import (
	"sync"
	"time"
)

// SeenSet remembers ids for a while, so an event a platform delivers again
// (a gateway resume, a Slack retry) is handled once. It forgets ids older
// than its TTL, and the oldest ones beyond its size.
type SeenSet struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	at    map[string]time.Time
	order []string
}

// NewSeenSet returns a set that remembers ids for ttl, at most max of them.
func NewSeenSet(ttl time.Duration, max int) *SeenSet {
	return &SeenSet{ttl: ttl, max: max, at: map[string]time.Time{}}
}

// Add records id at now and reports whether it was new.
func (s *SeenSet) Add(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) > 0 {
		t, ok := s.at[s.order[0]]
		if ok && now.Sub(t) < s.ttl && len(s.order) < s.max {
			break
		}
		delete(s.at, s.order[0])
		s.order = s.order[1:]
	}
	if _, ok := s.at[id]; ok {
		return false
	}
	s.at[id] = now
	s.order = append(s.order, id)
	return true
}
