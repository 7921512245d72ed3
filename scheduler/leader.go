package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Lease is a named, expiring lease in storage that every instance shares
// (accounts.Store has it): the election of the scheduler leader.
type Lease interface {
	// TryLead takes or renews the lease called name for holder until ttl
	// from now. nil when holder has the lease; ECONFLICT while another
	// holder's lease has not expired.
	TryLead(ctx context.Context, name, holder string, ttl time.Duration) error
}

// Resigner is a Lease that can be given up at once (accounts.Store is
// one). Optional: without it, a stopped leader's lease simply expires.
type Resigner interface {
	ResignLead(ctx context.Context, name, holder string) error
}

// LeaseElector is a gocron Elector on a Lease: this instance is the leader
// while it holds the lease. gocron asks before every run of a ledger job,
// so the leader renews its lease as often as the sweeper runs; a leader
// that stops or crashes stops renewing, and the first instance to run a
// job after the lease expired takes over.
type LeaseElector struct {
	lease  Lease
	name   string
	holder string
	ttl    time.Duration
	log    *slog.Logger

	// onElected runs (in its own goroutine) when this instance takes the
	// lease after having been refused it: it catches up on what the old
	// leader may have missed.
	onElected func()

	mu      sync.Mutex
	leader  bool
	refused bool // was refused at least once since it last led
}

var _ Elector = (*LeaseElector)(nil)

// NewLeaseElector returns an elector that holds the lease called name as
// holder, renewing it for ttl at each run. log may be nil.
func NewLeaseElector(lease Lease, name, holder string, ttl time.Duration, log *slog.Logger) *LeaseElector {
	if log == nil {
		log = slog.Default().With("component", "scheduler")
	}
	return &LeaseElector{lease: lease, name: name, holder: holder, ttl: ttl, log: log}
}

// Holder returns the name this instance holds the lease under.
func (e *LeaseElector) Holder() string { return e.holder }

// IsLeader takes or renews the lease: nil when this instance leads, the
// lease's error (ECONFLICT naming the leader, or a storage failure) when
// it does not. A change of leadership is logged at info.
func (e *LeaseElector) IsLeader(ctx context.Context) error {
	err := e.lease.TryLead(ctx, e.name, e.holder, e.ttl)
	e.mu.Lock()
	was, refused := e.leader, e.refused
	e.leader = err == nil
	var elected func()
	switch {
	case err == nil && !was:
		e.log.Info("this instance is now the scheduler leader", slog.String("instance", e.holder), slog.Duration("lease", e.ttl))
		if refused && e.onElected != nil {
			elected = e.onElected
		}
		e.refused = false
	case err != nil:
		e.refused = true
		if was {
			e.log.Warn("this instance is no longer the scheduler leader", slog.String("instance", e.holder), slog.Any("error", err))
		} else if !refused {
			e.log.Info("another instance runs the ledger jobs", slog.String("instance", e.holder), slog.Any("reason", err))
		}
	}
	e.mu.Unlock()
	if elected != nil {
		go elected()
	}
	return err
}

// Leader reports whether this instance held the lease at its last check.
func (e *LeaseElector) Leader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Resign gives up the lease at once when the Lease supports it, so another
// instance takes over at its next run.
func (e *LeaseElector) Resign(ctx context.Context) error {
	e.mu.Lock()
	e.leader = false
	e.mu.Unlock()
	r, ok := e.lease.(Resigner)
	if !ok {
		return nil
	}
	return r.ResignLead(ctx, e.name, e.holder)
}
