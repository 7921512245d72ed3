package accounts_test

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/accountstest"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
)

// options maps the suite's config to the store's options.
func options(cfg accountstest.Config) accounts.Options {
	return accounts.Options{
		SignupBonus:        cfg.SignupBonus,
		FreePerDay:         cfg.FreePerDay,
		FreePerDayToppedUp: cfg.FreePerDayToppedUp,
		Location:           cfg.Location,
		HoldTTL:            cfg.HoldTTL,
		EventWindow:        cfg.EventWindow,
		Instance:           cfg.Instance,
		Boot:               cfg.Boot,
		Now:                cfg.Now,
		Logger:             slog.New(slog.DiscardHandler),
	}
}

// testOptions are DESIGN.md's defaults on a clock stopped at the suite's start.
func testOptions() accounts.Options {
	return options(accountstest.DefaultConfig(accountstest.NewClock(accountstest.Start)))
}

// MustOpenPath opens the store at path (a file or a PostgreSQL URL) and
// closes it when the test ends.
func MustOpenPath(tb testing.TB, path string, opts accounts.Options) *accounts.Store {
	tb.Helper()
	s, err := accounts.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// MustOpen opens a store on a new file under the test's temporary folder.
func MustOpen(tb testing.TB, opts accounts.Options) *accounts.Store {
	tb.Helper()
	return MustOpenPath(tb, filepath.Join(tb.TempDir(), "ledger.db"), opts)
}

// engine is one of the two databases every behaviour runs on: it makes a
// new, empty database for a test, and opens raw connections to it.
type engine struct {
	name string
	// database returns a new, empty database for tb: a file under its
	// temporary folder, or a schema of its own on the test server.
	database func(tb testing.TB) string
	driver   string
}

var engines = []engine{
	{"SQLite", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "ledger.db") }, "sqlite3"},
	{"PostgreSQL", postgrestest.DSN, "pgx"},
}

// eachEngine runs fn as a subtest per engine; the PostgreSQL one skips,
// saying how to run it, without ORCHAT_TEST_POSTGRES.
func eachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

// raw opens database as an operator's shell would, beside the store.
func (e engine) raw(tb testing.TB, database string) *sql.DB {
	tb.Helper()
	dsn := database
	if e.driver == "sqlite3" {
		dsn = accounts.WriterDSN(database)
	}
	db, err := sql.Open(e.driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// backend is the suite's view of an engine.
func (e engine) backend() accountstest.Backend {
	var databases sync.Map // accountstest.Store → its database
	open := func(t *testing.T, database string, cfg accountstest.Config) accountstest.Store {
		s := MustOpenPath(t, database, options(cfg))
		databases.Store(accountstest.Store(s), database)
		return s
	}
	databaseOf := func(s accountstest.Store) string {
		d, _ := databases.Load(s)
		return d.(string)
	}
	return accountstest.Backend{
		Open: func(t *testing.T, cfg accountstest.Config) accountstest.Store {
			return open(t, e.database(t), cfg)
		},
		// Reopen leaves the old store as a crashed (or a still running)
		// process would: its connections are never closed cleanly and its
		// holds stay open.
		Reopen: func(t *testing.T, s accountstest.Store, cfg accountstest.Config) accountstest.Store {
			return open(t, databaseOf(s), cfg)
		},
		Exec: func(t *testing.T, s accountstest.Store, query string) error {
			_, err := e.raw(t, databaseOf(s)).Exec(query)
			return err
		},
	}
}

func TestLedgerSuite(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		if e.name == "PostgreSQL" {
			postgrestest.URL(t)
		}
		accountstest.RunLedgerSuite(t, e.backend())
	})
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := bot.ErrorCode(err); got != code {
		t.Fatalf("error code=%q, want %q (err: %v)", got, code, err)
	}
}

func wantMessage(t testing.TB, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(bot.ErrorMessage(err), p) {
			t.Fatalf("message %q does not mention %q", bot.ErrorMessage(err), p)
		}
	}
}

const (
	alice bot.Identity = "console:alice"
	bob   bot.Identity = "console:bob"
)

