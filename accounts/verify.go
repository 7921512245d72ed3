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

// Verify checks the ledger's invariants on one consistent snapshot (the
// pools' and budgets' too: see verifyPools and verifySpend): every
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
	if err == nil {
		err = s.verifyPools(ctx, tx, &rep, problem)
	}
	if err == nil {
		err = s.verifySpend(ctx, tx, problem)
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

// verifyPools checks the communities' pools: each pool's cached balance,
// funding and draws equal its rows, no pool is negative, every row's sign
// matches its kind, and every topup or allowance row is paid out as
// exactly one grant row of the same amount to the member it names (and
// every grant keyed as a pool's is one of those).
func (s *Store) verifyPools(ctx context.Context, tx queryer, rep *bot.VerifyReport, problem func(string, ...any)) error {
	type sums struct {
		balance, funded, drawn int64
		pool                   bool
		rows, fund, draw       int64
	}
	all := map[string]*sums{}
	get := func(c string) *sums {
		if all[c] == nil {
			all[c] = &sums{}
		}
		return all[c]
	}
	err := eachRow(ctx, tx, `SELECT community, balance, funded, drawn FROM pools`, func(r *sql.Rows) error {
		var c string
		var b, f, d int64
		if err := r.Scan(&c, &b, &f, &d); err != nil {
			return err
		}
		x := get(c)
		x.pool, x.balance, x.funded, x.drawn = true, b, f, d
		rep.Pools++
		return nil
	})
	if err == nil {
		err = eachRow(ctx, tx, `SELECT community, COUNT(*), CAST(SUM(amount) AS BIGINT),
				CAST(SUM(CASE kind WHEN 'fund' THEN amount ELSE 0 END) AS BIGINT),
				CAST(SUM(CASE WHEN kind IN ('topup', 'allowance') THEN -amount ELSE 0 END) AS BIGINT)
			FROM pool_entries GROUP BY community`, func(r *sql.Rows) error {
			var c string
			var n int
			var sum, fund, draw int64
			if err := r.Scan(&c, &n, &sum, &fund, &draw); err != nil {
				return err
			}
			x := get(c)
			x.rows, x.fund, x.draw = sum, fund, draw
			rep.PoolEntries += n
			return nil
		})
	}
	if err != nil {
		return err
	}
	names := make([]string, 0, len(all))
	for c := range all {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		x := all[c]
		switch {
		case !x.pool:
			problem("pool %s: has rows but no pool", c)
			continue
		case x.balance != x.rows:
			problem("pool %s: balance is %d but its rows add up to %d", c, x.balance, x.rows)
		}
		if x.funded != x.fund {
			problem("pool %s: funded total is %d but its fund rows add up to %d", c, x.funded, x.fund)
		}
		if x.drawn != x.draw {
			problem("pool %s: drawn total is %d but its topup and allowance rows add up to %d", c, x.drawn, x.draw)
		}
		if x.balance < 0 {
			problem("pool %s: balance is negative (%d)", c, x.balance)
		}
	}
	err = eachRow(ctx, tx, `SELECT id, community, kind, amount FROM pool_entries
		WHERE (kind = 'fund' AND amount <= 0) OR (kind <> 'fund' AND amount >= 0)`, func(r *sql.Rows) error {
		var id, amount int64
		var c, kind string
		if err := r.Scan(&id, &c, &kind, &amount); err != nil {
			return err
		}
		problem("pool %s: row %d, a %s of %d, has the wrong sign", c, id, kind, amount)
		return nil
	})
	if err == nil {
		err = eachRow(ctx, tx, `SELECT p.id, p.community, p.kind FROM pool_entries p LEFT JOIN entries e ON e.id = p.entry_id
			WHERE p.kind IN ('topup', 'allowance') AND (e.id IS NULL OR e.kind <> 'grant' OR e.identity <> p.member
				OR e.amount <> -p.amount OR e.key <> ('pool:' || p.key))
			   OR p.kind IN ('fund', 'withdraw') AND (p.entry_id IS NOT NULL OR p.member <> '')`, func(r *sql.Rows) error {
			var id int64
			var c, kind string
			if err := r.Scan(&id, &c, &kind); err != nil {
				return err
			}
			problem("pool %s: row %d (%s) is not paid out as one grant of its amount to its member", c, id, kind)
			return nil
		})
	}
	if err == nil {
		err = eachRow(ctx, tx, `SELECT e.id, e.identity FROM entries e LEFT JOIN pool_entries p ON p.entry_id = e.id
			WHERE e.key LIKE 'pool:%' AND p.id IS NULL`, func(r *sql.Rows) error {
			var id int64
			var identity string
			if err := r.Scan(&id, &identity); err != nil {
				return err
			}
			problem("entry %d of %s: a grant keyed as a pool's that no pool row paid for", id, identity)
			return nil
		})
	}
	return err
}

// verifySpend checks the budgets' day counters: what a community and each
// member hold and have spent on a day equals the open holds and the
// charges of the holds counted against that day.
func (s *Store) verifySpend(ctx context.Context, tx queryer, problem func(string, ...any)) error {
	type key struct{ community, identity, period string }
	type sums struct {
		spent, held       int64
		row               bool
		charged, holdOpen int64
	}
	all := map[key]*sums{}
	get := func(k key) *sums {
		if all[k] == nil {
			all[k] = &sums{}
		}
		return all[k]
	}
	err := eachRow(ctx, tx, `SELECT community, identity, period, spent, held FROM spend`, func(r *sql.Rows) error {
		var k key
		var sp, h int64
		if err := r.Scan(&k.community, &k.identity, &k.period, &sp, &h); err != nil {
			return err
		}
		x := get(k)
		x.row, x.spent, x.held = true, sp, h
		return nil
	})
	if err == nil {
		err = eachRow(ctx, tx, `SELECT community, identity, period,
				CAST(SUM(charged) AS BIGINT), CAST(SUM(CASE state WHEN 'open' THEN amount ELSE 0 END) AS BIGINT)
			FROM holds WHERE budget = 1 GROUP BY community, identity, period`, func(r *sql.Rows) error {
			var k key
			var charged, open int64
			if err := r.Scan(&k.community, &k.identity, &k.period, &charged, &open); err != nil {
				return err
			}
			for _, kk := range []key{k, {k.community, "", k.period}} {
				x := get(kk)
				x.charged += charged
				x.holdOpen += open
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	keys := make([]key, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.community+" "+a.period+" "+a.identity < b.community+" "+b.period+" "+b.identity
	})
	for _, k := range keys {
		x := all[k]
		who := k.identity
		if who == "" {
			who = "everyone"
		}
		if !x.row {
			problem("budget of %s on %s (%s): holds were counted but there is no spend row", k.community, k.period, who)
			continue
		}
		if x.spent != x.charged {
			problem("budget of %s on %s (%s): spent is %d but its holds charged %d", k.community, k.period, who, x.spent, x.charged)
		}
		if x.held != x.holdOpen {
			problem("budget of %s on %s (%s): held is %d but its open holds add up to %d", k.community, k.period, who, x.held, x.holdOpen)
		}
	}
	return nil
}
