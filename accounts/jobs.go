package accounts

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/orchat/orchat/bot"
)

// This file is the ledger's side of the scheduler's chores: the record of
// daily free-tier resets, who used up a day's allowance, and the lease that
// elects one scheduler leader when several instances share the ledger (a
// row with an expiry on SQLite, a session advisory lock on PostgreSQL).

// FreeReset is one recorded daily free-tier reset: the period (a local date)
// that ended, and when the scheduler recorded its end.
type FreeReset struct {
	Period string
	RanAt  time.Time
}

// RecordReset records that the free-tier period (a date such as 2026-11-22)
// has ended and its reset ran at at. Idempotent: only the first call for a
// period records it and returns first=true; any later call, from a restart,
// another instance or a repeated daylight-saving hour, changes nothing and
// returns first=false. EINVALID for a malformed period.
func (s *Store) RecordReset(ctx context.Context, period string, at time.Time) (first bool, err error) {
	const op = "record_reset"
	if err := checkPeriod(period); err != nil {
		return false, s.fail(op, err)
	}
	err = s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO free_resets (period, ran_at) VALUES (?, ?)
			ON CONFLICT (period) DO NOTHING`, period, nanos(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if first = n > 0; !first {
			return errRollback
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return first, nil
}

// FreeResets returns the recorded resets, newest period first: at most
// limit of them, or all when limit is not positive.
func (s *Store) FreeResets(ctx context.Context, limit int) ([]FreeReset, error) {
	const op = "free_resets"
	query := `SELECT period, ran_at FROM free_resets ORDER BY period DESC`
	var args []any
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []FreeReset
	err := eachRow(ctx, s.read, query, func(r *sql.Rows) error {
		var fr FreeReset
		var at int64
		if err := r.Scan(&fr.Period, &at); err != nil {
			return err
		}
		fr.RanAt = fromNanos(at)
		out = append(out, fr)
		return nil
	}, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// FreeExhausted returns, sorted, the users who used up their free-tier
// allowance in period: their counter reached the limit that applies to
// them (the larger one once they have been topped up). Blocked users are
// left out: their requests are not coming back. EINVALID for a malformed
// period.
func (s *Store) FreeExhausted(ctx context.Context, period string) ([]bot.Identity, error) {
	const op = "free_exhausted"
	if err := checkPeriod(period); err != nil {
		return nil, s.fail(op, err)
	}
	var out []bot.Identity
	err := eachRow(ctx, s.read, `SELECT f.identity FROM free_usage f JOIN users u ON u.identity = f.identity
		WHERE f.period = ? AND NOT u.blocked AND f.used > 0
			AND f.used >= CASE WHEN u.topped_up > 0 THEN CAST(? AS INTEGER) ELSE CAST(? AS INTEGER) END
		ORDER BY f.identity`, func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, bot.Identity(id))
		return nil
	}, period, s.rules.Load().freeToppedUp, s.rules.Load().freePerDay)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

func checkPeriod(period string) error {
	if _, err := time.Parse(periodLayout, period); err != nil {
		return bot.Errorf(bot.EINVALID, "A free-tier period is a date such as 2026-11-22, not %q.", period)
	}
	return nil
}

// TryLead takes or renews the lease called name for holder. It returns nil
// when holder has the lease: it renewed its own, took a free one, or took
// one whose holder is gone. ECONFLICT, naming the holder, while another
// holder has it; EINVALID for an empty or overlong name or holder, or a
// ttl that is not positive.
//
// On SQLite the lease is a row that lasts until ttl from now by the
// Store's clock, so a crashed holder's lease is taken once it expires. On
// PostgreSQL it is a session advisory lock on a connection of this Store's
// own: the server frees it the moment the holder's process dies, and ttl
// is how long a holder that stops answering (frozen, cut off) keeps it;
// renewing checks that the session still lives, and LeaseLost fires
// when it does not.
func (s *Store) TryLead(ctx context.Context, name, holder string, ttl time.Duration) error {
	const op = "try_lead"
	if err := checkLease(name, holder); err != nil {
		return s.fail(op, err)
	}
	if ttl <= 0 {
		return s.fail(op, bot.Errorf(bot.EINVALID, "A lease lasts a positive time, not %s.", ttl))
	}
	if s.d.engine == Postgres {
		if err := s.tryLeadPostgres(ctx, name, holder, ttl); err != nil {
			return s.fail(op, err)
		}
		return nil
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		now := s.opts.Now()
		var got string
		err := tx.QueryRowContext(ctx, `INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (name) DO UPDATE SET
				acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END,
				holder = excluded.holder,
				expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3
			RETURNING holder`, name, holder, nanos(now), nanos(now.Add(ttl))).Scan(&got)
		if err == nil {
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var other string
		var expires int64
		if err := tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&other, &expires); err != nil {
			return err
		}
		return bot.Errorf(bot.ECONFLICT, "The %s lease is held by %s until %s.", name, other, fromNanos(expires).Format(time.RFC3339))
	})
}

// ResignLead gives up holder's lease called name at once, so another
// instance can take it without waiting for it to expire (SQLite) or for
// this process to end (PostgreSQL). A lease holder
// does not have (never had, or lost) is left alone; resigning twice is a
// no-op. EINVALID for an empty or overlong name or holder.
func (s *Store) ResignLead(ctx context.Context, name, holder string) error {
	const op = "resign_lead"
	if err := checkLease(name, holder); err != nil {
		return s.fail(op, err)
	}
	if s.d.engine == Postgres {
		if err := s.resignLeadPostgres(ctx, name, holder); err != nil {
			return s.fail(op, err)
		}
		return nil
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
		return err
	})
}

// LeaseHolder returns who holds the lease called name and until when; the
// lease may have expired already. On PostgreSQL a lease lasts as long as
// its holder's session, and the time is zero. ENOTFOUND when nobody ever
// took it or the last holder resigned (or, on PostgreSQL, ended).
func (s *Store) LeaseHolder(ctx context.Context, name string) (holder string, expires time.Time, err error) {
	const op = "lease_holder"
	if s.d.engine == Postgres {
		holder, err := s.WhoHolds(ctx, leaseLockName(name))
		if bot.ErrorCode(err) == bot.ENOTFOUND {
			return "", time.Time{}, s.fail(op, bot.Errorf(bot.ENOTFOUND, "Nobody holds the %s lease.", name))
		}
		return holder, time.Time{}, err
	}
	var at int64
	err = s.read.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&holder, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, s.fail(op, bot.Errorf(bot.ENOTFOUND, "Nobody holds the %s lease.", name))
	} else if err != nil {
		return "", time.Time{}, s.fail(op, err)
	}
	return holder, fromNanos(at), nil
}

func checkLease(name, holder string) error {
	if name == "" || len(name) > maxKeyLen {
		return bot.Errorf(bot.EINVALID, "A lease needs a name of 1 to %d bytes.", maxKeyLen)
	}
	if holder == "" || len(holder) > maxKeyLen {
		return bot.Errorf(bot.EINVALID, "A lease holder needs a name of 1 to %d bytes.", maxKeyLen)
	}
	return nil
}