func ensure(t *testing.T, s *accounts.Store, id bot.Identity) {
	t.Helper()
	if _, _, err := s.EnsureUser(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	t.Run("CreatesParentFolder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "nested", "orchat.db")
		s := MustOpenPath(t, path, testOptions())
		ensure(t, s, alice)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("database file: %v", err)
		}
	})

	t.Run("Pragmas", func(t *testing.T) {
		s := MustOpen(t, testOptions())
		got, err := accounts.WriterPragmas(s)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000", "query_only": "0"}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("PRAGMA %s=%q, want %q", k, got[k], v)
			}
		}
	})

	t.Run("ErrNotSQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		content := bytes.Repeat([]byte("this is a text file, not a database\n"), 100)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := accounts.Open(path, testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, path, "not an SQLite database")
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Fatal("the file was changed")
		}
		if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a -wal file appeared beside it: %v", err)
		}
	})

	t.Run("ErrFolder", func(t *testing.T) {
		dir := t.TempDir()
		_, err := accounts.Open(dir, testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, dir, "folder")
	})

	t.Run("ErrMemory", func(t *testing.T) {
		_, err := accounts.Open(":memory:", testOptions())
		wantCode(t, err, bot.EINVALID)
	})

	t.Run("ErrInvalidOptions", func(t *testing.T) {
		for _, o := range []accounts.Options{{SignupBonus: -1}, {FreePerDay: -1}, {HoldTTL: -time.Second}, {SignupBonus: bot.MaxAmount + 1}} {
			_, err := accounts.Open(filepath.Join(t.TempDir(), "ledger.db"), o)
			wantCode(t, err, bot.EINVALID)
		}
	})

	t.Run("ErrReadOnlyFile", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ledger.db")
		s := MustOpenPath(t, path, testOptions())
		ensure(t, s, alice)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			os.Chmod(dir, 0o755)
			os.Chmod(path, 0o644)
		})
		opts := testOptions()
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			// Running as root: permissions refuse nothing, so have SQLite
			// open the file read-only as it does for everyone else.
			f.Close()
			opts = accounts.ForceReadOnlyFile(opts)
		}
		_, err := accounts.Open(path, opts)
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, path, "read-only")
	})

}

func TestReadOnlyOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := MustOpenPath(t, path, testOptions())
	ensure(t, s, alice)
	s.Close()

	opts := testOptions()
	opts.ReadOnly = true
	ro := MustOpenPath(t, path, opts)
	t.Run("Reads", func(t *testing.T) {
		b, err := ro.Balance(t.Context(), alice)
		if err != nil || b.Balance != 15_000 {
			t.Fatalf("Balance=%+v, %v", b, err)
		}
		if rep, err := ro.Verify(t.Context()); err != nil || !rep.OK() {
			t.Fatalf("Verify=%+v, %v", rep, err)
		}
	})
	t.Run("ErrWrites", func(t *testing.T) {
		_, _, err := ro.TopUp(t.Context(), bot.Adjustment{Identity: alice, Amount: 1, Key: "k", Actor: "console:admin"})
		wantCode(t, err, bot.EUNAVAILABLE)
		wantMessage(t, err, "read-only")
		if err := ro.Writable(t.Context()); err == nil {
			t.Fatal("Writable on a read-only store succeeded")
		}
		wantCode(t, ro.Migrate(t.Context()), bot.EINVALID)
	})
	t.Run("ErrMissingFile", func(t *testing.T) {
		_, err := accounts.Open(filepath.Join(t.TempDir(), "missing.db"), opts)
		wantCode(t, err, bot.EINVALID)
	})
}

func TestWritable(t *testing.T) {
	s := MustOpen(t, testOptions())
	ensure(t, s, alice)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Writable(t.Context()); err != nil {
		t.Fatalf("Writable: %v", err)
	}

	t.Run("ErrReadOnly", func(t *testing.T) {
		if err := accounts.SetQueryOnly(s, true); err != nil {
			t.Fatal(err)
		}
		err := s.Writable(t.Context())
		wantCode(t, err, bot.EUNAVAILABLE)
		wantMessage(t, err, "read-only")
		_, err = s.Reserve(t.Context(), alice, 10, "")
		wantCode(t, err, bot.EUNAVAILABLE)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping of a read-only store: %v (reads still work)", err)
		}
		if err := accounts.SetQueryOnly(s, false); err != nil {
			t.Fatal(err)
		}
		if err := s.Writable(t.Context()); err != nil {
			t.Fatalf("Writable after recovery: %v", err)
		}
	})
}

func TestIntegrityCheck(t *testing.T) {
	s := MustOpen(t, testOptions())
	ensure(t, s, alice)
	got, err := s.IntegrityCheck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := "ok"; got != want {
		t.Fatalf("integrity check=%q, want %q", got, want)
	}
}

// fakeMetrics records the ledger writes it is told about.
type fakeMetrics struct {
	bot.NopMetrics
	mu     sync.Mutex
	writes map[string]int
}

func (m *fakeMetrics) LedgerWrite(op string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d <= 0 {
		op += "(no duration)"
	}
	m.writes[op]++
}

func TestMetrics(t *testing.T) {
	m := &fakeMetrics{writes: map[string]int{}}
	opts := testOptions()
	opts.Metrics = m
	s := MustOpen(t, opts)
	ensure(t, s, alice)
	h, err := s.Reserve(t.Context(), alice, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(t.Context(), h.ID, bot.Charge{Amount: 5, Model: "m"}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range []string{"migrate", "heartbeat", "ensure_user", "reserve", "settle"} {
		if got, want := m.writes[op], 1; got != want {
			t.Fatalf("LedgerWrite(%q) reported %d times, want %d (all: %v)", op, got, want, m.writes)
		}
	}
}
