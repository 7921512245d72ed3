package accounts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/orchat/orchat/bot"
)

// Compare limits: a panel shows 2 to 4 models, A to D.
const (
	minCompareModels = 2
	maxCompareModels = 4
)

// choiceTie is the choice that scores every pair of the compare as a tie.
const choiceTie = "tie"

// RecordCompare stores a finished compare so members can vote on it: its
// id, community, requester and models, never the prompt or the answers.
// EINVALID for a missing id or community, a malformed requester or a panel
// that is not 2-4 models; ECONFLICT when the id is taken.
func (s *Store) RecordCompare(ctx context.Context, c bot.CompareRecord) error {
	const op = "record_compare"
	switch {
	case c.ID == "" || len(c.ID) > maxKeyLen:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A compare needs an id of 1 to %d bytes.", maxKeyLen))
	case c.Community == "" || len(c.Community) > bot.MaxIdentityLen:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A compare needs a community such as discord:123 or slack:T0123."))
	case len(c.Models) < minCompareModels || len(c.Models) > maxCompareModels:
		return s.fail(op, bot.Errorf(bot.EINVALID, "A compare shows %d to %d models, not %d.", minCompareModels, maxCompareModels, len(c.Models)))
	}
	if c.Tier != "" && !slices.Contains(bot.TierNames, c.Tier) {
		return s.fail(op, bot.Errorf(bot.EINVALID, "A compare's tier is one of %s, not %q.", strings.Join(bot.TierNames, ", "), bot.Clip(c.Tier, 40)))
	}
	for _, m := range c.Models {
		if m == "" || len(m) > maxModelLen {
			return s.fail(op, bot.Errorf(bot.EINVALID, "A compare's models need ids of 1 to %d bytes.", maxModelLen))
		}
	}
	failed := []string{}
	for _, l := range c.Failed {
		if !slices.Contains(letters(len(c.Models)), l) {
			return s.fail(op, bot.Errorf(bot.EINVALID, "A compare of %d models has panels %s, not %q.", len(c.Models), strings.Join(letters(len(c.Models)), ", "), l))
		}
		failed = append(failed, l)
	}
	if err := c.Requester.Validate(); err != nil {
		return s.fail(op, err)
	}
	models, err := json.Marshal(c.Models)
	if err != nil {
		return s.fail(op, err)
	}
	failedJSON, err := json.Marshal(failed)
	if err != nil {
		return s.fail(op, err)
	}
	created := c.CreatedAt
	if created.IsZero() {
		created = s.opts.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO compares (id, community, requester, models, failed, created_at, blind, tier) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Community, string(c.Requester), string(models), string(failedJSON), nanos(created), c.Blind, c.Tier)
		return err
	})
}

