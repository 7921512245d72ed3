package bot

import (
	"context"
	"fmt"
	"time"
)

// Kind says what a bot message is, so adapters can render it (and the
// console's --json can label it).
type Kind string

// Message kinds.
const (
	KindReply   Kind = "reply"   // a model's answer
	KindCompare Kind = "compare" // a compare: one panel per model
	KindError   Kind = "error"   // something the user should know went wrong
	KindNotice  Kind = "notice"  // command output and announcements
)

// Status is the state of a message that may still change.
type Status string

// Message statuses; adapters show them (Discord: the embed colour).
const (
	StatusStreaming Status = "streaming"
	StatusDone      Status = "done"
	StatusFailed    Status = "failed"
)

// Message is one bot message as the adapter should show it.
type Message struct {
	Kind   Kind
	Status Status
	// Text is the body. For a long answer split over several messages, each
	// message holds one part; Part counts from 0.
	Text string
	Part int
	// Footer is a short line under the body (model · tokens · charged ·
	// balance); adapters render it small. Empty while streaming.
	Footer string
	// Private messages are shown only to the user who asked (ephemeral
	// where the platform allows it, a DM otherwise).
	Private bool
	Compare *CompareView // set for KindCompare
	Vote    *VoteResult  // set when a vote was recorded: update the tally
	Meta    *ReplyMeta   // structured facts of a finished answer
	// Thinking: the model is thinking and has written no answer yet
	// (adapters show that it is).
	Thinking bool
	// Reasoning is a finished answer's thinking, to show out of the way
	// (Discord: a thinking.md file; Slack: a thread reply; console: dimmed).
	Reasoning string
	// Citations are the web sources of the answer, rendered as numbered
	// footnotes under its last part.
	Citations []Citation
	// Files are uploaded with the message (generated images).
	Files []File
	// Welcome marks the note a first-time member gets (always Private):
	// an adapter may fold it into the answer that follows instead of
	// posting it on its own (Discord puts it in a mention's footer), so a
	// shared channel sees one post per question, not two.
	Welcome bool
}

// ReplyMeta holds the facts of a finished answer, for footers and for
// scripts (console --json).
type ReplyMeta struct {
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	Charged          int64
	Balance          int64
	FreeLeft         int // free requests left today; -1 when not a free call
	ReasoningTokens  int64
	CachedTokens     int64
	FinishReason     string

	// ChargePending: the charge could not be written yet and is being
	// retried; Charged is 0 until it lands.
	ChargePending bool
}

// CompareView is a compare as shown: one panel per model and, once every
// panel is done, the vote choices.
type CompareView struct {
	ID      string
	Panels  []Panel
	Choices []string // "A", "B", …, "tie" once voting is open
	Tally   Tally
	Footer  string // totals: charged, balance left
}

// Panel is one model's side of a compare.
type Panel struct {
	Label            string // "A", "B", …
	Model            string // requested
	Answered         string // the model that actually answered
	Text             string
	Status           Status
	TTFT             time.Duration
	Latency          time.Duration
	PromptTokens     int64
	CompletionTokens int64
	Charged          int64
	Error            string
	// Blind: the model is hidden until the member votes (Model holds
	// the placeholder shown, and Summary leaves out the charge, which
	// would tell a dear model from a cheap one).
	Blind           bool
	ReasoningTokens int64
	// Thinking: still thinking, no answer text yet.
	Thinking  bool
	Citations []Citation
	// Images is how many images the model made (uploaded after the panels).
	Images int
}

// Summary is the panel's one-line facts: latency, tokens and charge.
func (p Panel) Summary() string {
	if p.Blind {
		switch p.Status {
		case StatusStreaming:
			return "streaming…"
		case StatusFailed:
			return "failed"
		}
		return fmt.Sprintf("%s in / %s out", FormatTokens(p.PromptTokens), FormatTokens(p.CompletionTokens))
	}
	switch p.Status {
	case StatusStreaming:
		if p.Thinking {
			return "thinking…"
		}
		if p.TTFT > 0 {
			return fmt.Sprintf("streaming · first token %s", FormatDuration(p.TTFT))
		}
		return "waiting for the first token…"
	case StatusFailed:
		return "failed · charged " + FormatTokens(p.Charged)
	}
	s := fmt.Sprintf("first token %s · total %s · %s in / %s out", FormatDuration(p.TTFT), FormatDuration(p.Latency),
		FormatTokens(p.PromptTokens), FormatTokens(p.CompletionTokens))
	if p.ReasoningTokens > 0 {
		s += fmt.Sprintf(" (%s thinking)", FormatTokens(p.ReasoningTokens))
	}
	return s + " · charged " + FormatTokens(p.Charged)
}

// VoteResult is what a vote changed: adapters update the compare message's
// tally with it.
type VoteResult struct {
	CompareID string
	Choice    string
	Tally     Tally
}

// Output is what a platform adapter implements for one event: it posts and
// edits the bot's messages. Adapters handle their platform's rate limits
// (waiting out 429s) inside these calls; the engine paces how often it calls
// them.
type Output interface {
	// Post sends a new message and returns its id for later edits.
	Post(ctx context.Context, m Message) (id string, err error)
	// Edit replaces the message with the given id.
	Edit(ctx context.Context, id string, m Message) error
}

// Limits are a platform's message limits that the engine respects.
type Limits struct {
	// Text is the most characters (runes) one message's Text may hold.
	Text int
	// EditInterval, when positive, replaces the engine's edit pace for this
	// platform (a terminal can repaint far more often than Discord allows).
	EditInterval time.Duration
}

// Limiter is an optional Output power: platforms with message limits
// report them; the default is 2,000.
type Limiter interface {
	Limits() Limits
}

// Patient is an optional Output power: where a request over the per-user
// rate limit waits for its turn instead of being refused. The console is
// patient (a script's lines come faster than a person types, and none may
// be dropped); platforms are not, and keep refusing with "try again in N s".
// Waiting is told how long the wait is before each one starts.
type Patient interface {
	Waiting(wait time.Duration)
}

// Typer is an optional Output power: show that the bot is working (Discord's
// typing indicator) while it waits for the first token.
type Typer interface {
	Typing(ctx context.Context) error
}
