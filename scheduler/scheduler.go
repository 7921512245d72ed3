// Package scheduler runs orchat's clock-driven chores with gocron: the
// daily free-tier reset, the catalog refresh and the stale-hold sweeper. It
// is the only package that imports gocron; everything it touches is a small
// interface declared here and satisfied by accounts.Store, router.Catalog
// and the platform adapters, wired together in cmd/orchat.
//
// Every job runs in singleton mode (a run still going makes the next one
// skip, never overlap), recovers from panics, logs each run with its
// duration and reports it through bot.Metrics.JobRun. Shutdown stops taking
// new runs and waits for the running ones.
//
// With Options.Leader on, several instances share one ledger and only the
// elected one runs the ledger jobs (reset and sweeper), through gocron's
// distributed elector backed by a lease in the ledger (LeaseElector). The
// catalog refresh is not a ledger job: each instance holds its own catalog
// in memory, so each instance refreshes it, leader or not.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/bot"
)

// Job names, as they appear in logs, in Metrics.JobRun and in RunNow.
const (
	JobFreeReset      = "free_reset"
	JobCatalogRefresh = "catalog_refresh"
	// JobCreditsCheck reads the host's OpenRouter credits (GET /key), so
	// /readyz, /credits and the refusal of calls when they are out are
	// current.
	JobCreditsCheck = "credits_check"
	JobHoldSweep    = "hold_sweep"
	JobAllowances   = "allowance_refill"
	JobAlerts       = "community_alerts"
)

// Defaults of DESIGN.md and config.example.toml.
const (
	DefaultDailyReset     = "00:00"
	DefaultCatalogRefresh = time.Hour
	DefaultHoldSweep      = time.Minute
	// DefaultAllowances is how often the allowances are looked at: a
	// member is refilled within this time of a period's start.
	DefaultAllowances = time.Minute
	// DefaultAlerts is how often queued alerts are sent.
	DefaultAlerts = 30 * time.Second
	// LeaseName is the name of the leader lease in the shared ledger.
	LeaseName = "scheduler"
)

// shutdownGrace bounds the wait for jobs after Shutdown's context ended and
// their context was cancelled: every job honours its context, so this only
// matters for a dependency that does not.
const shutdownGrace = 5 * time.Second

// Ledger is what the hold sweeper needs of the ledger (bot.Ledger has it).
type Ledger interface {
	// ReleaseExpired frees every hold whose expiry is before now and
	// returns how many it freed.
	ReleaseExpired(ctx context.Context, now time.Time) (int, error)
}

// Resets is what the daily free-tier reset needs of the ledger
// (accounts.Store has it).
type Resets interface {
	// RecordReset records that period (a date such as 2026-11-22) ended;
	// first is true only for the first call for a period, so the reset
	// happens once per period. EINVALID for a malformed period.
	RecordReset(ctx context.Context, period string, at time.Time) (first bool, err error)
	// FreeExhausted returns the users who used up their free allowance in
	// period. EINVALID for a malformed period.
	FreeExhausted(ctx context.Context, period string) ([]bot.Identity, error)
	// FreeStatus returns a user's free use of the period now falls in.
	// ENOTFOUND for an unknown user.
	FreeStatus(ctx context.Context, id bot.Identity, now time.Time) (bot.FreeUse, error)
}

// Allowances refills communities' members from their pools, once per
// allowance period (accounts.Store has it).
type Allowances interface {
	RefillAllowances(ctx context.Context, now time.Time) (bot.AllowanceReport, error)
}

// Alerts are the community admins' alerts waiting to be sent
// (accounts.Store has them).
type Alerts interface {
	// PendingAlerts returns up to limit alerts not sent yet, oldest first.
	PendingAlerts(ctx context.Context, limit int) ([]bot.Alert, error)
	// AlertSent marks one sent; first is false when another run did.
	AlertSent(ctx context.Context, key string, at time.Time) (first bool, err error)
	// AlertRecipients says where a community's alerts go: a channel, or
	// people to DM.
	AlertRecipients(ctx context.Context, community string) (channel string, people []bot.Identity, err error)
}

// ChannelNotifier posts a notice in a community's channel; cmd/orchat
// implements it with the platform adapters.
type ChannelNotifier interface {
	NotifyChannel(ctx context.Context, community, channel, text string) error
}

// Catalog is the model catalog the refresh job keeps current
// (router.Catalog has it). A failed Refresh must keep the last good catalog.
type Catalog interface {
	Refresh(ctx context.Context) error
}

// Credits is the host key's credits the check keeps current (the router
// has it).
type Credits interface {
	RefreshCredits(ctx context.Context) (bot.Credits, error)
}

