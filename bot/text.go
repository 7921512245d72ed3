package bot

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// EditDistance is the Levenshtein distance between a and b, in bytes, each
// cut to 128 bytes: enough to suggest the nearest command or model id for a
// typo without letting a pasted essay cost quadratic time.
func EditDistance(a, b string) int {
	if len(a) > 128 {
		a = a[:128]
	}
	if len(b) > 128 {
		b = b[:128]
	}
	var buf [2][129]int
	prev, cur := buf[0][:len(b)+1], buf[1][:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// String writes the tally in choice order, tie last: "A 2 · B 1 · tie 0",
// or "none yet" before the first vote.
func (t Tally) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i] == "tie" || keys[j] == "tie" {
			return keys[j] == "tie" && keys[i] != "tie"
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return "none yet"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, t[k])
	}
	return strings.Join(parts, " · ")
}

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
