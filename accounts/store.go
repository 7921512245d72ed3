// Package accounts is orchat's ledger: users, the append-only ledger of
// balance changes, holds for calls in flight, daily free-tier counters,
// compares and their votes, per-user preferences, and the state several
// processes on one ledger share so that an answer happens once (event
// dedupe, rate-limit buckets, hold owners, leader and shard locks).
//
// A Store implements bot.Ledger, bot.Votes and bot.Preferences on either
// of two engines, chosen by the database Open is given: a file path opens
// SQLite (go-sqlite3), the zero-setup default for one process; a
// postgres:// URL opens PostgreSQL (pgx), for several processes on one
// ledger. It is the only package that imports either driver; everything
// else sees the bot interfaces and one *Store type. The semantics are
// DESIGN.md's "Ledger semantics"; the conformance suite in accountstest
// pins them down, and runs unchanged against both engines.
//
// On SQLite the database runs in WAL mode with synchronous=NORMAL, a busy
// timeout, immediate write transactions and foreign keys on. Writes go
// through one connection (SQLite allows one writer at a time anyway, and
// queueing in Go is cheaper than spinning on SQLITE_BUSY); reads use a
// separate pool of read-only connections, so a slow report never blocks a
// charge. On PostgreSQL one pool serves both, writers lock the rows they
// change, and a transaction that loses a deadlock is retried.
package accounts

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/bot"
)

// Compile-time proof that a Store is every storage the bot needs.
var (
	_ bot.Ledger        = (*Store)(nil)
	_ bot.Votes         = (*Store)(nil)
	_ bot.TierVotes     = (*Store)(nil)
	_ bot.Preferences   = (*Store)(nil)
	_ bot.EventLog      = (*Store)(nil)
	_ bot.SharedLimiter = (*Store)(nil)
)

// Defaults of DESIGN.md, returned by DefaultOptions.
const (
	DefaultSignupBonus        int64 = 15_000
	DefaultFreePerDay               = 50
	DefaultFreePerDayToppedUp       = 1000
	DefaultHoldTTL                  = 15 * time.Minute
	// DefaultEventWindow is how long SeenEvent remembers an event: Slack
	// retries for about an hour, and a Discord gateway resume replays
	// minutes.
	DefaultEventWindow = time.Hour
)

// Options configure a Store. The numbers are used exactly as given, so that
// zero can mean zero (no signup bonus, no free tier): start from
// DefaultOptions, or pass every configured value as config.Config.Stack does.
// Fields whose zero value is meaningless (Location, HoldTTL, EventWindow, Now,
// Boot, Logger, Metrics) fall back to their defaults.
type Options struct {
	// SignupBonus is credited once, by the first contact of an identity.
	SignupBonus int64
	// FreePerDay is the daily allowance of free-model requests; once a user
	// has ever been topped up, FreePerDayToppedUp applies instead.
	FreePerDay         int
	FreePerDayToppedUp int
	// Location decides where a free-tier day starts and ends (default UTC).
	Location *time.Location
	// HoldTTL is how long a hold lives before the sweeper may free it
	// (default 15 minutes).
	HoldTTL time.Duration
	// EventWindow is how long SeenEvent remembers an event id (default
	// one hour).
	EventWindow time.Duration
	// Instance names this process among those sharing the database (a
	// host or replica name; "" is a name too), and Boot this run of it
	// (default: random at Open). Every hold records both, so that at
	// start an instance can release what its own previous boots still
	// held (ReleasePreviousBoots) instead of waiting for their expiry.
	Instance string
	Boot     string
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// Logger receives the audit of admin changes and start-up facts
	// (default slog.Default() with component=accounts).
	Logger *slog.Logger
	// Metrics receives the duration of every write (default bot.NopMetrics).
	Metrics bot.Metrics
	// ReadOnly opens an existing, migrated database without ever writing to
	// it, for inspecting a live or backed-up ledger; every write fails.
	ReadOnly bool
	// BeforeCommit is for load tests only: when set, every write
	// transaction calls it just before it commits, holding the writer;
	// a load test sleeps in it as a slow disk's fsync would.
	BeforeCommit func()
	// FailCommit is for tests only: when set, every write transaction asks
	// it, with the operation ("settle", "reserve", …), just before it
	// commits; an error rolls the transaction back and is returned as the
	// write's error, the way a disk that filled up fails a commit.
	FailCommit func(op string) error

	// forceReadOnlyFile makes SQLite open the file read-only, as it does by
	// itself when the operating system refuses writes; tests use it where
	// they run as root and chmod cannot refuse anything.
	forceReadOnlyFile bool
}

