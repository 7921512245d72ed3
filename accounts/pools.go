package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// poolKeyPrefix starts the key of a member's grant row that a pool row
// paid for: "pool:" + the pool row's key. Admins' keys may not use it.
const poolKeyPrefix = "pool:"

func (s *Store) checkPoolArgs(community string, amount int64, key string, actor bot.Identity, note string) error {
	if err := bot.ValidateCommunity(community); err != nil {
		return err
	}
	switch {
	case amount < 1 || amount > bot.MaxAmount:
		return bot.Errorf(bot.EINVALID, "Amounts are whole tokens from 1 to %s; %s is not.", bot.FormatTokens(bot.MaxAmount), bot.FormatTokens(amount))
	case key == "":
		return bot.Errorf(bot.EINVALID, "A pool change needs a key (such as the interaction id), so a retried command cannot apply it twice.")
	case len(key) > maxKeyLen-len(poolKeyPrefix):
		return bot.Errorf(bot.EINVALID, "A pool key is at most %d bytes long.", maxKeyLen-len(poolKeyPrefix))
	case utf8.RuneCountInString(note) > maxNoteLen:
		return bot.Errorf(bot.EINVALID, "A note is at most %d characters long.", maxNoteLen)
	}
	if actor != bot.ActorSystem {
		return actor.Validate()
	}
	return nil
}

// FundPool adds tokens to a community's pool on a host admin's behalf,
// creating the pool on its first funding. EINVALID for a malformed
// community, an amount outside 1..MaxAmount, an empty or overlong key;
// ECONFLICT when the key was used for another change. A repeated key
// changes nothing and returns applied=false with the first row.
func (s *Store) FundPool(ctx context.Context, a bot.PoolAdjustment) (bot.PoolEntry, bool, error) {
	return s.poolChange(ctx, "fund_pool", bot.PoolFund, a.Community, a.Amount, a.Key, a.Actor, a.Note, "")
}

// WithdrawPool takes tokens back out of a pool on a host admin's behalf,
// never below zero: EINSUFFICIENT beyond its balance, ENOTFOUND for a pool
// never funded; otherwise as FundPool.
func (s *Store) WithdrawPool(ctx context.Context, a bot.PoolAdjustment) (bot.PoolEntry, bool, error) {
	return s.poolChange(ctx, "withdraw_pool", bot.PoolWithdraw, a.Community, a.Amount, a.Key, a.Actor, a.Note, "")
}

// GrantFromPool gives a member tokens from the community's pool, never
// beyond it: one topup row on the pool, one grant row on the member, in
// one transaction. The member is created (with the signup bonus) when new.
// EINSUFFICIENT when the pool holds less than the amount (ENOTFOUND when
// it was never funded); otherwise as FundPool.
func (s *Store) GrantFromPool(ctx context.Context, g bot.PoolGrant) (bot.PoolEntry, bool, error) {
	if err := g.Member.Validate(); err != nil {
		return bot.PoolEntry{}, false, s.fail("grant_from_pool", err)
	}
	return s.poolChange(ctx, "grant_from_pool", bot.PoolTopUp, g.Community, g.Amount, g.Key, g.Actor, g.Note, g.Member)
}

func (s *Store) poolChange(ctx context.Context, op, kind, community string, amount int64, key string, actor bot.Identity, note string, member bot.Identity) (bot.PoolEntry, bool, error) {
	if actor == "" {
		actor = bot.ActorSystem
	}
	if err := s.checkPoolArgs(community, amount, key, actor, note); err != nil {
		return bot.PoolEntry{}, false, s.fail(op, err)
	}
	var e bot.PoolEntry
	applied := false
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		var err error
		e, applied, err = s.poolChangeTx(ctx, tx, kind, community, amount, key, actor, note, member, "")
		return err
	})
	if err != nil {
		return bot.PoolEntry{}, false, err
	}
	if applied {
		s.log.Info("pool changed", slog.String("community", community), slog.String("kind", kind), slog.Int64("amount", e.Amount),
			slog.String("member", string(member)), slog.String("actor", string(actor)), slog.String("key", key))
	}
	return e, applied, nil
}