// DefaultCreditsCheck is how often the host's credits are read.
const DefaultCreditsCheck = 5 * time.Minute

// Notifier sends a user a short direct notice; cmd/orchat implements it
// with the platform adapters. Errors are logged and counted, never retried:
// a notice is sent at most once.
type Notifier interface {
	Notify(ctx context.Context, id bot.Identity, text string) error
}

// Elector decides whether this instance runs the ledger jobs: nil when it
// is the leader, an error when another instance is. It is gocron's
// Elector; LeaseElector implements it on a Lease.
type Elector = gocron.Elector

// Options configure a Scheduler. A job runs only when its dependency is
// set: the reset needs Resets, the refresh Catalog, the sweeper Ledger.
// Zero durations fall back to the defaults.
type Options struct {
	// Location decides when a day starts (scheduler.timezone, default
	// UTC). It must be the ledger's location, so that the period the reset
	// closes is the ledger's day.
	Location *time.Location
	// DailyReset is the local time of day of the reset, "HH:MM"
	// (scheduler.daily_reset, default "00:00"). A time in the hour skipped
	// when clocks go forward runs at the shifted time that day.
	DailyReset string
	// CatalogRefresh is the catalog refresh interval (default 1h).
	CatalogRefresh time.Duration
	// HoldSweep is the stale-hold sweep interval (default 1m).
	HoldSweep time.Duration
	// NotifyReset sends "free requests are back" to each user who used up
	// yesterday's allowance, once, through Notifier.
	NotifyReset bool

	// Leader runs the ledger jobs only on the elected instance
	// (scheduler.leader). Elector decides when set; else Lease (the shared
	// ledger) does, through a LeaseElector for Instance with LeaseTTL.
	// Without Leader, all three are ignored and the jobs always run.
	Leader   bool
	Elector  Elector
	Lease    Lease
	Instance string        // default: host name, process id and a random suffix
	LeaseTTL time.Duration // default: three sweep intervals
	// Campaign, when positive, is how often (in real time, whatever
	// Clock is) a follower tries to take the lease and the leader proves
	// it still holds it, besides the checks before each job run: a
	// leader that dies is replaced within about Campaign, not at the next
	// job's tick. cmd/orchat sets it on PostgreSQL, where the lease is an
	// advisory lock the server frees the moment the leader's session ends.
	Campaign time.Duration

	Ledger  Ledger
	Resets  Resets
	Catalog Catalog
	// Credits, when set, is read at start and every CreditsCheck (default
	// 5m); LowCredits, when positive, logs a warning while the remaining
	// credit is below it (USD). HostAdmins are told by a direct notice
	// (through Notifier) when the credit falls below the mark or runs out:
	// once each time it crosses, by the leader only, so a host hears of it
	// before members are refused rather than on their next command.
	Credits      Credits
	CreditsCheck time.Duration
	LowCredits   float64
	HostAdmins   []bot.Identity
	Notifier     Notifier // nil: no notices

	// Allowances, when set, refills communities' members every
	// AllowanceEvery (default 1m); Alerts, when set, sends the community
	// admins' alerts every AlertEvery (default 30s): to the channel they
	// chose through ChannelNotifier, else by DM through Notifier. Both are
	// ledger jobs (the leader's).
	Allowances      Allowances
	AllowanceEvery  time.Duration
	Alerts          Alerts
	AlertEvery      time.Duration
	ChannelNotifier ChannelNotifier

	// Clock drives the schedule and is the jobs' "now" (default the real
	// clock); tests pass clockwork.NewFakeClockAt.
	Clock   clockwork.Clock
	Logger  *slog.Logger // default slog.Default() with component=scheduler
	Metrics bot.Metrics  // default bot.NopMetrics
}

// Scheduler runs the jobs. Create it with New, then Start and Shutdown it.
type Scheduler struct {
	opts      Options
	log       *slog.Logger
	metrics   bot.Metrics
	clock     clockwork.Clock
	resetMin  int // DailyReset in minutes after local midnight
	elector   *LeaseElector
	elected   chan struct{} // closed the first time this instance leads
	electOnce sync.Once
	shared    gocron.Scheduler // ledger jobs, behind the elector
	local     gocron.Scheduler // this instance's own jobs
	jobs      map[string]gocron.Job
	ctx       context.Context // the jobs' context: cancelled when Shutdown gives up waiting
	cancel    context.CancelFunc
	mu        sync.Mutex
	started   bool
	stopped   bool
	running   sync.WaitGroup
	runningMu sync.Mutex
	runningN  map[string]int
	// creditsTold is the credit state the host admins were last told of
	// ("" none, "low", "out"), so each crossing is one notice.
	creditsTold string
}

