package commands

import (
	"context"
	"fmt"

	"github.com/orchat/orchat/bot"
)

// here returns the community settings in force where the event happened:
// its channel's, its community's, the host's. Without Communities, or
// when the settings cannot be read (the failure is logged), the host's
// defaults apply.
func (s *set) here(ctx context.Context, ev bot.Event) bot.CommunityView {
	host := bot.HostDefaults{Persona: s.Config.SystemPrompt, CompareModels: s.Config.CompareModels}
	if s.Communities == nil {
		return bot.Resolve(ev.Community, ev.SettingsChannel(), nil, host)
	}
	v, err := s.Communities.View(ctx, ev.Community, ev.SettingsChannel())
	if err != nil {
		s.Logger.Error("read the community's settings; using the host's defaults", "community", ev.Community, "err", err)
		return bot.Resolve(ev.Community, ev.SettingsChannel(), nil, s.Communities.Host())
	}
	return v
}

// limit is a request's daily caps and what they leave.
type limit struct {
	budget bot.Budget
	use    bot.BudgetUse
	left   int64 // -1: no cap
}

// capped reports whether the caps, not the balance, bound a request.
func (l limit) capped(available int64) bool { return l.left >= 0 && l.left < available }

// budgetHere returns the caps in force and today's use of them.
func (s *set) budgetHere(ctx context.Context, ev bot.Event, v bot.CommunityView) limit {
	l := limit{budget: v.Budget(), left: -1}
	if !l.budget.Any() || s.Budgets == nil || !bot.IsCommunity(ev.Community) {
		l.budget = bot.Budget{}
		return l
	}
	u, err := s.Budgets.BudgetUse(ctx, ev.Community, ev.Identity, s.Now())
	if err != nil {
		s.Logger.Error("read today's spend; the hold still checks the caps", "community", ev.Community, "err", err)
		return l
	}
	l.use, l.left = u, u.Left(l.budget)
	return l
}

// available is what the router may plan with: the balance, or less
// when today's caps leave less.
func (l limit) available(balance int64) int64 {
	if l.capped(balance) {
		return l.left
	}
	return balance
}

// overBudget is the refusal when today's caps, not the balance, leave too
// little: whose cap, what is used, when it comes back. It queues the
// admins' alert when the community's own cap is reached.
func (s *set) overBudget(ctx context.Context, ev bot.Event, l limit) error {
	s.Metrics.Refusal("budget")
	b, u := l.budget, l.use
	loc := s.Config.Location
	state := func(limit, used int64) string {
		if used >= limit {
			return fmt.Sprintf("is used up (%s spent or in progress today)", bot.FormatTokens(used))
		}
		return fmt.Sprintf("leaves %s today, too few for this request", bot.FormatTokens(limit-used))
	}
	reset := bot.FormatReset(u.ResetsAt, s.Now(), loc)
	if b.Daily > 0 && b.Daily-u.All.Used() <= l.left {
		if u.All.Used() >= b.Daily {
			s.budgetAlert(ctx, ev, b, u)
		}
		return bot.Errorf(bot.ERATELIMIT, "%s's daily budget of %s tokens %s. It resets %s; free models still work.",
			bot.CommunityWord(ev.Community, true), bot.FormatTokens(b.Daily), state(b.Daily, u.All.Used()), reset)
	}
	return bot.Errorf(bot.ERATELIMIT, "Your daily budget in %s of %s tokens %s. It resets %s; free models still work.",
		bot.CommunityWord(ev.Community, false), bot.FormatTokens(b.MemberDaily), state(b.MemberDaily, u.Member.Used()), reset)
}

