package accounts_test

import (
	"bytes"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
)

func TestEngineOf(t *testing.T) {
	for _, tc := range []struct {
		database string
		want     accounts.Engine
		refusal  string // part of the message when refused
	}{
		{"data/orchat.db", accounts.SQLite, ""},
		{"/var/lib/orchat/orchat.db", accounts.SQLite, ""},
		{"postgres://orchat@db:5432/orchat", accounts.Postgres, ""},
		{"postgresql://orchat:pw@db/orchat?sslmode=require", accounts.Postgres, ""},
		{"POSTGRES://orchat@db/orchat", accounts.Postgres, ""},
		{"", "", "file path"},
		{":memory:", "", "file path"},
		{"file:ledger.db?mode=memory", "", "file path"},
		{"mysql://orchat:hunter2@db/orchat", "", "mysql:// is not a database orchat can use"},
		{"sqlite:///data/orchat.db", "", "give a file path"},
		{"host=db user=orchat password=hunter2 dbname=orchat", "", "key=value"},
	} {
		got, err := accounts.EngineOf(tc.database)
		if tc.refusal == "" {
			if err != nil || got != tc.want {
				t.Errorf("EngineOf(%q)=%q, %v; want %q", tc.database, got, err, tc.want)
			}
			continue
		}
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, tc.refusal)
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("EngineOf(%q) repeats the password: %v", tc.database, err)
		}
	}
}