// New builds a scheduler and its jobs; nothing runs before Start. The error
// is an EINVALID *bot.Error naming the scheduler.* setting that is wrong.
func New(opts Options) (*Scheduler, error) {
	o, resetMin, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("scheduler: new: %w", err)
	}
	s := &Scheduler{
		opts:     o,
		log:      o.Logger,
		metrics:  o.Metrics,
		clock:    o.Clock,
		resetMin: resetMin,
		jobs:     map[string]gocron.Job{},
		runningN: map[string]int{},
		elected:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	var elector Elector
	switch {
	case !o.Leader:
	case o.Elector != nil:
		elector = o.Elector
	default:
		s.elector = NewLeaseElector(o.Lease, LeaseName, o.Instance, o.LeaseTTL, o.Logger)
		elector = s.elector
	}
	if s.shared, err = s.newGocron("ledger", elector); err != nil {
		return nil, err
	}
	if s.local, err = s.newGocron("local", nil); err != nil {
		s.shared.Shutdown()
		return nil, err
	}
	if err := s.addJobs(); err != nil {
		s.shared.Shutdown()
		s.local.Shutdown()
		return nil, err
	}
	if s.elector != nil && o.Resets != nil {
		// An instance that takes over as leader catches up on a reset the
		// old leader may have missed while it was going away.
		s.elector.onElected = func() {
			if err := s.RunNow(JobFreeReset); err != nil {
				s.log.Warn("could not catch up on the free-tier reset after becoming leader", slog.Any("error", err))
			}
		}
	}
	return s, nil
}

func (o Options) normalize() (Options, int, error) {
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.DailyReset == "" {
		o.DailyReset = DefaultDailyReset
	}
	at, err := time.Parse("15:04", o.DailyReset)
	if err != nil {
		return o, 0, bot.Errorf(bot.EINVALID, `scheduler.daily_reset = %q must be a time of day written HH:MM, such as "00:00".`, o.DailyReset)
	}
	switch {
	case o.CatalogRefresh < 0:
		return o, 0, bot.Errorf(bot.EINVALID, "scheduler.catalog_refresh must be positive, not %s.", o.CatalogRefresh)
	case o.HoldSweep < 0:
		return o, 0, bot.Errorf(bot.EINVALID, "scheduler.hold_sweep must be positive, not %s.", o.HoldSweep)
	case o.LeaseTTL < 0:
		return o, 0, bot.Errorf(bot.EINVALID, "The scheduler lease lasts a positive time, not %s.", o.LeaseTTL)
	}
	if o.CatalogRefresh == 0 {
		o.CatalogRefresh = DefaultCatalogRefresh
	}
	if o.AllowanceEvery <= 0 {
		o.AllowanceEvery = DefaultAllowances
	}
	if o.AlertEvery <= 0 {
		o.AlertEvery = DefaultAlerts
	}
	if o.HoldSweep == 0 {
		o.HoldSweep = DefaultHoldSweep
	}
	if o.LeaseTTL == 0 {
		// The leader renews its lease whenever a ledger job runs, the
		// sweeper every HoldSweep; three of them tolerate a slow sweep.
		o.LeaseTTL = 3 * o.HoldSweep
	}
	if o.Leader && o.Elector == nil && o.Lease == nil {
		return o, 0, bot.Errorf(bot.EINVALID, "scheduler.leader needs the shared ledger to hold the election; none was given.")
	}
	if o.Instance == "" {
		o.Instance = defaultInstance()
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.Default().With("component", "scheduler")
	}
	if o.Metrics == nil {
		o.Metrics = bot.NopMetrics{}
	}
	return o, at.Hour()*60 + at.Minute(), nil
}

// defaultInstance names this process among the instances sharing a ledger.
func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "orchat"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
}

func (s *Scheduler) newGocron(scope string, elector Elector) (gocron.Scheduler, error) {
	log := s.log.With("scope", scope)
	opts := []gocron.SchedulerOption{
		gocron.WithLocation(s.opts.Location),
		gocron.WithClock(s.clock),
		gocron.WithLogger(gocronLogger{log}),
		gocron.WithMonitor(monitor{log}),
		gocron.WithStopTimeout(shutdownGrace),
	}
	if elector != nil {
		opts = append(opts, gocron.WithDistributedElector(elector))
	}
	g, err := gocron.NewScheduler(opts...)
	if err != nil {
		return nil, fmt.Errorf("scheduler: new %s scheduler: %w", scope, err)
	}
	return g, nil
}