// DefaultOptions returns the defaults of DESIGN.md: a 15,000 token signup
// bonus, 50 free requests a day (1,000 once topped up), days in UTC and
// holds that expire after 15 minutes.
func DefaultOptions() Options {
	return Options{
		SignupBonus:        DefaultSignupBonus,
		FreePerDay:         DefaultFreePerDay,
		FreePerDayToppedUp: DefaultFreePerDayToppedUp,
		Location:           time.UTC,
		HoldTTL:            DefaultHoldTTL,
		EventWindow:        DefaultEventWindow,
	}
}

func (o Options) normalize() (Options, error) {
	if o.SignupBonus < 0 || o.SignupBonus > bot.MaxAmount {
		return o, bot.Errorf(bot.EINVALID, "The signup bonus must be between 0 and %s tokens, not %d.", bot.FormatTokens(bot.MaxAmount), o.SignupBonus)
	}
	if o.FreePerDay < 0 || o.FreePerDayToppedUp < 0 {
		return o, bot.Errorf(bot.EINVALID, "Free requests per day cannot be negative (got %d and %d for topped-up users).", o.FreePerDay, o.FreePerDayToppedUp)
	}
	if o.HoldTTL < 0 {
		return o, bot.Errorf(bot.EINVALID, "The hold lifetime cannot be negative (got %s).", o.HoldTTL)
	}
	if o.EventWindow < 0 {
		return o, bot.Errorf(bot.EINVALID, "The event window cannot be negative (got %s).", o.EventWindow)
	}
	if len(o.Instance) > maxKeyLen || len(o.Boot) > maxKeyLen {
		return o, bot.Errorf(bot.EINVALID, "An instance or boot name is at most %d bytes long.", maxKeyLen)
	}
	if o.HoldTTL == 0 {
		o.HoldTTL = DefaultHoldTTL
	}
	if o.EventWindow == 0 {
		o.EventWindow = DefaultEventWindow
	}
	if o.Boot == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Boot = hex.EncodeToString(b[:])
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default().With("component", "accounts")
	}
	if o.Metrics == nil {
		o.Metrics = bot.NopMetrics{}
	}
	return o, nil
}

// Store is the ledger, on SQLite or PostgreSQL. It is safe for concurrent
// use, and several Stores (in one process or many) may share a PostgreSQL
// database.
type Store struct {
	d       *dialect
	path    string // the SQLite file, or the PostgreSQL URL without its password
	opts    Options
	w       *sql.DB // SQLite: exactly one connection, every write goes through it; PostgreSQL: the pool
	r       *sql.DB // SQLite: read-only connections for queries; PostgreSQL: the same pool
	read    bound   // r, in the dialect's placeholders
	log     *slog.Logger
	metrics bot.Metrics

	pg *pgState // PostgreSQL only: how to open lock sessions, and the secret to keep out of errors

	locks      *lockTable // SQLite only: this process's locks on the file
	leases     leases     // PostgreSQL only: the advisory locks behind TryLead
	instanceMu sync.Mutex
	instance   *Locks // the lock of Options.Instance, once ReleasePreviousBoots took it
	lastPrune  atomic.Int64
	rules      atomic.Pointer[rules]
}

