package accounts

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// Engine names the database behind a Store.
type Engine string

// The engines a Store runs on, chosen by the database Open is given: a
// file path is SQLite, a postgres:// or postgresql:// URL is PostgreSQL.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// dialect is what differs between the engines in the SQL the ledger
// sends. The queries themselves are written once, with ? placeholders,
// and rebound to $n for PostgreSQL.
type dialect struct {
	engine Engine
	// begin starts a write transaction: SQLite takes the write lock at
	// once so two writers never deadlock upgrading a read lock;
	// PostgreSQL locks rows as statements touch them.
	begin string
	// forUpdate ends a SELECT whose rows the transaction goes on to
	// change: PostgreSQL runs writers concurrently and must lock them;
	// SQLite has one writer at a time and no such clause.
	forUpdate string
	// lowWater says whether the sweeper may raise its low-water mark of
	// hold ids. Only where ids commit in order (SQLite's single writer).
	lowWater bool
	// verifyTx is the transaction Verify reads one snapshot in.
	verifyTx *sql.TxOptions
}

var (
	sqliteDialect = &dialect{
		engine:   SQLite,
		begin:    "BEGIN IMMEDIATE",
		lowWater: true,
		verifyTx: &sql.TxOptions{ReadOnly: true},
	}
	postgresDialect = &dialect{
		engine:    Postgres,
		begin:     "BEGIN",
		forUpdate: " FOR UPDATE",
		verifyTx:  &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
	}
)

// rebound caches each query's PostgreSQL form: the ledger sends a few
// dozen distinct statements, each many times.
var rebound sync.Map // string → string

// bind returns query in the engine's placeholder syntax: unchanged for
// SQLite; for PostgreSQL ?N becomes $N and each bare ? the next $n. The
// ledger's SQL has no ? inside string literals.
func (d *dialect) bind(query string) string {
	if d.engine != Postgres {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c != '?' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('$')
		if i+1 < len(query) && query[i+1] >= '0' && query[i+1] <= '9' {
			continue // ?N: the digits follow as they are
		}
		n++
		b.WriteString(strconv.Itoa(n))
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}

// sqlq is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type sqlq interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// bound sends queries through q in the dialect's placeholder syntax.
type bound struct {
	q sqlq
	d *dialect
}

func (b bound) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return b.q.ExecContext(ctx, b.d.bind(query), args...)
}

func (b bound) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return b.q.QueryRowContext(ctx, b.d.bind(query), args...)
}

func (b bound) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return b.q.QueryContext(ctx, b.d.bind(query), args...)
}