func (s *Scheduler) addJobs() error {
	type def struct {
		name  string
		on    gocron.Scheduler
		when  gocron.JobDefinition
		run   jobFunc
		extra []gocron.JobOption
	}
	var defs []def
	if s.opts.Resets != nil {
		h, m := s.resetMin/60, s.resetMin%60
		// A cron schedule, not gocron.DailyJob: a daily job whose time
		// falls in a daylight-saving gap at midnight (America/Santiago,
		// America/Havana) gets no next run and never runs again, and one in
		// a gap west of UTC (02:30 in New York) runs at 01:30, before its
		// time, so its period is never closed. The cron schedule runs after
		// the transition, except at a skipped midnight, which it runs at
		// 23:00 the day before (endedPeriod knows).
		defs = append(defs, def{JobFreeReset, s.shared,
			gocron.CronJob(fmt.Sprintf("%d %d * * *", m, h), false),
			s.freeReset,
			// Catch up at start: the reset is idempotent per period, so this
			// records a reset missed while the process was down, and does
			// nothing when it was recorded.
			[]gocron.JobOption{gocron.WithStartAt(gocron.WithStartImmediately()),
				gocron.WithDaylightSavingsTimePolicy(gocron.DaylightSavingsTimeRunAfterTransition)}})
	}
	if s.opts.Ledger != nil {
		defs = append(defs, def{JobHoldSweep, s.shared, gocron.DurationJob(s.opts.HoldSweep), s.holdSweep, nil})
	}
	if s.opts.Catalog != nil {
		defs = append(defs, def{JobCatalogRefresh, s.local, gocron.DurationJob(s.opts.CatalogRefresh), s.catalogRefresh, nil})
	}
	if s.opts.Allowances != nil {
		defs = append(defs, def{JobAllowances, s.shared, gocron.DurationJob(s.opts.AllowanceEvery), s.refillAllowances, nil})
	}
	if s.opts.Alerts != nil {
		defs = append(defs, def{JobAlerts, s.shared, gocron.DurationJob(s.opts.AlertEvery), s.sendAlerts, nil})
	}
	if s.opts.Credits != nil {
		every := s.opts.CreditsCheck
		if every <= 0 {
			every = DefaultCreditsCheck
		}
		defs = append(defs, def{JobCreditsCheck, s.local, gocron.DurationJob(every), s.creditsCheck,
			[]gocron.JobOption{gocron.WithStartAt(gocron.WithStartImmediately())}})
	}
	for _, d := range defs {
		opts := append([]gocron.JobOption{gocron.WithName(d.name)}, d.extra...)
		j, err := d.on.NewJob(d.when, gocron.NewTask(s.wrap(d.name, d.run)), opts...)
		if err != nil {
			return fmt.Errorf("scheduler: add job %s: %w", d.name, err)
		}
		s.jobs[d.name] = j
	}
	return nil
}

// Start starts the schedule. The reset catches up at once on a period whose
// reset was missed; the other jobs run after their first interval. Calling
// Start twice, or after Shutdown, does nothing.
func (s *Scheduler) Start() {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	if s.elector == nil {
		s.markElected()
	} else {
		// Decided before the jobs start, so that Leader is true on the
		// leader by the time its platforms ask (command registration).
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		s.checkLeader(ctx)
		cancel()
		if s.opts.Campaign > 0 {
			s.running.Add(1)
			go s.campaign()
		}
	}
	s.shared.Start()
	s.local.Start()
	attrs := []any{slog.Any("jobs", s.Jobs()), slog.String("location", s.opts.Location.String()), slog.Bool("leader_election", s.opts.Leader)}
	if s.elector != nil {
		attrs = append(attrs, slog.String("instance", s.elector.Holder()))
	}
	s.log.Info("scheduler started", attrs...)
}

// Shutdown stops the schedule and waits for running jobs to finish. When
// ctx ends first, the jobs' context is cancelled (they stop promptly) and
// Shutdown returns ctx's error. A leader resigns its lease, so another
// instance takes over at its next run instead of after the lease expires.
// Calling it twice is a no-op.
func (s *Scheduler) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()

	// No run starts from now on (wrap checks stopped), so running.Wait
	// cannot race with a new run's Add.
	var errs []error
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		errs = append(errs, ctx.Err())
		select {
		case <-done:
		case <-time.After(shutdownGrace):
			errs = append(errs, fmt.Errorf("jobs still running after being cancelled: %v", s.runningJobs()))
		}
	}
	s.cancel()

	// Nothing of ours runs any more: stopping gocron is quick.
	gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	var wg sync.WaitGroup
	gerrs := make([]error, 2)
	for i, g := range []gocron.Scheduler{s.shared, s.local} {
		wg.Go(func() { gerrs[i] = g.ShutdownWithContext(gctx) })
	}
	wg.Wait()
	gcancel()
	errs = append(errs, gerrs...)

	if s.elector != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := s.elector.Resign(rctx); err != nil {
			s.log.Warn("could not resign the scheduler lease; another instance takes over when it expires", slog.Any("error", err))
		}
		cancel()
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("scheduler stopped before its jobs finished", slog.Any("error", err))
		return fmt.Errorf("scheduler: shutdown: %w", err)
	}
	s.log.Info("scheduler stopped")
	return nil
}