// rules are the Options a config reload may change in a running Store.
type rules struct {
	signupBonus              int64
	freePerDay, freeToppedUp int
}

// SetRules replaces the signup bonus and the free tier's daily allowances
// (a config reload): the next signup and the next free request use them.
// Negative values are ignored.
func (s *Store) SetRules(signupBonus int64, freePerDay, freeToppedUp int) {
	if signupBonus < 0 || signupBonus > bot.MaxAmount || freePerDay < 0 || freeToppedUp < 0 {
		return
	}
	s.rules.Store(&rules{signupBonus: signupBonus, freePerDay: freePerDay, freeToppedUp: freeToppedUp})
}

// Open opens the ledger named by database, brings its schema up to date
// and releases the expired holds a crash may have left open. database is
// a file path for SQLite (created, with its folder, when missing) or a
// postgres:// (postgresql://) URL for PostgreSQL, whose password never
// appears in an error or a log line. The errors name the database and say
// what to do: EINVALID for a database that is not one orchat can use (a
// file that is not SQLite, a read-only file or server, a URL of another
// kind) or a schema written by a newer orchat; EUNAVAILABLE for a
// PostgreSQL server that cannot be reached.
func Open(database string, opts Options) (*Store, error) {
	engine, err := EngineOf(database)
	if err != nil {
		return nil, fmt.Errorf("accounts: open: %w", err)
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("accounts: open: %w", err)
	}
	var s *Store
	if engine == Postgres {
		s, err = openPostgres(database, o)
	} else {
		s, err = openSQLite(database, o)
	}
	if err != nil {
		return nil, err
	}
	s.rules.Store(&rules{signupBonus: o.SignupBonus, freePerDay: o.FreePerDay, freeToppedUp: o.FreePerDayToppedUp})
	version, err := s.start(context.Background())
	// Processes opening one new SQLite file together: while one switches
	// it to WAL and another begins a write, SQLite answers SQLITE_BUSY at
	// once rather than wait where waiting could deadlock. Starting is
	// idempotent (migrations, heartbeat, sweep), so try again.
	for attempt := 1; err != nil && s.d.engine == SQLite && sqliteBusy(err) && attempt <= 20; attempt++ {
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		version, err = s.start(context.Background())
	}
	if err != nil {
		s.Close()
		return nil, s.openError(err)
	}
	s.log.Debug("ledger opened", slog.String("engine", string(s.d.engine)), slog.String("database", s.path),
		slog.Int("schema", version), slog.Bool("read_only", o.ReadOnly))
	return s, nil
}

// EngineOf says which engine Open would use for database, without opening
// anything: Postgres for a postgres:// or postgresql:// URL, SQLite for a
// file path. EINVALID, never repeating a password, for what is neither: an
// empty name, an in-memory or file: URI, a URL of another scheme, or a
// PostgreSQL key=value string.
func EngineOf(database string) (Engine, error) {
	lower := strings.ToLower(strings.TrimSpace(database))
	switch {
	case strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://"):
		return Postgres, nil
	case database == "" || database == ":memory:" || strings.HasPrefix(lower, "file:"):
		return "", bot.Errorf(bot.EINVALID,
			"The ledger needs a database file path such as data/orchat.db or a postgres:// URL, not %q.", database)
	case strings.Contains(lower, "://"):
		scheme, _, _ := strings.Cut(database, "://")
		return "", bot.Errorf(bot.EINVALID,
			"%s:// is not a database orchat can use: give a file path for SQLite (data/orchat.db) or a postgres:// URL for PostgreSQL.", scheme)
	case keywordDSN.MatchString(lower):
		return "", bot.Errorf(bot.EINVALID,
			"The database looks like a PostgreSQL key=value string; write it as a URL instead: postgres://USER@HOST:5432/DBNAME (the password from ORCHAT_DATABASE_URL or ${NAME}).")
	}
	return SQLite, nil
}

