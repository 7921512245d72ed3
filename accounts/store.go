// Package accounts is orchat's ledger on SQLite: users, the append-only
// ledger of balance changes, holds for calls in flight, daily free-tier
// counters, compares and their votes, and per-user preferences.
//
// A Store implements bot.Ledger, bot.Votes and bot.Preferences. It is the
// only package that imports go-sqlite3; everything else sees the bot
// interfaces. The semantics are DESIGN.md's "Ledger semantics"; the
// conformance suite in accountstest pins them down for every backend.
//
// The database runs in WAL mode with synchronous=NORMAL, a busy timeout,
// immediate write transactions and foreign keys on. Writes go through one
// connection (SQLite allows one writer at a time anyway, and queueing in Go
// is cheaper than spinning on SQLITE_BUSY); reads use a separate pool of
// read-only connections, so a slow report never blocks a charge.
package accounts

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/orchat/orchat/bot"
)

// Compile-time proof that a Store is every storage the bot needs.
var (
	_ bot.Ledger      = (*Store)(nil)
	_ bot.Votes       = (*Store)(nil)
	_ bot.Preferences = (*Store)(nil)
)

// Defaults of DESIGN.md, returned by DefaultOptions.
const (
	DefaultSignupBonus        int64 = 15_000
	DefaultFreePerDay               = 50
	DefaultFreePerDayToppedUp       = 1000
	DefaultHoldTTL                  = 15 * time.Minute
)

// Options configure a Store. The numbers are used exactly as given, so that
// zero can mean zero (no signup bonus, no free tier): start from
// DefaultOptions, or pass every configured value as config.Config.Stack does. Fields
// whose zero value is meaningless (Location, HoldTTL, Now, Logger, Metrics)
// fall back to their defaults.
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
	if o.HoldTTL == 0 {
		o.HoldTTL = DefaultHoldTTL
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

// Store is the SQLite ledger. It is safe for concurrent use.
type Store struct {
	path    string
	opts    Options
	w       *sql.DB // exactly one connection: every write goes through it
	r       *sql.DB // read-only connections for queries
	log     *slog.Logger
	metrics bot.Metrics
}

// Open opens (creating it and its folder when missing) the ledger at path,
// brings its schema up to date and releases the expired holds a crash may
// have left open. The errors name the file and say what
// to do: EINVALID for a file that is not SQLite, a read-only file or folder,
// or a schema written by a newer orchat.
func Open(path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
			"The ledger needs a database file path such as data/orchat.db, not %q.", path))
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("accounts: open: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", path, err)
	}
	if err := checkFile(abs, o.ReadOnly); err != nil {
		return nil, fmt.Errorf("accounts: open: %w", err)
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
				"Cannot create the folder of database %s: %v.", abs, err))
		}
	}
	s := &Store{path: abs, opts: o, log: o.Logger, metrics: o.Metrics}

	s.w, err = sql.Open("sqlite3", dsn(abs, o.ReadOnly || o.forceReadOnlyFile, true))
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	s.r, err = sql.Open("sqlite3", dsn(abs, true, false))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("accounts: open %s: %w", abs, err)
	}
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	s.r.SetConnMaxIdleTime(0)

	ctx := context.Background()
	var version int
	if o.ReadOnly {
		version, err = s.checkVersion(ctx)
	} else {
		version, err = s.migrate(ctx)
		if err == nil {
			err = s.Writable(ctx)
		}
		if err == nil {
			// Holds a crash left behind are freed once they expire.
			_, err = s.ReleaseExpired(ctx, o.Now())
		}
	}
	if err != nil {
		s.Close()
		return nil, s.openError(err)
	}
	s.log.Debug("ledger opened", slog.String("path", abs), slog.Int("schema", version), slog.Bool("read_only", o.ReadOnly))
	return s, nil
}

// readers is the size of the read-only pool: enough for the reports and
// balance lookups that run beside the writer on a small machine.
const readers = 4

// dsn builds the go-sqlite3 data source name. Writers take the write lock
// when they begin (_txlock=immediate), so two transactions never deadlock
// upgrading a read lock; readers never write.
func dsn(file string, readOnly, writer bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("_foreign_keys", "on")
	q.Set("_stmt_cache_size", "48")
	if writer {
		q.Set("_txlock", "immediate")
		q.Set("_synchronous", "NORMAL")
		if !readOnly {
			q.Set("_journal_mode", "WAL")
		}
	}
	if readOnly {
		q.Set("mode", "ro")
	}
	return "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkFile refuses, before SQLite touches it, a path that is a folder or a
// file that is not an SQLite database, so a typo in the config cannot
// scribble -wal and -shm files beside someone's spreadsheet.
func checkFile(file string, readOnly bool) error {
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		if readOnly {
			return bot.Errorf(bot.EINVALID, "Database %s does not exist, and it was to be opened read-only.", file)
		}
		return nil
	} else if err != nil {
		return bot.Errorf(bot.EINVALID, "Cannot read database %s: %v.", file, err)
	}
	if fi.IsDir() {
		return bot.Errorf(bot.EINVALID, "Database %s is a folder; give the path of a database file inside it, such as %s.", file, filepath.Join(file, "orchat.db"))
	}
	if fi.Size() == 0 {
		return nil // SQLite treats an empty file as a new database
	}
	f, err := os.Open(file)
	if err != nil {
		return bot.Errorf(bot.EINVALID, "Cannot read database %s: %v.", file, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return notSQLite(file)
	}
	return nil
}

func notSQLite(file string) error {
	return bot.Errorf(bot.EINVALID, "%s is not an SQLite database; point the ledger at an orchat database file or at a new path.", file)
}

// openError turns what went wrong while opening into a sentence about the
// file for the operator.
func (s *Store) openError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNotADB, sqlite3.ErrCorrupt:
			return fmt.Errorf("accounts: open: %w (%w)", notSQLite(s.path), se)
		case sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrAuth:
			return fmt.Errorf("accounts: open: %w", s.readOnlyError(se))
		}
	}
	var be *bot.Error
	if errors.As(err, &be) {
		return fmt.Errorf("accounts: open: %w", err)
	}
	return fmt.Errorf("accounts: open %s: %w", s.path, err)
}

