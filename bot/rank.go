package bot

import (
	"math"
	"sort"
)

// Ranking is one model's place on a leaderboard.
type Ranking struct {
	Model              string
	Rating             int // Elo-like scale: 1000 is average, +400 is ten times the odds
	Votes              int // head-to-head results the model took part in
	Wins, Losses, Ties int
	Blind              int // of the votes, those from blind compares
	// Up and Down are the answer feedback counted in the rating.
	Up, Down int
}

// BlindWeight is what a vote from a blind compare counts in the ranking,
// against 1 for a vote that saw the names.
const BlindWeight = 2.0

// RankPairs orders models by a Bradley–Terry fit of their head-to-head
// results, a tie counting half a win each way; an answer's thumbs up (or
// down) counts as a win (or a loss) against an average model. A weak prior
// (four even games against an average model) keeps a model with one lucky
// vote from topping the board. The leaderboard and the auto router's
// learning share it, so a community sees the ratings its router uses.
func RankPairs(pairs []PairRecord, feedback []ModelFeedback) []Ranking {
	idx := map[string]int{}
	var rs []Ranking
	get := func(m string) int {
		if i, ok := idx[m]; ok {
			return i
		}
		idx[m] = len(rs)
		rs = append(rs, Ranking{Model: m})
		return idx[m]
	}
	type game struct {
		a, b   int
		aw, bw float64 // wins with ties as halves
		n      float64
	}
	var games []game
	for _, p := range pairs {
		a, b := get(p.A), get(p.B)
		n := p.AWins + p.BWins + p.Ties
		if n == 0 || a == b {
			continue
		}
		// A blind vote weighs BlindWeight votes: its voter did not know
		// which model wrote what.
		w := BlindWeight - 1
		aw := float64(p.AWins) + w*float64(p.BlindAWins)
		bw := float64(p.BWins) + w*float64(p.BlindBWins)
		ties := float64(p.Ties) + w*float64(p.BlindTies)
		games = append(games, game{a, b, aw + ties/2, bw + ties/2, aw + bw + ties})
		rs[a].Wins += p.AWins
		rs[a].Losses += p.BWins
		rs[b].Wins += p.BWins
		rs[b].Losses += p.AWins
		rs[a].Ties += p.Ties
		rs[b].Ties += p.Ties
		rs[a].Votes += n
		rs[b].Votes += n
		blind := p.BlindAWins + p.BlindBWins + p.BlindTies
		rs[a].Blind += blind
		rs[b].Blind += blind
	}
	for _, f := range feedback {
		if f.Up+f.Down <= 0 {
			continue
		}
		i := get(f.Model)
		rs[i].Up += f.Up
		rs[i].Down += f.Down
	}
	// Minorization–maximization (Hunter 2004), with the prior and the
	// feedback as games against a model of strength 1.
	const prior = 4.0
	strength := make([]float64, len(rs))
	for i := range strength {
		strength[i] = 1
	}
	for iter := 0; iter < 200; iter++ {
		wins := make([]float64, len(rs))
		denom := make([]float64, len(rs))
		for i := range rs {
			wins[i] = prior/2 + float64(rs[i].Up)
			denom[i] = (prior + float64(rs[i].Up+rs[i].Down)) / (strength[i] + 1)
		}
		for _, g := range games {
			wins[g.a] += g.aw
			wins[g.b] += g.bw
			d := g.n / (strength[g.a] + strength[g.b])
			denom[g.a] += d
			denom[g.b] += d
		}
		delta := 0.0
		for i := range strength {
			next := wins[i] / denom[i]
			delta = math.Max(delta, math.Abs(next-strength[i]))
			strength[i] = next
		}
		if delta < 1e-9 {
			break
		}
	}
	for i := range rs {
		rs[i].Rating = int(math.Round(1000 + 400*math.Log10(strength[i])))
	}
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Rating != rs[j].Rating {
			return rs[i].Rating > rs[j].Rating
		}
		if rs[i].Votes != rs[j].Votes {
			return rs[i].Votes > rs[j].Votes
		}
		return rs[i].Model < rs[j].Model
	})
	return rs
}