// start brings a freshly opened store into service: the schema checked
// (read-only) or migrated, a write proved, and expired holds released.
func (s *Store) start(ctx context.Context) (int, error) {
	if s.opts.ReadOnly {
		return s.checkVersion(ctx)
	}
	version, err := s.migrate(ctx)
	if err == nil {
		err = s.Writable(ctx)
	}
	if err == nil {
		// Holds a crash left behind are freed once they expire.
		_, err = s.ReleaseExpired(ctx, s.opts.Now())
	}
	return version, err
}

// openError turns what went wrong while opening into a sentence about the
// database for the operator.
func (s *Store) openError(err error) error {
	if s.d.engine == Postgres {
		return s.postgresOpenError(err)
	}
	return s.sqliteOpenError(err)
}

// Close closes the database and gives up every lock this Store holds (its
// leader lease on PostgreSQL among them). Open holds stay; the next
// start's sweep releases them once they expire.
func (s *Store) Close() error {
	var errs []error
	errs = append(errs, s.leases.closeAll())
	s.instanceMu.Lock()
	if s.instance != nil {
		errs = append(errs, s.instance.Close())
	}
	s.instanceMu.Unlock()
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("accounts: close: %w", s.scrub(err))
	}
	return nil
}

// Path returns the database for logs and reports: the absolute path of
// the SQLite file, or the PostgreSQL URL with its password removed.
func (s *Store) Path() string { return s.path }

// Engine returns the engine the Store runs on.
func (s *Store) Engine() Engine { return s.d.engine }

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the engine's embedded migrations in order. Their
// names start with their version, 0001_…, numbered from 1 without gaps;
// both engines have the same versions under the same names.
func migrations(engine Engine) ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/"+string(engine)+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name does not start with a number", base)
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema this build knows (the same on both
// engines).
func SchemaVersion() int {
	ms, err := migrations(SQLite)
	if err != nil {
		return 0
	}
	return len(ms)
}

// MigrationNames lists the embedded migrations of an engine in order, for
// the test that keeps both engines at the same versions.
func MigrationNames(engine Engine) []string {
	ms, _ := migrations(engine)
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return names
}

// Migrate brings the schema up to date (Open already does; `orchat migrate`
// calls it explicitly). Each migration runs once, recorded in the migrations
// table; on PostgreSQL all of them run in one transaction under a lock, so
// processes starting together migrate once. EINVALID when the database was
// written by a newer orchat or was opened read-only.
func (s *Store) Migrate(ctx context.Context) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("accounts: migrate: %w", bot.Errorf(bot.EINVALID, "Database %s was opened read-only; open it read-write to migrate it.", s.path))
	}
	_, err := s.migrate(ctx)
	return err
}

// migrationsTable is the record of applied migrations, per engine.
var migrationsTable = map[Engine]string{
	SQLite: `CREATE TABLE IF NOT EXISTS migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`,
	Postgres: `CREATE TABLE IF NOT EXISTS migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`,
}

func (s *Store) migrate(ctx context.Context) (int, error) {
	ms, err := migrations(s.d.engine)
	if err != nil {
		return 0, fmt.Errorf("accounts: migrate: %w", err)
	}
	var version int
	err = s.write(ctx, "migrate", func(ctx context.Context, tx dbtx) error {
		version = 0
		if s.d.engine == Postgres {
			// Processes starting together on a new database: the first
			// migrates, the others wait and find it done.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, s.lockKey("migrate")); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, migrationsTable[s.d.engine]); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&version); err != nil {
			return err
		}
		if version > len(ms) {
			return s.newerSchema(version, len(ms))
		}
		for _, m := range ms[version:] {
			// Migrations are sent as written: several statements, with
			// no placeholders to rebind.
			if _, err := tx.(bound).q.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, s.opts.Now().UnixNano()); err != nil {
				return err
			}
			s.log.Info("migration applied", slog.String("database", s.path), slog.Int("version", m.version), slog.String("name", m.name))
			version = m.version
		}
		return nil
	})
	return version, err
}