func (s *Store) readOnlyError(cause error) error {
	return bot.Errorf(bot.EINVALID,
		"Database %s is read-only or cannot be opened for writing (%v): orchat writes the file and its -wal and -shm files beside it, so check the permissions of the file and its folder, and that the disk is mounted read-write.",
		s.path, cause)
}

// Close closes the database. Open holds stay in the file; the next start's
// sweep releases them once they expire.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("accounts: close: %w", err)
	}
	return nil
}

// Path returns the absolute path of the database file, for logs and reports.
func (s *Store) Path() string { return s.path }

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their names start
// with their version, 0001_…, numbered from 1 without gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
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

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// Migrate brings the schema up to date (Open already does; `orchat migrate`
// calls it explicitly). Each migration runs once, recorded in the migrations
// table. EINVALID when the database was written by a newer orchat.
func (s *Store) Migrate(ctx context.Context) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("accounts: migrate: %w", bot.Errorf(bot.EINVALID, "Database %s was opened read-only; open it read-write to migrate it.", s.path))
	}
	_, err := s.migrate(ctx)
	return err
}

func (s *Store) migrate(ctx context.Context) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, fmt.Errorf("accounts: migrate: %w", err)
	}
	var version int
	err = s.write(ctx, "migrate", func(ctx context.Context, tx dbtx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&version); err != nil {
			return err
		}
		if version > len(ms) {
			return s.newerSchema(version, len(ms))
		}
		for _, m := range ms[version:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, s.opts.Now().UnixNano()); err != nil {
				return err
			}
			s.log.Info("migration applied", slog.String("path", s.path), slog.Int("version", m.version), slog.String("name", m.name))
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
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM migrations`).Scan(&version)
	if err != nil && strings.Contains(err.Error(), "no such table") {
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
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Writable proves that the ledger takes writes by committing a heartbeat
// row, so a readiness check notices a file that turned read-only (or a full
// disk) before a user's charge does.
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

// IntegrityCheck returns SQLite's PRAGMA integrity_check report: "ok" for a
// sound file, else one line per problem.
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	rows, err := s.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return "", s.fail("integrity_check", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", s.fail("integrity_check", err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		return "", s.fail("integrity_check", err)
	}
	return strings.Join(lines, "\n"), nil
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

// write runs fn in one immediate transaction on the writer connection and
// reports its duration as a LedgerWrite metric.
//
// ctx bounds the wait for the writer. Once the transaction has begun it
// runs to its end under a context that is never cancelled: it takes
// microseconds, and an interrupted statement would only turn into a
// rollback. The transaction is driven with BEGIN and COMMIT on a pooled
// connection rather than sql.Tx, which starts a goroutine per transaction
// and per query: a third of the cost of a reserve on a small machine.
func (s *Store) write(ctx context.Context, op string, fn func(ctx context.Context, tx dbtx) error) error {
	start := time.Now()
	defer func() { s.metrics.LedgerWrite(op, time.Since(start)) }()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	defer conn.Close()
	ctx = context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return s.fail(op, err)
	}
	err = fn(ctx, conn)
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
		s.log.Error("rollback failed; dropping the writer connection", slog.String("op", op), slog.Any("error", err))
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	if cause == nil {
		return nil
	}
	return s.fail(op, cause)
}

// fail prefixes err with the operation and translates SQLite's errors into
// codes, keeping any *bot.Error reachable with errors.As.
func (s *Store) fail(op string, err error) error {
	var be *bot.Error
	if errors.As(err, &be) {
		return fmt.Errorf("accounts: %s: %w", op, err)
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch {
		case se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey:
			return fmt.Errorf("accounts: %s: %w (%w)", op, bot.Errorf(bot.ECONFLICT, "That was already recorded."), err)
		case se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked:
			return fmt.Errorf("accounts: %s: %w (%w)", op, bot.Errorf(bot.EUNAVAILABLE, "The ledger is busy; please try again in a moment."), err)
		case se.Code == sqlite3.ErrReadonly:
			return fmt.Errorf("accounts: %s: %w (%w)", op, bot.Errorf(bot.EUNAVAILABLE, "The ledger is read-only right now, so balances cannot change; nothing was charged."), err)
		case se.Code == sqlite3.ErrFull:
			return fmt.Errorf("accounts: %s: %w (%w)", op, bot.Errorf(bot.EUNAVAILABLE, "The ledger's disk is full; nothing was charged."), err)
		}
	}
	return fmt.Errorf("accounts: %s: %w", op, err)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
