package accounts

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// Compile-time proof that a Store keeps what communities need.
var (
	_ bot.SettingsStore = (*Store)(nil)
	_ bot.Pools         = (*Store)(nil)
	_ bot.Budgets       = (*Store)(nil)
	_ bot.Members       = (*Store)(nil)
	_ bot.Alerts        = (*Store)(nil)
)

// Bounds on what a setting may hold.
const (
	maxSettingKey   = 64
	maxSettingValue = 8000
	maxChannelLen   = 64
)

// CommunitySettings returns every setting a community and its channels
// set, community-wide ones first. EINVALID for a malformed community.
func (s *Store) CommunitySettings(ctx context.Context, community string) ([]bot.Setting, error) {
	const op = "community_settings"
	if err := bot.ValidateCommunity(community); err != nil {
		return nil, s.fail(op, err)
	}
	var out []bot.Setting
	err := eachRow(ctx, s.read, `SELECT channel, key, value, updated_by, updated_at FROM settings
		WHERE community = ? ORDER BY channel, key`, func(r *sql.Rows) error {
		st := bot.Setting{Community: community}
		var by string
		var at int64
		if err := r.Scan(&st.Channel, &st.Key, &st.Value, &by, &at); err != nil {
			return err
		}
		st.UpdatedBy, st.UpdatedAt = bot.Identity(by), fromNanos(at)
		out = append(out, st)
		return nil
	}, community)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// SetSetting stores a setting of a community or one of its channels
// (Value "" removes it) and appends the change to the audit, in one
// transaction; changed is false, and nothing is written, when the value
// is already u.Value. EINVALID for a malformed community, channel, key or
// actor, or an overlong value.
func (s *Store) SetSetting(ctx context.Context, u bot.SettingUpdate) (bot.SettingChange, bool, error) {
	const op = "set_setting"
	if err := bot.ValidateCommunity(u.Community); err != nil {
		return bot.SettingChange{}, false, s.fail(op, err)
	}
	switch {
	case u.Key == "" || len(u.Key) > maxSettingKey:
		return bot.SettingChange{}, false, s.fail(op, bot.Errorf(bot.EINVALID, "A setting needs a key of 1 to %d bytes.", maxSettingKey))
	case len(u.Channel) > maxChannelLen:
		return bot.SettingChange{}, false, s.fail(op, bot.Errorf(bot.EINVALID, "A channel id is at most %d bytes long.", maxChannelLen))
	case utf8.RuneCountInString(u.Value) > maxSettingValue:
		return bot.SettingChange{}, false, s.fail(op, bot.Errorf(bot.EINVALID, "A setting holds at most %d characters.", maxSettingValue))
	}
	if err := u.Actor.Validate(); err != nil {
		return bot.SettingChange{}, false, s.fail(op, err)
	}
	now := fromNanos(nanos(s.opts.Now()))
	c := bot.SettingChange{Community: u.Community, Channel: u.Channel, Key: u.Key, New: u.Value, Actor: u.Actor, At: now}
	changed := false
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE community = ? AND channel = ? AND key = ?`+s.d.forUpdate,
			u.Community, u.Channel, u.Key).Scan(&c.Old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if c.Old == u.Value {
			return errRollback
		}
		if u.Value == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM settings WHERE community = ? AND channel = ? AND key = ?`, u.Community, u.Channel, u.Key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO settings (community, channel, key, value, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (community, channel, key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
				u.Community, u.Channel, u.Key, u.Value, string(u.Actor), nanos(now))
		}
		if err != nil {
			return err
		}
		changed = true
		return tx.QueryRowContext(ctx, `INSERT INTO setting_changes (community, channel, key, old_value, new_value, actor, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, u.Community, u.Channel, u.Key, c.Old, u.Value, string(u.Actor), nanos(now)).Scan(&c.ID)
	})
	if err != nil {
		return bot.SettingChange{}, false, err
	}
	if changed {
		s.log.Info("community setting changed", slog.String("community", u.Community), slog.String("channel", u.Channel),
			slog.String("key", u.Key), slog.String("actor", string(u.Actor)), slog.Int64("change", c.ID))
	}
	return c, changed, nil
}

// SettingChanges returns the community's last limit setting changes,
// newest first (limit ≤ 0: 20; at most 1,000).
func (s *Store) SettingChanges(ctx context.Context, community string, limit int) ([]bot.SettingChange, error) {
	const op = "setting_changes"
	if err := bot.ValidateCommunity(community); err != nil {
		return nil, s.fail(op, err)
	}
	if limit <= 0 {
		limit = defaultHistory
	}
	var out []bot.SettingChange
	err := eachRow(ctx, s.read, `SELECT id, channel, key, old_value, new_value, actor, created_at FROM setting_changes
		WHERE community = ? ORDER BY id DESC LIMIT ?`, func(r *sql.Rows) error {
		c := bot.SettingChange{Community: community}
		var actor string
		var at int64
		if err := r.Scan(&c.ID, &c.Channel, &c.Key, &c.Old, &c.New, &actor, &at); err != nil {
			return err
		}
		c.Actor, c.At = bot.Identity(actor), fromNanos(at)
		out = append(out, c)
		return nil
	}, community, min(limit, maxHistory))
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// NoteMember records that id used the bot in community (once; later calls
// change nothing). ENOTFOUND for an unknown user; EINVALID for a malformed
// community or identity.
func (s *Store) NoteMember(ctx context.Context, community string, id bot.Identity) error {
	const op = "note_member"
	if err := bot.ValidateCommunity(community); err != nil {
		return s.fail(op, err)
	}
	if err := id.Validate(); err != nil {
		return s.fail(op, err)
	}
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1 FROM members WHERE community = ? AND identity = ?`, community, string(id)).Scan(&one); err == nil {
		return nil
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		if _, err := s.user(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO members (community, identity, first_seen) VALUES (?, ?, ?)
			ON CONFLICT (community, identity) DO NOTHING`, community, string(id), nanos(s.opts.Now()))
		return err
	})
}

// Members returns who used the bot in a community, by identity.
func (s *Store) Members(ctx context.Context, community string) ([]bot.Identity, error) {
	const op = "members"
	var out []bot.Identity
	err := eachRow(ctx, s.read, `SELECT identity FROM members WHERE community = ? ORDER BY identity`, func(r *sql.Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, bot.Identity(id))
		return nil
	}, community)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// QueueAlert stores an alert for the scheduler to send, once per key:
// queued is false when the key was queued before. EINVALID for a missing
// key or community, or an overlong text.
func (s *Store) QueueAlert(ctx context.Context, a bot.Alert) (bool, error) {
	const op = "queue_alert"
	switch {
	case a.Key == "" || len(a.Key) > maxKeyLen:
		return false, s.fail(op, bot.Errorf(bot.EINVALID, "An alert needs a key of 1 to %d bytes.", maxKeyLen))
	case utf8.RuneCountInString(a.Text) > maxSettingValue || a.Text == "":
		return false, s.fail(op, bot.Errorf(bot.EINVALID, "An alert needs a text of 1 to %d characters.", maxSettingValue))
	}
	if err := bot.ValidateCommunity(a.Community); err != nil {
		return false, s.fail(op, err)
	}
	queued := false
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alerts (key, community, kind, text, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO NOTHING`, a.Key, a.Community, a.Kind, a.Text, nanos(s.opts.Now()))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		queued = n > 0
		return err
	})
	return queued, err
}

