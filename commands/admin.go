package commands

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/orchat/orchat/bot"
)

var userOption = bot.Option{Name: "user", Description: "The user: a mention or an identity such as discord:123…", Required: true}

func (s *set) topup() *bot.Command {
	return &bot.Command{
		Name: "topup", Usage: "topup USER|community AMOUNT [note]",
		Summary:        "Add tokens to a user's balance; a community's admins give from its pool; host admins fund a pool with /topup community AMOUNT.",
		CommunityAdmin: true, Private: true,
		Options: []bot.Option{
			{Name: "user", Description: "A mention or an identity; community (or pool:…) for the pool", Required: true},
			{Name: "amount", Description: "Tokens to add (1 to 1,000,000,000,000)", Required: true}, {Name: "note", Description: "Why (kept in the ledger)", Rest: true}},
		Run: func(ctx context.Context, req *bot.Request) error {
			if community, ok, err := poolTarget(req.Event, req.Args.Get("user", 0)); ok || err != nil {
				if err != nil {
					return err
				}
				return s.adjustPool(ctx, req, "topup", community)
			}
			if !req.Admin {
				return s.giveFromPool(ctx, req)
			}
			return s.adjust(ctx, req, "topup", s.Ledger.TopUp)
		},
	}
}

func (s *set) deduct() *bot.Command {
	return &bot.Command{
		Name: "deduct", Usage: "deduct USER|community AMOUNT [note]", Summary: "Remove tokens from a user's balance or a community's pool (never below zero).",
		Admin: true, Private: true,
		Options: []bot.Option{
			{Name: "user", Description: "A mention or an identity; community (or pool:…) for the pool", Required: true},
			{Name: "amount", Description: "Tokens to remove", Required: true}, {Name: "note", Description: "Why (kept in the ledger)", Rest: true}},
		Run: func(ctx context.Context, req *bot.Request) error {
			if community, ok, err := poolTarget(req.Event, req.Args.Get("user", 0)); ok || err != nil {
				if err != nil {
					return err
				}
				return s.adjustPool(ctx, req, "deduct", community)
			}
			return s.adjust(ctx, req, "deduct", s.Ledger.Deduct)
		},
	}
}

// poolTarget reads a pool named where a user could be: "community" (or
// pool, server, workspace) is the event's community, "pool:<community>"
// any community's. ok is false for a user.
func poolTarget(ev bot.Event, s string) (community string, ok bool, err error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "community", "pool", "server", "workspace":
		if err := bot.ValidateCommunity(ev.Community); err != nil {
			return "", true, bot.Errorf(bot.EINVALID, "Here is no community with a pool (a DM); name one: pool:discord:<server id>.")
		}
		return ev.Community, true, nil
	}
	return bot.ParsePool(s)
}

// adjustPool funds or takes back from a community's pool: the host's
// admins only.
func (s *set) adjustPool(ctx context.Context, req *bot.Request, verb, community string) error {
	if !req.Admin {
		return bot.Errorf(bot.EUNAUTHORIZED, "Only the bot's host admins fund or take back a community's pool; a community's admins give from it with /topup @member AMOUNT.")
	}
	if s.Pools == nil {
		return bot.Errorf(bot.EUNAVAILABLE, "Pools are not available in this orchat.")
	}
	amount, note, err := amountAndNote(req)
	if err != nil {
		return err
	}
	a := bot.PoolAdjustment{Community: community, Amount: amount, Key: "pool-" + verb + ":" + eventKey(req), Actor: req.Event.Identity, Note: bot.Clip(note, 200)}
	op, past := s.Pools.FundPool, "Added %s tokens to the pool of %s"
	if verb == "deduct" {
		op, past = s.Pools.WithdrawPool, "Took %s tokens back from the pool of %s"
	}
	e, applied, err := op(ctx, a)
	if err != nil {
		return err
	}
	p, err := s.Pools.Pool(ctx, community)
	if err != nil {
		return fmt.Errorf("%s pool: %w", verb, err)
	}
	req.Logger.Info("host admin changed a pool", "op", verb, "community", community, "amount", amount, "applied", applied)
	if !applied {
		return req.Reply.Notice(fmt.Sprintf("Already done: this change was applied before (pool row #%d), so nothing changed. The pool of %s holds %s tokens.", e.ID, community, bot.FormatTokens(p.Balance)))
	}
	return req.Reply.Notice(fmt.Sprintf(past+"; it holds %s now. Its admins give from it with /topup @member AMOUNT, and /settings allowance refills members from it.",
		bot.FormatTokens(amount), community, bot.FormatTokens(p.Balance)))
}

