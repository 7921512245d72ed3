package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// Bounds on the metadata the ledger keeps, so a pasted essay is refused
// rather than stored.
const (
	maxKeyLen   = 200
	maxNoteLen  = 500
	maxModelLen = 200
)

// Reserved key prefixes: the ledger writes these keys itself, so an admin's
// adjustment key may not start with them.
const (
	signupKeyPrefix     = "signup:"
	chargeKeyPrefix     = "charge:"
	generationKeyPrefix = "generation:"
)

// Hold states.
const (
	holdOpen     = "open"
	holdSettled  = "settled"
	holdReleased = "released"
)

// queryer is what both the reader pool and a write transaction offer.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func unknownUser(id bot.Identity) error {
	return bot.Errorf(bot.ENOTFOUND, "%s has no account yet: accounts are created by the first message to the bot.", id)
}

func blockedUser(id bot.Identity) error {
	return bot.Errorf(bot.EUNAUTHORIZED, "The account %s is blocked; an admin can unblock it.", id)
}

// EnsureUser returns the user, creating it with the signup bonus on first
// contact; created is true only for the one call that created it, however
// many race. EINVALID for a malformed identity.
func (s *Store) EnsureUser(ctx context.Context, id bot.Identity) (bot.User, bool, error) {
	const op = "ensure_user"
	if err := id.Validate(); err != nil {
		return bot.User{}, false, s.fail(op, err)
	}
	// Almost every event comes from a known user: answer from a reader
	// without queueing for the writer.
	u, err := s.user(ctx, s.read, id)
	if err == nil {
		return u, false, nil
	} else if bot.ErrorCode(err) != bot.ENOTFOUND {
		return bot.User{}, false, s.fail(op, err)
	}
	var created bool
	err = s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		now := s.opts.Now()
		var err error
		if created, err = s.ensureUserTx(ctx, tx, id, now); err != nil {
			return err
		}
		if created {
			u = bot.User{Identity: id, CreatedAt: fromNanos(nanos(now))}
			return nil
		}
		u, err = s.user(ctx, tx, id)
		return err
	})
	if err != nil {
		return bot.User{}, false, err
	}
	return u, created, nil
}

// ensureUserTx creates the user with the signup bonus unless it exists.
// The users primary key makes creation happen once; the signup row's unique
// key would refuse a second bonus even if it did not.
func (s *Store) ensureUserTx(ctx context.Context, tx dbtx, id bot.Identity, now time.Time) (bool, error) {
	bonus := s.rules.Load().signupBonus
	res, err := tx.ExecContext(ctx, `INSERT INTO users (identity, created_at, balance) VALUES (?, ?, ?)
		ON CONFLICT (identity) DO NOTHING`, string(id), nanos(now), bonus)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if bonus > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO entries (identity, kind, amount, key, actor, note, created_at)
			VALUES (?, 'signup', ?, ?, ?, 'signup bonus', ?)`,
			string(id), bonus, signupKeyPrefix+string(id), string(bot.ActorSystem), nanos(now)); err != nil {
			return false, err
		}
	}
	s.log.Debug("user created", slog.String("identity", string(id)), slog.Int64("bonus", bonus))
	return true, nil
}

func (s *Store) user(ctx context.Context, q queryer, id bot.Identity) (bot.User, error) {
	var created int64
	var blocked bool
	err := q.QueryRowContext(ctx, `SELECT created_at, blocked FROM users WHERE identity = ?`, string(id)).Scan(&created, &blocked)
	if errors.Is(err, sql.ErrNoRows) {
		return bot.User{}, unknownUser(id)
	} else if err != nil {
		return bot.User{}, err
	}
	return bot.User{Identity: id, Blocked: blocked, CreatedAt: fromNanos(created)}, nil
}

// Balance returns the user's balance, holds, lifetime top-ups and today's
// free use (today by the Store's clock). EINVALID for a malformed identity,
// ENOTFOUND for an unknown one.
func (s *Store) Balance(ctx context.Context, id bot.Identity) (bot.Balance, error) {
	const op = "balance"
	if err := id.Validate(); err != nil {
		return bot.Balance{}, s.fail(op, err)
	}
	b := bot.Balance{Identity: id}
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT balance, held, topped_up, blocked, created_at FROM users WHERE identity = ?`,
		string(id)).Scan(&b.Balance, &b.Held, &b.ToppedUp, &b.Blocked, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Balance{}, s.fail(op, unknownUser(id))
	} else if err != nil {
		return bot.Balance{}, s.fail(op, err)
	}
	b.CreatedAt = fromNanos(created)
	b.Available = max(b.Balance-b.Held, 0)
	if b.Free, err = s.freeUse(ctx, s.read, id, b.ToppedUp > 0, s.opts.Now()); err != nil {
		return bot.Balance{}, s.fail(op, err)
	}
	return b, nil
}

