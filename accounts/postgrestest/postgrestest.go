// Package postgrestest gives each test a database of its own on a real
// PostgreSQL server: a new schema on the server that ORCHAT_TEST_POSTGRES
// names, dropped when the test ends, so that tests, packages and helpers
// running at once against one server never see each other's rows (or
// locks: the ledger namespaces its advisory locks by schema).
//
// Without the variable a test that asks for PostgreSQL is skipped with a
// line that says how to run it; with the variable set and the server
// unreachable, it fails. bash .ci/run sets it to the local server.
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the variable that names the test server: a postgres:// URL of a
// role that may create schemas.
const Env = "ORCHAT_TEST_POSTGRES"

// Example is a value of Env that works on the project's machines.
const Example = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SkipMessage is what a test without Env says when it skips.
const SkipMessage = "PostgreSQL half skipped: " + Env + " is not set. Run it with " +
	Env + "='" + Example + "' go test ./... (bash .ci/run sets it)"

// URL returns the server's URL from Env, or skips tb with SkipMessage.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(Env)
	if base == "" {
		tb.Skip(SkipMessage)
	}
	return base
}

// DSN returns the URL of a new, empty schema on the test server (its
// search_path set to it), dropped with everything in it when tb ends.
// It skips tb without Env and fails it when the server cannot be reached.
func DSN(tb testing.TB) string {
	tb.Helper()
	base := URL(tb)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s is not a URL: %v", Env, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "orchat_test_" + hex.EncodeToString(b[:])
	exec(tb, base, "CREATE SCHEMA "+schema)
	tb.Cleanup(func() { exec(tb, base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// exec runs one statement on its own connection to the server.
func exec(tb testing.TB, dsn, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("PostgreSQL at %s (%s) cannot be reached: %v", Env, redacted(dsn), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "an unreadable URL"
	}
	return u.Redacted()
}
