package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// routerConfig is the router's config for the offline tools, which build
// a catalog and a router but no stack.
func (m *Main) routerConfig() router.Config {
	rc := m.Config.Stack().Router
	rc.Logger, rc.Metrics = m.logger().With("component", "router"), m.metrics()
	return rc
}

// loadCatalog returns the catalog for the offline tools: a file given with
// --catalog, the simulator's with --simulate, else the cached copy, else
// OpenRouter's /models (which needs no key).
func (m *Main) loadCatalog(ctx context.Context, file string) (*router.Catalog, error) {
	rc := m.routerConfig()
	switch {
	case file != "":
		rc.CatalogCache = ""
		cat := router.NewCatalog(rc)
		if err := cat.LoadFile(file); err != nil {
			// Name the file in the one line the user reads, whatever kind
			// of error it is.
			return nil, bot.Errorf(bot.EINVALID, "--catalog %s: %s", file, strings.TrimPrefix(userMessage(err), "router: "))
		}
		return cat, nil
	case m.Simulate:
		rc.CatalogCache = ""
		cat := router.NewCatalog(rc)
		return cat, cat.Load(openroutertest.DefaultCatalog())
	}
	cat := router.NewCatalog(rc)
	if cat.Len() > 0 {
		return cat, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cat.Refresh(rctx); err != nil {
		return nil, fmt.Errorf("load the model catalog from %s: %w (offline? use --simulate or --catalog FILE)", rc.BaseURL, err)
	}
	return cat, nil
}

func runModels(ctx context.Context, m *Main, args []string) error {
	fs := m.flags("models")
	search := fs.String("search", "", "only models whose id, name or description contains `TEXT`")
	free := fs.Bool("free", false, "only free models")
	vision := fs.Bool("vision", false, "only models that accept images")
	tools := fs.Bool("tools", false, "only models that support tool calls")
	file := fs.String("catalog", "", "read the catalog from a /models JSON `file` (offline)")
	pos, err := m.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		*search = strings.TrimSpace(*search + " " + strings.Join(pos, " "))
	}
	cat, err := m.loadCatalog(ctx, *file)
	if err != nil {
		return err
	}
	found := cat.Search(bot.ModelQuery{Text: *search, Free: *free, Vision: *vision, Tools: *tools})
	if m.JSON {
		out := make([]map[string]any, len(found))
		for i, mdl := range found {
			pp, cp := router.PricePerMillion(mdl)
			out[i] = map[string]any{
				"id": mdl.ID, "name": mdl.Name, "context_length": mdl.ContextLength, "max_completion_tokens": mdl.MaxCompletionTokens,
				"prompt_usd_per_million": jsonPrice(pp), "completion_usd_per_million": jsonPrice(cp),
				"free": mdl.Free(), "vision": mdl.Vision(), "tools": mdl.Tools(), "price_varies": mdl.Router(),
			}
		}
		return m.printJSON(out)
	}
	if len(found) == 0 {
		return bot.Errorf(bot.ENOTFOUND, "No model matches. Try fewer words, or orchat models --free.")
	}
	for _, mdl := range found {
		fmt.Fprintln(m.Stdout, strings.ReplaceAll(commands.ModelLine(mdl), "`", ""))
	}
	fmt.Fprintf(m.Stdout, "%d of %d models; prices in USD per million tokens, prompt → completion.\n", len(found), cat.Len())
	return nil
}

func jsonPrice(v float64) any {
	if v < 0 || math.IsNaN(v) {
		return nil // varies
	}
	return v
}

