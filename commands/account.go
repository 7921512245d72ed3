package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

func (s *set) balance() *bot.Command {
	return &bot.Command{
		Name:    "balance",
		Usage:   "balance",
		Summary: "Your tokens, what is held for answers in progress, and today's free requests.",
		Private: true,
		Run: func(ctx context.Context, req *bot.Request) error {
			b, err := s.Ledger.Balance(ctx, req.Event.Identity)
			if err != nil {
				return fmt.Errorf("balance: %w", err)
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "**Balance:** %s tokens", bot.FormatTokens(b.Balance))
			if b.Held > 0 {
				fmt.Fprintf(&sb, " (%s held for answers in progress, %s available)", bot.FormatTokens(b.Held), bot.FormatTokens(b.Available))
			}
			fmt.Fprintf(&sb, "\n**Free-model requests today:** %d of %d left; they reset %s.", b.Free.Remaining, b.Free.Limit, s.resetsAt(b.Free))
			if b.ToppedUp > 0 {
				fmt.Fprintf(&sb, "\n**Topped up so far:** %s tokens.", bot.FormatTokens(b.ToppedUp))
			}
			sb.WriteString("\nTokens never expire. /usage shows where they went.")
			return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: sb.String(),
				Meta: &bot.ReplyMeta{Balance: b.Balance, FreeLeft: b.Free.Remaining}})
		},
	}
}

func (s *set) usage() *bot.Command {
	return &bot.Command{
		Name:    "usage",
		Usage:   "usage [days]",
		Summary: "Your spend and requests by model over the last days (default 7).",
		Private: true,
		Options: []bot.Option{{Name: "days", Description: "How many days back, 1-365 (default 7)"}},
		Run: func(ctx context.Context, req *bot.Request) error {
			days := 7
			if v := strings.TrimSpace(req.Args.Get("days", 0)); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 365 {
					return bot.Errorf(bot.EINVALID, "Days must be a whole number from 1 to 365, not %q. Example: /usage 30", bot.Clip(v, 20))
				}
				days = n
			}
			spend, err := s.Ledger.SpendByModel(ctx, req.Event.Identity, s.since(days))
			if err != nil {
				return fmt.Errorf("usage: %w", err)
			}
			b, err := s.Ledger.Balance(ctx, req.Event.Identity)
			if err != nil {
				return fmt.Errorf("usage: %w", err)
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "**Your usage, last %d %s**\n", days, bot.Plural(days, "day", "days"))
			if len(spend) == 0 {
				sb.WriteString("No paid answers in this period.\n")
			}
			var total int64
			var reqs int64
			for _, m := range spend {
				fmt.Fprintf(&sb, "• %s: %d %s, %s in / %s out, %s tokens\n", m.Model, m.Requests, bot.Plural(int(m.Requests), "request", "requests"),
					bot.FormatTokens(m.PromptTokens), bot.FormatTokens(m.CompletionTokens), bot.FormatTokens(m.Charged))
				total += m.Charged
				reqs += m.Requests
			}
			if len(spend) > 0 {
				fmt.Fprintf(&sb, "Total: %s tokens over %d %s.\n", bot.FormatTokens(total), reqs, bot.Plural(int(reqs), "request", "requests"))
			}
			fmt.Fprintf(&sb, "Free-model requests today: %d of %d used; they reset %s.\nBalance: %s tokens.",
				b.Free.Used, b.Free.Limit, s.resetsAt(b.Free), bot.FormatTokens(b.Balance))
			return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: sb.String()})
		},
	}
}

func (s *set) help() *bot.Command {
	return &bot.Command{
		Name:    "help",
		Usage:   "help",
		Summary: "Every command, one line each.",
		Run: func(ctx context.Context, req *bot.Request) error {
			var sb strings.Builder
			sb.WriteString("**orchat** puts every OpenRouter model here. Mention me or DM me to ask; replies continue the conversation.\n")
			for _, c := range s.list {
				if c.Admin || c.CommunityAdmin || !c.OfferedOn(req.Event.Platform) {
					continue
				}
				fmt.Fprintf(&sb, "• `/%s` — %s\n", c.Usage, c.Summary)
			}
			sb.WriteString("For this community's admins:\n")
			for _, c := range s.list {
				if c.CommunityAdmin {
					fmt.Fprintf(&sb, "• `/%s` — %s\n", c.Usage, c.Summary)
				}
			}
			if req.Admin {
				sb.WriteString("Admin:\n")
				for _, c := range s.list {
					if c.Admin {
						fmt.Fprintf(&sb, "• `/%s` — %s\n", c.Usage, c.Summary)
					}
				}
			}
			sb.WriteString("Every user starts with free tokens; the footer under each answer shows what it cost and what is left.")
			return req.Reply.Notice(sb.String())
		},
	}
}

// since returns the start of the period "the last n days" in the
// configured zone: today counts as one.
func (s *set) since(days int) time.Time {
	now := s.Now().In(s.Config.Location)
	y, m, d := now.Date()
	return time.Date(y, m, d-days+1, 0, 0, 0, 0, s.Config.Location)
}