// Reserve holds amount tokens (0 allowed, for free models) until the call
// is settled or the hold expires after HoldTTL. EINSUFFICIENT, with nothing
// written, when balance minus open holds is less than amount; ENOTFOUND for
// an unknown user; EUNAUTHORIZED for a blocked one; EINVALID for a negative
// amount or a malformed identity. A repeated key returns the first call's
// hold (ECONFLICT if that key belongs to another user). An empty key asks
// for no idempotency.
func (s *Store) Reserve(ctx context.Context, id bot.Identity, amount int64, key string) (bot.Hold, error) {
	return s.reserve(ctx, id, amount, key, nil)
}

// reserve is Reserve, and ReserveWithin when b is set.
func (s *Store) reserve(ctx context.Context, id bot.Identity, amount int64, key string, b *bot.Budget) (bot.Hold, error) {
	const op = "reserve"
	if err := id.Validate(); err != nil {
		return bot.Hold{}, s.fail(op, err)
	}
	if amount < 0 || amount > bot.MaxAmount {
		return bot.Hold{}, s.fail(op, bot.Errorf(bot.EINVALID, "A hold must be between 0 and %s tokens, not %s.", bot.FormatTokens(bot.MaxAmount), bot.FormatTokens(amount)))
	}
	if len(key) > maxKeyLen {
		return bot.Hold{}, s.fail(op, bot.Errorf(bot.EINVALID, "A hold key is at most %d bytes long.", maxKeyLen))
	}
	now := fromNanos(nanos(s.opts.Now()))
	h := bot.Hold{Identity: id, Amount: amount, Key: key, CreatedAt: now, ExpiresAt: now.Add(s.opts.HoldTTL)}
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		// The conditional update is the whole check: it holds the tokens
		// only if they are available, in the same statement.
		res, err := tx.ExecContext(ctx, `UPDATE users SET held = held + ?1
			WHERE identity = ?2 AND NOT blocked AND balance - held >= ?1`, amount, string(id))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			if prev, ok, err := s.holdByKey(ctx, tx, id, key); err != nil {
				return err
			} else if ok {
				h = prev
				return errRollback
			}
			return s.refuseReserve(ctx, tx, id, amount)
		}
		community, period, budget := "", "", 0
		if b != nil {
			var resets time.Time
			period, resets = s.period(h.CreatedAt)
			if err := s.countSpendTx(ctx, tx, b, id, period, resets, amount); err != nil {
				// A repeated key answers with its hold, budget or not.
				if prev, ok, perr := s.holdByKey(ctx, tx, id, key); perr == nil && ok {
					h = prev
					return errRollback
				}
				return err
			}
			community, budget = b.Community, 1
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO holds (identity, amount, key, created_at, expires_at, owner_instance, owner_boot, community, period, budget)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
			string(id), amount, sql.NullString{String: key, Valid: key != ""}, nanos(h.CreatedAt), nanos(h.ExpiresAt),
			s.opts.Instance, s.opts.Boot, community, period, budget).Scan(&h.ID)
		if errors.Is(err, sql.ErrNoRows) {
			// The key was used before: answer with that hold and undo
			// the tokens this call was about to hold.
			prev, ok, err := s.holdByKey(ctx, tx, id, key)
			if err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("hold key %q conflicts but no hold has it", key)
			}
			h = prev
			return errRollback
		}
		return err
	})
	if err != nil {
		return bot.Hold{}, err
	}
	return h, nil
}