// poolChangeTx writes one pool row (and, for a topup or allowance, the
// member's grant row) inside tx. applied is false for a repeated key.
// refill, for an allowance, is the period to mark the member refilled in.
func (s *Store) poolChangeTx(ctx context.Context, tx dbtx, kind, community string, amount int64, key string, actor bot.Identity, note string, member bot.Identity, refill string) (bot.PoolEntry, bool, error) {
	now := fromNanos(nanos(s.opts.Now()))
	signed := amount
	if kind != bot.PoolFund {
		signed = -amount
	}
	e := bot.PoolEntry{Community: community, Kind: kind, Amount: signed, Key: key, Actor: actor, Member: member, Note: note, CreatedAt: now}
	if prev, err := poolEntryByKey(ctx, tx, key); err == nil {
		if prev.Community != community || prev.Kind != kind || prev.Amount != signed || prev.Member != member {
			return bot.PoolEntry{}, false, bot.Errorf(bot.ECONFLICT, "The key %q was already used for another pool change; use a new key.", key)
		}
		return prev, false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return bot.PoolEntry{}, false, err
	}
	if kind == bot.PoolFund {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pools (community, created_at) VALUES (?, ?) ON CONFLICT (community) DO NOTHING`,
			community, nanos(now)); err != nil {
			return bot.PoolEntry{}, false, err
		}
	} else {
		// The conditional update is the whole check: the pool pays only
		// what it holds, in the same statement.
		res, err := tx.ExecContext(ctx, `UPDATE pools SET balance = balance - ?1 WHERE community = ?2 AND balance >= ?1`, amount, community)
		if err != nil {
			return bot.PoolEntry{}, false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return bot.PoolEntry{}, false, err
		} else if n == 0 {
			var balance int64
			err := tx.QueryRowContext(ctx, `SELECT balance FROM pools WHERE community = ?`, community).Scan(&balance)
			if errors.Is(err, sql.ErrNoRows) {
				return bot.PoolEntry{}, false, bot.Errorf(bot.ENOTFOUND, "%s has no pool yet: a host admin funds it with /topup community AMOUNT (or orchat topup %s%s AMOUNT).", community, bot.PoolPrefix, community)
			} else if err != nil {
				return bot.PoolEntry{}, false, err
			}
			return bot.PoolEntry{}, false, bot.Errorf(bot.EINSUFFICIENT, "The community's pool holds %s tokens, less than the %s asked for; a host admin can add more with /topup community AMOUNT.",
				bot.FormatTokens(balance), bot.FormatTokens(amount))
		}
	}
	if member != "" {
		if _, err := s.ensureUserTx(ctx, tx, member, now); err != nil {
			return bot.PoolEntry{}, false, err
		}
		gnote := "from the pool of " + community
		if kind == bot.PoolAllowance {
			gnote = "allowance from the pool of " + community
		}
		if note != "" {
			gnote += ": " + note
		}
		var entryID int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO entries (identity, kind, amount, key, actor, note, created_at)
			VALUES (?, 'grant', ?, ?, ?, ?, ?) RETURNING id`,
			string(member), amount, poolKeyPrefix+key, string(actor), bot.Clip(gnote, maxNoteLen), nanos(now)).Scan(&entryID); err != nil {
			return bot.PoolEntry{}, false, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET balance = balance + ? WHERE identity = ?`, amount, string(member)); err != nil {
			return bot.PoolEntry{}, false, err
		}
		e.EntryID = entryID
	}
	funded, withdrawn, drawn := int64(0), int64(0), int64(0)
	switch kind {
	case bot.PoolFund:
		funded = amount
	case bot.PoolWithdraw:
		withdrawn = amount
	default:
		drawn = amount
	}
	if kind == bot.PoolFund {
		if _, err := tx.ExecContext(ctx, `UPDATE pools SET balance = balance + ?, funded = funded + ? WHERE community = ?`, amount, funded, community); err != nil {
			return bot.PoolEntry{}, false, err
		}
	} else if drawn > 0 || withdrawn > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE pools SET drawn = drawn + ? WHERE community = ?`, drawn, community); err != nil {
			return bot.PoolEntry{}, false, err
		}
	}
	var entry sql.NullInt64
	if e.EntryID != 0 {
		entry = sql.NullInt64{Int64: e.EntryID, Valid: true}
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO pool_entries (community, kind, amount, key, actor, member, entry_id, note, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		community, kind, signed, key, string(actor), string(member), entry, note, nanos(now)).Scan(&e.ID); err != nil {
		return bot.PoolEntry{}, false, err
	}
	if refill != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE members SET refilled = ? WHERE community = ? AND identity = ?`, refill, community, string(member)); err != nil {
			return bot.PoolEntry{}, false, err
		}
	}
	return e, true, nil
}

const poolEntryColumns = `id, community, kind, amount, key, actor, member, entry_id, note, created_at`

func scanPoolEntry(row scanner) (bot.PoolEntry, error) {
	var e bot.PoolEntry
	var actor, member string
	var entry sql.NullInt64
	var at int64
	err := row.Scan(&e.ID, &e.Community, &e.Kind, &e.Amount, &e.Key, &actor, &member, &entry, &e.Note, &at)
	e.Actor, e.Member, e.EntryID, e.CreatedAt = bot.Identity(actor), bot.Identity(member), entry.Int64, fromNanos(at)
	return e, err
}

func poolEntryByKey(ctx context.Context, q queryer, key string) (bot.PoolEntry, error) {
	return scanPoolEntry(q.QueryRowContext(ctx, `SELECT `+poolEntryColumns+` FROM pool_entries WHERE key = ?`, key))
}

// Pool returns a community's pool; a pool never funded is zero.
// EINVALID for a malformed community.
func (s *Store) Pool(ctx context.Context, community string) (bot.Pool, error) {
	const op = "pool"
	if err := bot.ValidateCommunity(community); err != nil {
		return bot.Pool{}, s.fail(op, err)
	}
	p := bot.Pool{Community: community}
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT balance, funded, drawn, created_at FROM pools WHERE community = ?`, community).
		Scan(&p.Balance, &p.Funded, &p.Drawn, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	} else if err != nil {
		return bot.Pool{}, s.fail(op, err)
	}
	p.CreatedAt = fromNanos(created)
	return p, nil
}