func runRoute(ctx context.Context, m *Main, args []string) error {
	fs := m.flags("route")
	file := fs.String("catalog", "", "plan against a /models JSON `file`, fully offline")
	model := fs.String("model", "", "the user's chosen model `ID` (default: auto)")
	image := fs.Bool("image", false, "the prompt comes with an image")
	balance := fs.Int64("balance", 15000, "the user's available balance in `tokens`")
	free := fs.Int("free-left", 50, "free-model requests the user has left today")
	explain := fs.Bool("explain", false, "show the working: signals, the classifier's scores per tier, constraints, every candidate and why it was kept, skipped or dropped")
	community := fs.String("community", "", "plan as in `COMMUNITY` (discord:<server id>, slack:<workspace id>, console): its model rules, and the order its compare votes teach unless its admins turned routing learn off (reads the ledger)")
	pos, err := m.parse(fs, args)
	if err != nil {
		return err
	}
	prompt := strings.Join(pos, " ")
	if prompt == "-" {
		b, err := io.ReadAll(io.LimitReader(m.Stdin, 64<<20))
		if err != nil {
			return fmt.Errorf("read the prompt from stdin: %w", err)
		}
		prompt = string(b)
	}
	if strings.TrimSpace(prompt) == "" {
		return usagef("usage: orchat route [--catalog FILE] [--model ID] [--image] [--balance N] [--community C] [--explain] [--json] PROMPT (or - to read it from stdin)")
	}
	if *community != "" {
		if err := bot.ValidateCommunity(*community); err != nil {
			return usagef("--community %s: %s", *community, bot.ErrorMessage(err))
		}
	}
	cat, err := m.loadCatalog(ctx, *file)
	if err != nil {
		return err
	}
	rc := m.routerConfig()
	rc.CatalogCache = ""
	var view *bot.CommunityView
	if *community != "" {
		st, err := m.openStore()
		if err != nil {
			return err
		}
		settings, err := st.CommunitySettings(ctx, *community)
		if err != nil {
			return err
		}
		v := bot.Resolve(*community, "", settings, bot.HostDefaults{Tiers: rc.Tiers})
		view, rc.Votes = &v, st
	}
	r, err := router.New(rc, cat)
	if err != nil {
		return err
	}
	msg := bot.ChatMessage{Role: bot.RoleUser, Content: prompt}
	if *image {
		msg.Images = []string{"https://example.com/image.png"}
	}
	req := bot.PlanRequest{
		Identity: "console:route", Model: *model, Available: *balance, FreeRemaining: *free,
		Messages: []bot.ChatMessage{{Role: bot.RoleSystem, Content: m.Config.Bot.SystemPrompt}, msg},
	}
	if view != nil {
		req.Community, req.Learn, req.Policy = view.Community, view.LearnRouting(), view.Policy()
	}
	if *explain {
		ex, err := r.Explain(ctx, req)
		if perr := m.printExplanation(ex, err); perr != nil {
			return perr
		}
		return err
	}
	start := time.Now()
	plan, err := r.Plan(ctx, req)
	took := time.Since(start)
	if err != nil {
		return err
	}
	if m.JSON {
		out := planJSON(plan)
		out["plan_us"] = took.Microseconds()
		return m.printJSON(out)
	}
	m.printPlan(plan)
	fmt.Fprintf(m.Stdout, "planned in %s, without calling any model\n", took)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func runSimulate(ctx context.Context, m *Main, args []string) error {
	fs := m.flags("simulate-upstream")
	addr := fs.String("addr", "127.0.0.1:0", "listen `address`")
	file := fs.String("catalog", "", "serve this /models JSON `file` (default: the built-in snapshot of all 344 models)")
	latency := fs.Duration("latency", 0, "time to the first token")
	tps := fs.Float64("tokens-per-second", 0, "pace of the answer after the first token (0: as fast as possible)")
	failRate := fs.Float64("fail-rate", 0, "share of requests (0-1) answered with a fault: 429, 502, 503, stalls, mid-stream errors, truncated streams")
	seed := fs.Int64("seed", 1, "seed of the fault draws (the same seed and requests give the same faults)")
	flood := fs.Int64("flood", 0, "after the first chunk of every answer, stream `BYTES` more of text, as a broken or hostile upstream might (for memory tests; replaces --fail-rate)")
	pos, err := m.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("simulate-upstream takes no arguments")
	}
	if *failRate < 0 || *failRate > 1 {
		return usagef("--fail-rate must be between 0 and 1, not %g", *failRate)
	}
	if *flood < 0 {
		return usagef("--flood must be 0 or more bytes, not %d", *flood)
	}
	opts := openroutertest.Options{Addr: *addr, CatalogFile: *file, Latency: *latency, TokensPerSecond: *tps, FailRate: *failRate, Seed: *seed}
	if *flood > 0 {
		opts.FaultFunc = func(*openroutertest.Request) *openroutertest.Fault { return &openroutertest.Fault{Flood: *flood} }
	}
	sim, err := openroutertest.Start(opts)
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintln(m.Stdout, sim.URL())
	fmt.Fprintf(m.Stderr, "orchat: simulating OpenRouter at %s; point orchat at it with --upstream %s (Ctrl-C stops)\n", sim.URL(), sim.URL())
	sctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	<-sctx.Done()
	st := sim.Stats()
	fmt.Fprintf(m.Stderr, "orchat: served %d chat requests (%d faults), billed $%.6f\n", st.Requests, st.Faults, st.BilledUSD)
	return nil
}