// refuseReserve says why the conditional update held nothing.
func (s *Store) refuseReserve(ctx context.Context, tx dbtx, id bot.Identity, amount int64) error {
	var balance, held int64
	var blocked bool
	err := tx.QueryRowContext(ctx, `SELECT balance, held, blocked FROM users WHERE identity = ?`, string(id)).Scan(&balance, &held, &blocked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return unknownUser(id)
	case err != nil:
		return err
	case blocked:
		return blockedUser(id)
	}
	return bot.Errorf(bot.EINSUFFICIENT,
		"Not enough tokens: this request needs up to %s, and %s are available (balance %s, %s held by requests in progress). Ask an admin to top up, or use a :free model.",
		bot.FormatTokens(amount), bot.FormatTokens(max(balance-held, 0)), bot.FormatTokens(balance), bot.FormatTokens(held))
}

// holdByKey returns the hold that a key already names, if any.
func (s *Store) holdByKey(ctx context.Context, tx dbtx, id bot.Identity, key string) (bot.Hold, bool, error) {
	if key == "" {
		return bot.Hold{}, false, nil
	}
	var h bot.Hold
	var identity string
	var created, expires int64
	err := tx.QueryRowContext(ctx, `SELECT id, identity, amount, created_at, expires_at FROM holds WHERE key = ?`, key).
		Scan(&h.ID, &identity, &h.Amount, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return bot.Hold{}, false, nil
	} else if err != nil {
		return bot.Hold{}, false, err
	}
	if bot.Identity(identity) != id {
		return bot.Hold{}, false, bot.Errorf(bot.ECONFLICT, "The hold key %q already belongs to another user's request.", key)
	}
	h.Identity, h.Key, h.CreatedAt, h.ExpiresAt = id, key, fromNanos(created), fromNanos(expires)
	return h, true, nil
}

