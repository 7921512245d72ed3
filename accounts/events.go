package accounts

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/orchat/orchat/bot"
)

// SeenEvent records that the platform event id was received at now and
// reports whether it is new: true for the first call with id within the
// event window (Options.EventWindow, an hour by default), false for every
// later one, whichever process and Store it comes through. Adapters pass
// ids with their platform and kind, so that namespaces never collide:
// "slack:event:Ev0123", "discord:message:123…", "discord:interaction:…".
// Ids older than the window are forgotten (Prune; SeenEvent prunes by
// itself every quarter window). EINVALID for an empty or overlong id.
func (s *Store) SeenEvent(ctx context.Context, id string, now time.Time) (bool, error) {
	const op = "seen_event"
	if id == "" || len(id) > maxKeyLen {
		return false, s.fail(op, bot.Errorf(bot.EINVALID, "An event id is 1 to %d bytes long.", maxKeyLen))
	}
	var first bool
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		// A row older than the window is a forgotten id: it counts as new
		// and takes the new time, in the same statement that decides.
		var at int64
		err := tx.QueryRowContext(ctx, `INSERT INTO seen_events (id, seen_at) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at WHERE seen_events.seen_at <= ?
			RETURNING seen_at`, id, nanos(now), nanos(now.Add(-s.opts.EventWindow))).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			first = false
			return errRollback
		}
		first = err == nil
		return err
	})
	if err != nil {
		return false, err
	}
	s.maybePrune(ctx, now)
	return first, nil
}

// maybePrune prunes when a quarter of the event window has passed since
// this Store last did, so the table stays about one window of events
// without a job of its own.
func (s *Store) maybePrune(ctx context.Context, now time.Time) {
	last := s.lastPrune.Load()
	if now.UnixNano()-last < int64(s.opts.EventWindow/4) || !s.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if _, _, err := s.Prune(ctx, now); err != nil {
		s.log.Warn("pruning seen events and rate buckets failed", slog.Any("error", err))
	}
}

// Prune forgets the event ids older than the event window and the
// rate-limit buckets that are full again at now (a full bucket is the
// same as none), and returns how many of each it removed. SeenEvent and
// TakeToken prune by themselves; the scheduler's sweeper may call it too.
func (s *Store) Prune(ctx context.Context, now time.Time) (events, buckets int, err error) {
	err = s.write(ctx, "prune", func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM seen_events WHERE seen_at <= ?`, nanos(now.Add(-s.opts.EventWindow)))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		events = int(n)
		if res, err = tx.ExecContext(ctx, `DELETE FROM rate_buckets WHERE tat <= ?`, nanos(now)); err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		buckets = int(n)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return events, buckets, nil
}

// TakeToken takes one request from the rate-limit bucket called key (an
// identity, or whatever the caller limits): ok when the bucket had one;
// otherwise ok is false and wait says how long until it has. A bucket
// refills limit.PerMinute requests a minute up to limit.Burst (at least
// 1), starts full, and is shared by every process on the database: one
// statement decides, so concurrent takes never hand out more than the
// bucket holds. A limit of 0 requests a minute allows everything. EINVALID
// for an empty or overlong key.
//
// The bucket is kept as GCRA's theoretical arrival time (tat: when the
// bucket is full again), one integer per key: a take is allowed while tat
// is at most (Burst-1) intervals ahead of now, and moves it one interval
// on.
func (s *Store) TakeToken(ctx context.Context, key string, limit bot.RateLimit, now time.Time) (wait time.Duration, ok bool, err error) {
	const op = "take_token"
	if key == "" || len(key) > maxKeyLen {
		return 0, false, s.fail(op, bot.Errorf(bot.EINVALID, "A rate-limit key is 1 to %d bytes long.", maxKeyLen))
	}
	if limit.PerMinute <= 0 {
		return 0, true, nil
	}
	interval := int64(float64(time.Minute) / limit.PerMinute)
	if interval < 1 {
		interval = 1
	}
	tolerance := int64(max(limit.Burst, 1)-1) * interval
	at := nanos(now)
	err = s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		var tat int64
		err := tx.QueryRowContext(ctx, `INSERT INTO rate_buckets (key, tat) VALUES (?1, CAST(?2 AS BIGINT) + CAST(?3 AS BIGINT))
			ON CONFLICT (key) DO UPDATE SET tat = CASE WHEN rate_buckets.tat > ?2 THEN rate_buckets.tat ELSE ?2 END + ?3
			WHERE rate_buckets.tat - ?2 <= ?4
			RETURNING tat`, key, at, interval, tolerance).Scan(&tat)
		if err == nil {
			ok = true
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ok = false
		if err := tx.QueryRowContext(ctx, `SELECT tat FROM rate_buckets WHERE key = ?`, key).Scan(&tat); err != nil {
			return err
		}
		wait = time.Duration(tat - tolerance - at)
		return errRollback
	})
	if err != nil {
		return 0, false, err
	}
	s.maybePrune(ctx, now)
	return wait, ok, nil
}
