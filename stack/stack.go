// Package stack is the one place orchat's pipeline is wired (CONVENTIONS.md
// 14): the ledger, the model catalog, the router over it, the commands and
// the engine, built from plain config and injected deps. The bot, the load
// test and every test world call Open; what must differ (a clock, a slow
// disk, an instrumented HTTP client) is passed in, never wired again.
//
// Platform adapters, the scheduler and the operations server are not part
// of it: they are attached to a Stack by whoever runs it (cmd/orchat).
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// Config is the pipeline's settings, plain data. The part configs it holds
// are the parts' own; the dependencies some of them carry (loggers, metrics,
// HTTP clients, hooks) are ignored here and taken from Deps instead, so one
// logger and one metrics sink serve every part.
type Config struct {
	// Accounts is the ledger.
	Accounts Accounts
	// Router is the OpenRouter client, the catalog and the auto router.
	Router router.Config
	// Commands are the commands' settings (system prompt, history,
	// attachments, compare defaults, low-balance mark).
	Commands commands.Config
	// Engine is how events become command runs.
	Engine Engine
	// Simulate answers from the built-in OpenRouter simulator: Open starts
	// it on loopback, points the router at it and keeps no catalog cache
	// (the simulator's catalog is not the real one). For a simulator the
	// caller runs itself (tests, the load test), set Router.BaseURL instead.
	Simulate bool
}

// Accounts is where the ledger is and its rules.
type Accounts struct {
	// Database is accounts.database: the ledger's SQLite file.
	Database string
	// Options are the ledger's rules (signup bonus, free tier, hold TTL, the
	// day's time zone, a clock). Logger, Metrics and BeforeCommit come from
	// Deps.
	Options accounts.Options
}

// Engine is the engine's part of Config.
type Engine struct {
	// Admins may run the admin commands.
	Admins []bot.Identity
	// Limit is the per-user rate limit (PerMinute 0: off).
	Limit bot.RateLimit
	// Timeout bounds one command run (0: the engine's default).
	Timeout time.Duration
	// EditInterval is the least time between two edits of a message.
	EditInterval time.Duration
}

// Deps are what the pipeline is handed rather than configured with.
type Deps struct {
	// Logger is the log of every part, each with its component (default
	// slog.Default()).
	Logger *slog.Logger
	// Metrics receives every part's measurements (default bot.NopMetrics).
	Metrics bot.Metrics
	// HTTPClient is the router's client to the upstream (nil: the router's
	// own transport and timeouts).
	HTTPClient *http.Client
	// Hooks are for tests and the load test only.
	Hooks Hooks
	// Clock, when set, is every part's "now" (the ledger's days, the
	// commands' and the engine's times, the settings cache); tests move
	// it by hand. Nil: the real clock (and the ledger's own Now option).
	Clock func() time.Time
}

// Hooks change the pipeline's behaviour where a test must reach inside.
type Hooks struct {
	// BeforeCommit, when set, runs inside every ledger write transaction
	// just before it commits, holding the writer: the load test sleeps in
	// it as a slow disk's fsync would.
	BeforeCommit func()
	// FailCommit, when set, is asked before every ledger commit with the
	// operation's name; an error fails that write as a full disk would.
	FailCommit func(op string) error
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = bot.NopMetrics{}
	}
	return d
}

// Stack is a wired pipeline: what a platform adapter hands its events to
// (Engine) and what it needs beside it (Commands to register, Catalog for
// model autocomplete, Store for readiness and the scheduler).
type Stack struct {
	Store *accounts.Store
	// Sim is the built-in simulator when Config.Simulate, else nil.
	Sim     *openroutertest.Server
	Catalog *router.Catalog
	// Router is the router Open built; after a Reload, CurrentRouter is
	// the one answering.
	Router *router.Router
	// Commands are the commands to register on the platforms (a reload
	// rebuilds them with the same names and options).
	Commands []*bot.Command
	Engine   *bot.Engine
	// Communities are the community settings every part reads (the
	// engine, the commands, the adapters' model autocomplete), over the
	// host's defaults of the config in force.
	Communities *bot.Communities

	chat   *liveChat
	deps   Deps
	mu     sync.Mutex // orders Reloads
	config Config     // the config in force

	// Settler retries the settles and releases whose ledger write failed;
	// Drain flushes it.
	Settler *commands.Settler

	stop    context.CancelFunc // ends the background catalog refresh
	refresh sync.WaitGroup
	once    sync.Once
	err     error
}

