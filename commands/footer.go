package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
)

// footer builds the line under an answer: model that answered, tokens in
// and out, charged, balance left (or free requests left), and what was
// trimmed.
func (s *set) footer(ctx context.Context, id bot.Identity, plan bot.Plan, res bot.Result, out outcome) (*bot.ReplyMeta, string) {
	meta := &bot.ReplyMeta{
		Model: res.Model, PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
		Charged: out.charged, ChargePending: out.pending, FreeLeft: -1,
		ReasoningTokens: res.Usage.ReasoningTokens, CachedTokens: res.Usage.CachedTokens, FinishReason: res.FinishReason,
	}
	if meta.Model == "" {
		meta.Model = plan.Model
	}
	bal, err := s.Ledger.Balance(context.WithoutCancel(ctx), id)
	if err == nil {
		meta.Balance = bal.Balance
	}
	tokens := fmt.Sprintf("%s in / %s out", bot.FormatTokens(meta.PromptTokens), bot.FormatTokens(meta.CompletionTokens))
	var details []string
	if meta.CachedTokens > 0 {
		details = append(details, bot.FormatTokens(meta.CachedTokens)+" cached")
	}
	if meta.ReasoningTokens > 0 {
		details = append(details, bot.FormatTokens(meta.ReasoningTokens)+" thinking")
	}
	if len(details) > 0 {
		tokens += " (" + strings.Join(details, ", ") + ")"
	}
	model := meta.Model
	if plan.Learned && len(res.Attempts) <= 1 {
		// The community's votes, not the router's own order, chose
		// the model that answered (no fallback stepped in).
		model += " (chosen by this community's votes)"
	}
	parts := []string{model, tokens}
	if plan.Web {
		parts = append(parts, "web search")
	}
	if out.free {
		meta.FreeLeft = out.freeLeft
		parts = append(parts, fmt.Sprintf("free: %d left today", out.freeLeft))
		if plan.FreeFallback {
			parts = append(parts, "a free model because your balance can't cover a paid answer")
		}
	} else {
		parts = append(parts, out.chargedText())
	}
	parts = append(parts, "balance "+bot.FormatTokens(meta.Balance))
	if len(res.Attempts) > 1 {
		parts = append(parts, fmt.Sprintf("after %s failed", strings.Join(res.Attempts[:len(res.Attempts)-1], ", ")))
	}
	if res.Settled == "estimate" {
		parts = append(parts, "estimated")
	}
	if plan.ImagesDropped > 0 {
		parts = append(parts, fmt.Sprintf("%d %s of earlier messages left out: %s cannot read images", plan.ImagesDropped, bot.Plural(plan.ImagesDropped, "image", "images"), meta.Model))
	}
	if plan.Dropped > 0 {
		parts = append(parts, fmt.Sprintf("%d earlier %s left out to fit", plan.Dropped, bot.Plural(plan.Dropped, "message", "messages")))
	}
	return meta, strings.Join(parts, " · ")
}

// lowBalance tells a user once that their balance has fallen below the
// configured mark: when this charge took it across.
func (s *set) lowBalance(ctx context.Context, req *bot.Request, out outcome) {
	mark := s.Config.LowBalance
	if mark <= 0 || out.charged <= 0 {
		return
	}
	bal, err := s.Ledger.Balance(context.WithoutCancel(ctx), req.Event.Identity)
	if err != nil || bal.Balance >= mark || bal.Balance+out.charged < mark {
		return
	}
	_ = req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: fmt.Sprintf(
		"Heads up: your balance is down to %s tokens. Free models still work (%d requests a day); an admin can add tokens with /topup.",
		bot.FormatTokens(bal.Balance), bal.Free.Limit)})
}
