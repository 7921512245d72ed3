package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// Codes of UpstreamError that the client sets itself (the others are the
// upstream's error.code as a string).
const (
	CodeTimeout          = "timeout"      // no response headers in time, or the whole request took too long
	CodeIdleTimeout      = "idle_timeout" // the stream stopped sending
	CodeTransport        = "transport"    // connection refused, reset, DNS...
	CodeTruncated        = "truncated"    // the stream ended without a finish reason, usage or [DONE]
	CodeBadStream        = "bad_stream"   // invalid JSON or an oversized line inside a stream
	CodeHTML             = "html"         // an HTML page instead of JSON
	CodeEmptyBody        = "empty_body"   // no body at all
	CodeBadJSON          = "bad_json"     // a body that is not the JSON expected
	CodeNoChoices        = "no_choices"   // a 200 without any answer
	CodeMidStream        = "mid_stream"   // a stream chunk carried an error without a code
	CodeAnswerTooLong    = "too_long"     // the answer went past Config.MaxAnswerBytes and was cut there
	codeFreeModelsPerDay = "free-models-per-day"
)

// UpstreamError is a failed call to the upstream. It wraps a *bot.Error, so
// bot.ErrorMessage gives the sentence to show and bot.ErrorCode the code,
// while errors.As can still reach the details.
type UpstreamError struct {
	// Status is the HTTP status: 0 for a transport failure or timeout, 200
	// for a failure inside a stream that had started.
	Status int
	// Code is error.code as a string ("502", "server_error"), or one of the
	// Code* constants for failures the client detected.
	Code string
	// Message is the upstream's own message (for logs; users read the
	// wrapped *bot.Error).
	Message  string
	Model    string // the candidate that failed
	Metadata ErrorMetadata
	// RetryAfter is how long to wait before retrying (Retry-After,
	// X-RateLimit-Reset or the 429 body's headers), capped at
	// Config.MaxRetryAfter.
	RetryAfter time.Duration
	// ResetAt is when a rate limit resets, uncapped (zero if unknown).
	ResetAt time.Time
	// waitFor is the wait the upstream asked for, uncapped: what people
	// are told, while RetryAfter is what the router is willing to wait.
	waitFor time.Duration
	// DailyCap: the free-models-per-day limit; retrying before ResetAt is
	// useless.
	DailyCap bool
	// Retryable: another candidate may succeed.
	Retryable bool
	// Partial: the failure came after the stream had started.
	Partial bool

	user  *bot.Error
	cause error
}

// ErrorMetadata is error.metadata.
type ErrorMetadata struct {
	Reasons      []string          // moderation reasons
	Patterns     []string          // what a guardrail matched
	FlaggedInput string            // the flagged part of the input (moderation)
	ProviderName string            // the provider that failed
	Raw          string            // the provider's raw error
	Headers      map[string]string // rate-limit headers quoted in a 429 body
}

