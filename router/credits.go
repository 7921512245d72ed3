package router

import (
	"context"

	"github.com/orchat/orchat/bot"
)

var _ bot.CreditsSource = (*Router)(nil)

// Credits returns the host key's credits as last read by RefreshCredits.
func (r *Router) Credits() bot.Credits {
	if c := r.credits.Load(); c != nil {
		return *c
	}
	return bot.Credits{}
}

// RefreshCredits reads GET /key. An upstream that is not OpenRouter has no
// such endpoint: its credits stay unknown and nothing is asked.
func (r *Router) RefreshCredits(ctx context.Context) (bot.Credits, error) {
	if !r.cfg.OpenRouterAPI() {
		return bot.Credits{}, nil
	}
	k, err := r.client.Key(ctx)
	if err != nil {
		return r.Credits(), bot.Errorf(bot.EUNAVAILABLE, "Could not read the OpenRouter key's credits: %s", bot.ErrorMessage(err))
	}
	c := bot.Credits{Known: true, LimitUSD: k.Limit, RemainingUSD: k.LimitRemaining, UsageUSD: k.Usage, CheckedAt: r.cfg.Now()}
	r.credits.Store(&c)
	return c, nil
}
