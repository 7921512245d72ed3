package stacktest

import (
	"bytes"
	"sync"
)

// SyncBuffer is a log or output sink safe for concurrent writers: tests
// hand it to a bot whose goroutines all write at once, then read it whole.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