// Error describes the failure for logs.
func (e *UpstreamError) Error() string {
	var b strings.Builder
	b.WriteString("upstream")
	if e.Model != "" {
		b.WriteString(" " + e.Model)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	}
	if e.Code != "" && e.Code != strconv.Itoa(e.Status) {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Metadata.ProviderName != "" {
		fmt.Fprintf(&b, " (provider %s)", e.Metadata.ProviderName)
	}
	if e.cause != nil && (e.Message == "" || !strings.Contains(e.Message, e.cause.Error())) {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	return b.String()
}

// Unwrap returns the *bot.Error for people and the underlying cause.
func (e *UpstreamError) Unwrap() []error {
	errs := []error{e.user}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// BotError returns the *bot.Error people read.
func (e *UpstreamError) BotError() *bot.Error { return e.user }

// wireError is OpenRouter's error body:
// {"error":{"code","message","metadata"},"user_id"}.
type wireError struct {
	Error *struct {
		Code     json.RawMessage `json:"code"`
		Message  string          `json:"message"`
		Metadata json.RawMessage `json:"metadata"`
	} `json:"error"`
}

type wireMetadata struct {
	Reasons      []string          `json:"reasons"`
	Patterns     []string          `json:"patterns"`
	FlaggedInput string            `json:"flagged_input"`
	ProviderName *string           `json:"provider_name"`
	Raw          json.RawMessage   `json:"raw"`
	Headers      map[string]string `json:"headers"`
}

// codeString turns error.code (a number or a string) into a string.
func codeString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

func parseMetadata(raw json.RawMessage) ErrorMetadata {
	var md ErrorMetadata
	var w wireMetadata
	if len(raw) == 0 || json.Unmarshal(raw, &w) != nil {
		return md
	}
	md.Reasons = w.Reasons
	md.Patterns = w.Patterns
	md.FlaggedInput = w.FlaggedInput
	if w.ProviderName != nil {
		md.ProviderName = *w.ProviderName
	}
	if len(w.Raw) > 0 && string(w.Raw) != "null" {
		var s string
		if json.Unmarshal(w.Raw, &s) == nil {
			md.Raw = s
		} else {
			md.Raw = string(w.Raw)
		}
	}
	md.Headers = w.Headers
	return md
}

// httpError builds the error for a non-2xx answer (or a 2xx whose body is
// not what was expected: pass the status and a code).
func (c *Client) httpError(model string, status int, h http.Header, body []byte) *UpstreamError {
	e := &UpstreamError{Status: status, Model: model, Code: strconv.Itoa(status)}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
		e.Code = CodeEmptyBody
		e.Message = fmt.Sprintf("empty body with status %d", status)
	case looksHTML(h, trimmed):
		e.Code = CodeHTML
		e.Message = fmt.Sprintf("an HTML page with status %d, not JSON", status)
	default:
		var w wireError
		if err := json.Unmarshal(trimmed, &w); err != nil || w.Error == nil {
			e.Code = CodeBadJSON
			e.Message = fmt.Sprintf("status %d with a body that is not an OpenRouter error: %s", status, snippet(trimmed))
		} else {
			if code := codeString(w.Error.Code); code != "" {
				e.Code = code
			}
			e.Message = w.Error.Message
			e.Metadata = parseMetadata(w.Error.Metadata)
		}
	}
	if status == http.StatusTooManyRequests {
		e.DailyCap = strings.Contains(e.Message, codeFreeModelsPerDay) || strings.Contains(strings.ToLower(e.Message), "per day")
		c.setRetryAfter(e, h)
	} else if status == http.StatusServiceUnavailable || status == 529 {
		c.setRetryAfter(e, h)
	}
	classifyError(e)
	return e
}

func looksHTML(h http.Header, body []byte) bool {
	if strings.Contains(strings.ToLower(h.Get("Content-Type")), "text/html") {
		return true
	}
	return len(body) > 0 && body[0] == '<'
}

// snippet quotes the start of a body for an error message.
func snippet(b []byte) string {
	const max = 120
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}

// setRetryAfter reads Retry-After (seconds or an HTTP date), then
// X-RateLimit-Reset (epoch milliseconds) from the headers or, as OpenRouter
// quotes them, from the 429 body's metadata.headers.
func (c *Client) setRetryAfter(e *UpstreamError, h http.Header) {
	now := c.cfg.Now()
	var wait time.Duration
	var resetAt time.Time
	if v := h.Get("Retry-After"); v != "" {
		if secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			wait = durationOf(secs)
		} else if t, err := http.ParseTime(v); err == nil {
			wait = t.Sub(now)
		}
	}
	reset := h.Get("X-RateLimit-Reset")
	if reset == "" {
		for k, v := range e.Metadata.Headers {
			if strings.EqualFold(k, "X-RateLimit-Reset") {
				reset = v
			}
		}
	}
	if reset != "" {
		resetAt = parseReset(reset, now)
		if wait <= 0 && !resetAt.IsZero() {
			wait = resetAt.Sub(now)
		}
	}
	if wait < 0 {
		wait = 0
	}
	if resetAt.IsZero() && wait > 0 {
		resetAt = now.Add(wait)
	}
	e.waitFor = wait
	if wait > c.cfg.MaxRetryAfter {
		wait = c.cfg.MaxRetryAfter
	}
	e.RetryAfter = wait
	e.ResetAt = resetAt
}

// durationOf converts seconds to a duration without overflowing.
func durationOf(secs float64) time.Duration {
	if secs <= 0 || secs != secs {
		return 0
	}
	if secs > 100*365*24*3600 {
		secs = 100 * 365 * 24 * 3600
	}
	return time.Duration(secs * float64(time.Second))
}

// parseReset reads a rate-limit reset: epoch milliseconds (OpenRouter),
// epoch seconds, seconds from now, or a Go-style duration ("6m0s").
func parseReset(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case n >= 1e12:
			return time.UnixMilli(int64(n))
		case n >= 1e9:
			return time.Unix(int64(n), 0)
		case n > 0:
			return now.Add(durationOf(n))
		}
		return time.Time{}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(d)
	}
	return time.Time{}
}

