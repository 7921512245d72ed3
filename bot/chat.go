package bot

import (
	"context"
	"time"
)

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
	// Available is the balance the user can reserve right now; Held is what
	// the user's answers in progress hold besides (refusals say both).
	Available int64
	Held      int64
	// FreeRemaining is how many free-tier requests the user has left today.
	FreeRemaining int
	// Policy, when set, is the community's model rules: a model they
	// refuse is never planned (a chosen one is refused with the reason).
	Policy *ModelPolicy
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

// FinishLength is the finish reason of an answer that a length limit
// ended (OpenAI's "length").
const FinishLength = "length"

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
	Cost      int64
	Estimated bool
	// FinishReason is the upstream's ("stop", "length", …); with Err set,
	// FinishLength means the answer went past the longest one allowed and
	// was cut there: asking again would only be cut again.
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