// liveChat is the router in force as a bot.Chat: a reload swaps the
// router; calls already running finish on the one they began with.
type liveChat struct{ r atomic.Pointer[router.Router] }

func (c *liveChat) Plan(ctx context.Context, req bot.PlanRequest) (bot.Plan, error) {
	return c.r.Load().Plan(ctx, req)
}

func (c *liveChat) Stream(ctx context.Context, req bot.ChatRequest, onDelta func(string)) (bot.Result, error) {
	return c.r.Load().Stream(ctx, req, onDelta)
}

func (c *liveChat) Compare(ctx context.Context, reqs []bot.ChatRequest, onDelta func(int, string)) []bot.Result {
	return c.r.Load().Compare(ctx, reqs, onDelta)
}

// CurrentRouter returns the router answering now (Open's, or the last
// Reload's).
func (s *Stack) CurrentRouter() *router.Router { return s.chat.r.Load() }

// Open wires the pipeline: the simulator when asked for, the ledger
// (created and migrated when new), the catalog (from its cache, refreshed
// in the background; or from the upstream, before Open returns, when there
// is no cache), the router, the commands and the engine. On error nothing
// stays open. Close releases it all.
func Open(ctx context.Context, cfg Config, deps Deps) (_ *Stack, err error) {
	deps = deps.withDefaults()
	log := deps.Logger
	s := &Stack{stop: func() {}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	rc := cfg.Router
	if cfg.Simulate {
		if s.Sim, err = openroutertest.Start(openroutertest.Options{}); err != nil {
			return nil, fmt.Errorf("start the simulator: %w", err)
		}
		rc.BaseURL, rc.CatalogCache, rc.API = s.Sim.URL(), "", "openrouter"
	}
	rc.Logger, rc.Metrics, rc.HTTPClient = log.With("component", "router"), deps.Metrics, deps.HTTPClient

	if s.Store, err = OpenStore(cfg.Accounts, deps); err != nil {
		return nil, err
	}
	if err := s.releasePreviousBoots(ctx, log); err != nil {
		return nil, err
	}
	rc.Votes = s.Store // the auto router learns from each community's votes
	s.Catalog = router.NewCatalog(rc)
	if err := s.loadCatalog(ctx, rc.BaseURL, log); err != nil {
		return nil, err
	}
	if s.Router, err = router.New(rc, s.Catalog); err != nil {
		return nil, err
	}
	// The host's credits are read once here (the scheduler keeps them
	// current); an upstream that does not answer in time is read later.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := s.Router.RefreshCredits(cctx); err != nil {
		log.Warn("could not read the OpenRouter credits at start", "component", "router", "err", err)
	}
	cancel()
	s.chat = &liveChat{}
	s.chat.r.Store(s.Router)
	s.deps = deps
	cfg.Router = rc
	s.config = cfg
	s.Communities = bot.NewCommunities(s.Store, s.Store, hostDefaults(cfg, s.Router), bot.SettingsTTL, deps.Clock)
	s.Settler = commands.NewSettler(s.Store, log.With("component", "commands"))
	s.Commands = s.newCommands(cfg)
	e := cfg.Engine
	opts := bot.EngineOptions{
		Users: s.Store, Commands: s.Commands, Parse: commands.NewParser(s.Commands),
		Admins: e.Admins, Limit: e.Limit, Timeout: e.Timeout, EditInterval: e.EditInterval,
		Logger: log.With("component", "engine"), Metrics: deps.Metrics, Now: deps.Clock,
		Communities: s.Communities, Members: s.Store,
		// Event ids go to the ledger on both engines: a redelivery after
		// a restart is dropped as well as one to another process.
		Events: s.Store,
	}
	if s.Shared() {
		// Several processes may serve one user: the buckets are shared.
		// One SQLite process keeps them in memory, where they are free.
		opts.Shared = s.Store
	}
	s.Engine = bot.NewEngine(opts)
	return s, nil
}