// classifyError decides whether another candidate may succeed and writes the
// sentence a person reads.
func classifyError(e *UpstreamError) {
	model := e.Model
	if model == "" {
		model = "the model"
	}
	provider := ""
	if e.Metadata.ProviderName != "" {
		provider = " (" + e.Metadata.ProviderName + ")"
	}
	switch {
	case e.Status == 0 || e.Status == http.StatusOK:
		// Timeouts, transport failures and broken streams are set by the
		// caller with their own sentences.
		if e.user == nil {
			e.Retryable = true
			e.user = bot.Errorf(bot.EUNAVAILABLE, "%s could not be reached; please try again in a moment.", model)
		}
	case e.Status == http.StatusBadRequest:
		msg := e.Message
		if msg == "" {
			msg = "no reason given"
		}
		e.user = bot.Errorf(bot.EINVALID, "%s refused the request: %s.", model, strings.TrimSuffix(bot.Clip(msg, 300), "."))
	case e.Status == http.StatusUnauthorized:
		e.user = bot.Errorf(bot.EUNAVAILABLE, "The bot's OpenRouter API key was refused, so no model can be called; tell the host to check openrouter.api_key.")
	case e.Status == http.StatusPaymentRequired:
		e.user = bot.Errorf(bot.EINSUFFICIENT, "The bot's OpenRouter account is out of credits; tell the host. Nothing was charged to you.")
	case e.Status == http.StatusRequestEntityTooLarge:
		e.user = bot.Errorf(bot.EINVALID, "The request is too large for %s (413): send a shorter message or smaller attachments, or start a new conversation. Nothing was charged.", model)
	case e.Status == http.StatusUnprocessableEntity:
		e.user = bot.Errorf(bot.EINVALID, "%s could not process the request (422)%s. Nothing was charged.", model, suffixMessage(e.Message))
	case e.Status == http.StatusForbidden && len(e.Metadata.Patterns) > 0 || e.Status == http.StatusForbidden && strings.Contains(strings.ToLower(e.Message), "guardrail"):
		why := suffixMessage(e.Message)
		if len(e.Metadata.Patterns) > 0 {
			quoted := make([]string, 0, len(e.Metadata.Patterns))
			for _, p := range e.Metadata.Patterns[:min(len(e.Metadata.Patterns), 3)] {
				quoted = append(quoted, strconv.Quote(bot.Clip(p, 60)))
			}
			why += " (matched " + strings.Join(quoted, ", ") + ")"
		}
		e.user = bot.Errorf(bot.EINVALID, "The host's OpenRouter guardrail blocked this request%s. Nothing was charged.", why)
	case e.Status == http.StatusForbidden:
		if len(e.Metadata.Reasons) > 0 {
			e.user = bot.Errorf(bot.EINVALID, "%s%s refused your message: moderation flagged it for %s. Nothing was charged.", model, provider, strings.Join(e.Metadata.Reasons, ", "))
		} else {
			e.user = bot.Errorf(bot.EINVALID, "%s%s refused the request (403)%s. Nothing was charged.", model, provider, suffixMessage(e.Message))
		}
	case e.Status == http.StatusNotFound:
		e.Retryable = true
		e.user = bot.Errorf(bot.EUNAVAILABLE, "No provider serves %s right now; pick another model or try again later.", model)
	case e.Status == http.StatusTooManyRequests:
		if e.DailyCap {
			when := "tomorrow"
			if !e.ResetAt.IsZero() {
				when = "at " + e.ResetAt.UTC().Format("15:04 UTC")
			}
			e.user = bot.Errorf(bot.ERATELIMIT, "The bot's OpenRouter account has used up today's free-model requests; they come back %s. Paid models still work.", when)
		} else {
			e.Retryable = true
			e.user = bot.Errorf(bot.ERATELIMIT, "%s is rate-limited upstream; try again %s.", model, retryWhen(max(e.RetryAfter, e.waitFor)))
		}
	case e.Status == http.StatusRequestTimeout || e.Status >= 500:
		e.Retryable = true
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s%s failed upstream (%d)%s; try again or pick another model.", model, provider, e.Status, suffixMessage(e.Message))
	default:
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s answered with an unexpected status %d%s.", model, e.Status, suffixMessage(e.Message))
	}
}

