package commands

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/orchat/orchat/bot"
)

// holdCloser is the part of the ledger a Settler calls.
type holdCloser interface {
	Settle(ctx context.Context, holdID int64, c bot.Charge) (bot.Entry, error)
	Release(ctx context.Context, holdID int64) error
}

// Settler settles and releases holds, and keeps trying those whose write
// failed (a full disk, a database that went away) until they land. A failed
// settle used to leave the answer "charged 0" and its hold open until it
// expired, after which it was released: the upstream had billed an answer
// nobody paid for, and the user's balance stayed held meanwhile.
//
// A retry can never charge twice: Settle is idempotent by hold id (a
// settled hold answers with its first charge) and by generation id, and
// Release of a released hold is a no-op. A retry stops when the ledger
// says it never can land: the hold expired and was released (ECONFLICT),
// is gone (ENOTFOUND), or the charge is refused (EINVALID).
//
// The retries run on one goroutine that exists only while something is
// pending; Flush tries them all once more at shutdown.
type Settler struct {
	ledger holdCloser
	log    *slog.Logger
	// First and Max bound the wait between two rounds of retries (it
	// doubles from First up to Max).
	First, Max time.Duration

	mu      sync.Mutex
	pending map[int64]*bot.Charge // hold id → its charge; nil: a release
	running bool
	stop    chan struct{} // closed by Close
	closed  bool
	loops   sync.WaitGroup
}

// NewSettler returns a Settler writing to ledger, retrying after 1 s,
// then 2 s, up to every 30 s.
func NewSettler(ledger holdCloser, log *slog.Logger) *Settler {
	if log == nil {
		log = slog.Default().With("component", "commands")
	}
	return &Settler{ledger: ledger, log: log, First: time.Second, Max: 30 * time.Second,
		pending: map[int64]*bot.Charge{}, stop: make(chan struct{})}
}

// Close ends the background retries (call Flush first) and returns once
// the ledger is no longer used, so it may be closed next. What is still
// pending is left to its hold's expiry.
func (s *Settler) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.loops.Wait()
}

// Settle charges c for the hold. When the write fails with an error a
// retry may cure, it is kept and retried in the background: pending is
// true, and the charge is not yet on the ledger.
func (s *Settler) Settle(ctx context.Context, holdID int64, c bot.Charge) (e bot.Entry, pending bool, err error) {
	e, err = s.ledger.Settle(ctx, holdID, c)
	if err == nil || !retryable(err) {
		return e, false, err
	}
	s.log.Error("settle failed; retrying in the background", "hold", holdID, "amount", c.Amount, "err", err)
	s.add(holdID, &c)
	return e, true, err
}

// Release frees the hold, retrying in the background when the write fails.
func (s *Settler) Release(ctx context.Context, holdID int64) error {
	err := s.ledger.Release(ctx, holdID)
	if err != nil && retryable(err) {
		s.log.Error("release failed; retrying in the background", "hold", holdID, "err", err)
		s.add(holdID, nil)
	}
	return err
}

// Pending is how many settles and releases are waiting for a retry.
func (s *Settler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Flush tries every pending settle and release once more, now, within
// ctx (at shutdown, inside the drain), and returns how many are still
// pending: their holds are released when they expire, charging nothing.
func (s *Settler) Flush(ctx context.Context) int {
	s.round(ctx)
	left := s.Pending()
	if left > 0 {
		s.log.Error("charges still pending at shutdown; their holds are released when they expire, uncharged", "pending", left)
	}
	return left
}

func (s *Settler) add(holdID int64, c *bot.Charge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[holdID] = c
	if !s.running && !s.closed {
		s.running = true
		s.loops.Add(1)
		go s.loop()
	}
}

// loop retries until nothing is pending, waiting longer after each round
// that left something.
func (s *Settler) loop() {
	defer s.loops.Done()
	wait := s.First
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return
		case <-t.C:
		}
		s.round(ctx)
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		wait = min(wait*2, s.Max)
	}
}

// round tries each pending write once.
func (s *Settler) round(ctx context.Context) {
	s.mu.Lock()
	todo := make(map[int64]*bot.Charge, len(s.pending))
	for id, c := range s.pending {
		todo[id] = c
	}
	s.mu.Unlock()
	for id, c := range todo {
		if ctx.Err() != nil {
			return
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if c != nil {
			var e bot.Entry
			if e, err = s.ledger.Settle(actx, id, *c); err == nil {
				s.log.Info("a settle that had failed landed", "hold", id, "charged", -e.Amount)
			}
		} else if err = s.ledger.Release(actx, id); err == nil {
			s.log.Info("a release that had failed landed", "hold", id)
		}
		cancel()
		switch {
		case err == nil:
		case !retryable(err):
			s.log.Error("a pending settle can never land; dropped", "hold", id, "err", err)
		default:
			continue
		}
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}
}

// retryable reports whether a failed ledger write may land later.
func retryable(err error) bool {
	switch bot.ErrorCode(err) {
	case bot.ECONFLICT, bot.ENOTFOUND, bot.EINVALID:
		return false
	}
	return true
}