// ErrNotRunning is returned by RunNow before Start and after Shutdown.
var ErrNotRunning = errors.New("scheduler: not running")

// RunNow asks for one run of the named job now, outside its schedule. It
// returns once the run is queued: the run itself is asynchronous and, like
// every run, skipped while the job is still running and, with Leader on,
// on an instance that is not the leader. ENOTFOUND for a job that is not
// configured; ErrNotRunning before Start and after Shutdown.
func (s *Scheduler) RunNow(name string) error {
	j, ok := s.jobs[name]
	if !ok {
		return fmt.Errorf("scheduler: run %s: %w", name, bot.Errorf(bot.ENOTFOUND, "There is no %q job; the jobs are %v.", name, s.Jobs()))
	}
	s.mu.Lock()
	running := s.started && !s.stopped
	s.mu.Unlock()
	if !running {
		return fmt.Errorf("scheduler: run %s: %w", name, ErrNotRunning)
	}
	if err := j.RunNow(); err != nil {
		return fmt.Errorf("scheduler: run %s: %w", name, err)
	}
	return nil
}

// NextRun returns when the named job runs next (zero before Start).
// ENOTFOUND for a job that is not configured.
func (s *Scheduler) NextRun(name string) (time.Time, error) {
	j, ok := s.jobs[name]
	if !ok {
		return time.Time{}, fmt.Errorf("scheduler: next run of %s: %w", name, bot.Errorf(bot.ENOTFOUND, "There is no %q job; the jobs are %v.", name, s.Jobs()))
	}
	t, err := j.NextRun()
	if err != nil {
		return time.Time{}, fmt.Errorf("scheduler: next run of %s: %w", name, err)
	}
	return t, nil
}

// Jobs returns the names of the configured jobs, sorted.
func (s *Scheduler) Jobs() []string {
	names := make([]string, 0, len(s.jobs))
	for name := range s.jobs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// checkLeader asks the elector once and records a first election.
func (s *Scheduler) checkLeader(ctx context.Context) {
	if s.elector.IsLeader(ctx) == nil {
		s.markElected()
	}
}

func (s *Scheduler) markElected() { s.electOnce.Do(func() { close(s.elected) }) }

// campaign asks the elector every Campaign until Shutdown: a follower
// takes a dead leader's lease within that time, and a leader that lost
// its lease (its session cut) knows it within that time.
func (s *Scheduler) campaign() {
	defer s.running.Done()
	t := time.NewTicker(s.opts.Campaign)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		stopped := s.stopped
		s.mu.Unlock()
		if stopped {
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.Campaign+5*time.Second)
		s.checkLeader(ctx)
		cancel()
	}
}

// Leader reports whether this instance runs the ledger jobs now: always
// without leader election, else whether it held the lease at its last
// check. The platform adapters ask it before doing what one process of
// several must do once (registering slash commands).
func (s *Scheduler) Leader() bool {
	if s.elector == nil {
		return true
	}
	return s.elector.Leader()
}

// Elected is closed the first time this instance leads (at Start without
// leader election): a platform adapter may wait on it to do the leader's
// one-time work.
func (s *Scheduler) Elected() <-chan struct{} { return s.elected }

// Instance returns the name this instance holds the leader lease under
// ("" without Leader or with a custom Elector).
func (s *Scheduler) Instance() string {
	if s.elector == nil {
		return ""
	}
	return s.elector.Holder()
}

// outcome is what a job run did, for its log line.
type outcome struct {
	notable bool  // something happened: logged at info, else at debug
	attrs   []any // slog attributes
}

// jobFunc is one job's work at now (the scheduler clock's time).
type jobFunc func(ctx context.Context, now time.Time) (outcome, error)