// Settle charges min(c.Amount, hold) as a charge row and releases the rest
// of the hold. A zero charge writes no row and just closes the hold.
// Idempotent: settling a hold again returns the first charge and charges
// nothing. When c.GenerationID was already charged through another hold
// of the same user, this hold is released and the earlier charge returned;
// an id already charged to another user is not this generation, and the
// hold is charged as if it had no id. ENOTFOUND for an
// unknown hold; ECONFLICT for a hold released or expired before it was
// settled (an expired hold is released on the spot: tokens are never
// charged after their hold could have been freed); EINVALID for a negative
// charge.
func (s *Store) Settle(ctx context.Context, holdID int64, c bot.Charge) (bot.Entry, error) {
	const op = "settle"
	if c.Amount < 0 {
		return bot.Entry{}, s.fail(op, bot.Errorf(bot.EINVALID, "A charge cannot be negative (got %d).", c.Amount))
	}
	if len(c.Model) > maxModelLen || len(c.GenerationID) > maxKeyLen || utf8.RuneCountInString(c.Note) > maxNoteLen {
		return bot.Entry{}, s.fail(op, bot.Errorf(bot.EINVALID, "A charge's model, generation id or note is too long."))
	}
	now := fromNanos(nanos(s.opts.Now()))
	var e bot.Entry
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		var (
			identity, state     string
			amount, expires     int64
			entryID, closedTime sql.NullInt64
			community, period   string
			budget              int
		)
		err := tx.QueryRowContext(ctx, `SELECT identity, amount, state, expires_at, entry_id, closed_at, community, period, budget FROM holds WHERE id = ?`+s.d.forUpdate, holdID).
			Scan(&identity, &amount, &state, &expires, &entryID, &closedTime, &community, &period, &budget)
		if errors.Is(err, sql.ErrNoRows) {
			return bot.Errorf(bot.ENOTFOUND, "There is no hold %d.", holdID)
		} else if err != nil {
			return err
		}
		id := bot.Identity(identity)
		switch state {
		case holdSettled:
			if entryID.Valid {
				if e, err = entryByID(ctx, tx, entryID.Int64); err != nil {
					return err
				}
			} else {
				e = bot.Entry{Identity: id, Kind: bot.EntryCharge, Key: chargeKey(holdID), Actor: bot.ActorSystem, CreatedAt: fromNanos(closedTime.Int64)}
			}
			return errRollback
		case holdReleased:
			return bot.Errorf(bot.ECONFLICT, "This request's hold was already released (it expired or was cancelled), so nothing is charged for it.")
		}
		if nanos(now) > expires {
			if err := releaseTx(ctx, tx, holdID, id, amount, now); err != nil {
				return err
			}
			if budget == 1 {
				if err := unspendTx(ctx, tx, community, period, identity, amount, 0); err != nil {
					return err
				}
			}
			return commitThen{bot.Errorf(bot.ECONFLICT, "This request's hold expired at %s before it was settled; it is released and nothing is charged for it.",
				fromNanos(expires).Format(time.RFC3339))}
		}

		charge := min(c.Amount, amount)
		key := chargeKey(holdID)
		if c.GenerationID != "" {
			key = generationKeyPrefix + c.GenerationID
		}
		e = bot.Entry{
			Identity: id, Kind: bot.EntryCharge, Amount: -charge, Key: key, Actor: bot.ActorSystem,
			Note: c.Note, Model: c.Model, Usage: c.Usage, GenerationID: c.GenerationID, CreatedAt: now,
		}
		var link sql.NullInt64
		if charge > 0 {
			u := c.Usage
			insert := func() error {
				return tx.QueryRowContext(ctx, `INSERT INTO entries (identity, kind, amount, key, actor, note, model,
					prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
					cost_usd, cost_reported, byok, upstream_cost_usd, generation_id, created_at)
				VALUES (?, 'charge', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING RETURNING id`,
					identity, -charge, e.Key, string(bot.ActorSystem), c.Note, c.Model,
					u.PromptTokens, u.CompletionTokens, u.CachedTokens, u.ReasoningTokens,
					u.CostUSD, u.CostReported, u.IsBYOK, u.UpstreamCostUSD, c.GenerationID, nanos(now)).Scan(&e.ID)
			}
			err := insert()
			if errors.Is(err, sql.ErrNoRows) && c.GenerationID != "" {
				prev, perr := entryByKey(ctx, tx, key)
				if perr != nil {
					return perr
				}
				if prev.Identity == id {
					// Another hold of this user already charged this
					// generation: charge nothing here and answer with
					// that charge.
					s.log.Warn("generation already charged; hold released without a charge",
						slog.Int64("hold", holdID), slog.String("generation_id", c.GenerationID), slog.Int64("entry", prev.ID))
					e, charge, err = prev, 0, nil
				} else {
					// Another user's call carried the same id: it is not
					// this generation (an upstream whose ids repeat), so
					// this hold is charged under its own key.
					s.log.Warn("generation id already charged to another user; charging the hold under its own key",
						slog.Int64("hold", holdID), slog.String("generation_id", c.GenerationID))
					e.Key = chargeKey(holdID)
					err = insert()
				}
			}
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("charge key %s is already taken", e.Key)
			case err != nil:
				return err
			}
			link = sql.NullInt64{Int64: e.ID, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE holds SET state = 'settled', closed_at = ?, entry_id = ?, charged = ? WHERE id = ?`,
			nanos(now), link, charge, holdID); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `UPDATE users SET balance = balance - ?, held = held - ? WHERE identity = ?`, charge, amount, identity); err != nil {
			return err
		}
		if budget == 1 {
			return unspendTx(ctx, tx, community, period, identity, amount, charge)
		}
		return nil
	})
	if err != nil {
		return bot.Entry{}, err
	}
	return e, nil
}

func chargeKey(holdID int64) string { return chargeKeyPrefix + strconv.FormatInt(holdID, 10) }

func releaseTx(ctx context.Context, tx dbtx, holdID int64, id bot.Identity, amount int64, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE holds SET state = 'released', closed_at = ? WHERE id = ?`, nanos(now), holdID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE users SET held = held - ? WHERE identity = ?`, amount, string(id))
	return err
}

// Release frees a hold without charging: the call failed before any
// output, or was cancelled. Releasing a hold that is already settled or
// released is a no-op. ENOTFOUND for an unknown hold.
func (s *Store) Release(ctx context.Context, holdID int64) error {
	return s.write(ctx, "release", func(ctx context.Context, tx dbtx) error {
		var identity, community, period string
		var amount int64
		var budget int
		err := tx.QueryRowContext(ctx, `UPDATE holds SET state = 'released', closed_at = ? WHERE id = ? AND state = 'open'
			RETURNING identity, amount, community, period, budget`, nanos(s.opts.Now()), holdID).Scan(&identity, &amount, &community, &period, &budget)
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM holds WHERE id = ?`, holdID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return bot.Errorf(bot.ENOTFOUND, "There is no hold %d.", holdID)
			} else if err != nil {
				return err
			}
			return errRollback
		} else if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `UPDATE users SET held = held - ? WHERE identity = ?`, amount, identity); err != nil {
			return err
		}
		if budget == 1 {
			return unspendTx(ctx, tx, community, period, identity, amount, 0)
		}
		return nil
	})
}

