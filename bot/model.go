package bot

import (
	"context"
	"math"
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
	Created         time.Time
}

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

// Usage is what one model call consumed, as reported by the upstream.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64
	ReasoningTokens  int64
	// CostUSD is usage.cost (OpenRouter credits); CostReported says whether the
	// upstream sent it at all (zero is a valid cost for free models).
	CostUSD      float64
	CostReported bool
	// IsBYOK: with the user's own provider key, cost is only OpenRouter's fee
	// and UpstreamCostUSD is what the provider billed.
	IsBYOK          bool
	UpstreamCostUSD float64
}

// Billing converts upstream cost into balance tokens (DESIGN.md "Unit").
type Billing struct {
	// Mode is "cost" (one balance token is USDPerToken of upstream cost) or
	// "raw" (one balance token per prompt or completion token).
	Mode        string
	USDPerToken float64
}

// Billing modes.
const (
	BillingCost = "cost"
	BillingRaw  = "raw"
)

// FromUSD converts an amount in USD to balance tokens, rounding up so the
// bot never undercharges by a fraction; a tiny epsilon absorbs float noise
// (0.000093 USD is 93 tokens, not 94).
func (b Billing) FromUSD(usd float64) int64 {
	if usd <= 0 || b.USDPerToken <= 0 || math.IsNaN(usd) || math.IsInf(usd, 0) {
		return 0
	}
	v := math.Ceil(usd/b.USDPerToken - 1e-6)
	if v > float64(MaxAmount) {
		return MaxAmount
	}
	return int64(v)
}

// USD returns what the upstream billed for u in USD: usage.cost, plus the
// provider's bill when the call ran on the user's own key (BYOK).
func (u Usage) USD() float64 {
	c := u.CostUSD
	if u.IsBYOK {
		c += u.UpstreamCostUSD
	}
	return c
}

// Charge returns the balance tokens for a finished call on model m. In cost
// mode it uses the reported usage.cost when present, else the catalog price ×
// usage (never from a router's -1 price). Free models cost nothing.
func (b Billing) Charge(u Usage, m Model) int64 {
	if m.Free() {
		return 0
	}
	if b.Mode == BillingRaw {
		return clampTokens(u.PromptTokens + u.CompletionTokens)
	}
	if u.CostReported {
		return b.FromUSD(u.USD())
	}
	if m.Router() {
		return 0
	}
	return b.FromUSD(float64(u.PromptTokens)*m.PromptPrice + float64(u.CompletionTokens)*m.CompletionPrice + m.RequestPrice)
}

// Estimate returns the worst-case balance tokens for a call on m with the
// given prompt and completion tokens: the amount to hold before calling it.
func (b Billing) Estimate(m Model, promptTokens, completionTokens int) int64 {
	if m.Free() {
		return 0
	}
	if b.Mode == BillingRaw {
		return clampTokens(int64(promptTokens) + int64(completionTokens))
	}
	if m.Router() {
		return 0
	}
	return b.FromUSD(float64(promptTokens)*m.PromptPrice + float64(completionTokens)*m.CompletionPrice + m.RequestPrice)
}

func clampTokens(n int64) int64 {
	if n < 0 {
		return 0
	}
	if n > MaxAmount {
		return MaxAmount
	}
	return n
}

// Chat roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// ChatMessage is one turn of a conversation sent to a model.
type ChatMessage struct {
	Role    string
	Content string
	// Images are URLs (https: or data:image/...;base64,...) sent as image
	// parts; only vision models receive them.
	Images []string
}

// PlanRequest is what the router needs to choose a model for a prompt.
type PlanRequest struct {
	Identity Identity
	// Messages: system prompt, history oldest first, then the new message.
	Messages []ChatMessage
	// Model is the user's explicit choice: "" or "auto" for the local auto
	// router, "openrouter/auto", or a catalog id (with an optional suffix).
	Model string
	// MaxTokens caps the completion; 0 uses the router's default.
	MaxTokens int
	// Tools: the request needs tool calls.
	Tools bool
	// Available is the balance the user can reserve right now.
	Available int64
	// FreeRemaining is how many free-tier requests the user has left today.
	FreeRemaining int
}

// Plan is the router's decision for one request, explained.
type Plan struct {
	Model     string   // the first candidate
	Fallbacks []string // the next candidates, in order
	Tier      string   // fast, general, code, reasoning, long, vision, free, or "chosen"
	Reasons   []string // plain words: why this model
	Free      bool     // every candidate is a :free model (counts against the daily allowance)
	// FreeFallback: the free tier was chosen because the balance cannot
	// afford a paid answer (the reply says so).
	FreeFallback bool
	MaxTokens    int // completion cap, possibly lowered to what the balance affords
	// Messages are the request's messages, trimmed to fit the smallest
	// context of the candidates; Dropped counts the turns dropped for it.
	Messages     []ChatMessage
	Dropped      int
	PromptTokens int // estimated prompt tokens of Messages
	// Cost is the worst case over every candidate in balance tokens: the
	// amount to hold. CostUSD is the same in USD.
	Cost    int64
	CostUSD float64
	// AutoModels, for openrouter/auto, are sent as the auto-router plugin's
	// allowed_models.
	AutoModels []string
}

// Candidates returns the model and its fallbacks in order.
func (p Plan) Candidates() []string {
	return append([]string{p.Model}, p.Fallbacks...)
}

// ChatRequest is one call to make: the plan plus per-request metadata.
type ChatRequest struct {
	Plan      Plan
	User      Identity // sent (hashed) as OpenRouter's `user` for abuse tracking
	SessionID string   // groups a conversation's calls upstream
}

// Result is the outcome of one model call. On failure Err is set and Text
// holds whatever was received before the failure.
type Result struct {
	Text         string
	Model        string // the model that actually answered
	Provider     string
	GenerationID string
	Usage        Usage
	// Cost is the balance tokens to charge. Estimated is true when the
	// stream ended without usage and Cost was estimated from what was
	// received (the ledger still caps it at the hold).
	Cost         int64
	Estimated    bool
	FinishReason string
	TTFT         time.Duration // time to the first token; 0 if none came
	Latency      time.Duration // time to the end of the call
	Attempts     []string      // every candidate tried, in order
	Err          error
}

// Chat is the router: it plans, streams and compares model calls.
type Chat interface {
	// Plan chooses the model for a request. EINVALID for empty prompts,
	// unknown models or constraints no model meets (an image to a text-only
	// model, a prompt larger than every context); EINSUFFICIENT when the
	// balance cannot afford the floor and no free request is left.
	Plan(ctx context.Context, req PlanRequest) (Plan, error)

	// Stream calls the plan's candidates in order until one answers,
	// calling onDelta with each piece of text as it arrives. Before any
	// output, retryable failures move to the next candidate; after output,
	// it never restarts: it returns the partial text with the error.
	// Errors: EUNAVAILABLE (upstream failed), EINVALID (the upstream refused
	// the request), EINSUFFICIENT (upstream credits), ERATELIMIT.
	Stream(ctx context.Context, req ChatRequest, onDelta func(delta string)) (Result, error)

	// Compare runs 2-4 requests concurrently, each its own stream and
	// result; onDelta receives the index of the request. One failure never
	// sinks the others; it returns when the slowest ends or ctx ends.
	Compare(ctx context.Context, reqs []ChatRequest, onDelta func(i int, delta string)) []Result
}