func suffixMessage(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + strings.TrimSuffix(bot.Clip(msg, 200), ".")
}

// retryWhen says when to try again: "in 7s", "in 3m", or "later" for a
// wait of a day or more (a Retry-After of a year is not a promise worth
// repeating).
func retryWhen(d time.Duration) string {
	if d >= 24*time.Hour {
		return "later"
	}
	return "in " + bot.FormatWait(d)
}

// streamError is a failure the client detected itself: a timeout, a broken
// connection, a bad stream. partial says text had already arrived.
func streamError(model, code, message string, partial bool, cause error) *UpstreamError {
	e := &UpstreamError{Model: model, Code: code, Message: message, Retryable: true, Partial: partial, cause: cause}
	name := model
	if name == "" {
		name = "the model"
	}
	if partial {
		e.Status = http.StatusOK
	}
	switch code {
	case CodeTimeout:
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s took too long to answer; please try again or pick another model.", name)
	case CodeIdleTimeout:
		if partial {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "%s stopped sending; the answer was cut off.", name)
		} else {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "%s stopped responding; please try again or pick another model.", name)
		}
	case CodeTruncated:
		if partial {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "The connection to %s ended early; the answer was cut off.", name)
		} else {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "The connection to %s ended before any answer arrived; please try again.", name)
		}
	case CodeBadStream, CodeBadJSON, CodeHTML, CodeEmptyBody:
		if partial {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "%s sent a garbled stream; the answer was cut off.", name)
		} else {
			e.user = bot.Errorf(bot.EUNAVAILABLE, "%s sent an answer that could not be read (%s); please try again.", name, message)
		}
	case CodeNoChoices:
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s returned no answer; please try again or pick another model.", name)
	case CodeAnswerTooLong:
		// The same request would be as long again.
		e.Retryable = false
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s.", message)
	default:
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s could not be reached; please try again in a moment.", name)
	}
	return e
}

// midStreamError is a chunk with a top-level error: the provider failed
// after the stream had started.
func midStreamError(model, code, message string, md ErrorMetadata, partial bool) *UpstreamError {
	if code == "" {
		code = CodeMidStream
	}
	e := &UpstreamError{Status: http.StatusOK, Model: model, Code: code, Message: message, Metadata: md, Retryable: true, Partial: partial}
	name := model
	if name == "" {
		name = "the model"
	}
	if partial {
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s failed mid-answer%s; the answer was cut off.", name, suffixMessage(message))
	} else {
		e.user = bot.Errorf(bot.EUNAVAILABLE, "%s failed before answering%s; please try again.", name, suffixMessage(message))
	}
	return e
}