// giveFromPool is a community admin's /topup: tokens from the community's
// pool, never beyond it.
func (s *set) giveFromPool(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	if s.Pools == nil {
		return bot.Errorf(bot.EUNAVAILABLE, "Pools are not available in this orchat.")
	}
	if err := bot.ValidateCommunity(ev.Community); err != nil {
		return err
	}
	user, err := resolveUser(ev, req.Args.Get("user", 0))
	if err != nil {
		return err
	}
	if user.Platform() != ev.Platform {
		return bot.Errorf(bot.EINVALID, "%s is not a member here: name someone of %s.", user, bot.CommunityWord(ev.Community, false))
	}
	amount, note, err := amountAndNote(req)
	if err != nil {
		return err
	}
	e, applied, err := s.Pools.GrantFromPool(ctx, bot.PoolGrant{Community: ev.Community, Member: user, Amount: amount,
		Key: "pool-give:" + eventKey(req), Actor: ev.Identity, Note: bot.Clip(note, 200)})
	if err != nil {
		return err
	}
	p, err := s.Pools.Pool(ctx, ev.Community)
	if err != nil {
		return fmt.Errorf("topup from the pool: %w", err)
	}
	b, err := s.Ledger.Balance(ctx, user)
	if err != nil {
		return fmt.Errorf("topup from the pool: %w", err)
	}
	req.Logger.Info("community admin gave from the pool", "community", ev.Community, "target", string(user), "amount", amount, "applied", applied)
	if !applied {
		return req.Reply.Notice(fmt.Sprintf("Already done: this was given before (pool row #%d), so nothing changed. %s has %s tokens.", e.ID, user, bot.FormatTokens(b.Balance)))
	}
	s.poolLow(ctx, ev, p.Balance)
	return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Meta: &bot.ReplyMeta{Balance: b.Balance, FreeLeft: -1}, Text: fmt.Sprintf(
		"Gave %s tokens from the pool to %s; their balance is now %s tokens, and the pool holds %s.",
		bot.FormatTokens(amount), user, bot.FormatTokens(b.Balance), bot.FormatTokens(p.Balance))})
}

// adjust runs a top-up or deduction, idempotent by the event id: a
// redelivered command changes nothing and says so.
func (s *set) adjust(ctx context.Context, req *bot.Request, verb string, op func(context.Context, bot.Adjustment) (bot.Entry, bool, error)) error {
	user, err := resolveUser(req.Event, req.Args.Get("user", 0))
	if err != nil {
		return err
	}
	amount, note, err := amountAndNote(req)
	if err != nil {
		return err
	}
	// A top-up creates a user who never wrote to the bot, signup bonus
	// included: say so, or the new balance looks wrong to the admin.
	_, berr := s.Ledger.Balance(ctx, user)
	isNew := bot.ErrorCode(berr) == bot.ENOTFOUND
	e, applied, err := op(ctx, bot.Adjustment{Identity: user, Amount: amount, Key: verb + ":" + eventKey(req), Actor: req.Event.Identity, Note: bot.Clip(note, 200)})
	if err != nil {
		return err
	}
	b, err := s.Ledger.Balance(ctx, user)
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	req.Logger.Info("admin adjusted a balance", "op", verb, "target", string(user), "amount", amount, "applied", applied)
	if !applied {
		return req.Reply.Notice(fmt.Sprintf("Already done: this %s was applied before (entry #%d), so nothing changed. %s has %s tokens.",
			verb, e.ID, user, bot.FormatTokens(b.Balance)))
	}
	past := map[string]string{"topup": "Added", "deduct": "Removed"}[verb]
	prep := map[string]string{"topup": "to", "deduct": "from"}[verb]
	text := fmt.Sprintf("%s %s tokens %s %s. Their balance is now %s tokens.", past, bot.FormatTokens(amount), prep, user, bot.FormatTokens(b.Balance))
	if bonus := b.Balance - amount; isNew && bonus > 0 {
		text += fmt.Sprintf(" %s is a new user: they had not used the bot yet, so this also gave them the %s-token signup bonus.", user, bot.FormatTokens(bonus))
	} else if isNew {
		text += fmt.Sprintf(" %s is a new user: they had not used the bot yet.", user)
	}
	return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: text, Meta: &bot.ReplyMeta{Balance: b.Balance, FreeLeft: -1}})
}

