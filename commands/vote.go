package commands

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/orchat/orchat/bot"
)

func (s *set) vote() *bot.Command {
	return &bot.Command{
		Name:    "vote",
		Usage:   "vote COMPARE_ID A|B|C|D|tie",
		Summary: "Vote for the best answer of a compare (once per compare).",
		Private: true,
		Options: []bot.Option{
			{Name: "compare", Description: "The compare's id (shown under it)", Required: true},
			{Name: "choice", Description: "A, B, C, D or tie", Required: true},
		},
		Run: func(ctx context.Context, req *bot.Request) error {
			id := strings.TrimSpace(req.Args.Get("compare", 0))
			choice := strings.TrimSpace(req.Args.Get("choice", 1))
			if id == "" || choice == "" {
				return bot.Errorf(bot.EINVALID, "Say which compare and which answer: /vote c1a2b3c4 A (or tie).")
			}
			choice = strings.ToUpper(choice)
			if choice == "TIE" {
				choice = "tie"
			}
			tally, err := s.Votes.Vote(ctx, id, req.Event.Identity, choice)
			if bot.ErrorCode(err) == bot.ECONFLICT {
				// Voted before: a blind compare's names are theirs to see.
				return bot.Errorf(bot.ECONFLICT, "%s%s", bot.ErrorMessage(err), s.reveal(ctx, id))
			} else if err != nil {
				return err
			}
			return req.Reply.Send(bot.Message{
				Kind: bot.KindNotice, Private: true,
				Text: fmt.Sprintf("Your vote for %s is in. Votes so far: %s.%s", choiceName(choice), tally, s.reveal(ctx, id)),
				Vote: &bot.VoteResult{CompareID: id, Choice: choice, Tally: tally},
			})
		},
	}
}

// reveal names the models of a blind compare, for a member who voted:
// " The models were: A google/…, B openai/…". "" for a compare that was
// not blind.
func (s *set) reveal(ctx context.Context, id string) string {
	rec, err := s.Votes.Compare(ctx, id)
	if err != nil || !rec.Blind {
		return ""
	}
	parts := make([]string, len(rec.Models))
	for i, m := range rec.Models {
		parts[i] = labels[i] + " " + m
	}
	return " It was blind: " + strings.Join(parts, " · ") + "."
}

func choiceName(c string) string {
	if c == "tie" {
		return "a tie"
	}
	return c
}

// feedback records a thumbs up or down on one answer (the buttons under
// a streamed Slack answer); each member rates an answer once.
func (s *set) feedback() *bot.Command {
	return &bot.Command{
		Name:    "feedback",
		Usage:   "feedback ANSWER MODEL up|down",
		Summary: "Rate one answer up or down (the buttons under an answer); it counts in /leaderboard.",
		Private: true,
		Options: []bot.Option{
			{Name: "answer", Description: "The answer's reference", Required: true},
			{Name: "model", Description: "The model that wrote it", Required: true},
			{Name: "vote", Description: "up or down", Required: true, Choices: []string{"up", "down"}},
		},
		Run: func(ctx context.Context, req *bot.Request) error {
			answer := strings.TrimSpace(req.Args.Get("answer", 0))
			model := strings.TrimSpace(req.Args.Get("model", 1))
			vote := strings.ToLower(strings.TrimSpace(req.Args.Get("vote", 2)))
			if answer == "" || model == "" {
				return bot.Errorf(bot.EINVALID, "Rate an answer with its 👍 or 👎 button.")
			}
			if vote != "up" && vote != "down" {
				return bot.Errorf(bot.EINVALID, "A rating is up or down (the 👍 and 👎 buttons under an answer), not %q.", vote)
			}
			fb, ok := s.Votes.(bot.Feedback)
			if !ok {
				return bot.Errorf(bot.EUNAVAILABLE, "Rating answers is not available in this orchat.")
			}
			err := fb.RecordFeedback(ctx, bot.AnswerVote{Answer: answer, Voter: req.Event.Identity, Community: req.Event.Community, Model: model, Up: vote == "up"})
			if err != nil {
				return err
			}
			thumb := "👍"
			if vote == "down" {
				thumb = "👎"
			}
			return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true,
				Text: fmt.Sprintf("Thanks: your %s for %s counts in /leaderboard.", thumb, model)})
		},
	}
}

