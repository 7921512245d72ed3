package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/orchat/orchat/bot"
)

// ReserveWithin holds amount tokens as Reserve does and, when b sets a
// cap, counts the hold against the community's spend of today (the
// free-tier day) and the member's: the hold is refused, with nothing
// written, when spent plus held plus amount would pass a cap: ERATELIMIT,
// saying whose cap, what is used and when it comes back. Settling the hold
// moves what it charged from held to spent; releasing it frees it. A zero
// b is Reserve. Errors otherwise as Reserve.
func (s *Store) ReserveWithin(ctx context.Context, id bot.Identity, amount int64, key string, b bot.Budget) (bot.Hold, error) {
	if !b.Any() {
		return s.Reserve(ctx, id, amount, key)
	}
	const op = "reserve"
	if err := bot.ValidateCommunity(b.Community); err != nil {
		return bot.Hold{}, s.fail(op, err)
	}
	return s.reserve(ctx, id, amount, key, &b)
}

// countSpendTx adds a hold to today's spend rows of its community and
// member within the caps; a cap it would pass is refused.
func (s *Store) countSpendTx(ctx context.Context, tx dbtx, b *bot.Budget, id bot.Identity, period string, resets time.Time, amount int64) error {
	rows := []struct {
		who   string
		limit int64
	}{{"", b.Daily}, {string(id), b.MemberDaily}}
	for _, r := range rows {
		limit := r.limit
		if limit <= 0 {
			limit = math.MaxInt64 / 2 // counted, not capped
		}
		var held int64
		err := tx.QueryRowContext(ctx, `INSERT INTO spend (community, identity, period, spent, held)
			SELECT ?1, ?2, ?3, 0, CAST(?4 AS BIGINT) WHERE CAST(?4 AS BIGINT) <= CAST(?5 AS BIGINT)
			ON CONFLICT (community, identity, period) DO UPDATE SET held = spend.held + excluded.held
				WHERE spend.spent + spend.held + excluded.held <= CAST(?5 AS BIGINT)
			RETURNING held`, b.Community, r.who, period, amount, limit).Scan(&held)
		if errors.Is(err, sql.ErrNoRows) {
			return s.overBudget(ctx, tx, b, r.who, r.limit, period, resets, amount)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// overBudget says which cap refused a hold, what is used of it today and
// when it comes back.
func (s *Store) overBudget(ctx context.Context, tx dbtx, b *bot.Budget, who string, limit int64, period string, resets time.Time, amount int64) error {
	var used int64
	if err := tx.QueryRowContext(ctx, `SELECT spent + held FROM spend WHERE community = ? AND identity = ? AND period = ?`,
		b.Community, who, period).Scan(&used); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	now := s.opts.Now()
	whose := fmt.Sprintf("%s's daily budget", bot.CommunityWord(b.Community, true))
	if who != "" {
		whose = fmt.Sprintf("Your daily budget in %s", bot.CommunityWord(b.Community, false))
	}
	return bot.Errorf(bot.ERATELIMIT,
		"%s of %s tokens is used up: %s spent or in progress today, and this request needs up to %s. It resets %s; free models still work.",
		whose, bot.FormatTokens(limit), bot.FormatTokens(used), bot.FormatTokens(amount), bot.FormatReset(resets, now, s.opts.Location))
}

// unspendTx takes a closed hold off its day's spend rows: amount leaves
// held, charge joins spent.
func unspendTx(ctx context.Context, tx dbtx, community, period, identity string, amount, charge int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE spend SET held = held - ?, spent = spent + ?
		WHERE community = ? AND period = ? AND identity IN ('', ?)`, amount, charge, community, period, identity)
	return err
}

// BudgetUse returns today's spend of a community (all members) and of one
// member in it, counted since the community first set a budget, and when
// the day ends. EINVALID for a malformed community.
func (s *Store) BudgetUse(ctx context.Context, community string, id bot.Identity, now time.Time) (bot.BudgetUse, error) {
	const op = "budget_use"
	if err := bot.ValidateCommunity(community); err != nil {
		return bot.BudgetUse{}, s.fail(op, err)
	}
	period, resets := s.period(now)
	u := bot.BudgetUse{Period: period, ResetsAt: resets}
	err := eachRow(ctx, s.read, `SELECT identity, spent, held FROM spend WHERE community = ? AND period = ? AND identity IN ('', ?)`,
		func(r *sql.Rows) error {
			var who string
			var sp bot.Spend
			if err := r.Scan(&who, &sp.Spent, &sp.Held); err != nil {
				return err
			}
			if who == "" {
				u.All = sp
			} else {
				u.Member = sp
			}
			return nil
		}, community, period, string(id))
	if err != nil {
		return bot.BudgetUse{}, s.fail(op, err)
	}
	return u, nil
}