// wrap turns fn into a gocron task: one run at a time (a run due while the
// previous one is still going is skipped, like gocron's
// WithSingletonMode(LimitModeReschedule)), measured, recovered from a panic,
// logged and reported to Metrics.JobRun.
//
// The one-at-a-time guard is ours rather than gocron's singleton mode: that
// frees a job only after its task returned and gocron did its bookkeeping,
// so a run due right after another finished could be skipped, and its
// separate runner goroutine reschedules concurrently with the run. Ours
// frees the job before the run is reported, so a run reported done never
// blocks the next.
func (s *Scheduler) wrap(name string, fn jobFunc) func() error {
	var busy sync.Mutex
	return func() (err error) {
		if !busy.TryLock() {
			s.log.Warn("job run skipped: its previous run is still going", slog.String("job", name))
			return nil
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			busy.Unlock()
			return nil
		}
		s.running.Add(1)
		s.mu.Unlock()
		s.track(name, 1)

		start := time.Now()
		var out outcome
		var stack []byte
		defer func() {
			if r := recover(); r != nil {
				stack = debug.Stack()
				err = fmt.Errorf("scheduler: job %s panicked: %v", name, r)
			}
			d := time.Since(start)
			s.track(name, -1)
			busy.Unlock()
			s.metrics.JobRun(name, err, d)
			attrs := append([]any{slog.String("job", name), slog.Duration("duration", d)}, out.attrs...)
			switch {
			case stack != nil:
				s.log.Error("job panicked", append(attrs, slog.Any("error", err), slog.String("stack", string(stack)))...)
			case err != nil:
				s.log.Error("job failed", append(attrs, slog.Any("error", err))...)
			case out.notable:
				s.log.Info("job done", attrs...)
			default:
				s.log.Debug("job done", attrs...)
			}
			s.running.Done()
		}()
		out, err = fn(s.ctx, s.clock.Now())
		return err
	}
}

func (s *Scheduler) track(name string, delta int) {
	s.runningMu.Lock()
	defer s.runningMu.Unlock()
	s.runningN[name] += delta
}

