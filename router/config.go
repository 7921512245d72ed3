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

	Provider  ProviderPrefs
	Reasoning *Reasoning

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

	// Rank, when set, reorders a tier's candidates for one request: the
	// hook for preferences a community's compare votes teach (a later
	// phase). It gets the request, the tier and the candidates that met
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

// ProviderPrefs is OpenRouter's `provider` object (router.provider).
type ProviderPrefs struct {
	Order          []string
	Only           []string
	Ignore         []string
	AllowFallbacks *bool
	// Sort is "price", "latency", "throughput" or "" (OpenRouter's default).
	Sort string
	// DataCollection is "allow", "deny" or "".
	DataCollection string
	// MaxPrice in USD per million tokens; zero does not limit.
	MaxPrice MaxPrice
}

// MaxPrice caps the provider price, in USD per million tokens.
type MaxPrice struct {
	Prompt     float64
	Completion float64
}

// Reasoning is OpenRouter's `reasoning` object.
type Reasoning struct {
	// Effort is "none", "minimal", "low", "medium", "high", "xhigh", "max"
	// or "" (the model's default); MaxTokens is the alternative.
	Effort    string
	MaxTokens int
	Exclude   bool
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
	if c.MaxAnswerBytes < 0 || c.MaxAnswerBytes > maxAnswerBytesLimit {
		bad("router.max_answer_bytes", c.MaxAnswerBytes, "must be between 1 and %d (0 uses the default %d)", maxAnswerBytesLimit, DefaultMaxAnswerBytes)
	}
	p := c.Provider
	if p.Sort != "" && !slices.Contains([]string{"price", "latency", "throughput"}, p.Sort) {
		bad("router.provider.sort", p.Sort, "must be one of price, latency, throughput")
	}
	if p.DataCollection != "" && p.DataCollection != "allow" && p.DataCollection != "deny" {
		bad("router.provider.data_collection", p.DataCollection, "must be one of allow, deny")
	}
	if p.MaxPrice.Prompt < 0 {
		bad("router.provider.max_price.prompt", p.MaxPrice.Prompt, "must not be negative (USD per million tokens)")
	}
	if p.MaxPrice.Completion < 0 {
		bad("router.provider.max_price.completion", p.MaxPrice.Completion, "must not be negative (USD per million tokens)")
	}
	if r := c.Reasoning; r != nil {
		if r.Effort != "" && !slices.Contains([]string{"none", "minimal", "low", "medium", "high", "xhigh", "max"}, r.Effort) {
			bad("router.reasoning.effort", r.Effort, "must be one of none, minimal, low, medium, high, xhigh, max")
		}
		if r.MaxTokens < 0 {
			bad("router.reasoning.max_tokens", r.MaxTokens, "must not be negative")
		}
		if r.Effort != "" && r.MaxTokens > 0 {
			bad("router.reasoning.max_tokens", r.MaxTokens, "set either router.reasoning.effort or router.reasoning.max_tokens, not both")
		}
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
