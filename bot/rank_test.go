package bot_test

import (
	"testing"

	"github.com/orchat/orchat/bot"
)

// Answer feedback counts in the rating as games against an average model:
// thumbs up lift a model, thumbs down sink it, and a model with feedback
// only is ranked beside those with head-to-head votes.
func TestRankPairsFeedback(t *testing.T) {
	pairs := []bot.PairRecord{{A: "a", B: "b", AWins: 3, BWins: 3}}
	even := bot.RankPairs(pairs, nil)
	if even[0].Rating != even[1].Rating {
		t.Fatalf("even head-to-head rated %+v", even)
	}
	rs := bot.RankPairs(pairs, []bot.ModelFeedback{{Model: "b", Up: 8}, {Model: "a", Down: 5}, {Model: "c", Up: 1, Down: 1}, {Model: "d"}})
	if len(rs) != 3 {
		t.Fatalf("rankings %+v: a model with no feedback and no votes is not ranked", rs)
	}
	if rs[0].Model != "b" || rs[0].Up != 8 || rs[2].Model != "a" || rs[2].Down != 5 {
		t.Fatalf("rankings %+v, want b (thumbs up) first and a (thumbs down) last", rs)
	}
	if rs[1].Model != "c" || rs[1].Rating != 1000 {
		t.Fatalf("rankings %+v, want c (one up, one down) at the average 1000", rs)
	}
}
