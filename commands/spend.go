package commands

import (
	"context"
	"fmt"

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
	// pending: the settle failed and is being retried (charged is 0 for
	// now, not for good).
	pending bool
}

// chargedText is the footer's word on the charge.
func (o outcome) chargedText() string {
	if o.pending {
		return "charge pending"
	}
	return "charged " + bot.FormatTokens(o.charged)
}

// spend reserves what a plan may cost: the worst case as a hold, or one of
// today's free requests for a free model. Nothing is written when it fails.
func (s *set) spend(ctx context.Context, ev bot.Event, plan bot.Plan, key string, budget bot.Budget) (*spent, error) {
	id := ev.Identity
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
	var h bot.Hold
	var err error
	if budget.Any() && s.Budgets != nil {
		h, err = s.Budgets.ReserveWithin(ctx, id, plan.Cost, key, budget)
		if bot.ErrorCode(err) == bot.ERATELIMIT {
			// Today's caps here: the store says whose and until when.
			s.Metrics.Refusal("budget")
			if u, uerr := s.Budgets.BudgetUse(ctx, budget.Community, id, s.Now()); uerr == nil && budget.Daily > 0 && u.All.Used()+plan.Cost > budget.Daily {
				s.budgetAlert(ctx, ev, budget, u)
			}
			return nil, err
		}
	} else {
		h, err = s.Ledger.Reserve(ctx, id, plan.Cost, key)
	}
	if err != nil {
		if bot.ErrorCode(err) == bot.EINSUFFICIENT {
			return nil, bot.Errorf(bot.EINSUFFICIENT, "%s An admin can add tokens with /topup.", bot.ErrorMessage(err))
		}
		return nil, err
	}
	sp.hold = &h
	return sp, nil
}

// settle charges what the call cost, or nothing when it failed before the
// upstream billed anything (the hold is released, the free request given
// back). A call that billed thinking but wrote no text is charged what it
// cost, never above its hold. Ledger writes outlive the request's context:
// a cancelled answer is still settled.
func (sp *spent) settle(ctx context.Context, res bot.Result, callErr error) outcome {
	ctx = context.WithoutCancel(ctx)
	log := sp.s.Logger
	failed := callErr != nil && res.Text == "" && res.Settled == ""
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
		if err := sp.s.Settler.Release(ctx, sp.hold.ID); err != nil {
			log.Error("release a hold", "hold", sp.hold.ID, "err", err)
		}
		return outcome{}
	}
	e, pending, err := sp.s.Settler.Settle(ctx, sp.hold.ID, bot.Charge{
		Amount: res.Cost, Model: res.Model, Usage: res.Usage, GenerationID: res.GenerationID,
	})
	if pending {
		// The Settler retries until it lands; the footer says so.
		return outcome{pending: true}
	}
	if err != nil {
		// It never can land (the hold expired and was released): the user
		// is not charged for this answer, which the host can see in the log.
		log.Error("settle a charge", "hold", sp.hold.ID, "cost", res.Cost, "err", err)
		return outcome{}
	}
	sp.s.Metrics.Tokens(res.Model, res.Usage.PromptTokens, res.Usage.CompletionTokens, -e.Amount, res.Usage.USD())
	return outcome{charged: -e.Amount}
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
