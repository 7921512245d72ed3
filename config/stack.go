package config

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/stack"
)

// Stack maps the file onto the pipeline's config: [accounts], [openrouter],
// [router], [billing], [bot], [stream], [compare], the scheduler's time
// zone and the admins. The bot and the load test both build their stack
// from it, so they run the same pipeline. Simulate is left to the caller.
func (c Config) Stack() stack.Config {
	rc := c.router()
	return stack.Config{
		Accounts: stack.Accounts{
			Database: c.Accounts.Database,
			Options: accounts.Options{
				SignupBonus:        c.Accounts.SignupBonus,
				FreePerDay:         c.Accounts.FreeRequestsPerDay,
				FreePerDayToppedUp: c.Accounts.FreeRequestsPerDayToppedUp,
				Location:           c.Location(),
				HoldTTL:            c.Accounts.HoldTTL.Duration,
				Instance:           c.InstanceName(),
			},
		},
		Router: rc,
		Commands: commands.Config{
			SystemPrompt:         c.Bot.SystemPrompt,
			History:              c.History(),
			AttachmentTextBytes:  c.Bot.AttachmentTextBytes,
			AttachmentImageBytes: c.Bot.AttachmentImageBytes,
			AttachmentFileBytes:  c.Bot.AttachmentFileBytes,
			HistoryImages:        c.Bot.HistoryImages,
			HistoryImageBytes:    c.Bot.HistoryImageBytes,
			LowCreditsUSD:        c.OpenRouter.LowCredits,
			CompareModels:        c.compareModels(rc),
			CompareMaxTokens:     c.Compare.MaxTokens,
			Location:             c.Location(),
			LowBalance:           c.Accounts.LowBalance,
		},
		Engine: stack.Engine{
			Admins:       c.AdminIdentities(),
			Limit:        bot.RateLimit{PerMinute: c.Bot.RateLimitPerMinute, Burst: c.Bot.RateLimitBurst},
			Timeout:      c.Bot.RequestTimeout.Duration,
			EditInterval: c.Stream.EditInterval.Duration,
		},
	}
}

// InstanceName is accounts.instance, or the host name when it is unset
// (a replica's container or machine name), or "orchat" when even that is
// unknown.
func (c Config) InstanceName() string {
	if c.Accounts.Instance != "" {
		return c.Accounts.Instance
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "orchat"
}

// History is how much of a conversation the adapters read back
// (bot.history_messages and bot.history_chars).
func (c Config) History() bot.HistoryLimit {
	return bot.HistoryLimit{Messages: c.Bot.HistoryMessages, Chars: c.Bot.HistoryChars}
}

// router maps the [openrouter], [router] and [billing] tables onto the
// router's own config.
func (c Config) router() router.Config {
	rc := router.DefaultConfig()
	rc.BaseURL = c.OpenRouter.BaseURL
	rc.APIKey = c.OpenRouter.APIKey
	// The key is this deployment's secret: keyed with it, the hash sent as
	// OpenRouter's `user` cannot be linked back to a public platform id.
	rc.UserSalt = c.OpenRouter.APIKey
	rc.Referer = c.OpenRouter.Referer
	rc.Title = c.OpenRouter.Title
	rc.ConnectTimeout = c.OpenRouter.ConnectTimeout.Duration
	rc.FirstByteTimeout = c.OpenRouter.FirstByteTimeout.Duration
	rc.IdleTimeout = c.OpenRouter.IdleTimeout.Duration
	rc.RequestTimeout = c.OpenRouter.RequestTimeout.Duration
	rc.MaxRetryAfter = c.OpenRouter.MaxRetryAfter.Duration
	rc.MaxTokens = c.Router.MaxTokens
	rc.MinCompletionTokens = c.Router.MinCompletionTokens
	rc.Temperature = c.Router.Temperature
	rc.MaxFallbacks = c.Router.MaxFallbacks
	rc.MaxAnswerBytes = c.Router.MaxAnswerBytes
	for tier, ids := range c.Router.Tiers {
		if len(ids) > 0 {
			rc.Tiers[tier] = ids
		}
	}
	if len(c.Router.AutoModels) > 0 {
		rc.AutoModels = c.Router.AutoModels
	}
	p := c.Router.Provider
	rc.Provider = router.ProviderPrefs{
		Order: p.Order, Only: p.Only, Ignore: p.Ignore, AllowFallbacks: p.AllowFallbacks,
		Sort: p.Sort, SortPartition: p.SortPartition, DataCollection: p.DataCollection,
		ZDR: p.ZDR, RequireParameters: p.RequireParameters, Quantizations: p.Quantizations,
		MaxPrice:            router.MaxPrice{Prompt: p.MaxPromptPrice, Completion: p.MaxCompletionPrice, Request: p.MaxRequestPrice, Image: p.MaxImagePrice},
		PreferredMaxLatency: p.PreferredMaxLatency, PreferredMinThroughput: p.PreferredMinThroughput,
	}
	rc.API = c.OpenRouter.API
	r := c.Router.Reasoning
	rc.Reasoning = router.Reasoning{ReasoningSetting: router.ReasoningSetting{Effort: r.Effort, Show: r.Show}, MaxTokens: r.MaxTokens,
		Tiers: map[string]router.ReasoningSetting{}, Models: map[string]router.ReasoningSetting{}}
	for k, v := range r.Tiers {
		rc.Reasoning.Tiers[k] = router.ReasoningSetting{Effort: v.Effort, Show: v.Show}
	}
	for k, v := range r.Models {
		rc.Reasoning.Models[k] = router.ReasoningSetting{Effort: v.Effort, Show: v.Show}
	}
	rc.Web = router.Web{MaxResults: c.Router.Web.MaxResults, Engine: c.Router.Web.Engine}
	rc.Learn = router.Learn{MinVotes: c.Router.Learn.MinVotes, PriceBand: c.Router.Learn.PriceBand, Refresh: c.Router.Learn.Refresh.Duration}
	rc.PDFEngine = c.Router.Files.PDFEngine
	rc.ImageModel, rc.ImageMaxTokens = c.Router.ImageModel, c.Router.ImageMaxTokens
	rc.Billing = bot.Billing{Mode: c.Billing.Mode, USDPerToken: c.Billing.USDPerToken}
	rc.CatalogCache = c.Router.CatalogCache
	if rc.CatalogCache == "" {
		dir := "data" // a PostgreSQL ledger has no folder to sit beside
		if e, _ := accounts.EngineOf(c.Accounts.Database); e == accounts.SQLite {
			dir = filepath.Dir(c.Accounts.Database)
		}
		rc.CatalogCache = filepath.Join(dir, "models.json")
	}
	return rc
}

// compareModels are /compare's defaults: [compare] models, else the first
// of the general, code and fast tiers.
func (c Config) compareModels(rc router.Config) []string {
	if len(c.Compare.Models) > 0 {
		return c.Compare.Models
	}
	var ids []string
	for _, tier := range []string{router.TierGeneral, router.TierCode, router.TierFast} {
		for _, id := range rc.Tiers[tier] {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
				break
			}
		}
	}
	return ids
}
