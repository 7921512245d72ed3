package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/orchat/orchat/bot"
)

// periodLayout is how a free-tier period (a local date) is written.
const periodLayout = "2006-01-02"

// period returns the free-tier day that now falls in, as a date in the
// configured zone, and when the next one starts: the next local midnight,
// which is 23 or 25 hours away on the days clocks change. Where a clock
// change skips midnight itself (America/Santiago), the next day starts at
// that change, not at the 23:00 time.Date normalizes the missing midnight to.
func (s *Store) period(now time.Time) (string, time.Time) {
	local := now.In(s.opts.Location)
	y, m, d := local.Date()
	key := local.Format(periodLayout)
	next := time.Date(y, m, d+1, 0, 0, 0, 0, s.opts.Location)
	if next.Format(periodLayout) == key {
		_, next = next.ZoneBounds()
	}
	return key, next
}

// freeLimit is the daily allowance: larger once a user has ever been
// topped up, the rule OpenRouter applies to its own free models.
func (s *Store) freeLimit(toppedUp bool) int {
	if toppedUp {
		return s.rules.Load().freeToppedUp
	}
	return s.rules.Load().freePerDay
}

// UseFree counts one free-tier request in the period that now falls in.
// ERATELIMIT, saying when the allowance comes back, once the day's
// allowance is used; ENOTFOUND for an unknown user; EUNAUTHORIZED for a
// blocked one; EINVALID for a malformed identity.
func (s *Store) UseFree(ctx context.Context, id bot.Identity, now time.Time) (bot.FreeUse, error) {
	const op = "use_free"
	if err := id.Validate(); err != nil {
		return bot.FreeUse{}, s.fail(op, err)
	}
	key, resets := s.period(now)
	fu := bot.FreeUse{Period: key, ResetsAt: resets}
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		var blocked bool
		var toppedUp int64
		err := tx.QueryRowContext(ctx, `SELECT blocked, topped_up FROM users WHERE identity = ?`, string(id)).Scan(&blocked, &toppedUp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return unknownUser(id)
		case err != nil:
			return err
		case blocked:
			return blockedUser(id)
		}
		fu.Limit = s.freeLimit(toppedUp > 0)
		if fu.Limit > 0 {
			err = tx.QueryRowContext(ctx, `INSERT INTO free_usage (identity, period, used) VALUES (?, ?, 1)
				ON CONFLICT (identity, period) DO UPDATE SET used = free_usage.used + 1 WHERE free_usage.used < CAST(? AS INTEGER)
				RETURNING used`, string(id), key, fu.Limit).Scan(&fu.Used)
			if err == nil {
				fu.Remaining = fu.Limit - fu.Used
				return nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if fu, err = s.freeUse(ctx, tx, id, toppedUp > 0, now); err != nil {
			return err
		}
		return s.freeExhausted(fu, now)
	})
	if err != nil {
		return fu, err
	}
	return fu, nil
}

// freeExhausted says that the day's allowance is used and when, in local
// time and from now, it comes back.
func (s *Store) freeExhausted(fu bot.FreeUse, now time.Time) error {
	if fu.Limit <= 0 {
		return bot.Errorf(bot.ERATELIMIT, "There is no free allowance here; paid models still work while your balance lasts.")
	}
	return bot.Errorf(bot.ERATELIMIT,
		"You have used your daily allowance of %s. It comes back at %s on %s (%s time), in %s; paid models still work while your balance lasts.",
		fmt.Sprintf("%d %s", fu.Limit, bot.Plural(fu.Limit, "free request", "free requests")), fu.ResetsAt.Format("15:04"), fu.ResetsAt.Format("Mon 2 Jan"), s.opts.Location, bot.FormatWait(fu.ResetsAt.Sub(now)))
}

// ReturnFree gives back one free request of a period (a free request that
// failed before any output costs nothing); never below zero. EINVALID for a
// malformed identity or period; ENOTFOUND for an unknown user.
func (s *Store) ReturnFree(ctx context.Context, id bot.Identity, period string) error {
	const op = "return_free"
	if err := id.Validate(); err != nil {
		return s.fail(op, err)
	}
	if err := checkPeriod(period); err != nil {
		return s.fail(op, err)
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE free_usage SET used = used - 1 WHERE identity = ? AND period = ? AND used > 0`, string(id), period)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		if _, err := s.user(ctx, tx, id); err != nil {
			return err
		}
		return errRollback
	})
}

// FreeStatus returns the free use of the period that now falls in, without
// counting a request. EINVALID for a malformed identity; ENOTFOUND for an
// unknown user.
func (s *Store) FreeStatus(ctx context.Context, id bot.Identity, now time.Time) (bot.FreeUse, error) {
	const op = "free_status"
	if err := id.Validate(); err != nil {
		return bot.FreeUse{}, s.fail(op, err)
	}
	var toppedUp int64
	err := s.read.QueryRowContext(ctx, `SELECT topped_up FROM users WHERE identity = ?`, string(id)).Scan(&toppedUp)
	if errors.Is(err, sql.ErrNoRows) {
		return bot.FreeUse{}, s.fail(op, unknownUser(id))
	} else if err != nil {
		return bot.FreeUse{}, s.fail(op, err)
	}
	fu, err := s.freeUse(ctx, s.read, id, toppedUp > 0, now)
	if err != nil {
		return bot.FreeUse{}, s.fail(op, err)
	}
	return fu, nil
}

func (s *Store) freeUse(ctx context.Context, q queryer, id bot.Identity, toppedUp bool, now time.Time) (bot.FreeUse, error) {
	key, resets := s.period(now)
	fu := bot.FreeUse{Period: key, ResetsAt: resets, Limit: s.freeLimit(toppedUp)}
	err := q.QueryRowContext(ctx, `SELECT used FROM free_usage WHERE identity = ? AND period = ?`, string(id), key).Scan(&fu.Used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return bot.FreeUse{}, err
	}
	fu.Remaining = max(fu.Limit-fu.Used, 0)
	return fu, nil
}