// PendingAlerts returns up to limit alerts not sent yet, oldest first.
func (s *Store) PendingAlerts(ctx context.Context, limit int) ([]bot.Alert, error) {
	const op = "pending_alerts"
	if limit <= 0 {
		limit = 100
	}
	var out []bot.Alert
	err := eachRow(ctx, s.read, `SELECT key, community, kind, text, created_at FROM alerts WHERE sent_at IS NULL
		ORDER BY created_at, key LIMIT ?`, func(r *sql.Rows) error {
		var a bot.Alert
		var at int64
		if err := r.Scan(&a.Key, &a.Community, &a.Kind, &a.Text, &at); err != nil {
			return err
		}
		a.CreatedAt = fromNanos(at)
		out = append(out, a)
		return nil
	}, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// AlertSent marks an alert sent; first is false when it already was (two
// schedulers raced: only the first sends).
func (s *Store) AlertSent(ctx context.Context, key string, at time.Time) (first bool, err error) {
	const op = "alert_sent"
	err = s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET sent_at = ? WHERE key = ? AND sent_at IS NULL`, nanos(at), key)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n > 0
		return err
	})
	return first, err
}

// AlertRecipients says who a community's alerts go to: the channel it set
// (alerts channel), else the people it made its admins and those who
// changed its settings, most recent first (at most ten). The scheduler
// DMs them.
func (s *Store) AlertRecipients(ctx context.Context, community string) (channel string, people []bot.Identity, err error) {
	const op = "alert_recipients"
	settings, err := s.CommunitySettings(ctx, community)
	if err != nil {
		return "", nil, err
	}
	seen := map[bot.Identity]bool{}
	add := func(id bot.Identity) {
		if !seen[id] && id.Validate() == nil && len(people) < 10 {
			seen[id] = true
			people = append(people, id)
		}
	}
	for _, st := range settings {
		if st.Channel != "" {
			continue
		}
		switch st.Key {
		case bot.SettingAlertsChannel:
			channel = st.Value
		case bot.SettingAdmins:
			for _, a := range bot.SplitList(st.Value) {
				add(bot.Identity(a))
			}
		}
	}
	err = eachRow(ctx, s.read, `SELECT actor FROM setting_changes WHERE community = ? GROUP BY actor ORDER BY MAX(id) DESC LIMIT 10`,
		func(r *sql.Rows) error {
			var a string
			if err := r.Scan(&a); err != nil {
				return err
			}
			add(bot.Identity(a))
			return nil
		}, community)
	if err != nil {
		return "", nil, s.fail(op, err)
	}
	return channel, people, nil
}

// KnownCommunity reports whether the ledger has heard of a community: it
// has a pool, settings, members or compares. The host's tools use it to
// tell a guild from a user whose id has the same shape.
func (s *Store) KnownCommunity(ctx context.Context, community string) (bool, error) {
	const op = "known_community"
	if bot.ValidateCommunity(community) != nil {
		return false, nil
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM pools WHERE community = ?1) + (SELECT COUNT(*) FROM settings WHERE community = ?1)
		+ (SELECT COUNT(*) FROM members WHERE community = ?1) + (SELECT COUNT(*) FROM compares WHERE community = ?1)`, community).Scan(&n)
	if err != nil {
		return false, s.fail(op, err)
	}
	return n > 0, nil
}
