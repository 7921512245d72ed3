package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
)

func (s *set) imagine() *bot.Command {
	return &bot.Command{
		Name:    "imagine",
		Usage:   "imagine PROMPT [model:ID]",
		Summary: "Have an image model draw something; the picture is posted as a file (see /models image).",
		Options: []bot.Option{
			{Name: "prompt", Description: "What to draw", Required: true, Rest: true},
			{Name: "model", Description: "An image model (default: the configured one)", Model: true},
		},
		Run: func(ctx context.Context, req *bot.Request) error {
			prompt := strings.TrimSpace(cleanInvisible(req.Args.Get("prompt", -1)))
			if prompt == "" {
				return bot.Errorf(bot.EINVALID, "Tell me what to draw, for example: /imagine a lighthouse at dusk, watercolour")
			}
			if err := s.creditsLeft(ctx, req); err != nil {
				return err
			}
			msgs := []bot.ChatMessage{{Role: bot.RoleUser, Content: prompt}}
			return s.answer(ctx, req, msgs, bot.PlanRequest{Model: strings.TrimSpace(req.Args.Get("model", -1)), ImageOutput: true}, "imagine")
		},
	}
}

// credits shows host admins what the bot's OpenRouter key has left.
func (s *set) credits() *bot.Command {
	return &bot.Command{
		Name:    "credits",
		Usage:   "credits",
		Summary: "The bot's OpenRouter credits: the key's limit, what is left and what was used.",
		Admin:   true,
		Private: true,
		Run: func(ctx context.Context, req *bot.Request) error {
			if s.Credits == nil {
				return bot.Errorf(bot.EUNAVAILABLE, "This bot's upstream does not report credits.")
			}
			c, err := s.Credits.RefreshCredits(ctx)
			if err != nil {
				return err
			}
			if !c.Known {
				return req.Reply.Notice("The upstream is not OpenRouter (openrouter.base_url), so it reports no credits.")
			}
			var b strings.Builder
			if c.LimitUSD == nil {
				fmt.Fprintf(&b, "**OpenRouter key:** no credit limit; $%.4f used so far.", c.UsageUSD)
			} else {
				fmt.Fprintf(&b, "**OpenRouter key:** $%.4f left of a $%.2f limit ($%.4f used).", deref(c.RemainingUSD), *c.LimitUSD, c.UsageUSD)
				if c.Out() {
					b.WriteString("\nIt is out: every paid answer is refused until credits are added.")
				} else if s.Config.LowCreditsUSD > 0 && c.Below(s.Config.LowCreditsUSD) {
					fmt.Fprintf(&b, "\nThat is below the low-credit mark of $%.2f: add credits soon.", s.Config.LowCreditsUSD)
				}
			}
			return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: b.String()})
		},
	}
}
