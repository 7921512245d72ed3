package bot

import (
	"slices"
	"strings"
	"time"
)

// Model is one entry of the OpenRouter catalog, reduced to what routing,
// pricing and display need.
type Model struct {
	ID          string
	Name        string
	Description string
	// ContextLength is the model's context window in tokens.
	ContextLength int
	// MaxCompletionTokens is the top provider's completion cap; 0 means only
	// the context length limits it.
	MaxCompletionTokens int
	InputModalities     []string
	OutputModalities    []string
	SupportedParameters []string
	// Prices in USD per token (per request, per image). -1 means "varies"
	// (routers such as openrouter/auto): never price a call from it.
	PromptPrice     float64
	CompletionPrice float64
	RequestPrice    float64
	ImagePrice      float64
	// WebSearchPrice is what one web search costs with the model's native
	// search (pricing.web_search, USD per request); 0 when it searches
	// through OpenRouter's engine, priced per result.
	WebSearchPrice float64
	// CacheReadPrice and CacheWritePrice are the prompt-caching prices
	// (USD per token); a cache-write price means caching must be asked
	// for with cache_control breakpoints.
	CacheReadPrice  float64
	CacheWritePrice float64
	Created         time.Time
}

// Reasons reports whether the model can think before it answers (it takes
// OpenRouter's reasoning parameter).
func (m Model) Reasons() bool {
	return slices.Contains(m.SupportedParameters, "reasoning") || slices.Contains(m.SupportedParameters, "reasoning_effort")
}

// Files reports whether the model reads documents (file parts).
func (m Model) Files() bool { return slices.Contains(m.InputModalities, "file") }

// ImageOutput reports whether the model makes images.
func (m Model) ImageOutput() bool { return slices.Contains(m.OutputModalities, "image") }

// ExplicitCache reports whether the model caches prompts only at
// cache_control breakpoints (Anthropic's and Gemini's models, which list
// a cache-write price).
func (m Model) ExplicitCache() bool { return m.CacheWritePrice > 0 }

// Free reports whether the model is a `:free` variant: it costs no balance
// and counts against the daily free-tier allowance instead.
func (m Model) Free() bool { return strings.HasSuffix(m.ID, ":free") }

// Router reports whether the model's price varies (a router such as
// openrouter/auto lists -1 as its prices).
func (m Model) Router() bool { return m.PromptPrice < 0 || m.CompletionPrice < 0 }

// Vision reports whether the model accepts images.
func (m Model) Vision() bool { return slices.Contains(m.InputModalities, "image") }

// Tools reports whether the model supports tool calls.
func (m Model) Tools() bool { return slices.Contains(m.SupportedParameters, "tools") }

// ModelQuery filters a catalog search. Zero fields do not filter.
type ModelQuery struct {
	Text   string // matched against id, name and description, case-insensitively
	Free   bool
	Vision bool
	Tools  bool
	// ImageOutput keeps the models that make images.
	ImageOutput bool
	// MaxPromptPrice, when positive, keeps models whose prompt price in USD per
	// token is at most this.
	MaxPromptPrice float64
	Limit          int
}

// Catalog is the list of models the bot can call.
type Catalog interface {
	// Lookup returns the model for an id. The id may carry a routing suffix
	// (:nitro, :floor, :online, :thinking, :exacto); the returned model's ID
	// is the id as given. ENOTFOUND, with the closest ids, for unknown ids.
	Lookup(id string) (Model, error)
	// Search returns the models that match q, best matches first.
	Search(q ModelQuery) []Model
	// Len returns how many models the catalog holds (0 before the first load).
	Len() int
}
