package accounts

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/orchat/orchat/bot"
)

// maxProblems bounds a report so a badly broken file yields a readable one.
const maxProblems = 100

// Verify checks the ledger's invariants on one consistent snapshot: every
// user's cached balance equals the sum of their rows, the cached held and
// top-up totals equal their holds and top-up rows, no balance is negative
// or below what it holds, no hold is negative or charged more than it
// held, every charge is accounted for by a hold, every row's sign matches
// its kind, and no row or hold belongs to a missing user. VerifyReport.Holds
// counts the open holds.
func (s *Store) Verify(ctx context.Context) (bot.VerifyReport, error) {
	const op = "verify"
	var rep bot.VerifyReport
	sqlTx, err := s.r.BeginTx(ctx, s.d.verifyTx)
	if err != nil {
		return rep, s.fail(op, err)
	}
	defer sqlTx.Rollback()
	tx := bound{sqlTx, s.d}

	problem := func(format string, args ...any) {
		rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
	}

	type sums struct {
		balance, held, toppedUp int64 // from the users row
		user                    bool
		entries, topups         int64 // from entries
		charges                 int64 // charge rows, as a positive number
		open, charged           int64 // from holds
	}
	all := map[string]*sums{}
	get := func(id string) *sums {
		if all[id] == nil {
			all[id] = &sums{}
		}
		return all[id]
	}

	err = eachRow(ctx, tx, `SELECT identity, balance, held, topped_up FROM users`, func(r *sql.Rows) error {
		var id string
		var b, h, t int64
		if err := r.Scan(&id, &b, &h, &t); err != nil {
			return err
		}
		x := get(id)
		x.user, x.balance, x.held, x.toppedUp = true, b, h, t
		rep.Users++
		return nil
	})
	if err == nil {
		err = eachRow(ctx, tx, `SELECT identity, COUNT(*), CAST(SUM(amount) AS BIGINT),
				CAST(SUM(CASE kind WHEN 'topup' THEN amount ELSE 0 END) AS BIGINT),
				CAST(SUM(CASE kind WHEN 'charge' THEN -amount ELSE 0 END) AS BIGINT)
			FROM entries GROUP BY identity`, func(r *sql.Rows) error {
			var id string
			var n int
			var sum, topups, charges int64
			if err := r.Scan(&id, &n, &sum, &topups, &charges); err != nil {
				return err
			}
			x := get(id)
			x.entries, x.topups, x.charges = sum, topups, charges
			rep.Entries += n
			return nil
		})
	}
	if err == nil {
		err = eachRow(ctx, tx, `SELECT identity, CAST(SUM(CASE state WHEN 'open' THEN 1 ELSE 0 END) AS BIGINT),
				CAST(SUM(CASE state WHEN 'open' THEN amount ELSE 0 END) AS BIGINT), CAST(SUM(charged) AS BIGINT)
			FROM holds GROUP BY identity`, func(r *sql.Rows) error {
			var id string
			var n int
			var open, charged int64
			if err := r.Scan(&id, &n, &open, &charged); err != nil {
				return err
			}
			x := get(id)
			x.open, x.charged = open, charged
			rep.Holds += n
			return nil
		})
	}
	if err != nil {
		return rep, s.fail(op, err)
	}

	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		x := all[id]
		if !x.user {
			problem("%s: has ledger rows or holds but no user", id)
			continue
		}
		if x.balance != x.entries {
			problem("%s: balance is %d but its ledger rows add up to %d", id, x.balance, x.entries)
		}
		if x.held != x.open {
			problem("%s: held is %d but its open holds add up to %d", id, x.held, x.open)
		}
		if x.toppedUp != x.topups {
			problem("%s: topped-up total is %d but its top-up rows add up to %d", id, x.toppedUp, x.topups)
		}
		if x.balance < 0 {
			problem("%s: balance is negative (%d)", id, x.balance)
		}
		if x.held < 0 {
			problem("%s: held is negative (%d)", id, x.held)
		}
		if x.held > x.balance {
			problem("%s: holds %d tokens but its balance is only %d", id, x.held, x.balance)
		}
		if x.charged != x.charges {
			problem("%s: holds charged %d but its charge rows add up to %d", id, x.charged, x.charges)
		}
	}

	err = eachRow(ctx, tx, `SELECT id, identity, amount, state, charged FROM holds
		WHERE amount < 0 OR charged < 0 OR charged > amount OR (state = 'open' AND (charged <> 0 OR entry_id IS NOT NULL))`,
		func(r *sql.Rows) error {
			var id, amount, charged int64
			var identity, state string
			if err := r.Scan(&id, &identity, &amount, &state, &charged); err != nil {
				return err
			}
			problem("hold %d of %s: %s, amount %d, charged %d", id, identity, state, amount, charged)
			return nil
		})
	if err == nil {
		err = eachRow(ctx, tx, `SELECT h.id, h.identity FROM holds h LEFT JOIN entries e ON e.id = h.entry_id
			WHERE h.entry_id IS NOT NULL AND (e.id IS NULL OR e.kind <> 'charge' OR e.identity <> h.identity)`, func(r *sql.Rows) error {
			var id int64
			var identity string
			if err := r.Scan(&id, &identity); err != nil {
				return err
			}
			problem("hold %d of %s: settled by a charge row that does not exist or is another user's", id, identity)
			return nil
		})
	}
	if err == nil {
		err = eachRow(ctx, tx, `SELECT id, identity, kind, amount FROM entries
			WHERE (kind IN ('signup', 'topup', 'grant', 'refund') AND amount < 0)
			   OR (kind IN ('deduct', 'charge') AND amount > 0)`, func(r *sql.Rows) error {
			var id, amount int64
			var identity, kind string
			if err := r.Scan(&id, &identity, &kind, &amount); err != nil {
				return err
			}
			problem("entry %d of %s: a %s of %d has the wrong sign", id, identity, kind, amount)
			return nil
		})
	}
	if err == nil {
		err = eachRow(ctx, tx, `SELECT DISTINCT f.identity FROM free_usage f LEFT JOIN users u ON u.identity = f.identity
			WHERE u.identity IS NULL`, func(r *sql.Rows) error {
			var identity string
			if err := r.Scan(&identity); err != nil {
				return err
			}
			problem("%s: has free-tier counters but no user", identity)
			return nil
		})
	}
	if err != nil {
		return rep, s.fail(op, err)
	}
	if n := len(rep.Problems); n > maxProblems {
		rep.Problems = append(rep.Problems[:maxProblems], fmt.Sprintf("… and %d more problems", n-maxProblems))
	}
	return rep, nil
}

func eachRow(ctx context.Context, q queryer, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