// Shared reports whether the ledger can be shared by several processes
// (PostgreSQL): then the state an answer's exactly-once depends on lives
// in it, and only the elected leader runs the scheduler's jobs.
func (s *Stack) Shared() bool { return s.Store.Engine() == accounts.Postgres }

// newCommands builds the commands over the stack's parts with cfg's
// settings.
func (s *Stack) newCommands(cfg Config) []*bot.Command {
	return commands.New(commands.Deps{
		Ledger: s.Store, Votes: s.Store, Prefs: s.Store, Catalog: s.Catalog, Chat: s.chat,
		// The credits are Open's router's, which the scheduler refreshes:
		// a reload keeps the key, so they are the same account's.
		Credits:     s.Router,
		Communities: s.Communities, Pools: s.Store, Budgets: s.Store, Alerts: s.Store,
		Config: cfg.Commands, Logger: s.deps.Logger.With("component", "commands"), Metrics: s.deps.Metrics, Now: s.deps.Clock,
		Settler: s.Settler,
	})
}

// hostDefaults are what communities see of the host's config: the system
// prompt, the compare set, the admins and the router's tiers.
func hostDefaults(cfg Config, r *router.Router) bot.HostDefaults {
	return bot.HostDefaults{
		Persona: cfg.Commands.SystemPrompt, CompareModels: cfg.Commands.CompareModels,
		Admins: cfg.Engine.Admins, Tiers: r.Config().Tiers,
	}
}

// Reloaded says what a Reload applied.
type Reloaded struct {
	// Applied names the parts that took the new settings at once.
	Applied []string
	// Kept names the settings a reload cannot change in a running stack
	// (the ledger, the upstream, the simulator): they need a restart.
	Kept []string
}

// Reload applies a new config to the running stack (a config reload): the
// host's admins, the rate limit and timeouts, the router's tiers, prices
// and limits, the commands' defaults and system prompt, the free tier and
// signup bonus, the communities' host defaults. Events already running
// finish with what they began with. The ledger's database and rules of
// time (time zone, hold lifetime), the upstream's address and key, and
// the simulator are kept, and named in Kept when they differ. On error
// (a config the router refuses) nothing changes.
func (s *Stack) Reload(cfg Config) (Reloaded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.config
	var rep Reloaded
	rc := cfg.Router
	keep := func(name string, changed bool) {
		if changed {
			rep.Kept = append(rep.Kept, name)
		}
	}
	keep("accounts.database", cfg.Accounts.Database != old.Accounts.Database)
	keep("openrouter.base_url", !cfg.Simulate && !old.Simulate && rc.BaseURL != old.Router.BaseURL || cfg.Simulate != old.Simulate)
	keep("openrouter.api_key", rc.APIKey != old.Router.APIKey)
	keep("router.catalog_cache", rc.CatalogCache != old.Router.CatalogCache && !old.Simulate)
	keep("scheduler.timezone", locName(cfg.Accounts.Options.Location) != locName(old.Accounts.Options.Location))
	keep("accounts.hold_ttl", cfg.Accounts.Options.HoldTTL != old.Accounts.Options.HoldTTL)
	// The upstream and the catalog stay: the new router talks to the same
	// server with the same key.
	rc.BaseURL, rc.APIKey, rc.UserSalt, rc.CatalogCache = old.Router.BaseURL, old.Router.APIKey, old.Router.UserSalt, old.Router.CatalogCache
	rc.Logger, rc.Metrics, rc.HTTPClient, rc.Votes = old.Router.Logger, old.Router.Metrics, old.Router.HTTPClient, old.Router.Votes
	r, err := router.New(rc, s.Catalog)
	if err != nil {
		return Reloaded{}, err
	}
	cfg.Router = rc
	cfg.Accounts.Database, cfg.Simulate = old.Accounts.Database, old.Simulate
	cfg.Accounts.Options.Location, cfg.Accounts.Options.HoldTTL = old.Accounts.Options.Location, old.Accounts.Options.HoldTTL

	s.chat.r.Store(r)
	s.Communities.SetHost(hostDefaults(cfg, r))
	s.Store.SetRules(cfg.Accounts.Options.SignupBonus, cfg.Accounts.Options.FreePerDay, cfg.Accounts.Options.FreePerDayToppedUp)
	cmds := s.newCommands(cfg)
	s.Engine.SetCommands(cmds, commands.NewParser(cmds))
	e := cfg.Engine
	s.Engine.Reconfigure(e.Admins, e.Limit, e.Timeout)
	s.config = cfg
	rep.Applied = []string{"admins", "rate limit", "request timeout", "router tiers, prices and limits", "system prompt and compare defaults",
		"signup bonus and free tier", "low-balance mark"}
	return rep, nil
}