func (s *set) block() *bot.Command {
	return &bot.Command{
		Name: "block", Usage: "block USER", Summary: "Stop a user from using the bot.", Admin: true, Private: true,
		Options: []bot.Option{userOption},
		Run:     func(ctx context.Context, req *bot.Request) error { return s.setBlocked(ctx, req, true) },
	}
}

func (s *set) unblock() *bot.Command {
	return &bot.Command{
		Name: "unblock", Usage: "unblock USER", Summary: "Let a blocked user use the bot again.", Admin: true, Private: true,
		Options: []bot.Option{userOption},
		Run:     func(ctx context.Context, req *bot.Request) error { return s.setBlocked(ctx, req, false) },
	}
}

func (s *set) setBlocked(ctx context.Context, req *bot.Request, blocked bool) error {
	user, err := resolveUser(req.Event, req.Args.Get("user", 0))
	if err != nil {
		return err
	}
	if blocked && user == req.Event.Identity {
		return bot.Errorf(bot.EINVALID, "You can't block yourself.")
	}
	if err := s.Ledger.SetBlocked(ctx, user, blocked, req.Event.Identity); err != nil {
		return err
	}
	req.Logger.Info("admin changed a block", "target", string(user), "blocked", blocked)
	if blocked {
		return req.Reply.Notice(fmt.Sprintf("Blocked %s: the bot ignores their requests until /unblock.", user))
	}
	return req.Reply.Notice(fmt.Sprintf("Unblocked %s.", user))
}

func (s *set) ledger() *bot.Command {
	return &bot.Command{
		Name: "ledger", Usage: "ledger USER|community", Summary: "A user's (or a community pool's) last 20 ledger rows.", Admin: true, Private: true,
		Options: []bot.Option{{Name: "user", Description: "A mention or an identity; community (or pool:…) for the pool", Required: true}},
		Run: func(ctx context.Context, req *bot.Request) error {
			if community, ok, err := poolTarget(req.Event, req.Args.Get("user", 0)); ok || err != nil {
				if err != nil {
					return err
				}
				ev := req.Event
				ev.Community = community
				r := *req
				r.Event = ev
				return s.showPool(ctx, &r)
			}
			user, err := resolveUser(req.Event, req.Args.Get("user", 0))
			if err != nil {
				return err
			}
			rows, err := s.Ledger.History(ctx, user, 20)
			if err != nil {
				return err
			}
			b, err := s.Ledger.Balance(ctx, user)
			if err != nil {
				return err
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "**Ledger of %s** (balance %s, held %s), newest first:\n", user, bot.FormatTokens(b.Balance), bot.FormatTokens(b.Held))
			for _, e := range rows {
				sb.WriteString(EntryLine(e) + "\n")
			}
			return req.Reply.Notice(strings.TrimSpace(sb.String()))
		},
	}
}

// EntryLine is one ledger row for people (times in UTC, as stored).
func EntryLine(e bot.Entry) string {
	line := fmt.Sprintf("#%d %s %s %+d", e.ID, e.CreatedAt.UTC().Format("2006-01-02 15:04"), e.Kind, e.Amount)
	if e.Model != "" {
		line += fmt.Sprintf(" · %s (%d in / %d out)", e.Model, e.Usage.PromptTokens, e.Usage.CompletionTokens)
	}
	if e.Actor != "" && e.Actor != bot.ActorSystem {
		line += " · by " + string(e.Actor)
	}
	if e.Note != "" {
		line += " · " + e.Note
	}
	return line
}

