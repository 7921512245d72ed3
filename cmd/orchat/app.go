package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// app is a wired bot: the ledger, the router over its catalog, the commands
// and the engine. Platform adapters are attached to it by run and console.
type app struct {
	store    *accounts.Store
	catalog  *router.Catalog
	router   *router.Router
	sim      *openroutertest.Server // nil with a real upstream
	commands []*bot.Command
	engine   *bot.Engine
}

// simulated reports whether orchat should answer from its built-in
// simulator: asked to, or no key and no other upstream configured.
func (m *Main) simulated() bool {
	c := m.Config.OpenRouter
	return m.Simulate || (c.APIKey == "" && m.Upstream == "" && c.BaseURL == router.DefaultBaseURL)
}

// routerConfig maps the [openrouter], [router] and [billing] tables onto
// the router's own config.
func (m *Main) routerConfig() router.Config {
	c := m.Config
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
		Sort: p.Sort, DataCollection: p.DataCollection,
		MaxPrice: router.MaxPrice{Prompt: p.MaxPromptPrice, Completion: p.MaxCompletionPrice},
	}
	rc.Billing = bot.Billing{Mode: c.Billing.Mode, USDPerToken: c.Billing.USDPerToken}
	rc.CatalogCache = c.Router.CatalogCache
	if rc.CatalogCache == "" {
		dir := "data" // a PostgreSQL ledger has no folder to sit beside
		if e, _ := accounts.EngineOf(c.Accounts.Database); e == accounts.SQLite {
			dir = filepath.Dir(c.Accounts.Database)
		}
		rc.CatalogCache = filepath.Join(dir, "models.json")
	}
	rc.Logger = m.logger().With("component", "router")
	rc.Metrics = m.metrics()
	return rc
}

// startSimulator starts the built-in OpenRouter simulator and points the
// config at it.
func (m *Main) startSimulator(opts openroutertest.Options) (*openroutertest.Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	sim, err := openroutertest.Start(opts)
	if err != nil {
		return nil, fmt.Errorf("start the simulator: %w", err)
	}
	m.onClose(func() error { sim.Close(); return nil })
	m.Config.OpenRouter.BaseURL = sim.URL()
	return sim, nil
}

// newApp wires the bot. With no key it starts the simulator and says so
// on stderr, first thing.
func (m *Main) newApp(ctx context.Context) (*app, error) {
	a := &app{}
	for _, w := range m.Config.Warnings() {
		m.logger().Warn("config: " + w)
	}
	rc := m.routerConfig()
	if m.routerOptions != nil {
		m.routerOptions(&rc)
	}
	if m.simulated() {
		sim, err := m.startSimulator(openroutertest.Options{})
		if err != nil {
			return nil, err
		}
		a.sim = sim
		fmt.Fprintln(m.Stderr, "orchat: no OPENROUTER_API_KEY set, so answers come from the built-in OpenRouter simulator (nothing real is called or paid). Set OPENROUTER_API_KEY to use real models.")
		rc.BaseURL = sim.URL()
		rc.CatalogCache = "" // the simulator's catalog is not the real one
	}
	st, err := m.openStore()
	if err != nil {
		return nil, err
	}
	a.store = st
	a.catalog = router.NewCatalog(rc)
	if a.catalog.Len() == 0 {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.catalog.Refresh(rctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("load the model catalog from %s: %w", rc.BaseURL, err)
		}
	} else {
		go func() {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := a.catalog.Refresh(rctx); err != nil {
				m.logger().Warn("catalog refresh failed; using the cached catalog", "err", err)
			}
		}()
	}
	a.router, err = router.New(rc, a.catalog)
	if err != nil {
		return nil, err
	}
	c := m.Config
	a.commands = commands.New(commands.Deps{
		Ledger: st, Votes: st, Prefs: st, Catalog: a.catalog, Chat: a.router,
		Config: commands.Config{
			SystemPrompt:         c.Bot.SystemPrompt,
			History:              bot.HistoryLimit{Messages: c.Bot.HistoryMessages, Chars: c.Bot.HistoryChars},
			AttachmentTextBytes:  c.Bot.AttachmentTextBytes,
			AttachmentImageBytes: c.Bot.AttachmentImageBytes,
			CompareModels:        m.compareModels(rc),
			CompareMaxTokens:     c.Compare.MaxTokens,
			Location:             c.Location(),
			LowBalance:           c.Accounts.LowBalance,
		},
		Logger:  m.logger().With("component", "commands"),
		Metrics: m.metrics(),
	})
	a.engine = bot.NewEngine(bot.EngineOptions{
		Ledger:       st,
		Commands:     a.commands,
		Parse:        commands.NewParser(a.commands),
		Admins:       c.AdminIdentities(),
		Limit:        bot.RateLimit{PerMinute: c.Bot.RateLimitPerMinute, Burst: c.Bot.RateLimitBurst},
		Timeout:      c.Bot.RequestTimeout.Duration,
		EditInterval: c.Stream.EditInterval.Duration,
		Logger:       m.logger().With("component", "engine"),
		Metrics:      m.metrics(),
	})
	return a, nil
}

// compareModels are /compare's defaults: [compare] models, else the first
// of the general, code and fast tiers.
func (m *Main) compareModels(rc router.Config) []string {
	if len(m.Config.Compare.Models) > 0 {
		return m.Config.Compare.Models
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
