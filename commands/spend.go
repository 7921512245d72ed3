package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// spent is the money side of one model call: a hold for a paid call, one
// free request for a free call.
type spent struct {
	s    *set
	id   bot.Identity
	hold *bot.Hold
	free *bot.FreeUse
}

// outcome is what a call cost in the end.
type outcome struct {
	charged  int64
	free     bool
	freeLeft int
}

// spend reserves what a plan may cost: the worst case as a hold, or one of
// today's free requests for a free model. Nothing is written when it fails.
func (s *set) spend(ctx context.Context, id bot.Identity, plan bot.Plan, key string) (*spent, error) {
	sp := &spent{s: s, id: id}
	if plan.Free {
		fu, err := s.Ledger.UseFree(ctx, id, s.Now())
		if err != nil {
			if bot.ErrorCode(err) == bot.ERATELIMIT {
				s.Metrics.Refusal("free_tier")
			}
			return nil, err
		}
		sp.free = &fu
		return sp, nil
	}
	h, err := s.Ledger.Reserve(ctx, id, plan.Cost, key)
	if err != nil {
		if bot.ErrorCode(err) == bot.EINSUFFICIENT {
			return nil, bot.Errorf(bot.EINSUFFICIENT, "%s An admin can add tokens with /topup.", bot.ErrorMessage(err))
		}
		return nil, err
	}
	sp.hold = &h
	return sp, nil
}

// settle charges what the call cost, or nothing when it failed before any
// output (the hold is released, the free request given back). Ledger writes
// outlive the request's context: a cancelled answer is still settled.
func (sp *spent) settle(ctx context.Context, res bot.Result, callErr error) outcome {
	ctx = context.WithoutCancel(ctx)
	log := sp.s.Logger
	failed := callErr != nil && res.Text == ""
	if sp.free != nil {
		out := outcome{free: true, freeLeft: sp.free.Remaining}
		if failed {
			if err := sp.s.Ledger.ReturnFree(ctx, sp.id, sp.free.Period); err != nil {
				log.Error("give back a free request", "user", string(sp.id), "err", err)
			} else {
				out.freeLeft++
			}
		}
		sp.s.Metrics.Tokens(res.Model, res.Usage.PromptTokens, res.Usage.CompletionTokens, 0, res.Usage.USD())
		return out
	}
	if failed {
		if err := sp.s.Ledger.Release(ctx, sp.hold.ID); err != nil {
			log.Error("release a hold", "hold", sp.hold.ID, "err", err)
		}
		return outcome{}
	}
	e, err := sp.s.Ledger.Settle(ctx, sp.hold.ID, bot.Charge{
		Amount: res.Cost, Model: res.Model, Usage: res.Usage, GenerationID: res.GenerationID,
	})
	if err != nil {
		// The hold stays until it expires and is then released: the user
		// is not charged for this answer, which the host can see in the log.
		log.Error("settle a charge", "hold", sp.hold.ID, "cost", res.Cost, "err", err)
		return outcome{}
	}
	sp.s.Metrics.Tokens(res.Model, res.Usage.PromptTokens, res.Usage.CompletionTokens, -e.Amount, res.Usage.USD())
	return outcome{charged: -e.Amount}
}

// footer builds the line under an answer: model that answered, tokens in
// and out, charged, balance left (or free requests left), and what was
// trimmed.
func (s *set) footer(ctx context.Context, id bot.Identity, plan bot.Plan, res bot.Result, out outcome) (*bot.ReplyMeta, string) {
	meta := &bot.ReplyMeta{
		Model: res.Model, PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
		Charged: out.charged, FreeLeft: -1,
	}
	if meta.Model == "" {
		meta.Model = plan.Model
	}
	bal, err := s.Ledger.Balance(context.WithoutCancel(ctx), id)
	if err == nil {
		meta.Balance = bal.Balance
	}
	parts := []string{meta.Model, fmt.Sprintf("%s in / %s out", bot.FormatTokens(meta.PromptTokens), bot.FormatTokens(meta.CompletionTokens))}
	if out.free {
		meta.FreeLeft = out.freeLeft
		parts = append(parts, fmt.Sprintf("free: %d left today", out.freeLeft))
		if plan.FreeFallback {
			parts = append(parts, "a free model because your balance can't cover a paid answer")
		}
	} else {
		parts = append(parts, "charged "+bot.FormatTokens(out.charged))
	}
	parts = append(parts, "balance "+bot.FormatTokens(meta.Balance))
	if len(res.Attempts) > 1 {
		parts = append(parts, fmt.Sprintf("after %s failed", strings.Join(res.Attempts[:len(res.Attempts)-1], ", ")))
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

// resetsAt says when the free allowance comes back: the local time and how
// long until then.
func (s *set) resetsAt(f bot.FreeUse) string {
	if f.ResetsAt.IsZero() {
		return "tomorrow"
	}
	local := f.ResetsAt.In(s.Config.Location)
	return fmt.Sprintf("at %s (in %s)", local.Format("15:04 MST"), bot.FormatWait(f.ResetsAt.Sub(s.Now())))
}

// since returns the start of the period "the last n days" in the
// configured zone: today counts as one.
func (s *set) since(days int) time.Time {
	now := s.Now().In(s.Config.Location)
	y, m, d := now.Date()
	return time.Date(y, m, d-days+1, 0, 0, 0, 0, s.Config.Location)
}
