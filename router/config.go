package router

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// Tier names. The auto router puts every prompt in one of them.
const (
	TierFast      = "fast"
	TierGeneral   = "general"
	TierCode      = "code"
	TierReasoning = "reasoning"
	TierLong      = "long"
	TierVision    = "vision"
	TierFree      = "free"
	// TierChosen is the tier of a plan for a model the user named.
	TierChosen = "chosen"
)

// Tiers lists every tier the auto router knows, in a stable order.
var Tiers = []string{TierFast, TierGeneral, TierCode, TierReasoning, TierLong, TierVision, TierFree}

// AutoModel is OpenRouter's own router; it is sent with the auto-router
// plugin's allowed_models and never priced from its "-1" catalog prices.
const AutoModel = "openrouter/auto"

// DefaultBaseURL is OpenRouter's API.
const DefaultBaseURL = "https://openrouter.ai/api/v1"

// Config is everything the router needs. It is plain Go, not a file format:
// orchat's config file ([openrouter], [router] and [billing]) is decoded by
// the config package and mapped onto it; DefaultConfig gives the defaults
// and Validate names the config key of any bad value. Zero durations and counts
// fall back to the defaults when the router is built.
type Config struct {
	// BaseURL of an OpenAI-compatible API (openrouter.base_url).
	BaseURL string
	// APIKey is sent as a bearer token; never logged (openrouter.api_key).
	APIKey string
	// Referer and Title attribute the app (HTTP-Referer, X-OpenRouter-Title,
	// X-Title).
	Referer string
	Title   string

	// ConnectTimeout bounds dialing and TLS; FirstByteTimeout the wait for
	// the response headers; IdleTimeout the gap between two reads of a
	// stream; RequestTimeout one attempt as a whole.
	ConnectTimeout   time.Duration
	FirstByteTimeout time.Duration
	IdleTimeout      time.Duration
	RequestTimeout   time.Duration

	// MaxTokens is the default completion cap; MinCompletionTokens is the
	// floor below which a request is refused rather than shortened.
	MaxTokens           int
	MinCompletionTokens int
	Temperature         *float64
	// MaxFallbacks is how many candidates follow the first one.
	MaxFallbacks int
	// FallbackBackoff is the pause before trying the next candidate;
	// a Retry-After longer than that is honoured up to MaxFallbackWait.
	FallbackBackoff time.Duration
	MaxFallbackWait time.Duration
	// MaxRetryAfter caps any Retry-After the upstream sends (a year becomes
	// this).
	MaxRetryAfter time.Duration

	// API is which API the base URL speaks: "openrouter", "openai" (any
	// other OpenAI-compatible server) or "" (OpenRouter when the host is
	// openrouter.ai). OpenRouter's extras (plugins, provider, the
	// reasoning object, cache_control, /generation, /key) are used only
	// with "openrouter".
	API string

	Provider  ProviderPrefs
	Reasoning Reasoning
	Web       Web
	// PDFEngine is the file-parser plugin's engine for PDFs: "pdf-text"
	// (free), "mistral-ocr", "native", "cloudflare-ai" or "" (OpenRouter's
	// default).
	PDFEngine string
	// ImageModel answers /imagine when no model is named.
	ImageModel string
	// ImageMaxTokens is the completion cap of an image answer (an image is
	// billed as about 1,300 completion tokens).
	ImageMaxTokens int
	// GenerationRetry is how long a cut stream's settle keeps asking
	// GET /generation for the exact cost before it falls back to the
	// estimate (0: the default 2s; negative: never ask).
	GenerationRetry time.Duration

	// Tiers maps a tier name to its candidate model ids, best first. A
	// tier left out keeps DefaultTiers' candidates.
	Tiers map[string][]string
	// AutoModels are openrouter/auto's allowed_models (patterns such as
	// "anthropic/*" are allowed).
	AutoModels []string
	// LongPromptTokens: an estimated prompt at least this long goes to the
	// long tier.
	LongPromptTokens int
	// MaxTurns, when positive, keeps at most that many non-system turns.
	MaxTurns int
	// MaxAnswerBytes bounds the text of one answer (router.max_answer_bytes,
	// default DefaultMaxAnswerBytes): past it the answer is cut with a
	// note and the rest of the stream is never read, so a hostile or
	// broken upstream cannot fill memory. MaxEventBytes bounds one SSE
	// event (default DefaultMaxEventBytes).
	MaxAnswerBytes int
	MaxEventBytes  int

	Billing bot.Billing
	// CatalogCache is the file holding the last good /models answer; "" keeps
	// the catalog in memory only.
	CatalogCache string
	// UserSalt keys the hash sent as OpenRouter's `user` (the raw identity
	// never leaves the process).
	UserSalt string

	// Learn is how the auto router learns from a community's compare
	// votes (router.learn); Votes is where it reads them (nil: it does not
	// learn).
	Learn Learn
	Votes bot.TierVotes

	// Rank, when set, reorders a tier's candidates for one request, after
	// the community's votes (Learn) have had their say. It gets the request, the tier and the candidates that met
	// the hard constraints and the balance, best first, with their cost;
	// it returns the ids in the order to try and a sentence for the plan's
	// reasons ("" says nothing). Ids it leaves out keep their order after
	// the ones it returns; ids that are not candidates are ignored.
	Rank func(req bot.PlanRequest, tier string, cands []RankCandidate) (order []string, why string)

	Logger     *slog.Logger
	Metrics    bot.Metrics
	HTTPClient *http.Client
	Now        func() time.Time
}

