package accounts

import (
	"context"
	"database/sql"

	"github.com/orchat/orchat/bot"
)

var _ bot.Feedback = (*Store)(nil)

// RecordFeedback records one member's thumbs up or down on one answer,
// once: a second vote by the same member on the same answer is ECONFLICT
// and changes nothing. EINVALID for a missing answer, community or model,
// or a malformed voter.
func (s *Store) RecordFeedback(ctx context.Context, v bot.AnswerVote) error {
	const op = "record_feedback"
	switch {
	case v.Answer == "" || len(v.Answer) > maxKeyLen:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A vote needs the answer it is on (1 to %d bytes).", maxKeyLen))
	case v.Community == "" || len(v.Community) > bot.MaxIdentityLen:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A vote needs a community such as discord:123 or slack:T0123."))
	case v.Model == "" || len(v.Model) > maxModelLen:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A vote needs the model of the answer (1 to %d bytes).", maxModelLen))
	}
	if err := v.Voter.Validate(); err != nil {
		return s.fail(op, err)
	}
	at := v.CreatedAt
	if at.IsZero() {
		at = s.opts.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO answer_votes (answer, voter, community, model, up, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (answer, voter) DO NOTHING`, v.Answer, string(v.Voter), v.Community, v.Model, v.Up, nanos(at))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return bot.Errorf(bot.ECONFLICT, "You already rated this answer.")
		}
		return nil
	})
}

// FeedbackCounts returns each model's thumbs up and down in a community
// (every community when community is ""), ordered by model.
func (s *Store) FeedbackCounts(ctx context.Context, community string) ([]bot.ModelFeedback, error) {
	const op = "feedback_counts"
	query := `SELECT model, SUM(CASE WHEN up THEN 1 ELSE 0 END), SUM(CASE WHEN up THEN 0 ELSE 1 END) FROM answer_votes`
	var args []any
	if community != "" {
		query += ` WHERE community = ?`
		args = append(args, community)
	}
	query += ` GROUP BY model ORDER BY model`
	var out []bot.ModelFeedback
	err := eachRow(ctx, s.read, query, func(r *sql.Rows) error {
		var f bot.ModelFeedback
		if err := r.Scan(&f.Model, &f.Up, &f.Down); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}
