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

// Reasoning efforts, as OpenRouter's chat spec defines `reasoning.effort`
// ("none" turns thinking off; "" leaves it to the model).
var Efforts = []string{"none", "minimal", "low", "medium", "high", "xhigh", "max"}

// ChatMessage is one turn of a conversation sent to a model.
type ChatMessage struct {
	Role    string
	Content string
	// Images are URLs (https: or data:image/...;base64,...) sent as image
	// parts; only vision models receive them.
	Images []string
	// Files are documents (PDFs) sent as `file` parts, read by the
	// file-parser plugin or by a model that reads files itself.
	Files []FilePart
	// ReasoningDetails is an assistant turn's reasoning_details as the
	// model sent them (a JSON array, opaque to orchat): sent back with the
	// turn, models that sign or encrypt their thinking continue it.
	ReasoningDetails []byte
	// Cache marks a prompt-caching breakpoint at the end of this message
	// (cache_control), for models whose caching must be asked for.
	Cache bool
}

// FilePart is one document of a message.
type FilePart struct {
	Name string
	// Data is a data: URL (data:application/pdf;base64,...) or an https URL.
	Data string
	Size int64 // bytes, for limits
	// Tokens is the estimated prompt tokens of the document's text.
	Tokens int
}

// Citation is one web source an answer cites (a url_citation annotation).
type Citation struct {
	URL   string
	Title string
}

// Image is one picture a model made.
type Image struct {
	MIME string // image/png, image/jpeg, image/webp
	Data []byte
}

// File is a file a message carries for the platform to upload (a
// generated image, the thinking of a reasoning model).
type File struct {
	Name string
	MIME string
	Data []byte
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
	// Effort is the reasoning effort the user asked for ("" keeps the
	// configured one); one of Efforts.
	Effort string
	// Web asks for OpenRouter's web search plugin (answers with citations).
	Web bool
	// ImageOutput asks for images back (/imagine): only models that output
	// images qualify.
	ImageOutput bool
	// Community is where the request comes from ("" for none). With
	// Learn set, the auto router orders a tier's candidates by this
	// community's compare votes once the tier has enough of them (a
	// community admin turns it off: /settings routing learn off).
	Community string
	Learn     bool
	// Classify asks for the prompt's tier even when a model is named:
	// a compare records it, so its votes teach the tier they belong to
	// (Plan.Needed).
	Classify bool
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
	// Reasoning is the reasoning effort to send ("" sends none), and
	// ShowReasoning whether the thinking is shown to the user.
	Reasoning     string
	ShowReasoning bool
	// Web sends the web search plugin with at most WebResults results;
	// Cost includes what the search costs.
	Web        bool
	WebResults int
	// Modalities are the output modalities to ask for (["image", "text"]
	// for image output); nil asks for text.
	Modalities []string
	// ImagesDropped counts the images of earlier turns left out because
	// the model cannot read images (the reply says so).
	ImagesDropped int
	// Needed is the tier the auto router classified the prompt into (set
	// for auto plans, and for named models when PlanRequest.Classify
	// asked); "" when it did not classify.
	Needed string
	// Learned: the community's compare votes put Model first, ahead of
	// the model the router would have chosen without them (the footer
	// says so).
	Learned bool
	// EffortFrom says where Reasoning came from: "you" (effort:), "config"
	// (router.reasoning), "tier" (the router's proposal for the tier), or
	// "" when no effort is sent.
	EffortFrom string
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
	// OnReasoning, when set, receives each piece of the model's thinking
	// as it arrives (the text goes to Stream's onDelta).
	OnReasoning func(delta string)
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
	// Settled says where Cost came from: "usage" (the response's usage),
	// "generation" (GET /generation after a cut stream), "estimate" (from
	// what was received), or "" (nothing billed).
	Settled string
	// FinishReason is the response's: stop, length, content_filter,
	// tool_calls or error; with Err set, FinishLength means the answer went
	// past the longest one allowed and was cut there: asking again would
	// only be cut again.
	FinishReason string
	// Reasoning is the model's thinking as text; ReasoningDetails its
	// reasoning_details (opaque JSON) to send back with the next turn.
	Reasoning        string
	ReasoningDetails []byte
	// Refusal is the model's refusal message, when it refused.
	Refusal   string
	Citations []Citation
	Images    []Image
	TTFT      time.Duration // time to the first token; 0 if none came
	Latency   time.Duration // time to the end of the call
	Attempts  []string      // every candidate tried, in order
	Err       error
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

// Credits is what the host's upstream API key has left (OpenRouter's
// GET /key), as last read.
type Credits struct {
	// Known is false until the key was read (or for an upstream without
	// /key, such as another OpenAI-compatible server).
	Known bool
	// LimitUSD is the key's credit limit and RemainingUSD what is left of
	// it; both nil for a key without a limit.
	LimitUSD     *float64
	RemainingUSD *float64
	UsageUSD     float64
	CheckedAt    time.Time
}

// Out reports whether the key has a limit and nothing left of it: no paid
// call can succeed.
func (c Credits) Out() bool { return c.Known && c.RemainingUSD != nil && *c.RemainingUSD <= 0 }

// Below reports whether the key has a limit with less than usd left.
func (c Credits) Below(usd float64) bool {
	return c.Known && c.RemainingUSD != nil && *c.RemainingUSD < usd
}

// CreditsSource reads the host's credits: Credits returns the last
// reading at once, RefreshCredits asks the upstream (EUNAVAILABLE when it
// cannot).
type CreditsSource interface {
	Credits() Credits
	RefreshCredits(ctx context.Context) (Credits, error)
}