func locName(l *time.Location) string {
	if l == nil {
		return "UTC"
	}
	return l.String()
}

// OpenStore opens (creating and migrating it when new) the ledger a Config
// names, with the deps' logger, metrics and hooks: Open's ledger, and the
// one the host's ledger commands (balance, topup, verify) use alone.
func OpenStore(a Accounts, deps Deps) (*accounts.Store, error) {
	deps = deps.withDefaults()
	opts := a.Options
	if deps.Clock != nil {
		opts.Now = deps.Clock
	}
	opts.Logger = deps.Logger.With("component", "accounts")
	opts.Metrics = deps.Metrics
	opts.BeforeCommit, opts.FailCommit = deps.Hooks.BeforeCommit, deps.Hooks.FailCommit
	return accounts.Open(a.Database, opts)
}

// releasePreviousBoots frees at once the holds this instance's previous
// boot left open (a crash, a kill -9): no process will settle them, and
// waiting for their expiry would keep the users' tokens held for
// accounts.hold_ttl. The store logs how many holds and tokens. Holds of
// other instances stay for the sweeper: they may be a live process's.
// When another live process runs under the same instance name, nothing is
// released (it may be that process's holds) and a warning says to give
// each process its own accounts.instance.
func (s *Stack) releasePreviousBoots(ctx context.Context, log *slog.Logger) error {
	_, _, err := s.Store.ReleasePreviousBoots(ctx)
	if bot.ErrorCode(err) == bot.ECONFLICT {
		log.Warn("holds of this instance's previous boots are left to expire: "+bot.ErrorMessage(err)+" (set accounts.instance)",
			"component", "accounts")
		return nil
	}
	if err != nil {
		return fmt.Errorf("release the holds of this instance's previous boots: %w", err)
	}
	return nil
}

// loadCatalog fills the catalog: a cached one is used at once and
// refreshed in the background (a restart is instant even when the upstream
// is slow); without one, the upstream is asked before anything can answer.
func (s *Stack) loadCatalog(ctx context.Context, baseURL string, log *slog.Logger) error {
	if s.Catalog.Len() == 0 {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.Catalog.Refresh(rctx); err != nil {
			return fmt.Errorf("load the model catalog from %s: %w", baseURL, err)
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	s.stop = cancel
	s.refresh.Go(func() {
		defer cancel()
		if err := s.Catalog.Refresh(rctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("catalog refresh failed; using the cached catalog", "component", "router", "err", err)
		}
	})
	return nil
}

// Drain stops taking new events and lets the answers in flight finish
// until ctx ends; then it cancels them, and their holds are settled or
// released before it returns. Settles still being retried get one more
// try, within ctx or, when it has run out, two more seconds.
func (s *Stack) Drain(ctx context.Context) {
	s.Engine.Drain(ctx)
	if s.Settler.Pending() == 0 {
		return
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
	}
	s.Settler.Flush(ctx)
}

// Close releases the ledger and the simulator (call Drain first to let
// answers finish). Later calls return the first call's result.
func (s *Stack) Close() error {
	s.once.Do(func() {
		s.stop()
		s.refresh.Wait()
		if s.Settler != nil {
			s.Settler.Close()
		}
		if s.Store != nil {
			s.err = s.Store.Close()
		}
		if s.Sim != nil {
			s.Sim.Close()
		}
	})
	return s.err
}