func (s *set) leaderboard() *bot.Command {
	return &bot.Command{
		Name:    "leaderboard",
		Usage:   "leaderboard",
		Summary: "Models ranked by compare votes, here and across every community.",
		Run: func(ctx context.Context, req *bot.Request) error {
			here, err := s.Votes.Pairs(ctx, req.Event.Community)
			if err != nil {
				return fmt.Errorf("leaderboard: %w", err)
			}
			all, err := s.Votes.Pairs(ctx, "")
			if err != nil {
				return fmt.Errorf("leaderboard: %w", err)
			}
			var fbHere, fbAll []bot.ModelFeedback
			if fb, ok := s.Votes.(bot.Feedback); ok {
				if fbHere, err = fb.FeedbackCounts(ctx, req.Event.Community); err != nil {
					return fmt.Errorf("leaderboard: %w", err)
				}
				if fbAll, err = fb.FeedbackCounts(ctx, ""); err != nil {
					return fmt.Errorf("leaderboard: %w", err)
				}
			}
			var b strings.Builder
			b.WriteString("**Leaderboard here** (Bradley–Terry rating from /compare votes, a blind vote counting twice, and 👍/👎 on answers as wins and losses against an average model)\n")
			writeRanking(&b, RankWithFeedback(here, fbHere), 10)
			b.WriteString("\n**Across every community**\n")
			writeRanking(&b, RankWithFeedback(all, fbAll), 10)
			return req.Reply.Notice(strings.TrimSpace(b.String()))
		},
	}
}

func writeRanking(b *strings.Builder, rs []Ranking, n int) {
	if len(rs) == 0 {
		b.WriteString("No votes yet. Run /compare and vote for the best answer.\n")
		return
	}
	for i, r := range rs {
		if i == n {
			break
		}
		blind := ""
		if r.Blind > 0 {
			blind = fmt.Sprintf(", %d blind", r.Blind)
		}
		thumbs := ""
		if r.Up+r.Down > 0 {
			thumbs = fmt.Sprintf(" · 👍 %d 👎 %d", r.Up, r.Down)
		}
		fmt.Fprintf(b, "%d. %s — %d (%d %s%s: %d won, %d lost, %d tied%s)\n", i+1, r.Model, r.Rating,
			r.Votes, bot.Plural(r.Votes, "vote", "votes"), blind, r.Wins, r.Losses, r.Ties, thumbs)
	}
}

// Ranking is one model's place on a leaderboard.
type Ranking struct {
	Model              string
	Rating             int // Elo-like scale: 1000 is average, +400 is ten times the odds
	Votes              int // head-to-head results the model took part in
	Wins, Losses, Ties int
	Blind              int // of the votes, those from blind compares
	Up, Down           int // thumbs on single answers (Slack's feedback buttons)
}

// BlindWeight is what a vote from a blind compare counts in the ranking,
// against 1 for a vote that saw the names.
const BlindWeight = 2.0

// Rank orders models by a Bradley–Terry fit of their head-to-head results,
// a tie counting half a win each way. A weak prior (four even games against
// an average model) keeps a model with one lucky vote from topping the board.
func Rank(pairs []bot.PairRecord) []Ranking { return RankWithFeedback(pairs, nil) }

// RankWithFeedback is Rank with the thumbs members gave single answers:
// each up counts as a win and each down as a loss against a virtual
// average model (strength 1, the prior's opponent), so an answer's rating
// moves the model as a head-to-head result against the average would.
func RankWithFeedback(pairs []bot.PairRecord, feedback []bot.ModelFeedback) []Ranking {
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
	ups := make(map[int]float64)
	downs := make(map[int]float64)
	for _, f := range feedback {
		if f.Up+f.Down == 0 {
			continue
		}
		i := get(f.Model)
		rs[i].Up += f.Up
		rs[i].Down += f.Down
		ups[i] += float64(f.Up)
		downs[i] += float64(f.Down)
	}
	// Minorization–maximization (Hunter 2004), with the prior as virtual
	// even games against a model of strength 1; thumbs are games against
	// that same average model.
	const prior = 4.0
	strength := make([]float64, len(rs))
	for i := range strength {
		strength[i] = 1
	}
	for iter := 0; iter < 200; iter++ {
		wins := make([]float64, len(rs))
		denom := make([]float64, len(rs))
		for i := range rs {
			wins[i] = prior/2 + ups[i]
			denom[i] = (prior + ups[i] + downs[i]) / (strength[i] + 1)
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
