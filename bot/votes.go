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
	Failed    []string
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