// withPassword returns dsn with a password set (the test server trusts
// every local login, so any password is accepted).
func withPassword(t *testing.T, dsn, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// setQuery returns dsn with the query parameter key set to value.
func setQuery(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestOpenPostgres(t *testing.T) {
	const password = "s3cr3t-Pa55/w:rd@x"

	t.Run("PasswordNeverShown", func(t *testing.T) {
		var logs bytes.Buffer
		opts := testOptions()
		opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		dsn := withPassword(t, postgrestest.DSN(t), password)
		s := MustOpenPath(t, dsn, opts)
		ensure(t, s, alice)
		if _, _, err := s.TopUp(t.Context(), bot.Adjustment{Identity: alice, Amount: 5, Key: "k", Actor: bot.ActorSystem}); err != nil {
			t.Fatal(err)
		}
		enc := url.UserPassword("u", password).String()
		for what, text := range map[string]string{"Path()": s.Path(), "the log": logs.String()} {
			if strings.Contains(text, password) || strings.Contains(text, enc[2:]) {
				t.Fatalf("%s shows the password: %s", what, text)
			}
		}
		if !strings.Contains(logs.String(), "migration applied") || !strings.Contains(s.Path(), "xxxxx") {
			t.Fatalf("Path()=%q, log:\n%s", s.Path(), logs.String())
		}
	})

	t.Run("ErrUnreachable", func(t *testing.T) {
		var logs bytes.Buffer
		opts := testOptions()
		opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		dsn := "postgres://orchat:" + url.QueryEscape(password) + "@127.0.0.1:1/orchat?connect_timeout=5"
		_, err := accounts.Open(dsn, opts)
		wantCode(t, err, bot.EUNAVAILABLE)
		wantMessage(t, err, "Cannot reach PostgreSQL", "127.0.0.1:1")
		if text := err.Error() + logs.String(); strings.Contains(text, password) || strings.Contains(text, url.QueryEscape(password)) {
			t.Fatalf("the password appears: %s", text)
		}
	})

	t.Run("ErrDatabaseMissing", func(t *testing.T) {
		u, err := url.Parse(postgrestest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/orchat_no_such_database"
		_, err = accounts.Open(withPassword(t, u.String(), password), testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "does not exist", "createdb")
		if strings.Contains(err.Error(), password) {
			t.Fatalf("the password appears: %v", err)
		}
	})

	t.Run("ErrNoSchema", func(t *testing.T) {
		_, err := accounts.Open(setQuery(t, postgrestest.URL(t), "search_path", "orchat_no_such_schema"), testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "no schema", "CREATE SCHEMA")
	})

	t.Run("ErrBadURL", func(t *testing.T) {
		for _, dsn := range []string{
			"postgres://orchat:" + password + "@db:5432/orchat", // an unescaped / and @ in the password
			"postgres://orchat:hunter2@db:port/orchat",
		} {
			_, err := accounts.Open(dsn, testOptions())
			wantCode(t, err, bot.EINVALID)
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), password) {
				t.Fatalf("the password appears: %v", err)
			}
		}
		_, err := accounts.Open(setQuery(t, postgrestest.URL(t), "pool_max_conns", "many"), testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "pool_max_conns")
	})

	t.Run("PoolMaxConns", func(t *testing.T) {
		s := MustOpenPath(t, setQuery(t, postgrestest.DSN(t), "pool_max_conns", "3"), testOptions())
		if got := s.PoolStats().MaxOpen; got != 3 {
			t.Fatalf("MaxOpen=%d with pool_max_conns=3", got)
		}
	})

	// A standby, or a server whose transactions are read-only: orchat
	// says so at start, instead of failing on the first charge.
	t.Run("ErrReadOnlyServer", func(t *testing.T) {
		_, err := accounts.Open(setQuery(t, postgrestest.DSN(t), "default_transaction_read_only", "on"), testOptions())
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "read-only", "primary")
	})

	t.Run("ReadOnlyOption", func(t *testing.T) {
		dsn := postgrestest.DSN(t)
		s := MustOpenPath(t, dsn, testOptions())
		ensure(t, s, alice)
		opts := testOptions()
		opts.ReadOnly = true
		ro := MustOpenPath(t, dsn, opts)
		if b, err := ro.Balance(t.Context(), alice); err != nil || b.Balance != 15_000 {
			t.Fatalf("Balance=%+v, %v", b, err)
		}
		if rep, err := ro.Verify(t.Context()); err != nil || !rep.OK() {
			t.Fatalf("Verify=%+v, %v", rep, err)
		}
		_, _, err := ro.TopUp(t.Context(), bot.Adjustment{Identity: alice, Amount: 1, Key: "k", Actor: "console:admin"})
		wantCode(t, err, bot.EUNAVAILABLE)
		wantMessage(t, err, "read-only")
		wantCode(t, ro.Writable(t.Context()), bot.EUNAVAILABLE)
		wantCode(t, ro.Migrate(t.Context()), bot.EINVALID)
		_, err = accounts.Open(postgrestest.DSN(t), opts)
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "no orchat ledger yet")
	})

	t.Run("IntegrityCheckIsSQLites", func(t *testing.T) {
		s := MustOpenPath(t, postgrestest.DSN(t), testOptions())
		_, err := s.IntegrityCheck(t.Context())
		wantCode(t, err, bot.EINVALID)
	})
}

// After a PostgreSQL restart or failover every pooled connection is dead;
// the next write must not fail for it: a transaction that never began is
// begun again on a fresh connection.
func TestPostgresSessionsEndedByServer(t *testing.T) {
	app := "orchat-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	dsn := setQuery(t, postgrestest.DSN(t), "application_name", app)
	s := MustOpenPath(t, dsn, testOptions())
	ensure(t, s, alice)
	raw := engines[1].raw(t, postgrestest.URL(t))
	var ended int
	if err := raw.QueryRow(`SELECT COUNT(pg_terminate_backend(pid, 30000)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&ended); err != nil || ended == 0 {
		t.Fatalf("ended %d sessions: %v", ended, err)
	}
	h, err := s.Reserve(t.Context(), alice, 100, "after-restart")
	if err != nil {
		t.Fatalf("the first write after the server ended every session: %v", err)
	}
	if _, err := s.Settle(t.Context(), h.ID, bot.Charge{Amount: 40, Model: "m"}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Balance(t.Context(), alice); err != nil || b.Balance != 14_960 || b.Held != 0 {
		t.Fatalf("Balance=%+v, %v", b, err)
	}
}