// budgetAlert tells the community's admins, once a day, that its daily
// budget is reached.
func (s *set) budgetAlert(ctx context.Context, ev bot.Event, b bot.Budget, u bot.BudgetUse) {
	if s.Alerts == nil || b.Daily <= 0 {
		return
	}
	_, err := s.Alerts.QueueAlert(context.WithoutCancel(ctx), bot.Alert{
		Key: ev.Community + ":budget:" + u.Period, Community: ev.Community, Kind: bot.AlertBudget,
		Text: fmt.Sprintf("orchat: %s reached its daily budget of %s tokens; members' paid requests are refused until it resets %s (free models still work). /settings budget daily changes it.",
			ev.Community, bot.FormatTokens(b.Daily), bot.FormatReset(u.ResetsAt, s.Now(), s.Config.Location)),
	})
	if err != nil {
		s.Logger.Warn("queue the budget alert", "community", ev.Community, "err", err)
	}
}

// memberLow tells the community's admins, once a day per member, that a
// member's balance fell below the mark they opted in to.
func (s *set) memberLow(ctx context.Context, ev bot.Event, v bot.CommunityView, out outcome) {
	mark := v.MemberLow()
	if s.Alerts == nil || mark <= 0 || out.charged <= 0 || !bot.IsCommunity(ev.Community) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	bal, err := s.Ledger.Balance(ctx, ev.Identity)
	if err != nil || bal.Balance >= mark || bal.Balance+out.charged < mark {
		return
	}
	day := s.Now().In(s.Config.Location).Format("2006-01-02")
	if _, err := s.Alerts.QueueAlert(ctx, bot.Alert{
		Key: ev.Community + ":member_low:" + string(ev.Identity) + ":" + day, Community: ev.Community, Kind: bot.AlertMemberLow,
		Text: fmt.Sprintf("orchat: %s's balance in %s is down to %s tokens (below your mark of %s). /topup them from the pool if you like.",
			ev.Identity, ev.Community, bot.FormatTokens(bal.Balance), bot.FormatTokens(mark)),
	}); err != nil {
		s.Logger.Warn("queue the member-low alert", "community", ev.Community, "err", err)
	}
}

// poolLow tells the community's admins, once a day, that the pool fell
// below the mark they set.
func (s *set) poolLow(ctx context.Context, ev bot.Event, balance int64) {
	if s.Alerts == nil {
		return
	}
	v := s.here(ctx, ev)
	mark := v.PoolBelow()
	if mark <= 0 || balance >= mark {
		return
	}
	day := s.Now().In(s.Config.Location).Format("2006-01-02")
	if _, err := s.Alerts.QueueAlert(context.WithoutCancel(ctx), bot.Alert{
		Key: ev.Community + ":pool_below:" + day, Community: ev.Community, Kind: bot.AlertPoolLow,
		Text: fmt.Sprintf("orchat: the pool of %s is down to %s tokens (below your mark of %s). A host admin can add more with /topup community AMOUNT.",
			ev.Community, bot.FormatTokens(balance), bot.FormatTokens(mark)),
	}); err != nil {
		s.Logger.Warn("queue the pool alert", "community", ev.Community, "err", err)
	}
}

// chooseModel is the model a request asks for: the one named, else the
// member's own /model (unless the rules here refuse it: then the
// community's default), else the community's default ("" for auto).
func (s *set) chooseModel(ctx context.Context, req *bot.Request, v bot.CommunityView) (string, error) {
	if m := req.Args.Get("model", -1); m != "" {
		return m, nil
	}
	pref, err := s.Prefs.DefaultModel(ctx, req.Event.Identity)
	if err != nil {
		return "", fmt.Errorf("ask: default model: %w", err)
	}
	if pref == "" {
		return v.Model(), nil
	}
	if m, err := s.Catalog.Lookup(pref); err == nil {
		if ok, why := v.Policy().Permits(m); !ok {
			def := "I'll pick one for you (auto)"
			if v.Model() != "" {
				def = "the default here, " + v.Model() + ", answers"
			}
			_ = req.Reply.Notice(fmt.Sprintf("Your model %s is not allowed here (%s), so %s.", m.ID, why, def))
			return v.Model(), nil
		}
	}
	return pref, nil
}