// ProviderPrefs is OpenRouter's `provider` object (router.provider), with
// the values its chat spec allows.
type ProviderPrefs struct {
	Order          []string
	Only           []string
	Ignore         []string
	AllowFallbacks *bool
	// Sort is one of SortValues or "" (OpenRouter's default). With
	// SortPartition ("model" or "none") it is sent as {by, partition}.
	Sort          string
	SortPartition string
	// DataCollection is "allow", "deny" or "".
	DataCollection string
	// ZDR keeps to zero-data-retention endpoints; RequireParameters to
	// providers that support every parameter sent.
	ZDR               *bool
	RequireParameters *bool
	// Quantizations keeps to endpoints of these quantizations (Quantizations
	// lists the allowed values).
	Quantizations []string
	// MaxPrice caps the provider price; zero fields do not limit.
	MaxPrice MaxPrice
	// PreferredMaxLatency (seconds to the first token) and
	// PreferredMinThroughput (tokens per second) prefer faster endpoints
	// without excluding the others; 0 sends none.
	PreferredMaxLatency    float64
	PreferredMinThroughput float64
}

// MaxPrice caps the provider price: Prompt and Completion in USD per
// million tokens, Request per request and Image per image, in USD.
type MaxPrice struct {
	Prompt     float64
	Completion float64
	Request    float64
	Image      float64
}

// The values OpenRouter's chat spec allows (ProviderSort, Quantization,
// ProviderSortConfig.partition, PDFParserEngine).
var (
	SortValues         = []string{"price", "throughput", "latency", "exacto"}
	PartitionValues    = []string{"model", "none"}
	QuantizationValues = []string{"int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32", "unknown"}
	PDFEngines         = []string{"pdf-text", "mistral-ocr", "native", "cloudflare-ai"}
)

// Reasoning is how reasoning models think (router.reasoning): an effort
// and whether the thinking is shown, for every reasoning model, overridden
// per tier and then per model.
type Reasoning struct {
	ReasoningSetting
	// MaxTokens is the completion cap of a reasoning model: its thinking
	// counts inside the cap, so it needs room for the thinking and the
	// answer (default 8192; the ledger holds for all of it).
	MaxTokens int
	// Tiers and Models override the setting by tier name and model id.
	Tiers  map[string]ReasoningSetting
	Models map[string]ReasoningSetting
}

// ReasoningSetting is one level of the reasoning settings; zero fields
// inherit.
type ReasoningSetting struct {
	// Effort is one of bot.Efforts, or "" for the model's default.
	Effort string
	// Show: whether the user sees the thinking (nil inherits; default yes).
	Show *bool
}