// ReleaseExpired frees every open hold whose expiry is before now and
// returns how many it freed. The sweeper runs it, and so does start-up, so
// a crash between reserve and settle never loses tokens.
func (s *Store) ReleaseExpired(ctx context.Context, now time.Time) (int, error) {
	n, tokens, err := s.releaseWhere(ctx, "release_expired", `expires_at < ?`, nanos(now))
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.Info("expired holds released", slog.Int("holds", n), slog.Int64("tokens", tokens))
	}
	return n, nil
}

// ReleasePreviousBoots frees, at once, every open hold that this Store's
// instance (Options.Instance) reserved in an earlier boot: what a crash of
// this same instance left behind, which no process will ever settle. It
// returns how many holds and tokens it freed. Holds of other instances are
// left to the expiry sweeper: they may belong to a live process.
//
// Before releasing anything it takes the lock of the instance name for as
// long as the Store is open, so that two processes running under one
// instance name cannot free each other's holds: ECONFLICT, naming the
// other process, when a live process holds it. On PostgreSQL the lock is
// an advisory lock (freed when that process dies); on SQLite, which one
// process owns, it is kept in this process.
func (s *Store) ReleasePreviousBoots(ctx context.Context) (holds int, tokens int64, err error) {
	const op = "release_previous_boots"
	s.instanceMu.Lock()
	defer s.instanceMu.Unlock()
	if s.instance == nil {
		l, err := s.OpenLocks(ctx, "instance "+s.opts.Instance+" boot "+s.opts.Boot, 0)
		if err != nil {
			return 0, 0, err
		}
		name := "instance:" + s.opts.Instance
		ok, err := l.TryLock(ctx, name)
		if err == nil && !ok {
			who, werr := s.WhoHolds(ctx, name)
			if werr != nil {
				who = "another process"
			}
			err = bot.Errorf(bot.ECONFLICT,
				"Another orchat process runs as instance %q (%s); give each process its own instance name, so that neither releases the other's holds.", s.opts.Instance, who)
		}
		if err != nil {
			l.Close()
			return 0, 0, s.fail(op, err)
		}
		s.instance = l
	}
	holds, tokens, err = s.releaseWhere(ctx, op, `owner_instance = ? AND owner_boot <> ?`, s.opts.Instance, s.opts.Boot)
	if err != nil {
		return 0, 0, err
	}
	if holds > 0 {
		s.log.Info("holds of a previous boot released", slog.String("instance", s.opts.Instance), slog.Int("holds", holds), slog.Int64("tokens", tokens))
	}
	return holds, tokens, nil
}