func (s *Store) newerSchema(have, know int) error {
	return bot.Errorf(bot.EINVALID,
		"Database %s was written by a newer orchat (schema %d, this build knows %d); upgrade orchat.", s.path, have, know)
}

// checkVersion is Migrate's read-only twin: it refuses a schema this build
// cannot read instead of changing it.
func (s *Store) checkVersion(ctx context.Context) (int, error) {
	know := SchemaVersion()
	var version int
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&version)
	if err != nil && s.noSuchTable(err) {
		return 0, bot.Errorf(bot.EINVALID, "Database %s holds no orchat ledger yet; open it read-write once (orchat migrate).", s.path)
	} else if err != nil {
		return 0, err
	}
	switch {
	case version > know:
		return version, s.newerSchema(version, know)
	case version < know:
		return version, bot.Errorf(bot.EINVALID, "Database %s uses schema %d and this build needs %d; run orchat migrate first.", s.path, version, know)
	}
	return version, nil
}

// Ping reports whether both the writer and the readers answer. It does not
// write; Writable does.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.fail("ping", err)
	}
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Writable proves that the ledger takes writes by committing a heartbeat
// row, so a readiness check notices a database that turned read-only (a
// remounted disk, a full disk, a PostgreSQL standby) before a user's
// charge does. EUNAVAILABLE when it does not.
func (s *Store) Writable(ctx context.Context) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("accounts: writable: %w", bot.Errorf(bot.EUNAVAILABLE, "Database %s was opened read-only.", s.path))
	}
	return s.write(ctx, "heartbeat", func(ctx context.Context, tx dbtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO heartbeat (id, at) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET at = excluded.at`, s.opts.Now().UnixNano())
		return err
	})
}

// PoolStats are the database connections of a Store, for /readyz and
// /metrics: how many are open, in use and idle, the most that may be open,
// and how often and how long callers waited for one.
type PoolStats struct {
	Open, InUse, Idle, MaxOpen int
	WaitCount                  int64
	WaitDuration               time.Duration
}

// PoolStats returns the Store's connections now. On SQLite they are the
// writer and the readers together; on PostgreSQL the one pool (lock
// sessions, which hold one connection each, are not counted).
func (s *Store) PoolStats() PoolStats {
	var p PoolStats
	add := func(db *sql.DB) {
		st := db.Stats()
		p.Open += st.OpenConnections
		p.InUse += st.InUse
		p.Idle += st.Idle
		p.MaxOpen += st.MaxOpenConnections
		p.WaitCount += st.WaitCount
		p.WaitDuration += st.WaitDuration
	}
	add(s.w)
	if s.r != s.w {
		add(s.r)
	}
	return p
}

// errRollback ends a write transaction without writing anything and
// without an error: the answer was already there (a repeated key).
var errRollback = errors.New("rollback")

// commitThen commits what the transaction did and then returns err: the
// write is part of the answer (an expired hold is released and the settle
// refused).
type commitThen struct{ err error }

func (c commitThen) Error() string { return c.err.Error() }

// dbtx is the writer connection inside a transaction.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// maxAttempts bounds how often a write transaction runs when PostgreSQL
// aborts it to break a deadlock or a serialization conflict: each attempt
// starts afresh, so fn must not count across attempts.
const maxAttempts = 4

// write runs fn in one write transaction and reports its duration as a
// LedgerWrite metric.
//
// ctx bounds the wait for a connection. Once the transaction has begun it
// runs to its end under a context that is never cancelled: it takes
// microseconds, and an interrupted statement would only turn into a
// rollback (on PostgreSQL lock_timeout bounds a wait for a row another
// process holds). The transaction is driven with BEGIN and COMMIT on a
// pooled connection rather than sql.Tx, which starts a goroutine per
// transaction and per query: a third of the cost of a reserve on a small
// machine.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx dbtx) error) error {
	start := time.Now()
	defer func() { s.metrics.LedgerWrite(op, time.Since(start)) }()
	for attempt := 1; ; attempt++ {
		unsent, err := s.writeOnce(ctx, op, fn)
		if err == nil || attempt == maxAttempts || !(unsent || s.retryable(err)) {
			return err
		}
		s.log.Debug("write transaction retried", slog.String("op", op), slog.Int("attempt", attempt), slog.Any("error", err))
	}
}

// writeOnce runs one attempt of write. unsent is true when the
// transaction never began (a pooled connection the server had closed, as
// after a PostgreSQL restart or failover): nothing was written, so the
// attempt may be repeated on another connection. A failure later, at
// COMMIT above all, is never repeated: the write may have landed.
func (s *Store) writeOnce(ctx context.Context, op string, fn func(ctx context.Context, tx dbtx) error) (unsent bool, err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return false, s.fail(op, err)
	}
	defer conn.Close()
	ctx = context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(ctx, s.d.begin); err != nil {
		if s.d.engine != Postgres || !unreachable(err) {
			return false, s.fail(op, err)
		}
		// The server ended this connection: the pool must not hand it out
		// again, and nothing was sent, so another may try.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return true, s.fail(op, err)
	}
	return false, s.writeTx(ctx, op, conn, fn)
}

// writeTx runs fn inside the transaction begun on conn and commits it.
func (s *Store) writeTx(ctx context.Context, op string, conn *sql.Conn, fn func(ctx context.Context, tx dbtx) error) error {
	var err error
	err = fn(ctx, bound{conn, s.d})
	var then commitThen
	switch {
	case err == nil:
	case errors.Is(err, errRollback):
		return s.rollback(ctx, op, conn, nil)
	case errors.As(err, &then):
		err = then.err
	default:
		return s.rollback(ctx, op, conn, err)
	}
	if f := s.opts.BeforeCommit; f != nil {
		f() // a slow fsync (load tests)
	}
	if f := s.opts.FailCommit; f != nil {
		if ferr := f(op); ferr != nil {
			return s.rollback(ctx, op, conn, ferr) // a full disk (tests)
		}
	}
	if _, cerr := conn.ExecContext(ctx, "COMMIT"); cerr != nil {
		return s.rollback(ctx, op, conn, cerr)
	}
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}

// rollback ends the transaction and returns cause (wrapped, if not nil).
// A connection that cannot roll back is thrown away, so the next write
// never finds a transaction left open.
func (s *Store) rollback(ctx context.Context, op string, conn *sql.Conn, cause error) error {
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		s.log.Error("rollback failed; dropping the connection", slog.String("op", op), slog.Any("error", s.scrub(err)))
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	if cause == nil {
		return nil
	}
	return s.fail(op, cause)
}

// fail prefixes err with the operation and translates the engine's errors
// into codes, keeping any *bot.Error reachable with errors.As.
func (s *Store) fail(op string, err error) error {
	var be *bot.Error
	if errors.As(err, &be) {
		return fmt.Errorf("accounts: %s: %w", op, err)
	}
	err = s.scrub(err)
	var code *bot.Error
	if s.d.engine == Postgres {
		code = postgresCode(err)
	} else {
		code = sqliteCode(err)
	}
	if code != nil {
		return fmt.Errorf("accounts: %s: %w (%w)", op, code, err)
	}
	return fmt.Errorf("accounts: %s: %w", op, err)
}

// retryable reports whether a failed write may simply run again.
func (s *Store) retryable(err error) bool {
	return s.d.engine == Postgres && postgresRetryable(err)
}

// noSuchTable reports whether err says a table does not exist.
func (s *Store) noSuchTable(err error) bool {
	if s.d.engine == Postgres {
		return postgresUndefinedTable(err)
	}
	return strings.Contains(err.Error(), "no such table")
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
