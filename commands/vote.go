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