// releaseWhere releases the open holds that also match cond, in one
// statement that says which it released (so a settle racing it in
// another process either wins the hold or finds it released), and takes
// their tokens off the users' held totals, in identity order so that two
// sweepers never deadlock.
func (s *Store) releaseWhere(ctx context.Context, op, cond string, args ...any) (int, int64, error) {
	var n int
	var tokens int64
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		n, tokens = 0, 0
		low, err := lowHoldID(ctx, tx)
		if err != nil {
			return err
		}
		held := map[string]int64{}
		type spendKey struct{ community, period, identity string }
		spent := map[spendKey]int64{}
		err = eachRow(ctx, tx, `UPDATE holds SET state = 'released', closed_at = ?
			WHERE id >= ? AND state = 'open' AND `+cond+` RETURNING identity, amount, community, period, budget`,
			func(r *sql.Rows) error {
				var identity, community, period string
				var amount int64
				var budget int
				if err := r.Scan(&identity, &amount, &community, &period, &budget); err != nil {
					return err
				}
				held[identity] += amount
				if budget == 1 {
					spent[spendKey{community, period, ""}] += amount
					spent[spendKey{community, period, identity}] += amount
				}
				tokens += amount
				n++
				return nil
			}, append([]any{nanos(s.opts.Now()), low}, args...)...)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(held))
		for identity := range held {
			ids = append(ids, identity)
		}
		slices.Sort(ids)
		for _, identity := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET held = held - ? WHERE identity = ?`, held[identity], identity); err != nil {
				return err
			}
		}
		keys := make([]spendKey, 0, len(spent))
		for k := range spent {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b spendKey) int {
			return strings.Compare(a.community+"\x00"+a.period+"\x00"+a.identity, b.community+"\x00"+b.period+"\x00"+b.identity)
		})
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `UPDATE spend SET held = held - ? WHERE community = ? AND period = ? AND identity = ?`,
				spent[k], k.community, k.period, k.identity); err != nil {
				return err
			}
		}
		if !s.d.lowWater {
			return nil
		}
		// Raise the low-water mark to the oldest hold still open, or past
		// the newest hold when none is, so the next sweep scans only what
		// came since.
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT MIN(id) FROM holds WHERE id >= ?1 AND state = 'open'),
				(SELECT MAX(id) + 1 FROM holds), ?1)`, low).Scan(&next); err != nil {
			return err
		}
		if next == low {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sweep (id, low_hold_id) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET low_hold_id = excluded.low_hold_id`, next)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return n, tokens, nil
}

// lowHoldID returns the sweeper's low-water mark: no hold below it is open.
func lowHoldID(ctx context.Context, q queryer) (int64, error) {
	var low int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(low_hold_id), 0) FROM sweep`).Scan(&low)
	return low, err
}