// Learn is how the auto router learns from a community's compare votes
// (router.learn): once a tier has MinVotes votes in a community, its
// affordable candidates within the price band are tried in the order of
// that community's Bradley–Terry ratings for the tier.
type Learn struct {
	// MinVotes is how many votes a tier needs in a community before they
	// order its candidates (default 20).
	MinVotes int
	// PriceBand bounds what the votes may choose: a candidate may lead
	// when this request on it costs at most PriceBand times what it costs
	// on the router's own first choice (default 2; 1 keeps to that price
	// or cheaper).
	PriceBand float64
	// Refresh is how long a community's ratings are kept before they are
	// read again (default 1m): a plan never reads the database.
	Refresh time.Duration
}

// Web is the web search plugin (router.web).
type Web struct {
	// MaxResults is how many results a search brings (1-10, default 3:
	// OpenRouter's 5 would cost more than a new user's signup bonus).
	MaxResults int
	// Engine is "native", "exa", "firecrawl", "parallel", "perplexity" or
	// "" (OpenRouter's choice).
	Engine string
}

// WebEngines are the engines the web plugin accepts.
var WebEngines = []string{"native", "exa", "firecrawl", "parallel", "perplexity"}

// For returns the reasoning effort and whether to show the thinking for
// a model in a tier: the model's setting, else the tier's, else the
// default; ask, when not empty, is the user's own choice and wins.
func (r Reasoning) For(tier, model, ask string) (effort string, show bool) {
	effort, showp := r.ReasoningSetting.Effort, r.Show
	if t, ok := r.Tiers[tier]; ok {
		effort, showp = cmpOr(t.Effort, effort), ptrOr(t.Show, showp)
	}
	if m, ok := r.Models[model]; ok {
		effort, showp = cmpOr(m.Effort, effort), ptrOr(m.Show, showp)
	} else if m, ok := r.Models[baseID(model)]; ok {
		effort, showp = cmpOr(m.Effort, effort), ptrOr(m.Show, showp)
	}
	if ask != "" {
		effort = ask
	}
	return effort, showp == nil || *showp
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ptrOr(a, b *bool) *bool {
	if a != nil {
		return a
	}
	return b
}

// OpenRouterAPI reports whether the base URL speaks OpenRouter's API (see
// Config.API).
func (c Config) OpenRouterAPI() bool {
	switch c.API {
	case "openrouter":
		return true
	case "openai":
		return false
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "openrouter.ai" || strings.HasSuffix(h, ".openrouter.ai")
}

// DefaultTiers are the candidates of each tier, drawn from the catalog of
// February 2026. A tier whose candidates have all left the catalog still
// works: the router picks the best remaining model for the tier's needs.
func DefaultTiers() map[string][]string {
	return map[string][]string{
		TierFast:      {"google/gemini-2.5-flash-lite", "openai/gpt-4.1-nano", "mistralai/mistral-small-3.2-24b-instruct"},
		TierGeneral:   {"google/gemini-2.5-flash", "openai/gpt-5-mini", "deepseek/deepseek-v3.2"},
		TierCode:      {"qwen/qwen3-coder", "mistralai/devstral-2512", "openai/gpt-5.1-codex-mini"},
		TierReasoning: {"openai/o4-mini", "deepseek/deepseek-r1-0528", "google/gemini-2.5-flash"},
		TierLong:      {"google/gemini-2.5-flash", "openai/gpt-4.1-mini", "x-ai/grok-4.1-fast"},
		TierVision:    {"google/gemini-2.5-flash", "openai/gpt-4.1-mini", "meta-llama/llama-4-maverick"},
		TierFree:      {"meta-llama/llama-3.3-70b-instruct:free", "openai/gpt-oss-120b:free", "google/gemma-3-27b-it:free", "mistralai/mistral-small-3.1-24b-instruct:free"},
	}
}

// DefaultAutoModels are openrouter/auto's allowed models by default.
func DefaultAutoModels() []string {
	return []string{"google/gemini-2.5-flash", "openai/gpt-5-mini", "deepseek/deepseek-v3.2", "qwen/qwen3-coder", "anthropic/claude-haiku-4.5"}
}

// DefaultConfig returns the defaults: OpenRouter's API, generous timeouts
// for slow reasoning models, 1024 completion tokens with a floor of 64, two
// fallbacks, and cost billing at one balance token per 0.000001 USD.
func DefaultConfig() Config {
	return Config{
		BaseURL:             DefaultBaseURL,
		Title:               "orchat",
		ConnectTimeout:      10 * time.Second,
		FirstByteTimeout:    60 * time.Second,
		IdleTimeout:         60 * time.Second,
		RequestTimeout:      10 * time.Minute,
		MaxTokens:           1024,
		MinCompletionTokens: 64,
		MaxFallbacks:        2,
		FallbackBackoff:     250 * time.Millisecond,
		MaxFallbackWait:     5 * time.Second,
		MaxRetryAfter:       30 * time.Second,
		Tiers:               DefaultTiers(),
		AutoModels:          DefaultAutoModels(),
		LongPromptTokens:    48_000,
		MaxAnswerBytes:      DefaultMaxAnswerBytes,
		MaxEventBytes:       DefaultMaxEventBytes,
		Billing:             bot.Billing{Mode: bot.BillingCost, USDPerToken: 0.000001},
		// No effort is set: the router proposes one per tier
		// (ProposedEffort). An effort set here, for every model, a tier
		// (router.reasoning.tiers.NAME) or a model, wins over it.
		Reasoning:       Reasoning{MaxTokens: 8192},
		Web:             Web{MaxResults: 3},
		Learn:           Learn{MinVotes: 20, PriceBand: 2, Refresh: time.Minute},
		PDFEngine:       "pdf-text",
		ImageModel:      "google/gemini-2.5-flash-image",
		ImageMaxTokens:  4096,
		GenerationRetry: 2 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig so a partly filled
// Config (tests, tools) behaves.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BaseURL == "" {
		c.BaseURL = d.BaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.FirstByteTimeout <= 0 {
		c.FirstByteTimeout = d.FirstByteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = d.MaxTokens
	}
	if c.MinCompletionTokens <= 0 {
		c.MinCompletionTokens = d.MinCompletionTokens
	}
	if c.MinCompletionTokens > c.MaxTokens {
		c.MinCompletionTokens = c.MaxTokens
	}
	if c.MaxFallbacks < 0 {
		c.MaxFallbacks = 0
	}
	if c.FallbackBackoff < 0 {
		c.FallbackBackoff = 0
	}
	if c.MaxFallbackWait <= 0 {
		c.MaxFallbackWait = d.MaxFallbackWait
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = d.MaxRetryAfter
	}
	// A tier left out (or empty) keeps its default candidates, so a config
	// may override only the tiers it cares about.
	tiers := make(map[string][]string, len(d.Tiers))
	for t, ids := range d.Tiers {
		tiers[t] = ids
	}
	for t, ids := range c.Tiers {
		if len(ids) > 0 {
			tiers[t] = ids
		}
	}
	c.Tiers = tiers
	if c.AutoModels == nil {
		c.AutoModels = d.AutoModels
	}
	if c.LongPromptTokens <= 0 {
		c.LongPromptTokens = d.LongPromptTokens
	}
	if c.MaxAnswerBytes <= 0 {
		c.MaxAnswerBytes = d.MaxAnswerBytes
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = d.MaxEventBytes
	}
	if c.Billing.Mode == "" {
		c.Billing.Mode = d.Billing.Mode
	}
	if c.Billing.USDPerToken <= 0 {
		c.Billing.USDPerToken = d.Billing.USDPerToken
	}
	if c.Reasoning.MaxTokens <= 0 {
		c.Reasoning.MaxTokens = d.Reasoning.MaxTokens
	}
	if c.Web.MaxResults <= 0 {
		c.Web.MaxResults = d.Web.MaxResults
	}
	if c.Learn.MinVotes <= 0 {
		c.Learn.MinVotes = d.Learn.MinVotes
	}
	if c.Learn.PriceBand <= 0 {
		c.Learn.PriceBand = d.Learn.PriceBand
	}
	if c.Learn.Refresh <= 0 {
		c.Learn.Refresh = d.Learn.Refresh
	}
	if c.ImageModel == "" {
		c.ImageModel = d.ImageModel
	}
	if c.ImageMaxTokens <= 0 {
		c.ImageMaxTokens = d.ImageMaxTokens
	}
	if c.GenerationRetry == 0 {
		c.GenerationRetry = d.GenerationRetry
	}
	if c.Logger == nil {
		c.Logger = slog.Default().With("component", "router")
	}
	if c.Metrics == nil {
		c.Metrics = bot.NopMetrics{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every bad value, each naming its config key and what is
// allowed.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, v any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s = %#v: %s", key, v, fmt.Sprintf(format, args...)))
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("openrouter.base_url", c.BaseURL, "must be an http or https URL such as %s", DefaultBaseURL)
		}
	}
	for key, d := range map[string]time.Duration{
		"openrouter.connect_timeout":    c.ConnectTimeout,
		"openrouter.first_byte_timeout": c.FirstByteTimeout,
		"openrouter.idle_timeout":       c.IdleTimeout,
		"openrouter.request_timeout":    c.RequestTimeout,
		"router.fallback_backoff":       c.FallbackBackoff,
		"router.max_fallback_wait":      c.MaxFallbackWait,
		"router.max_retry_after":        c.MaxRetryAfter,
	} {
		if d < 0 {
			bad(key, d.String(), "must not be negative")
		}
	}
	if c.Learn.MinVotes < 0 || c.Learn.MinVotes > 1_000_000 {
		bad("router.learn.min_votes", c.Learn.MinVotes, "must be between 1 and 1000000 (0 uses the default 20)")
	}
	if c.Learn.PriceBand < 0 || c.Learn.PriceBand > 0 && c.Learn.PriceBand < 1 || c.Learn.PriceBand > 100 {
		bad("router.learn.price_band", c.Learn.PriceBand, "must be between 1 and 100 (how many times the router's own choice's price the votes may choose; 0 uses the default 2)")
	}
	if c.Learn.Refresh < 0 {
		bad("router.learn.refresh", c.Learn.Refresh.String(), "must not be negative (0 uses the default 1m)")
	}
	if c.MaxTokens < 0 || c.MaxTokens > 1_000_000 {
		bad("router.max_tokens", c.MaxTokens, "must be between 1 and 1000000 (0 uses the default 1024)")
	}
	if c.MinCompletionTokens < 0 || (c.MaxTokens > 0 && c.MinCompletionTokens > c.MaxTokens) {
		bad("router.min_completion_tokens", c.MinCompletionTokens, "must be between 1 and router.max_tokens")
	}
	if c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 2) {
		bad("router.temperature", *c.Temperature, "must be between 0 and 2")
	}
	if c.MaxFallbacks < 0 || c.MaxFallbacks > 5 {
		bad("router.max_fallbacks", c.MaxFallbacks, "must be between 0 and 5")
	}
	if c.MaxTurns < 0 {
		bad("router.max_turns", c.MaxTurns, "must not be negative (0 = no limit)")
	}
	if c.LongPromptTokens < 0 {
		bad("router.long_prompt_tokens", c.LongPromptTokens, "must not be negative")
	}
	switch c.API {
	case "", "openrouter", "openai":
	default:
		bad("openrouter.api", c.API, `must be "openrouter", "openai" or "" (OpenRouter when base_url is openrouter.ai's)`)
	}
	if c.MaxAnswerBytes < 0 || c.MaxAnswerBytes > maxAnswerBytesLimit {
		bad("router.max_answer_bytes", c.MaxAnswerBytes, "must be between 1 and %d (0 uses the default %d)", maxAnswerBytesLimit, DefaultMaxAnswerBytes)
	}
	p := c.Provider
	oneOf := func(key, v string, allowed []string) {
		if v != "" && !slices.Contains(allowed, v) {
			bad(key, v, "must be one of %s", strings.Join(allowed, ", "))
		}
	}
	oneOf("router.provider.sort", p.Sort, SortValues)
	oneOf("router.provider.sort_partition", p.SortPartition, PartitionValues)
	if p.SortPartition != "" && p.Sort == "" {
		bad("router.provider.sort_partition", p.SortPartition, "needs router.provider.sort (the object form is {by, partition})")
	}
	oneOf("router.provider.data_collection", p.DataCollection, []string{"allow", "deny"})
	for _, q := range p.Quantizations {
		oneOf("router.provider.quantizations", q, QuantizationValues)
	}
	for key, v := range map[string]float64{
		"router.provider.max_price.prompt":         p.MaxPrice.Prompt,
		"router.provider.max_price.completion":     p.MaxPrice.Completion,
		"router.provider.max_price.request":        p.MaxPrice.Request,
		"router.provider.max_price.image":          p.MaxPrice.Image,
		"router.provider.preferred_max_latency":    p.PreferredMaxLatency,
		"router.provider.preferred_min_throughput": p.PreferredMinThroughput,
	} {
		if v < 0 {
			bad(key, v, "must not be negative (0 = no limit)")
		}
	}
	r := c.Reasoning
	oneOf("router.reasoning.effort", r.Effort, bot.Efforts)
	if r.MaxTokens < 0 || r.MaxTokens > 1_000_000 {
		bad("router.reasoning.max_tokens", r.MaxTokens, "must be between 1 and 1000000 (0 uses the default 8192)")
	}
	for _, t := range slices.Sorted(maps.Keys(r.Tiers)) {
		if !slices.Contains(Tiers, t) && t != TierChosen {
			bad("router.reasoning.tiers."+t, t, "unknown tier; tiers are %s, chosen", strings.Join(Tiers, ", "))
		}
		oneOf("router.reasoning.tiers."+t+".effort", r.Tiers[t].Effort, bot.Efforts)
	}
	for _, id := range slices.Sorted(maps.Keys(r.Models)) {
		if !plausibleID(id) {
			bad("router.reasoning.models", id, "model ids look like provider/model, such as openai/o4-mini")
		}
		oneOf("router.reasoning.models."+id+".effort", r.Models[id].Effort, bot.Efforts)
	}
	if c.Web.MaxResults < 0 || c.Web.MaxResults > 10 {
		bad("router.web.max_results", c.Web.MaxResults, "must be between 1 and 10 (0 uses the default 3)")
	}
	oneOf("router.web.engine", c.Web.Engine, WebEngines)
	oneOf("router.files.pdf_engine", c.PDFEngine, PDFEngines)
	if c.ImageModel != "" && !plausibleID(c.ImageModel) {
		bad("router.image_model", c.ImageModel, "model ids look like provider/model, such as google/gemini-2.5-flash-image")
	}
	tierNames := slices.Sorted(maps.Keys(c.Tiers))
	for _, t := range tierNames {
		if !slices.Contains(Tiers, t) {
			bad("router.tiers."+t, t, "unknown tier; tiers are %s", strings.Join(Tiers, ", "))
			continue
		}
		for _, id := range c.Tiers[t] {
			if !plausibleID(id) {
				bad("router.tiers."+t, id, "model ids look like provider/model, such as google/gemini-2.5-flash")
			}
		}
	}
	for _, id := range c.AutoModels {
		if !plausibleID(id) {
			bad("router.auto_models", id, "model ids look like provider/model or provider/*")
		}
	}
	switch c.Billing.Mode {
	case "", bot.BillingCost, bot.BillingRaw:
	default:
		bad("billing.mode", c.Billing.Mode, "must be one of cost, raw")
	}
	if c.Billing.USDPerToken < 0 {
		bad("billing.usd_per_token", c.Billing.USDPerToken, "must be positive, such as 0.000001")
	}
	return errors.Join(errs...)
}

// maxAnswerBytesLimit is the largest router.max_answer_bytes: 64 MiB
// keeps even a few answers in flight far from exhausting memory.
const maxAnswerBytesLimit = 64 << 20

func plausibleID(id string) bool {
	a, b, ok := strings.Cut(id, "/")
	return ok && a != "" && b != "" && !strings.ContainsAny(id, " \t\n")
}
