package accounts

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"strings"

	"github.com/orchat/orchat/bot"
)

// copyTable is one table a ledger copy carries, with its columns and
// their kinds: i int64, b bool, f float64, s text, I nullable int64, S
// nullable text. Kinds matter because SQLite keeps booleans as integers
// and PostgreSQL as booleans.
type copyTable struct {
	name    string
	columns []string
	kinds   string
	order   string
}

// copyTables lists, parents first, every table of schema 7 that holds the
// ledger's state. Left out: migrations (each side has its own), heartbeat,
// and SQLite's leases (a lease belongs to a running process).
var copyTables = []copyTable{
	{"users", []string{"identity", "created_at", "blocked", "default_model", "balance", "held", "topped_up"}, "sibsiii", "identity"},
	{"entries", []string{"id", "identity", "kind", "amount", "key", "actor", "note", "model",
		"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
		"cost_usd", "cost_reported", "byok", "upstream_cost_usd", "generation_id", "created_at"}, "isssssssiiiifbbfsi", "id"},
	{"holds", []string{"id", "identity", "amount", "key", "state", "created_at", "expires_at", "closed_at", "entry_id", "charged",
		"owner_instance", "owner_boot", "community", "period", "budget"}, "isiSsiiIIissssi", "id"},
	{"sweep", []string{"id", "low_hold_id"}, "ii", "id"},
	{"free_usage", []string{"identity", "period", "used"}, "ssi", "identity, period"},
	{"compares", []string{"id", "community", "requester", "models", "failed", "created_at", "blind", "tier"}, "sssssibs", "id"},
	{"votes", []string{"compare_id", "voter", "choice", "created_at"}, "sssi", "compare_id, voter"},
	{"answer_votes", []string{"answer", "voter", "community", "model", "up", "created_at"}, "ssssbi", "answer, voter"},
	{"free_resets", []string{"period", "ran_at"}, "si", "period"},
	{"seen_events", []string{"id", "seen_at"}, "si", "id"},
	{"rate_buckets", []string{"key", "tat"}, "si", "key"},
	{"settings", []string{"community", "channel", "key", "value", "updated_by", "updated_at"}, "sssssi", "community, channel, key"},
	{"setting_changes", []string{"id", "community", "channel", "key", "old_value", "new_value", "actor", "created_at"}, "issssssi", "id"},
	{"pools", []string{"community", "balance", "funded", "drawn", "created_at"}, "siiii", "community"},
	{"pool_entries", []string{"id", "community", "kind", "amount", "key", "actor", "member", "entry_id", "note", "created_at"}, "ississsIsi", "id"},
	{"members", []string{"community", "identity", "first_seen", "refilled"}, "ssis", "community, identity"},
	{"spend", []string{"community", "identity", "period", "spent", "held"}, "sssii", "community, identity, period"},
	{"alerts", []string{"key", "community", "kind", "text", "created_at", "sent_at"}, "ssssiI", "key"},
}

func init() {
	for _, t := range copyTables {
		if len(t.columns) != len(t.kinds) || strings.Trim(t.kinds, "ibfsIS") != "" {
			panic("accounts: copy table " + t.name + ": a kind for each column, of ibfsIS")
		}
	}
}

// TableCount is how many rows of one table a copy carried.
type TableCount struct {
	Table string
	Rows  int
}

// CopyReport says what Copy carried and what ledger verify said of both
// sides.
type CopyReport struct {
	Tables []TableCount
	// From and To are ledger verify on the source before the copy and on
	// the copy after it: equal, and without problems, or Copy fails.
	From, To bot.VerifyReport
}