// OpenHolds returns how many holds are open and the tokens they hold, for
// metrics and the stale-hold sweeper's report.
func (s *Store) OpenHolds(ctx context.Context) (int, int64, error) {
	var count int
	var tokens int64
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM holds
		WHERE id >= (SELECT COALESCE(MAX(low_hold_id), 0) FROM sweep) AND state = 'open'`).Scan(&count, &tokens); err != nil {
		return 0, 0, s.fail("open_holds", err)
	}
	return count, tokens, nil
}

// TopUp adds paid tokens on an admin's behalf; the user gets the larger
// free-tier allowance from then on. An identity that never wrote to the bot
// is created first, with its signup bonus. EINVALID for a malformed
// identity, an empty or reserved key, or an amount outside 1..MaxAmount;
// ECONFLICT when the key was used for a different adjustment. A repeated
// key changes nothing and returns applied=false with the first entry.
func (s *Store) TopUp(ctx context.Context, a bot.Adjustment) (bot.Entry, bool, error) {
	return s.adjust(ctx, bot.EntryTopUp, a)
}

// Grant gives tokens on an admin's behalf without counting as a top-up.
// Errors and idempotency as TopUp; unknown users are created as by TopUp.
func (s *Store) Grant(ctx context.Context, a bot.Adjustment) (bot.Entry, bool, error) {
	return s.adjust(ctx, bot.EntryGrant, a)
}

// Deduct removes tokens on an admin's behalf, never below zero: tokens
// held by calls in flight cannot be deducted. ENOTFOUND for an unknown
// user; EINSUFFICIENT when the amount exceeds the available balance;
// otherwise errors and idempotency as TopUp.
func (s *Store) Deduct(ctx context.Context, a bot.Adjustment) (bot.Entry, bool, error) {
	return s.adjust(ctx, bot.EntryDeduct, a)
}

func (s *Store) adjust(ctx context.Context, kind bot.EntryKind, a bot.Adjustment) (bot.Entry, bool, error) {
	op := string(kind)
	if err := a.Identity.Validate(); err != nil {
		return bot.Entry{}, false, s.fail(op, err)
	}
	if a.Amount < 1 || a.Amount > bot.MaxAmount {
		return bot.Entry{}, false, s.fail(op, bot.Errorf(bot.EINVALID,
			"Amounts are whole tokens from 1 to %s; %s is not.", bot.FormatTokens(bot.MaxAmount), bot.FormatTokens(a.Amount)))
	}
	switch {
	case a.Key == "":
		return bot.Entry{}, false, s.fail(op, bot.Errorf(bot.EINVALID,
			"An adjustment needs a key (such as the interaction id), so a retried command cannot apply it twice."))
	case len(a.Key) > maxKeyLen:
		return bot.Entry{}, false, s.fail(op, bot.Errorf(bot.EINVALID, "An adjustment key is at most %d bytes long.", maxKeyLen))
	case strings.HasPrefix(a.Key, signupKeyPrefix) || strings.HasPrefix(a.Key, chargeKeyPrefix) || strings.HasPrefix(a.Key, generationKeyPrefix) || isPoolKey(a.Key):
		return bot.Entry{}, false, s.fail(op, bot.Errorf(bot.EINVALID,
			"Keys starting with %q, %q, %q, %q or %q are the ledger's own; use another key.", signupKeyPrefix, chargeKeyPrefix, generationKeyPrefix, poolKeyPrefix, "allowance:"))
	}
	actor := a.Actor
	if actor == "" {
		actor = bot.ActorSystem
	} else if actor != bot.ActorSystem {
		if err := actor.Validate(); err != nil {
			return bot.Entry{}, false, s.fail(op, err)
		}
	}
	if utf8.RuneCountInString(a.Note) > maxNoteLen {
		return bot.Entry{}, false, s.fail(op, bot.Errorf(bot.EINVALID, "A note is at most %d characters long.", maxNoteLen))
	}

	signed := a.Amount
	if kind == bot.EntryDeduct {
		signed = -a.Amount
	}
	now := fromNanos(nanos(s.opts.Now()))
	e := bot.Entry{Identity: a.Identity, Kind: kind, Amount: signed, Key: a.Key, Actor: actor, Note: a.Note, CreatedAt: now}
	applied := false
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		repeated := func(prev bot.Entry) error {
			if prev.Identity != a.Identity || prev.Kind != kind || prev.Amount != signed {
				return bot.Errorf(bot.ECONFLICT,
					"The key %q was already used for a %s of %s tokens for %s; use a new key for a new adjustment.",
					a.Key, prev.Kind, bot.FormatTokens(abs(prev.Amount)), prev.Identity)
			}
			e = prev
			return errRollback
		}
		prev, err := entryByKey(ctx, tx, a.Key)
		if err == nil {
			return repeated(prev)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}

		switch kind {
		case bot.EntryTopUp, bot.EntryGrant:
			if _, err := s.ensureUserTx(ctx, tx, a.Identity, now); err != nil {
				return err
			}
		case bot.EntryDeduct:
			var balance, held int64
			err := tx.QueryRowContext(ctx, `SELECT balance, held FROM users WHERE identity = ?`+s.d.forUpdate, string(a.Identity)).Scan(&balance, &held)
			if errors.Is(err, sql.ErrNoRows) {
				return unknownUser(a.Identity)
			} else if err != nil {
				return err
			}
			if a.Amount > balance-held {
				return bot.Errorf(bot.EINSUFFICIENT,
					"Cannot deduct %s tokens: %s has %s available (balance %s, %s held by requests in progress), and a balance never goes below zero.",
					bot.FormatTokens(a.Amount), a.Identity, bot.FormatTokens(max(balance-held, 0)), bot.FormatTokens(balance), bot.FormatTokens(held))
			}
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO entries (identity, kind, amount, key, actor, note, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
			string(a.Identity), string(kind), signed, a.Key, string(actor), a.Note, nanos(now)).Scan(&e.ID)
		if errors.Is(err, sql.ErrNoRows) {
			// The same key committed by a concurrent call (another
			// process) since the look-up above: answer as for a repeat.
			prev, err := entryByKey(ctx, tx, a.Key)
			if err != nil {
				return err
			}
			return repeated(prev)
		} else if err != nil {
			return err
		}
		var toppedUp int64
		if kind == bot.EntryTopUp {
			toppedUp = a.Amount
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET balance = balance + ?, topped_up = topped_up + ? WHERE identity = ?`,
			signed, toppedUp, string(a.Identity)); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return bot.Entry{}, false, err
	}
	if applied {
		s.log.Info("ledger adjusted", slog.String("kind", string(kind)), slog.String("identity", string(a.Identity)),
			slog.Int64("amount", signed), slog.String("actor", string(actor)), slog.String("key", a.Key), slog.String("note", a.Note))
	}
	return e, applied, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// SetBlocked blocks or unblocks a user: a blocked user cannot reserve
