package accounts

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/orchat/orchat/bot"
)

// pgState is what a PostgreSQL Store keeps beside its pool.
type pgState struct {
	// conn configures the dedicated connections that hold locks.
	conn *pgx.ConnConfig
	// secrets are the password as written in the URL and as decoded:
	// scrubbed from every error before it leaves the package.
	secrets []string
	// schema is current_schema(): lock keys are namespaced by it, so two
	// ledgers in two schemas of one database never share a lock.
	schema string
}

// Pool defaults. The URL may set the pool size with pool_max_conns (the
// name pgxpool uses); the session settings below apply unless the URL
// sets them itself.
const (
	defaultMaxConns = 10
	// Bounds so that one stuck process cannot stall the others: a write
	// waits at most lock_timeout for a row another transaction holds, and
	// a session that sits inside a transaction doing nothing (a hung or
	// stopped process) is ended by the server, releasing its locks.
	defaultLockTimeout   = "10s"
	defaultIdleInTxn     = "60s"
	defaultConnectWait   = 10 * time.Second
	defaultApplication   = "orchat"
	maxApplicationLength = 63 // PostgreSQL's NAMEDATALEN - 1
)

// keywordDSN matches a PostgreSQL key=value connection string, which Open
// refuses (asking for a URL) rather than take it for a file name.
var keywordDSN = regexp.MustCompile(`^(host|hostaddr|dbname|user|port|password|sslmode|service)\s*=`)

// openPostgres connects a pool to the database at the URL and checks that
// the server answers; Open then migrates it.
func openPostgres(database string, o Options) (*Store, error) {
	u, err := url.Parse(strings.TrimSpace(database))
	if err != nil {
		// url's error repeats the URL, password and all.
		return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
			"The PostgreSQL URL of the ledger cannot be read: check its host and port, and percent-encode special characters in the user and password (@ is %%40, / is %%2F, : is %%3A)."))
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		secrets = append(secrets, pw)
		if raw := u.User.String(); strings.Contains(raw, ":") {
			_, enc, _ := strings.Cut(raw, ":")
			if enc != pw {
				secrets = append(secrets, enc)
			}
		}
	}
	q := u.Query()
	if v := q.Get("password"); v != "" {
		secrets = append(secrets, v)
	}
	redacted := redactURL(u)

	maxConns := defaultMaxConns
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
				"pool_max_conns=%q in the PostgreSQL URL must be a whole number from 1 to 1000.", v))
		}
		maxConns = n
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}

	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
			"The PostgreSQL URL %s is not one PostgreSQL accepts: %v.", redacted, scrubString(err.Error(), secrets)))
	}
	for k, v := range map[string]string{
		"application_name":                    defaultApplication,
		"lock_timeout":                        defaultLockTimeout,
		"idle_in_transaction_session_timeout": defaultIdleInTxn,
	} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	if o.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = defaultConnectWait
	}

	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	s := &Store{
		d: postgresDialect, path: redacted, opts: o, log: o.Logger, metrics: o.Metrics,
		w: db, r: db, read: bound{db, postgresDialect},
		pg: &pgState{conn: cfg, secrets: secrets},
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ConnectTimeout+5*time.Second)
	defer cancel()
	var schema *string
	if err := s.read.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, s.postgresOpenError(err)
	}
	if schema == nil {
		db.Close()
		return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
			"Database %s has no schema to write to: its search_path names none that exists; create one (CREATE SCHEMA orchat) or fix search_path.", redacted))
	}
	s.pg.schema = *schema
	return s, nil
}

// redactURL writes u without its password, for logs and messages.
func redactURL(u *url.URL) string {
	c := *u
	q := c.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}

// scrub removes the PostgreSQL password from err's text, in case a driver
// or server message repeats it; errors.As still reaches the cause.
func (s *Store) scrub(err error) error {
	if err == nil || s.pg == nil || len(s.pg.secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := scrubString(msg, s.pg.secrets)
	if clean == msg {
		return err
	}
	return &scrubbed{msg: clean, err: err}
}

func scrubString(msg string, secrets []string) string {
	for _, sec := range secrets {
		msg = strings.ReplaceAll(msg, sec, "xxxxx")
	}
	return msg
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// postgresOpenError turns what went wrong while connecting or migrating
// into a sentence about the server for the operator.
func (s *Store) postgresOpenError(err error) error {
	err = s.scrub(err)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		var msg *bot.Error
		switch {
		case pe.Code == "25006":
			msg = bot.Errorf(bot.EINVALID, "Database %s is read-only (a standby, or default_transaction_read_only is on): point orchat at the primary, or open it read-only.", s.path)
		case pe.Code == "3D000":
			msg = bot.Errorf(bot.EINVALID, "Database %s does not exist: create it first (createdb, or CREATE DATABASE).", s.path)
		case pe.Code == "28P01" || pe.Code == "28000":
			msg = bot.Errorf(bot.EINVALID, "PostgreSQL refused the login to %s: check the user and the password (ORCHAT_DATABASE_URL).", s.path)
		case pe.Code == "42501":
			msg = bot.Errorf(bot.EINVALID, "The role in %s may not create orchat's tables: grant it CREATE on its schema, or run orchat migrate once as the owner.", s.path)
		case pe.Code == "3F000":
			msg = bot.Errorf(bot.EINVALID, "Database %s has no schema to write to: create the schema search_path names.", s.path)
		}
		if msg != nil {
			return fmt.Errorf("accounts: open: %w (%w)", msg, err)
		}
	}
	if unreachable(err) {
		return fmt.Errorf("accounts: open: %w (%w)", bot.Errorf(bot.EUNAVAILABLE,
			"Cannot reach PostgreSQL at %s: check that the server runs and the host and port are right.", s.path), err)
	}
	var be *bot.Error
	if errors.As(err, &be) {
		return fmt.Errorf("accounts: open: %w", err)
	}
	return fmt.Errorf("accounts: open %s: %w", s.path, err)
}

// unreachable reports whether err means the server could not be reached
// (rather than that it refused something).
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, driver.ErrBadConn):
		return true
	}
	return pgconn.Timeout(err)
}

// postgresCode translates PostgreSQL's errors into the codes callers act
// on, or returns nil.
func postgresCode(err error) *bot.Error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return bot.Errorf(bot.ECONFLICT, "That was already recorded.")
		case pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "55P03":
			return bot.Errorf(bot.EUNAVAILABLE, "The ledger is busy; please try again in a moment.")
		case pe.Code == "25006":
			return bot.Errorf(bot.EUNAVAILABLE, "The ledger is read-only right now, so balances cannot change; nothing was charged.")
		case pe.Code == "53100":
			return bot.Errorf(bot.EUNAVAILABLE, "The ledger's disk is full; nothing was charged.")
		case strings.HasPrefix(pe.Code, "53"):
			return bot.Errorf(bot.EUNAVAILABLE, "The ledger's database is out of resources right now; nothing was charged.")
		}
	}
	if unreachable(err) {
		return bot.Errorf(bot.EUNAVAILABLE, "The ledger's database cannot be reached right now; nothing was charged.")
	}
	return nil
}

// postgresRetryable reports whether PostgreSQL aborted a transaction that
// may simply run again: it lost a deadlock or a serialization conflict.
func postgresRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func postgresUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}