// Copy copies the whole ledger of from into to, which must be empty (a
// new database, migrated by Open): users, every ledger row and hold with
// their ids, free-tier counters and resets, compares and votes, seen
// events and rate buckets, as one consistent snapshot of from, written in
// one transaction. It proves the copy: every table read back from to
// hashes as it did from from, and ledger verify reports the same counts
// and no problem on both sides. Either engine may be on either side
// (`orchat ledger copy` moves a community from SQLite to PostgreSQL).
// EINVALID when to is not empty or from does not verify; nothing is
// written to to unless all of it is.
func Copy(ctx context.Context, from, to *Store) (CopyReport, error) {
	const op = "copy"
	var rep CopyReport
	if to.opts.ReadOnly {
		return rep, to.fail(op, bot.Errorf(bot.EINVALID, "The target %s was opened read-only.", to.path))
	}
	if err := to.mustBeEmpty(ctx); err != nil {
		return rep, to.fail(op, err)
	}
	var err error
	if rep.From, err = from.Verify(ctx); err != nil {
		return rep, err
	}
	if !rep.From.OK() {
		return rep, from.fail(op, bot.Errorf(bot.EINVALID,
			"The ledger %s does not verify (%d problems, see orchat ledger verify); a copy would carry them over, so nothing was copied.", from.path, len(rep.From.Problems)))
	}

	snap, err := from.r.BeginTx(ctx, from.d.verifyTx)
	if err != nil {
		return rep, from.fail(op, err)
	}
	defer snap.Rollback()
	src := bound{snap, from.d}
	digests := map[string][]byte{}
	err = to.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		rep.Tables = rep.Tables[:0]
		if err := to.mustBeEmpty(ctx); err != nil { // another copy may have run since
			return err
		}
		for _, t := range copyTables {
			n, sum, err := copyRows(ctx, src, tx, t)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.name, err)
			}
			rep.Tables = append(rep.Tables, TableCount{t.name, n})
			digests[t.name] = sum
		}
		if to.d.engine == Postgres {
			// Ids go on from the copied ones.
			for _, table := range []string{"entries", "holds", "setting_changes", "pool_entries"} {
				if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'),
					COALESCE((SELECT MAX(id) FROM `+table+`), 0) + 1, false)`); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}

	for _, t := range copyTables {
		_, sum, err := digestRows(ctx, to.read, t, nil)
		if err != nil {
			return rep, to.fail(op, err)
		}
		if string(sum) != string(digests[t.name]) {
			return rep, to.fail(op, bot.Errorf(bot.EINTERNAL, "The copy of table %s in %s differs from the original.", t.name, to.path))
		}
	}
	if rep.To, err = to.Verify(ctx); err != nil {
		return rep, err
	}
	if !rep.To.OK() || rep.To.Users != rep.From.Users || rep.To.Entries != rep.From.Entries || rep.To.Holds != rep.From.Holds {
		return rep, to.fail(op, bot.Errorf(bot.EINTERNAL,
			"ledger verify differs after the copy: %d users, %d entries, %d open holds in %s; %d, %d, %d in the copy (%d problems).",
			rep.From.Users, rep.From.Entries, rep.From.Holds, from.path, rep.To.Users, rep.To.Entries, rep.To.Holds, len(rep.To.Problems)))
	}
	to.log.Info("ledger copied", slog.String("from", from.path), slog.String("to", to.path),
		slog.Int("users", rep.To.Users), slog.Int("entries", rep.To.Entries), slog.Int("open_holds", rep.To.Holds))
	return rep, nil
}

// mustBeEmpty refuses a database that holds any ledger state.
func (s *Store) mustBeEmpty(ctx context.Context) error {
	var found []string
	for _, t := range copyTables {
		if t.name == "sweep" {
			continue // a mark, not state
		}
		var n int64
		if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%d %s", n, strings.ReplaceAll(t.name, "_", " ")))
		}
	}
	if len(found) > 0 {
		return bot.Errorf(bot.EINVALID, "The target %s is not empty (%s): a copy only fills a new database, so nothing was copied; point it at an empty database or schema.",
			s.path, strings.Join(found, ", "))
	}
	return nil
}

// copyBatch bounds the rows of one INSERT, well under both engines'
// limits on placeholders.
const copyBatch = 400

// copyRows copies table t from src to dst and returns the rows copied and
// their digest.
func copyRows(ctx context.Context, src, dst dbtx, t copyTable) (int, []byte, error) {
	var batch []any
	rows := 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.columns)), ", ") + ")"
		q := `INSERT INTO ` + t.name + ` (` + strings.Join(t.columns, ", ") + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
		if t.name == "sweep" {
			q += ` ON CONFLICT (id) DO UPDATE SET low_hold_id = excluded.low_hold_id`
		}
		_, err := dst.ExecContext(ctx, q, batch...)
		batch, rows = batch[:0], 0
		return err
	}
	n, sum, err := digestRows(ctx, src, t, func(values []any) error {
		batch = append(batch, values...)
		rows++
		if rows == copyBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, sum, err
}

// digestRows reads table t in its order, hashing each row as the kinds
// say (so SQLite's 1 and PostgreSQL's true hash alike), and hands each to
// fn when fn is not nil.
func digestRows(ctx context.Context, q queryer, t copyTable, fn func([]any) error) (int, []byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(t.columns, ", ")+` FROM `+t.name+` ORDER BY `+t.order)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	h := sha256.New()
	n := 0
	for rows.Next() {
		dest := make([]any, len(t.kinds))
		for i, k := range t.kinds {
			switch k {
			case 'i':
				dest[i] = new(int64)
			case 'b':
				dest[i] = new(bool)
			case 'f':
				dest[i] = new(float64)
			case 's':
				dest[i] = new(string)
			case 'I':
				dest[i] = new(sql.NullInt64)
			case 'S':
				dest[i] = new(sql.NullString)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return 0, nil, err
		}
		values := make([]any, len(dest))
		for i, d := range dest {
			values[i] = hashValue(h, d)
		}
		n++
		if fn != nil {
			if err := fn(values); err != nil {
				return 0, nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	return n, h.Sum(nil), nil
}

// hashValue writes one scanned value into h, tagged by its kind, and
// returns it as an argument for an INSERT.
func hashValue(h hash.Hash, d any) any {
	var buf [9]byte
	put := func(tag byte, u uint64) {
		buf[0] = tag
		binary.BigEndian.PutUint64(buf[1:], u)
		h.Write(buf[:])
	}
	str := func(tag byte, s string) {
		put(tag, uint64(len(s)))
		h.Write([]byte(s))
	}
	switch v := d.(type) {
	case *int64:
		put('i', uint64(*v))
		return *v
	case *bool:
		b := uint64(0)
		if *v {
			b = 1
		}
		put('b', b)
		return *v
	case *float64:
		put('f', math.Float64bits(*v))
		return *v
	case *string:
		str('s', *v)
		return *v
	case *sql.NullInt64:
		if !v.Valid {
			put('n', 0)
			return nil
		}
		put('i', uint64(v.Int64))
		return v.Int64
	case *sql.NullString:
		if !v.Valid {
			put('n', 0)
			return nil
		}
		str('s', v.String)
		return v.String
	}
	panic(fmt.Sprintf("accounts: copy: unexpected %T", d))
}
