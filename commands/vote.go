package commands

import (
	"context"
	"fmt"
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
			var b strings.Builder
			b.WriteString("**Leaderboard here** (Bradley–Terry rating from /compare votes; a blind vote counts twice)\n")
			writeRanking(&b, Rank(here), 10)
			b.WriteString("\n**Across every community**\n")
			writeRanking(&b, Rank(all), 10)
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
		fmt.Fprintf(b, "%d. %s — %d (%d %s%s: %d won, %d lost, %d tied)\n", i+1, r.Model, r.Rating,
			r.Votes, bot.Plural(r.Votes, "vote", "votes"), blind, r.Wins, r.Losses, r.Ties)
	}
}

// Ranking is one model's place on a leaderboard.
type Ranking = bot.Ranking

// BlindWeight is what a vote from a blind compare counts in the ranking,
// against 1 for a vote that saw the names.
const BlindWeight = bot.BlindWeight

// Rank orders models by a Bradley–Terry fit of their head-to-head results
// (bot.RankPairs, which the auto router's learning shares).
func Rank(pairs []bot.PairRecord) []Ranking { return bot.RankPairs(pairs, nil) }

// RankWithFeedback is Rank with the thumbs members gave single answers,
// each a win or a loss against an average model (bot.RankPairs).
func RankWithFeedback(pairs []bot.PairRecord, feedback []bot.ModelFeedback) []Ranking {
	return bot.RankPairs(pairs, feedback)
}