// tokens or use the free tier. EINVALID for a malformed identity, ENOTFOUND
// for an unknown one.
func (s *Store) SetBlocked(ctx context.Context, id bot.Identity, blocked bool, actor bot.Identity) error {
	const op = "set_blocked"
	if err := id.Validate(); err != nil {
		return s.fail(op, err)
	}
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET blocked = ? WHERE identity = ?`, blocked, string(id))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return unknownUser(id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("user block changed", slog.String("identity", string(id)), slog.Bool("blocked", blocked), slog.String("actor", string(actor)))
	return nil
}

// History limits.
const (
	defaultHistory = 20
	maxHistory     = 1000
)

const entryColumns = `id, identity, kind, amount, key, actor, note, model,
	prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
	cost_usd, cost_reported, byok, upstream_cost_usd, generation_id, created_at`

type scanner interface{ Scan(dest ...any) error }

func scanEntry(row scanner) (bot.Entry, error) {
	var e bot.Entry
	var identity, kind, actor string
	var created int64
	err := row.Scan(&e.ID, &identity, &kind, &e.Amount, &e.Key, &actor, &e.Note, &e.Model,
		&e.Usage.PromptTokens, &e.Usage.CompletionTokens, &e.Usage.CachedTokens, &e.Usage.ReasoningTokens,
		&e.Usage.CostUSD, &e.Usage.CostReported, &e.Usage.IsBYOK, &e.Usage.UpstreamCostUSD, &e.GenerationID, &created)
	e.Identity, e.Kind, e.Actor, e.CreatedAt = bot.Identity(identity), bot.EntryKind(kind), bot.Identity(actor), fromNanos(created)
	return e, err
}

func entryByID(ctx context.Context, q queryer, id int64) (bot.Entry, error) {
	return scanEntry(q.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE id = ?`, id))
}

func entryByKey(ctx context.Context, q queryer, key string) (bot.Entry, error) {
	return scanEntry(q.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE key = ?`, key))
}

// History returns the user's last limit ledger rows, newest first (limit
// ≤ 0 means 20; at most 1,000). EINVALID for a malformed identity,
// ENOTFOUND for an unknown one.
func (s *Store) History(ctx context.Context, id bot.Identity, limit int) ([]bot.Entry, error) {
	const op = "history"
	if err := id.Validate(); err != nil {
		return nil, s.fail(op, err)
	}
	if limit <= 0 {
		limit = defaultHistory
	}
	limit = min(limit, maxHistory)
	rows, err := s.read.QueryContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE identity = ? ORDER BY id DESC LIMIT ?`, string(id), limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var es []bot.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	if len(es) == 0 {
		if _, err := s.user(ctx, s.read, id); err != nil {
			return nil, s.fail(op, err)
		}
	}
	return es, nil
}

// EachCharge calls fn with every charge row of every user, oldest first,
// stopping at fn's first error: for reconciling the ledger with what the
// upstream billed, generation by generation (orchat-loadtest does).
func (s *Store) EachCharge(ctx context.Context, fn func(bot.Entry) error) error {
	const op = "charges"
	rows, err := s.read.QueryContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE kind = 'charge' ORDER BY id`)
	if err != nil {
		return s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return s.fail(op, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// SpendByModel returns the user's charges since a time, grouped by model,
// most charged first (ties by model id). EINVALID for a malformed identity,
// ENOTFOUND for an unknown one.
func (s *Store) SpendByModel(ctx context.Context, id bot.Identity, since time.Time) ([]bot.ModelSpend, error) {
	const op = "spend_by_model"
	if err := id.Validate(); err != nil {
		return nil, s.fail(op, err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT model, COUNT(*), CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT),
			CAST(-SUM(amount) AS BIGINT) AS charged
		FROM entries WHERE identity = ? AND kind = 'charge' AND created_at >= ?
		GROUP BY model ORDER BY charged DESC, model`, string(id), nanos(since))
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var ms []bot.ModelSpend
	for rows.Next() {
		var m bot.ModelSpend
		if err := rows.Scan(&m.Model, &m.Requests, &m.PromptTokens, &m.CompletionTokens, &m.Charged); err != nil {
			return nil, s.fail(op, err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	if len(ms) == 0 {
		if _, err := s.user(ctx, s.read, id); err != nil {
			return nil, s.fail(op, err)
		}
	}
	return ms, nil
}