// PoolHistory returns a pool's last limit rows, newest first (limit ≤ 0:
// 20; at most 1,000).
func (s *Store) PoolHistory(ctx context.Context, community string, limit int) ([]bot.PoolEntry, error) {
	const op = "pool_history"
	if err := bot.ValidateCommunity(community); err != nil {
		return nil, s.fail(op, err)
	}
	if limit <= 0 {
		limit = defaultHistory
	}
	var out []bot.PoolEntry
	err := eachRow(ctx, s.read, `SELECT `+poolEntryColumns+` FROM pool_entries WHERE community = ? ORDER BY id DESC LIMIT ?`,
		func(r *sql.Rows) error {
			e, err := scanPoolEntry(r)
			out = append(out, e)
			return err
		}, community, min(limit, maxHistory))
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// RefillAllowances refills, from its pool, every member of every
// community with an allowance ("N every PERIOD") up to N, once per period
// (the period now falls in, in the Store's time zone): one allowance row
// on the pool and one grant row on the member, keyed by community, member
// and period, so a second run in the same period, in this process or
// another, gives nothing. A pool gives only what it holds; members it
// cannot refill in full are counted Short and told of nothing, and the
// community's admins get an alert. A member at or above N is marked
// refilled without a row.
func (s *Store) RefillAllowances(ctx context.Context, now time.Time) (bot.AllowanceReport, error) {
	const op = "refill_allowances"
	var rep bot.AllowanceReport
	type community struct {
		name string
		a    bot.Allowance
	}
	var list []community
	err := eachRow(ctx, s.read, `SELECT community, value FROM settings WHERE channel = '' AND key = ? ORDER BY community`, func(r *sql.Rows) error {
		var c community
		var v string
		if err := r.Scan(&c.name, &v); err != nil {
			return err
		}
		a, err := bot.ParseAllowance(v)
		if err != nil {
			s.log.Warn("unreadable allowance setting; skipped", slog.String("community", c.name), slog.String("value", v))
			return nil
		}
		c.a = a
		list = append(list, c)
		return nil
	}, bot.SettingAllowance)
	if err != nil {
		return rep, s.fail(op, err)
	}
	for _, c := range list {
		rep.Communities++
		period, _ := c.a.Period(now, s.opts.Location)
		var due []string
		err := eachRow(ctx, s.read, `SELECT identity FROM members WHERE community = ? AND refilled <> ? ORDER BY identity`, func(r *sql.Rows) error {
			var id string
			err := r.Scan(&id)
			due = append(due, id)
			return err
		}, c.name, period)
		if err != nil {
			return rep, s.fail(op, err)
		}
		short := 0
		for _, id := range due {
			granted, full, err := s.refillMember(ctx, c.name, bot.Identity(id), c.a, period)
			if err != nil {
				return rep, err
			}
			if granted > 0 {
				rep.Refilled++
				rep.Granted += granted
			}
			if !full {
				short++
			}
		}
		rep.Short += short
		s.poolBelowAlert(ctx, c.name, now)
		if short > 0 {
			p, err := s.Pool(ctx, c.name)
			if err == nil {
				_, err = s.QueueAlert(ctx, bot.Alert{Key: c.name + ":pool_empty:" + period, Community: c.name, Kind: bot.AlertPoolLow,
					Text: fmt.Sprintf("orchat: the pool of %s could not refill %d %s to the allowance of %s (the pool holds %s tokens). A host admin can add tokens with /topup community AMOUNT.",
						c.name, short, bot.Plural(short, "member", "members"), c.a, bot.FormatTokens(p.Balance))})
			}
			if err != nil {
				s.log.Warn("queue the empty-pool alert", slog.String("community", c.name), slog.Any("error", err))
			}
		}
	}
	if rep.Refilled > 0 || rep.Short > 0 {
		s.log.Info("allowances refilled", slog.Int("members", rep.Refilled), slog.Int64("tokens", rep.Granted), slog.Int("short", rep.Short))
	}
	return rep, nil
}

// refillMember refills one member for period in one transaction: granted
// is what the pool gave, full whether that brought them up to the
// allowance.
func (s *Store) refillMember(ctx context.Context, community string, id bot.Identity, a bot.Allowance, period string) (granted int64, full bool, err error) {
	const op = "refill_member"
	key := "allowance:" + community + ":" + string(id) + ":" + period
	err = s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		granted, full = 0, true
		var refilled string
		var balance, pool int64
		// Locks in the order every pool change takes them: the pool, then
		// the member.
		if err := tx.QueryRowContext(ctx, `SELECT balance FROM pools WHERE community = ?`+s.d.forUpdate, community).Scan(&pool); errors.Is(err, sql.ErrNoRows) {
			pool = 0
		} else if err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT m.refilled, u.balance FROM members m JOIN users u ON u.identity = m.identity
			WHERE m.community = ? AND m.identity = ?`+s.d.forUpdate, community, string(id)).Scan(&refilled, &balance)
		if errors.Is(err, sql.ErrNoRows) || err == nil && refilled == period {
			return errRollback // another run did it, or the member is gone
		} else if err != nil {
			return err
		}
		need := a.Amount - balance
		if need <= 0 {
			_, err := tx.ExecContext(ctx, `UPDATE members SET refilled = ? WHERE community = ? AND identity = ?`, period, community, string(id))
			return err
		}
		give := min(need, pool)
		full = give == need
		if give <= 0 {
			_, err := tx.ExecContext(ctx, `UPDATE members SET refilled = ? WHERE community = ? AND identity = ?`, period, community, string(id))
			return err
		}
		if _, _, err := s.poolChangeTx(ctx, tx, bot.PoolAllowance, community, give, key, bot.ActorSystem, "refill to "+a.String(), id, period); err != nil {
			return err
		}
		granted = give
		return nil
	})
	return granted, full, err
}

// isPoolKey reports whether an adjustment key is the ledger's own for
// pool grants and allowances.
func isPoolKey(key string) bool {
	return strings.HasPrefix(key, poolKeyPrefix) || strings.HasPrefix(key, "allowance:")
}

// poolBelowAlert queues, once a day, the alert a community asked for
// (alerts pool-below) when its pool is under the mark.
func (s *Store) poolBelowAlert(ctx context.Context, community string, now time.Time) {
	var mark int64
	var v string
	err := s.read.QueryRowContext(ctx, `SELECT value FROM settings WHERE community = ? AND channel = '' AND key = ?`, community, bot.SettingAlertsPoolBelow).Scan(&v)
	if err != nil {
		return
	}
	if _, err := fmt.Sscan(v, &mark); err != nil || mark <= 0 {
		return
	}
	p, err := s.Pool(ctx, community)
	if err != nil || p.Balance >= mark {
		return
	}
	day, _ := s.period(now)
	if _, err := s.QueueAlert(ctx, bot.Alert{Key: community + ":pool_below:" + day, Community: community, Kind: bot.AlertPoolLow,
		Text: fmt.Sprintf("orchat: the pool of %s is down to %s tokens (below your mark of %s). A host admin can add more with /topup community AMOUNT.",
			community, bot.FormatTokens(p.Balance), bot.FormatTokens(mark))}); err != nil {
		s.log.Warn("queue the pool alert", slog.String("community", community), slog.Any("error", err))
	}
}

// PoolGrants returns what a community's pool gave each member in all
// (community admins' top-ups and allowances), for reconciling a member's
// balance with its rows (orchat-loadtest does).
func (s *Store) PoolGrants(ctx context.Context, community string) (map[bot.Identity]int64, error) {
	const op = "pool_grants"
	out := map[bot.Identity]int64{}
	err := eachRow(ctx, s.read, `SELECT member, CAST(-SUM(amount) AS BIGINT) FROM pool_entries
		WHERE community = ? AND kind IN ('topup', 'allowance') GROUP BY member`, func(r *sql.Rows) error {
		var m string
		var n int64
		if err := r.Scan(&m, &n); err != nil {
			return err
		}
		out[bot.Identity(m)] = n
		return nil
	}, community)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}