func (s *Scheduler) runningJobs() []string {
	s.runningMu.Lock()
	defer s.runningMu.Unlock()
	var names []string
	for name, n := range s.runningN {
		if n > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Pruner is a Ledger that also forgets the event ids older than its event
// window and the rate-limit buckets that are full again (accounts.Store):
// the sweeper prunes them, so the shared tables stay about an hour of
// events however quiet the processes are.
type Pruner interface {
	Prune(ctx context.Context, now time.Time) (events, buckets int, err error)
}

// holdSweep frees the holds of calls that never settled (a crash, a lost
// connection), so their tokens come back, and prunes the seen events and
// idle rate buckets when the ledger keeps them.
func (s *Scheduler) holdSweep(ctx context.Context, now time.Time) (outcome, error) {
	n, err := s.opts.Ledger.ReleaseExpired(ctx, now)
	if err != nil {
		return outcome{}, fmt.Errorf("scheduler: release expired holds: %w", err)
	}
	attrs := []any{slog.Int("released", n)}
	notable := n > 0
	if p, ok := s.opts.Ledger.(Pruner); ok {
		events, buckets, err := p.Prune(ctx, now)
		if err != nil {
			return outcome{}, fmt.Errorf("scheduler: prune seen events and rate buckets: %w", err)
		}
		attrs = append(attrs, slog.Int("events_pruned", events), slog.Int("buckets_pruned", buckets))
		notable = notable || events > 0
	}
	return outcome{notable: notable, attrs: attrs}, nil
}

// refillAllowances refills the members of every community with an
// allowance whose period began since their last refill.
func (s *Scheduler) refillAllowances(ctx context.Context, now time.Time) (outcome, error) {
	rep, err := s.opts.Allowances.RefillAllowances(ctx, now)
	if err != nil {
		return outcome{}, fmt.Errorf("scheduler: refill allowances: %w", err)
	}
	return outcome{notable: rep.Refilled > 0 || rep.Short > 0, attrs: []any{
		slog.Int("communities", rep.Communities), slog.Int("refilled", rep.Refilled), slog.Int64("tokens", rep.Granted), slog.Int("short", rep.Short)}}, nil
}

// sendAlerts sends the queued alerts of community admins: each once (it
// is marked sent first, so a crash loses an alert rather than doubling
// it), to the community's alerts channel or by DM to its admins.
func (s *Scheduler) sendAlerts(ctx context.Context, now time.Time) (outcome, error) {
	alerts, err := s.opts.Alerts.PendingAlerts(ctx, 100)
	if err != nil {
		return outcome{}, fmt.Errorf("scheduler: read alerts: %w", err)
	}
	sent, failed := 0, 0
	for _, a := range alerts {
		first, err := s.opts.Alerts.AlertSent(ctx, a.Key, now)
		if err != nil {
			return outcome{}, fmt.Errorf("scheduler: mark an alert sent: %w", err)
		}
		if !first {
			continue
		}
		channel, people, err := s.opts.Alerts.AlertRecipients(ctx, a.Community)
		if err != nil {
			return outcome{}, fmt.Errorf("scheduler: alert recipients of %s: %w", a.Community, err)
		}
		ok := false
		if channel != "" && s.opts.ChannelNotifier != nil {
			if err := s.opts.ChannelNotifier.NotifyChannel(ctx, a.Community, channel, a.Text); err != nil {
				s.log.Warn("alert to the community's channel failed", slog.String("community", a.Community), slog.String("alert", a.Kind), slog.Any("error", err))
			} else {
				ok = true
			}
		}
		if !ok && s.opts.Notifier != nil {
			for _, id := range people {
				if err := s.opts.Notifier.Notify(ctx, id, a.Text); err != nil {
					s.log.Warn("alert DM failed", slog.String("community", a.Community), slog.String("user", string(id)), slog.Any("error", err))
					continue
				}
				ok = true
			}
		}
		if ok {
			sent++
		} else {
			failed++
			s.log.Warn("alert not delivered: no channel set and no admin reachable by DM", slog.String("community", a.Community),
				slog.String("alert", a.Kind), slog.String("text", a.Text))
		}
	}
	return outcome{notable: sent+failed > 0, attrs: []any{slog.Int("sent", sent), slog.Int("undelivered", failed)}}, nil
}

// catalogRefresh fetches the model list. On failure the catalog keeps its
// last good list; the failure is logged and counted, and the next run
// tries again.
func (s *Scheduler) catalogRefresh(ctx context.Context, _ time.Time) (outcome, error) {
	if err := s.opts.Catalog.Refresh(ctx); err != nil {
		return outcome{}, fmt.Errorf("scheduler: refresh the catalog (keeping the last good one): %w", err)
	}
	return outcome{}, nil
}

// creditsCheck reads the host's credits; when they are below the low mark
// it says so in the log and, once a crossing, tells the host admins
// directly (they also see it on /credits and once an hour in a private
// notice on their next command).
func (s *Scheduler) creditsCheck(ctx context.Context, _ time.Time) (outcome, error) {
	c, err := s.opts.Credits.RefreshCredits(ctx)
	if err != nil {
		return outcome{}, fmt.Errorf("scheduler: read the OpenRouter credits: %w", err)
	}
	state := ""
	switch {
	case c.Out():
		state = "out"
	case s.opts.LowCredits > 0 && c.Below(s.opts.LowCredits):
		state = "low"
	}
	s.tellHostAdmins(ctx, state, c)
	if state != "" {
		s.log.Warn("the OpenRouter key's credit is low: add credits on OpenRouter (paid answers are refused once it is out)",
			slog.Float64("remaining_usd", *c.RemainingUSD), slog.Float64("low_mark_usd", s.opts.LowCredits), slog.Bool("out", c.Out()))
		return outcome{notable: true, attrs: []any{slog.Float64("remaining_usd", *c.RemainingUSD), slog.Bool("out", c.Out())}}, nil
	}
	return outcome{}, nil
}

// tellHostAdmins sends the host admins one notice when the credit state
// gets worse (fine → low, fine or low → out); a recovery only resets it,
// so the next fall is told again. Only the leader tells, so several
// processes on one key send one notice.
func (s *Scheduler) tellHostAdmins(ctx context.Context, state string, c bot.Credits) {
	s.mu.Lock()
	told := s.creditsTold
	worse := state == "out" && told != "out" || state == "low" && told == ""
	if state == "" || !worse {
		if state == "" {
			s.creditsTold = ""
		}
		s.mu.Unlock()
		return
	}
	if s.opts.Notifier == nil || len(s.opts.HostAdmins) == 0 || !s.Leader() {
		s.mu.Unlock()
		return
	}
	s.creditsTold = state
	s.mu.Unlock()
	text := CreditsNotice(c, s.opts.LowCredits)
	for _, id := range s.opts.HostAdmins {
		if err := s.opts.Notifier.Notify(ctx, id, text); err != nil {
			s.log.Warn("could not tell a host admin that the credits run low", slog.String("admin", string(id)), slog.Any("error", err))
		}
	}
}

// CreditsNotice is what host admins are told when the bot's OpenRouter
// key runs low (below lowUSD) or out.
func CreditsNotice(c bot.Credits, lowUSD float64) string {
	if c.Out() {
		return "The bot's OpenRouter key is out of credit: members' paid questions are refused until you add credits on OpenRouter. /credits shows the figures."
	}
	return fmt.Sprintf("The bot's OpenRouter key has $%.2f of credit left, below your mark of $%.2f (openrouter.low_credits). Add credits on OpenRouter before members are refused; /credits shows the figures.", *c.RemainingUSD, lowUSD)
}

// ResetNotice is the notice a user who used up yesterday's free allowance
// gets when it comes back.
func ResetNotice(n int) string {
	return fmt.Sprintf("Your free-model requests are back: %d for today.", n)
}

// freeReset closes the free-tier period whose reset is due: it records it
// once and, with NotifyReset, tells the users who used up their allowance
// in it. The counters are per period, so users have their allowance back
// whether or not this runs; this makes the reset visible.
func (s *Scheduler) freeReset(ctx context.Context, now time.Time) (outcome, error) {
	period := s.endedPeriod(now)
	out := outcome{attrs: []any{slog.String("period", period)}}
	first, err := s.opts.Resets.RecordReset(ctx, period, now)
	if err != nil {
		return out, fmt.Errorf("scheduler: record the free-tier reset of %s: %w", period, err)
	}
	if !first {
		out.attrs = append(out.attrs, slog.Bool("already_recorded", true))
		return out, nil
	}
	out.notable = true
	if !s.opts.NotifyReset || s.opts.Notifier == nil {
		return out, nil
	}
	// The record comes first, so a notice is sent at most once: a crash
	// between the two loses notices rather than doubling them.
	ids, err := s.opts.Resets.FreeExhausted(ctx, period)
	if err != nil {
		return out, fmt.Errorf("scheduler: list who used up the free tier on %s: %w", period, err)
	}
	var sent int
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		fu, err := s.opts.Resets.FreeStatus(ctx, id, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		if fu.Remaining <= 0 {
			continue // nothing came back for them (no allowance, or already used)
		}
		if err := s.opts.Notifier.Notify(ctx, id, ResetNotice(fu.Remaining)); err != nil {
			s.log.Warn("free-tier reset notice failed", slog.String("identity", string(id)), slog.Any("error", err))
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		sent++
	}
	out.attrs = append(out.attrs, slog.Int("exhausted", len(ids)), slog.Int("notified", sent))
	if len(errs) > 0 {
		return out, fmt.Errorf("scheduler: %d of %d free-tier reset notices failed: %w", len(errs), len(ids), errors.Join(errs...))
	}
	return out, nil
}

// endedPeriod returns the free-tier period (a local date) closed by the
// most recent reset due at or before now: the day before the day of that
// reset. Times of day are compared on the wall clock, so a reset in an hour
// skipped by a daylight-saving change (run by gocron at the shifted time)
// counts for its day, and both passes of a repeated hour close the same
// period. A reset at a midnight that a clock change skips (America/Santiago)
// runs where Go normalizes that midnight, at 23:00 the day before: it
// closes that day, which is about to end, as the midnight would have.
func (s *Scheduler) endedPeriod(now time.Time) string {
	local := now.In(s.opts.Location)
	y, m, d := local.Date()
	switch {
	case !now.Before(time.Date(y, m, d+1, s.resetMin/60, s.resetMin%60, 0, 0, s.opts.Location)):
		d++ // tomorrow's reset time does not exist and its instant is today's wall clock
	case local.Hour()*60+local.Minute() < s.resetMin:
		d-- // today's reset is not due yet: the latest due one was yesterday's
	}
	// Noon is never skipped or repeated by a clock change.
	return time.Date(y, m, d-1, 12, 0, 0, 0, s.opts.Location).Format("2006-01-02")
}

// gocronLogger passes gocron's messages to slog, its routine news at debug.
type gocronLogger struct{ log *slog.Logger }

func (l gocronLogger) Debug(msg string, args ...any) { l.log.Debug(msg, args...) }
func (l gocronLogger) Info(msg string, args ...any)  { l.log.Debug(msg, args...) }
func (l gocronLogger) Warn(msg string, args ...any)  { l.log.Warn(msg, args...) }
func (l gocronLogger) Error(msg string, args ...any) { l.log.Error(msg, args...) }

// monitor logs the runs gocron skips because another instance is the
// leader (routine, at debug).
type monitor struct{ log *slog.Logger }

func (m monitor) IncrementJob(_ uuid.UUID, name string, _ []string, status gocron.JobStatus) {
	if status == gocron.Skip {
		m.log.Debug("job run skipped: another instance is the scheduler leader", slog.String("job", name))
	}
}

func (monitor) RecordJobTiming(time.Time, time.Time, uuid.UUID, string, []string) {}
