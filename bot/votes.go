package bot

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// CompareRecord is a finished compare that members can vote on. Only
// metadata is kept: which models took part, where and when.
type CompareRecord struct {
	ID        string
	Community string
	Requester Identity
	Models    []string // in panel order: A, B, C, D
	// Failed are the letters of the panels whose model failed: no vote
	// may go to them (the others still win over them).
	Failed []string
	// Blind: the models were hidden until a member voted; its votes are
	// blind votes, marked and weighted in the leaderboard.
	Blind bool
	// Tier is the tier the auto router classified the compare's prompt
	// into ("" when unknown: compares recorded before tiers were kept):
	// its votes teach the router that tier's preferences here.
	Tier      string
	CreatedAt time.Time
}

// Tally counts the votes of one compare by choice ("A".."D", "tie").
type Tally map[string]int

// PairRecord is the head-to-head result of two models in one community,
// the input of a leaderboard ranking.
type PairRecord struct {
	A, B         string
	AWins, BWins int
	Ties         int
	// The blind votes among them (from compares that hid the models).
	BlindAWins, BlindBWins, BlindTies int
}

// Votes stores compares and the votes members cast on them.
type Votes interface {
	// RecordCompare stores a compare so it can be voted on.
	RecordCompare(ctx context.Context, c CompareRecord) error

	// Vote records one vote ("A".."D" or "tie") and returns the new tally.
	// ENOTFOUND for an unknown compare; EINVALID for a choice the compare
	// does not have or a panel that failed; ECONFLICT when this voter
	// already voted on it.
	Vote(ctx context.Context, compareID string, voter Identity, choice string) (Tally, error)

	// Pairs returns head-to-head results in a community, or across every
	// community when community is "".
	Pairs(ctx context.Context, community string) ([]PairRecord, error)

	// Compare returns a recorded compare. ENOTFOUND for an unknown id.
	Compare(ctx context.Context, id string) (CompareRecord, error)
}

// TierResults are one tier's votes in one community: the head-to-head
// results of the compares whose prompt was classified into the tier, and
// the answer feedback (thumbs) its models got.
type TierResults struct {
	Tier string
	// Votes counts the votes cast on the tier's compares (one per voter
	// and compare); Pairs are the head-to-head results they make.
	Votes int
	Pairs []PairRecord
	// Feedback is the answer feedback per model where a platform has it
	// (a thumbs up or down under an answer): nil until a store records
	// it. Each counts as a game against an average model.
	Feedback []ModelFeedback
}

// ModelFeedback is the thumbs one model's answers got in a tier.
type ModelFeedback struct {
	Model    string
	Up, Down int
}

// TierVotes is the optional power of a Votes store to group a
// community's votes by the tier of their prompts, for the auto router's
// learning.
type TierVotes interface {
	// TierResults returns the community's votes grouped by tier, tiers in
	// name order; compares without a tier are left out. EINVALID for an
	// empty community.
	TierResults(ctx context.Context, community string) ([]TierResults, error)
}

// String writes the tally in choice order, tie last: "A 2 · B 1 · tie 0",
// or "none yet" before the first vote.
func (t Tally) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i] == "tie" || keys[j] == "tie" {
			return keys[j] == "tie" && keys[i] != "tie"
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return "none yet"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, t[k])
	}
	return strings.Join(parts, " · ")
}

// AnswerVote is one member's thumbs up or down on one answer (Slack's
// feedback buttons). Only metadata: which answer, who, where, which model.
type AnswerVote struct {
	// Answer is the platform's reference to the answer message
	// ("slack:C123:1712345678.000100").
	Answer    string
	Voter     Identity
	Community string
	Model     string // the model that wrote the answer
	Up        bool
	CreatedAt time.Time
}

// Feedback is an optional power of a Votes store: thumbs on single
// answers, which the leaderboard counts as a rating of one model (an up is
// a win, a down a loss, against a virtual average model).
type Feedback interface {
	// RecordFeedback records one member's vote on one answer. EINVALID for
	// a missing answer, community or model or a malformed voter; ECONFLICT
	// when the member already voted on that answer.
	RecordFeedback(ctx context.Context, v AnswerVote) error

	// FeedbackCounts returns each model's thumbs in a community, or across
	// every community when community is "", ordered by model.
	FeedbackCounts(ctx context.Context, community string) ([]ModelFeedback, error)
}