// Vote records one member's vote on a compare: a panel letter ("A".."D",
// any case) or "tie", and returns the compare's new tally. ENOTFOUND for an
// unknown compare; EINVALID for a choice the compare does not have, a panel
// that failed or a malformed voter; ECONFLICT when this voter already voted
// on it.
func (s *Store) Vote(ctx context.Context, compareID string, voter bot.Identity, choice string) (bot.Tally, error) {
	const op = "vote"
	if err := voter.Validate(); err != nil {
		return nil, s.fail(op, err)
	}
	choice = strings.TrimSpace(choice)
	if strings.EqualFold(choice, choiceTie) {
		choice = choiceTie
	} else {
		choice = strings.ToUpper(choice)
	}
	tally := bot.Tally{}
	err := s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		models, failed, err := compareModels(ctx, tx, compareID)
		if err != nil {
			return err
		}
		var open []string // the panels that may get a vote
		for _, l := range letters(len(models)) {
			if !slices.Contains(failed, l) {
				open = append(open, l)
			}
		}
		if i := slices.Index(letters(len(models)), choice); i >= 0 && slices.Contains(failed, choice) {
			return bot.Errorf(bot.EINVALID, "Answer %s (%s) failed, so it cannot get a vote; vote %s or tie.",
				choice, models[i], strings.Join(open, ", "))
		}
		if choice != choiceTie && !slices.Contains(letters(len(models)), choice) {
			return bot.Errorf(bot.EINVALID, "This compare has models %s; vote %s or tie.",
				strings.Join(letters(len(models)), ", "), strings.Join(open, ", "))
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO votes (compare_id, voter, choice, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (compare_id, voter) DO NOTHING`,
			compareID, string(voter), choice, nanos(s.opts.Now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return bot.Errorf(bot.ECONFLICT, "You already voted on this compare.")
		}
		return eachRow(ctx, tx, `SELECT choice, COUNT(*) FROM votes WHERE compare_id = ? GROUP BY choice`, func(r *sql.Rows) error {
			var c string
			var n int
			if err := r.Scan(&c, &n); err != nil {
				return err
			}
			tally[c] = n
			return nil
		}, compareID)
	})
	if err != nil {
		return nil, err
	}
	return tally, nil
}

// Compare returns a recorded compare: its community, requester, models
// in panel order, whether it was blind and its prompt's tier. ENOTFOUND for an unknown id.
func (s *Store) Compare(ctx context.Context, id string) (bot.CompareRecord, error) {
	const op = "compare"
	c := bot.CompareRecord{ID: id}
	var requester, raw, failed string
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT community, requester, models, failed, blind, tier, created_at FROM compares WHERE id = ?`, id).
		Scan(&c.Community, &requester, &raw, &failed, &c.Blind, &c.Tier, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return c, s.fail(op, bot.Errorf(bot.ENOTFOUND, "That compare does not exist (any more); start a new one with /compare."))
	} else if err != nil {
		return c, s.fail(op, err)
	}
	if err := json.Unmarshal([]byte(raw), &c.Models); err != nil {
		return c, s.fail(op, fmt.Errorf("compare %s: models: %w", id, err))
	}
	if err := json.Unmarshal([]byte(failed), &c.Failed); err != nil {
		return c, s.fail(op, fmt.Errorf("compare %s: failed panels: %w", id, err))
	}
	c.Requester, c.CreatedAt = bot.Identity(requester), fromNanos(created)
	return c, nil
}

// letters returns the panel letters of n models: A, B, ….
func letters(n int) []string {
	ls := make([]string, n)
	for i := range ls {
		ls[i] = string(rune('A' + i))
	}
	return ls
}

// compareModels returns a compare's models in panel order and the letters
// of its failed panels.
func compareModels(ctx context.Context, q queryer, id string) (models, failed []string, err error) {
	var rawModels, rawFailed string
	err = q.QueryRowContext(ctx, `SELECT models, failed FROM compares WHERE id = ?`, id).Scan(&rawModels, &rawFailed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, bot.Errorf(bot.ENOTFOUND, "That compare does not exist (any more); start a new one with /compare.")
	} else if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal([]byte(rawModels), &models); err != nil {
		return nil, nil, fmt.Errorf("compare %s: models: %w", id, err)
	}
	if err := json.Unmarshal([]byte(rawFailed), &failed); err != nil {
		return nil, nil, fmt.Errorf("compare %s: failed: %w", id, err)
	}
	return models, failed, nil
}

// Pairs returns the head-to-head results of every pair of models that met
// in a compare of the community (of every community when community is ""),
// ordered by the pair's model ids. A vote for a model is a win over every
// other model of its compare; a tie is a tie for every pair. Each pair is
// written with A < B.
func (s *Store) Pairs(ctx context.Context, community string) ([]bot.PairRecord, error) {
	const op = "pairs"
	query := `SELECT '', c.models, c.blind, v.choice, COUNT(*) FROM votes v JOIN compares c ON c.id = v.compare_id`
	var args []any
	if community != "" {
		query += ` WHERE c.community = ?`
		args = append(args, community)
	}
	query += ` GROUP BY c.id, c.models, c.blind, v.choice`
	byTier, err := s.tally(ctx, query, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	if len(byTier) == 0 {
		return []bot.PairRecord{}, nil
	}
	return byTier[0].Pairs, nil
}

// TierResults returns the community's votes grouped by the tier of their
// compare's prompt, tiers in name order; compares recorded without a tier
// are left out. One query: the router reads it once per refresh, never
// per plan. EINVALID for an empty community.
func (s *Store) TierResults(ctx context.Context, community string) ([]bot.TierResults, error) {
	const op = "tier_results"
	if community == "" {
		return nil, s.fail(op, bot.Errorf(bot.EINVALID, "Tier results belong to a community such as discord:123."))
	}
	out, err := s.tally(ctx, `SELECT c.tier, c.models, c.blind, v.choice, COUNT(*) FROM votes v JOIN compares c ON c.id = v.compare_id
		WHERE c.community = ? AND c.tier <> '' GROUP BY c.id, c.tier, c.models, c.blind, v.choice`, community)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// tally runs a query of (tier, models, blind, choice, count) rows and
// turns them into head-to-head results per tier, tiers in name order. A
// vote for a model is a win over every other model of its compare; a tie
// is a tie for every pair. Each pair is written with A < B, pairs ordered
// by their model ids.
func (s *Store) tally(ctx context.Context, query string, args ...any) ([]bot.TierResults, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	type pair struct{ tier, a, b string }
	records := map[pair]*bot.PairRecord{}
	votes := map[string]int{}
	record := func(tier, x, y string) (*bot.PairRecord, bool) {
		swapped := y < x
		if swapped {
			x, y = y, x
		}
		p := records[pair{tier, x, y}]
		if p == nil {
			p = &bot.PairRecord{A: x, B: y}
			records[pair{tier, x, y}] = p
		}
		return p, swapped
	}
	for rows.Next() {
		var tier, raw, choice string
		var blind bool
		var n int
		if err := rows.Scan(&tier, &raw, &blind, &choice, &n); err != nil {
			return nil, err
		}
		var models []string
		if err := json.Unmarshal([]byte(raw), &models); err != nil {
			return nil, err
		}
		votes[tier] += n
		if choice == choiceTie {
			for i := range models {
				for j := i + 1; j < len(models); j++ {
					if models[i] != models[j] {
						p, _ := record(tier, models[i], models[j])
						p.Ties += n
						if blind {
							p.BlindTies += n
						}
					}
				}
			}
			continue
		}
		w := slices.Index(letters(len(models)), choice)
		if w < 0 {
			continue // not a choice of this compare; Vote never writes one
		}
		for i, loser := range models {
			if i == w || loser == models[w] {
				continue
			}
			p, swapped := record(tier, models[w], loser)
			switch {
			case swapped:
				p.BWins += n
			default:
				p.AWins += n
			}
			if blind && swapped {
				p.BlindBWins += n
			} else if blind {
				p.BlindAWins += n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	byTier := map[string]*bot.TierResults{}
	var out []bot.TierResults
	for tier, n := range votes {
		out = append(out, bot.TierResults{Tier: tier, Votes: n, Pairs: []bot.PairRecord{}})
	}
	slices.SortFunc(out, func(x, y bot.TierResults) int { return strings.Compare(x.Tier, y.Tier) })
	for i := range out {
		byTier[out[i].Tier] = &out[i]
	}
	for k, p := range records {
		t := byTier[k.tier]
		t.Pairs = append(t.Pairs, *p)
	}
	for i := range out {
		slices.SortFunc(out[i].Pairs, func(x, y bot.PairRecord) int {
			if c := strings.Compare(x.A, y.A); c != 0 {
				return c
			}
			return strings.Compare(x.B, y.B)
		})
	}
	return out, nil
}

// DefaultModel returns the user's chosen model, or "" for the auto router.
// EINVALID for a malformed identity; ENOTFOUND for an unknown one.
func (s *Store) DefaultModel(ctx context.Context, id bot.Identity) (string, error) {
	const op = "default_model"
	if err := id.Validate(); err != nil {
		return "", s.fail(op, err)
	}
	var model string
	err := s.read.QueryRowContext(ctx, `SELECT default_model FROM users WHERE identity = ?`, string(id)).Scan(&model)
	if errors.Is(err, sql.ErrNoRows) {
		return "", s.fail(op, unknownUser(id))
	} else if err != nil {
		return "", s.fail(op, err)
	}
	return model, nil
}

// SetDefaultModel sets the user's model; "" goes back to the auto router.
// The caller validates the id against the catalog. EINVALID for a malformed
// identity or an overlong id; ENOTFOUND for an unknown user.
func (s *Store) SetDefaultModel(ctx context.Context, id bot.Identity, model string) error {
	const op = "set_default_model"
	if err := id.Validate(); err != nil {
		return s.fail(op, err)
	}
	if len(model) > maxModelLen {
		return s.fail(op, bot.Errorf(bot.EINVALID, "A model id is at most %d bytes long.", maxModelLen))
	}
	return s.write(ctx, op, func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET default_model = ? WHERE identity = ?`, model, string(id))
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
}