// ParseAmount reads an admin amount: a whole number of tokens from 1 to
// bot.MaxAmount; thousands separators (15,000 or 15_000) are fine in their
// places, every three digits, and nowhere else: 1,0,0 is a typo, not 100.
func ParseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, bot.Errorf(bot.EINVALID, "Say how many tokens, for example: /topup @user 5000")
	}
	clean, ok := ungroup(s)
	if !ok {
		return 0, bot.Errorf(bot.EINVALID, "%q is not an amount: thousands separators go every three digits (15,000 or 15_000), or leave them out (15000).", bot.Clip(s, 30))
	}
	n, err := strconv.ParseInt(clean, 10, 64)
	if err != nil {
		if f, ferr := strconv.ParseFloat(clean, 64); ferr == nil && (f != float64(int64(f)) || f > float64(bot.MaxAmount)) {
			if f > float64(bot.MaxAmount) {
				return 0, bot.Errorf(bot.EINVALID, "%s tokens is over the limit of %s per operation.", bot.Clip(s, 30), bot.FormatTokens(bot.MaxAmount))
			}
			return 0, bot.Errorf(bot.EINVALID, "The amount must be a whole number of tokens, not %s.", bot.Clip(s, 30))
		}
		if strings.TrimLeft(clean, "0123456789") == "" {
			return 0, bot.Errorf(bot.EINVALID, "%s tokens is over the limit of %s per operation.", bot.Clip(s, 30), bot.FormatTokens(bot.MaxAmount))
		}
		return 0, bot.Errorf(bot.EINVALID, "%q is not an amount: write a whole number of tokens such as 5000.", bot.Clip(s, 30))
	}
	if n <= 0 {
		return 0, bot.Errorf(bot.EINVALID, "The amount must be positive (1 or more tokens), not %s.", bot.Clip(s, 30))
	}
	if n > bot.MaxAmount {
		return 0, bot.Errorf(bot.EINVALID, "%s tokens is over the limit of %s per operation.", bot.Clip(s, 30), bot.FormatTokens(bot.MaxAmount))
	}
	return n, nil
}

// ungroup removes the thousands separators of a number written with them
// in their places: one kind (, or _), every three digits of the whole part
// counting from the right. ok is false for any other use of them.
func ungroup(s string) (string, bool) {
	if !strings.ContainsAny(s, ",_") {
		return s, true
	}
	sep := ","
	if strings.Contains(s, "_") {
		if strings.Contains(s, ",") {
			return "", false
		}
		sep = "_"
	}
	sign, body := "", s
	if body[0] == '-' || body[0] == '+' {
		sign, body = body[:1], body[1:]
	}
	whole, frac, hasFrac := strings.Cut(body, ".")
	groups := strings.Split(whole, sep)
	for i, g := range groups {
		if len(g) == 0 || len(g) > 3 || (i > 0 && len(g) != 3) || strings.Trim(g, "0123456789") != "" {
			return "", false
		}
	}
	out := sign + strings.Join(groups, "")
	if hasFrac {
		out += "." + frac
	}
	return out, true
}

var (
	discordMention = regexp.MustCompile(`^<@!?(\d{1,20})>$`)
	slackMention   = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(\|[^>]*)?>$`)
)

// resolveUser reads a user argument: an identity as written, or a platform
// mention (<@123> on Discord, <@U123> on Slack, for the asker's own team).
func resolveUser(ev bot.Event, s string) (bot.Identity, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", bot.Errorf(bot.EINVALID, "Say which user, for example @someone or %s.", exampleIdentity(ev.Platform))
	}
	if m := discordMention.FindStringSubmatch(s); m != nil && ev.Platform == bot.PlatformDiscord {
		return bot.ParseIdentity("discord:" + m[1])
	}
	if m := slackMention.FindStringSubmatch(s); m != nil && ev.Platform == bot.PlatformSlack {
		parts := strings.Split(string(ev.Identity), ":")
		if len(parts) == 3 {
			return bot.Identity("slack:" + parts[1] + ":" + m[1]), nil
		}
	}
	return bot.ParseIdentity(s)
}

func exampleIdentity(platform string) string {
	switch platform {
	case bot.PlatformDiscord:
		return "discord:123456789012345678"
	case bot.PlatformSlack:
		return "slack:T0123:U0456"
	}
	return "console:alice"
}

// amountAndNote reads the AMOUNT and the optional note of /topup,
// /deduct and the pool commands: the note option where a platform has
// one, else the words after the amount.
func amountAndNote(req *bot.Request) (int64, string, error) {
	amount, err := ParseAmount(req.Args.Get("amount", 1))
	if err != nil {
		return 0, "", err
	}
	note := strings.TrimSpace(req.Args.Get("note", -1))
	if note == "" {
		note = req.Args.Rest(2)
	}
	return amount, note, nil
}
