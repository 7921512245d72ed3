package accounts_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
)

// The PostgreSQL twins of bench_test.go, on the server ORCHAT_TEST_POSTGRES
// names (skipped without it). Figures and the command are in
// docs/BENCHMARKS.md.

// benchPostgres opens n stores (n connection pools, as n processes have)
// on a new schema, with users topped up to the maximum.
func benchPostgres(b *testing.B, stores, users int) ([]*accounts.Store, []bot.Identity, string) {
	b.Helper()
	dsn := postgrestest.DSN(b)
	ss := make([]*accounts.Store, stores)
	for i := range ss {
		ss[i] = MustOpenPath(b, dsn, testOptions())
	}
	ids := make([]bot.Identity, users)
	for i := range ids {
		ids[i] = bot.Identity("console:user" + strconv.Itoa(i))
		if _, _, err := ss[0].TopUp(context.Background(), bot.Adjustment{Identity: ids[i], Amount: bot.MaxAmount, Key: "bench-" + strconv.Itoa(i), Actor: bot.ActorSystem}); err != nil {
			b.Fatal(err)
		}
	}
	return ss, ids, dsn
}

// BenchmarkReserveSettlePostgres is BenchmarkReserveSettle on PostgreSQL:
// one reserve and one settle per op from one goroutine.
func BenchmarkReserveSettlePostgres(b *testing.B) {
	ss, ids, _ := benchPostgres(b, 1, 1)
	reserveSettle(b, ss[0], ids[0])
}

// BenchmarkReserveSettleParallelPostgres is the parallel benchmark on one
// store (one pool of 10 connections) and 64 users.
func BenchmarkReserveSettleParallelPostgres(b *testing.B) {
	ss, ids, _ := benchPostgres(b, 1, 64)
	reserveSettleParallel(b, ss, ids)
}

// BenchmarkReserveSettleThreeStoresPostgres spreads the same load over
// three stores on one database, as three orchat processes would.
func BenchmarkReserveSettleThreeStoresPostgres(b *testing.B) {
	ss, ids, _ := benchPostgres(b, 3, 64)
	reserveSettleParallel(b, ss, ids)
}

// rawConn is one pgx connection to the schema, outside any store.
func rawConn(b *testing.B, dsn string) *pgx.Conn {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// BenchmarkRawReserveSettlePostgres is the floor for the store's own SQL:
// per op, the statements a reserve and a settle send, as two bare
// transactions on one pgx connection, with no ledger code around them
// (no validation, no database/sql, no error translation). The ratio of
// BenchmarkReserveSettlePostgres to it is what the store costs.
func BenchmarkRawReserveSettlePostgres(b *testing.B) {
	_, ids, dsn := benchPostgres(b, 1, 1)
	conn := rawConn(b, dsn)
	i := 0
	for b.Loop() {
		i++
		rawPair(b, conn, string(ids[0]), i)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkReserveSettleVsRawPostgres runs, per op, one store pair and one
// raw pair of the same SQL, one after the other, and reports both rates
// and their ratio. On a server whose commits other work slows (a shared
// disk, other tests), interleaving keeps the ratio honest where two
// separate benchmarks would each meet other weather.
func BenchmarkReserveSettleVsRawPostgres(b *testing.B) {
	ss, ids, dsn := benchPostgres(b, 1, 2)
	s, ctx := ss[0], context.Background()
	conn := rawConn(b, dsn)
	var store, raw time.Duration
	i := 0
	for b.Loop() {
		i++
		key := strconv.Itoa(i)
		t0 := time.Now()
		h, err := s.Reserve(ctx, ids[0], 100, "event-"+key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Settle(ctx, h.ID, benchCharge("gen-"+key)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rawPair(b, conn, string(ids[1]), i)
		store += t1.Sub(t0)
		raw += time.Since(t1)
	}
	b.ReportMetric(float64(b.N)/store.Seconds(), "store-pairs/s")
	b.ReportMetric(float64(b.N)/raw.Seconds(), "raw-pairs/s")
	b.ReportMetric(raw.Seconds()/store.Seconds(), "ratio")
}

// rawPair sends a reserve's and a settle's statements for user id as two
// bare transactions on conn.
func rawPair(b *testing.B, conn *pgx.Conn, id string, i int) {
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	key := "raw-" + strconv.Itoa(i)
	now := int64(i)
	c := benchCharge("gen-" + key)
	// reserve
	exec("BEGIN")
	exec(`UPDATE users SET held = held + $1 WHERE identity = $2 AND NOT blocked AND balance - held >= $1`, int64(100), id)
	var hold int64
	if err := conn.QueryRow(ctx, `INSERT INTO holds (identity, amount, key, created_at, expires_at, owner_instance, owner_boot)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id`,
		id, int64(100), "event-"+key, now, now+1e12, "", "b").Scan(&hold); err != nil {
		b.Fatal(err)
	}
	exec("COMMIT")
	// settle
	exec("BEGIN")
	var identity, state string
	var amount, expires int64
	var entryID, closed *int64
	if err := conn.QueryRow(ctx, `SELECT identity, amount, state, expires_at, entry_id, closed_at FROM holds WHERE id = $1 FOR UPDATE`, hold).
		Scan(&identity, &amount, &state, &expires, &entryID, &closed); err != nil {
		b.Fatal(err)
	}
	var entry int64
	u := c.Usage
	if err := conn.QueryRow(ctx, `INSERT INTO entries (identity, kind, amount, key, actor, note, model,
			prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
			cost_usd, cost_reported, byok, upstream_cost_usd, generation_id, created_at)
		VALUES ($1, 'charge', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT DO NOTHING RETURNING id`,
		identity, -c.Amount, "generation:"+c.GenerationID, "system", c.Note, c.Model,
		u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.ReasoningTokens,
		u.CostUSD, u.CostReported, u.IsBYOK, u.UpstreamCostUSD, c.GenerationID, now).Scan(&entry); err != nil {
		b.Fatal(err)
	}
	exec(`UPDATE holds SET state = 'settled', closed_at = $1, entry_id = $2, charged = $3 WHERE id = $4`, now, entry, c.Amount, hold)
	exec(`UPDATE users SET balance = balance - $1, held = held - $2 WHERE identity = $3`, c.Amount, amount, identity)
	exec("COMMIT")
}

// BenchmarkRawTxnPostgres is BenchmarkRawTxn on PostgreSQL: one
// transaction holding a conditional UPDATE and an INSERT on one pgx
// connection. A reserve plus a settle is two such transactions (with
// more statements).
func BenchmarkRawTxnPostgres(b *testing.B) {
	dsn := postgrestest.DSN(b)
	conn := rawConn(b, dsn)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE acct (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)`,
		`CREATE TABLE log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, acct BIGINT NOT NULL, amount BIGINT NOT NULL)`,
		fmt.Sprintf(`INSERT INTO acct (id, balance) VALUES (1, %d)`, bot.MaxAmount),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE acct SET balance = balance - $1 WHERE id = $2 AND balance >= $1`, int64(1), int64(1)); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log (acct, amount) VALUES ($1, $2)`, int64(1), int64(-1)); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
}
