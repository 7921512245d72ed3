package router

import (
	"sync"
	"time"
)

// watchdog ends an attempt when the upstream has sent nothing for d: the
// first-byte and idle timeouts. A timer that fires says only that this
// process read nothing for d. A process that was paused (SIGSTOP, a frozen
// VM, a long stop of the world) or starved of CPU reads nothing either
// while the upstream's bytes wait in its socket, and cutting the stream
// then throws away an answer the upstream has already sent, and billed:
// the load test saw "billed 224 tokens, charged 0" after a 0.7 s pause.
//
// So a fire is trusted only when it is on time and has nothing to show
// after a short grace. A fire that comes late (the process was not running
// when it was due, so the reader was not either) re-arms for another d, up
// to maxLate times in a row; an on-time fire re-arms once for the grace,
// in which the reader, woken together with the timer, takes what arrived.
// Anything read (touch) starts over. A stalled upstream is cut after d
// plus the grace (at most a second), or a few periods more while the
// process keeps being paused. Times are the monotonic clock, never the
// router's Now (which tests may freeze).
type watchdog struct {
	mu      sync.Mutex
	t       *time.Timer
	d       time.Duration
	due     time.Time // when the timer is set to fire
	graced  bool      // the on-time fire's grace is running
	late    int       // late fires since the last touch
	stopped bool
	expire  func()
}

// maxLate bounds how many late fires in a row re-arm the timer, so a
// stall still ends in a process that is paused again and again.
const maxLate = 3

// newWatchdog starts a watchdog that calls expire once the upstream has
// been silent for d.
func newWatchdog(d time.Duration, expire func()) *watchdog {
	w := &watchdog{d: d, expire: expire}
	w.mu.Lock() // a fire waits until t is set
	defer w.mu.Unlock()
	w.due = time.Now().Add(d)
	w.t = time.AfterFunc(d, w.fire)
	return w
}

// grace is how long an on-time fire waits for the reader.
func (w *watchdog) grace() time.Duration { return min(w.d/4, time.Second) }

func (w *watchdog) arm(d time.Duration) {
	w.due = time.Now().Add(d)
	w.t.Reset(d)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.stopped || now.Before(w.due) {
		return // stopped, or touched after this fire was already on its way
	}
	switch {
	case now.Sub(w.due) > w.d/4 && w.late < maxLate:
		w.late++
		w.graced = false
		w.arm(w.d)
	case !w.graced:
		w.graced = true
		w.arm(w.grace())
	default:
		w.stopped = true
		w.expire()
	}
}

// touch records progress: the silence starts over.
func (w *watchdog) touch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.graced, w.late = false, 0
	w.arm(w.d)
}

// stop ends the watchdog; it never expires after stop returns.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}
