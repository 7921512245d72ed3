package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// Response is what one upstream call returned, as far as it got.
type Response struct {
	Text         string
	Model        string // the model that actually answered (the response's `model`)
	Provider     string
	GenerationID string
	FinishReason string
	Usage        bot.Usage
	// UsageReported: a usage object arrived (the upstream's own count).
	UsageReported bool
	// Progressed: content, reasoning or usage arrived, so the upstream was
	// generating (and billing): the call must never be sent again.
	Progressed bool
	// ReasoningBytes is how much reasoning text arrived (billed as
	// completion tokens).
	ReasoningBytes int
	// Reasoning is the thinking as text; ReasoningDetails its structured
	// reasoning_details, merged across chunks (a JSON array).
	Reasoning        string
	ReasoningDetails []byte
	// Refusal is the model's refusal message.
	Refusal   string
	Citations []bot.Citation
	// Images are the pictures the model made; ImageURLs those it sent as
	// links rather than data (fetched by the client).
	Images    []bot.Image
	ImageURLs []string
	Status    int
	TTFT      time.Duration // to the first text; 0 if none came
	Latency   time.Duration
}

// Limits that keep a hostile or broken upstream from exhausting memory or
// the ledger.
const (
	// DefaultMaxEventBytes bounds one SSE event (Config.MaxEventBytes): a
	// chunk of a real stream is a few hundred bytes, and a line longer
	// than the event limit cannot be part of one, so lines are bounded by
	// it too.
	DefaultMaxEventBytes = 1 << 20
	// DefaultMaxAnswerBytes bounds the text of one answer
	// (Config.MaxAnswerBytes, router.max_answer_bytes): 512 KiB is about
	// 130,000 tokens, past the longest output of any model in the catalog.
	DefaultMaxAnswerBytes = 512 << 10
	// maxUsageTokens bounds a reported token count; larger is absurd.
	maxUsageTokens = 100_000_000
	// maxUsageUSD bounds a reported cost of one call.
	maxUsageUSD = 10_000
)

type wireUsage struct {
	PromptTokens        float64  `json:"prompt_tokens"`
	CompletionTokens    float64  `json:"completion_tokens"`
	Cost                *float64 `json:"cost"`
	IsBYOK              bool     `json:"is_byok"`
	PromptTokensDetails *struct {
		CachedTokens float64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens float64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	CostDetails *struct {
		UpstreamInferenceCost *float64 `json:"upstream_inference_cost"`
	} `json:"cost_details"`
}

// usage converts the wire usage, distrusting negative, fractional-garbage
// or absurd numbers: counts are clamped to [0, maxUsageTokens], a cost that
// is negative or not a number counts as not reported.
func (w *wireUsage) usage() bot.Usage {
	u := bot.Usage{
		PromptTokens:     clampCount(w.PromptTokens),
		CompletionTokens: clampCount(w.CompletionTokens),
		IsBYOK:           w.IsBYOK,
	}
	if d := w.PromptTokensDetails; d != nil {
		u.CachedTokens = min(clampCount(d.CachedTokens), u.PromptTokens)
	}
	if d := w.CompletionTokensDetails; d != nil {
		u.ReasoningTokens = min(clampCount(d.ReasoningTokens), u.CompletionTokens)
	}
	if w.Cost != nil && validUSD(*w.Cost) {
		u.CostUSD = min(*w.Cost, maxUsageUSD)
		u.CostReported = true
	}
	if d := w.CostDetails; d != nil && d.UpstreamInferenceCost != nil && validUSD(*d.UpstreamInferenceCost) {
		u.UpstreamCostUSD = min(*d.UpstreamInferenceCost, maxUsageUSD)
	}
	return u
}

func clampCount(f float64) int64 {
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	if f > maxUsageTokens {
		return maxUsageTokens
	}
	return int64(math.Ceil(f))
}

func validUSD(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 }

type wireErrorBody struct {
	Code     json.RawMessage `json:"code"`
	Message  string          `json:"message"`
	Metadata json.RawMessage `json:"metadata"`
}

// readError marks an error from the body reader (as opposed to a problem
// with what was read), so the client can tell a timeout or a cancelled
// context from a garbled stream.
type readError struct{ err error }

func (e *readError) Error() string { return "read stream: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// ParseStream reads an OpenRouter (OpenAI-compatible) SSE stream from r,
// calling onDelta with each piece of text, until `data: [DONE]` or the end
// of r. It skips comment lines, accepts LF and CRLF and both shapes of the
// usage chunk. A chunk with a top-level error ends the stream with an
// *UpstreamError; so do invalid JSON, an event over DefaultMaxEventBytes
// and an end without [DONE], finish reason or usage (a truncated stream).
// An answer over DefaultMaxAnswerBytes is cut there (see
// CodeAnswerTooLong). The returned Response holds whatever arrived, also
// on error.
func ParseStream(r io.Reader, onDelta func(string)) (Response, error) {
	p := streamParser{maxEvent: DefaultMaxEventBytes, maxText: DefaultMaxAnswerBytes}
	resp, err := p.parse(r, "", onDelta)
	var re *readError
	if errors.As(err, &re) {
		err = streamError("", CodeTransport, re.Error(), resp.Text != "", re.err)
	}
	return resp, err
}

type streamParser struct {
	br    *bufio.Reader
	line  []byte // a line longer than the reader's buffer
	event []byte // data of the current event
	chunk chunkFields
	text  strings.Builder
	// reasoning collects the thinking, refusal the refusal, details the
	// reasoning_details items by index.
	reasoning, refusal strings.Builder
	details            detailMerger
	// onReasoning, when set, receives each piece of thinking.
	onReasoning func(string)
	// chunks counts the JSON chunks parsed.
	chunks int
	// onEvent, when set, is called for every event (not for comments).
	onEvent func()
	// maxEvent bounds one event's data (and so one line); maxText the
	// answer's text and, apart, its reasoning. Whatever an upstream
	// sends, a stream holds at most about maxEvent + maxText bytes.
	maxEvent, maxText int
}

func (p *streamParser) parse(r io.Reader, model string, onDelta func(string)) (Response, error) {
	var resp Response
	if p.br == nil {
		// Chunks are a few hundred bytes and readLine grows a longer
		// line itself: a small buffer keeps 1,000 streams in flight
		// from holding 64 MB (orchat-loadtest measured it).
		p.br = bufio.NewReaderSize(r, 4<<10)
	} else {
		p.br.Reset(r)
	}
	var (
		done bool
		err  error
	)
	p.chunks = 0
	p.text.Reset()
	p.reasoning.Reset()
	p.refusal.Reset()
	p.details = detailMerger{}
	finish := func() Response {
		resp.Text = p.text.String()
		resp.Reasoning = p.reasoning.String()
		resp.Refusal = p.refusal.String()
		resp.ReasoningDetails = p.details.json()
		return resp
	}
	for !done {
		line, rerr := p.readLine()
		if rerr != nil && rerr != io.EOF {
			if errors.Is(rerr, errEventTooLong) {
				return finish(), p.eventTooLong(model)
			}
			return finish(), &readError{rerr}
		}
		eof := rerr == io.EOF
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			// A blank line ends an event.
			if len(p.event) > 0 {
				done, err = p.dispatch(&resp, model, onDelta)
				p.event = p.event[:0]
			}
		case line[0] == ':':
			// A comment: OpenRouter's keep-alive.
		default:
			field, value, _ := bytes.Cut(line, []byte{':'})
			if string(field) == "data" {
				value = bytes.TrimPrefix(value, []byte{' '})
				if len(p.event)+1+len(value) > p.maxEvent {
					return finish(), p.eventTooLong(model)
				}
				if len(p.event) > 0 {
					p.event = append(p.event, '\n')
				}
				p.event = append(p.event, value...)
			}
		}
		if err != nil {
			return finish(), err
		}
		if eof {
			if len(p.event) > 0 && !done {
				done, err = p.dispatch(&resp, model, onDelta)
				p.event = p.event[:0]
				if err != nil {
					return finish(), err
				}
			}
			break
		}
	}
	out := finish()
	switch {
	case done && (p.chunks == 0 || (out.Text == "" && out.Refusal == "" && len(out.Images)+len(out.ImageURLs) == 0 && out.FinishReason == "" && !out.UsageReported)):
		return out, streamError(model, CodeNoChoices, "the stream carried no answer", false, nil)
	case done || out.FinishReason != "" || out.UsageReported:
		// A missing [DONE] is fine once the answer is complete.
		return out, nil
	case p.chunks == 0:
		return out, streamError(model, CodeTruncated, "the stream ended before any data", false, nil)
	default:
		return out, streamError(model, CodeTruncated, "the stream ended without [DONE], a finish reason or usage", out.Text != "", nil)
	}
}

var errEventTooLong = errors.New("an SSE event over the limit")

// eventTooLong is the error of an event (or a line) over maxEvent: no
// real chunk comes near it, so the stream is broken or hostile.
func (p *streamParser) eventTooLong(model string) error {
	return streamError(model, CodeBadStream, fmt.Sprintf("an SSE event longer than %s", byteSize(p.maxEvent)), p.text.Len() > 0, nil)
}

// readLine returns the next line with its line ending; the slice is valid
// until the next call. A line longer than maxEvent (plus the "data: "
// field name) is errEventTooLong.
func (p *streamParser) readLine() ([]byte, error) {
	line, err := p.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	p.line = append(p.line[:0], line...)
	for {
		line, err = p.br.ReadSlice('\n')
		if len(p.line)+len(line) > p.maxEvent+len("data: \r\n") {
			return nil, errEventTooLong
		}
		p.line = append(p.line, line...)
		if err != bufio.ErrBufferFull {
			return p.line, err
		}
	}
}

// dispatch handles one event's data; done reports [DONE].
func (p *streamParser) dispatch(resp *Response, model string, onDelta func(string)) (done bool, err error) {
	if p.onEvent != nil {
		p.onEvent()
	}
	data := bytes.TrimSpace(p.event)
	if string(data) == "[DONE]" {
		return true, nil
	}
	p.chunks++
	c := &p.chunk
	if err := parseChunk(data, c); err != nil {
		return false, streamError(model, CodeBadStream, "invalid JSON in the stream: "+err.Error(), p.text.Len() > 0, nil)
	}
	// Ids repeat in every chunk: convert them only when they change.
	if len(c.id) > 0 && string(c.id) != resp.GenerationID {
		resp.GenerationID = string(c.id)
	}
	if len(c.model) > 0 && string(c.model) != resp.Model {
		resp.Model = string(c.model)
	}
	if len(c.provider) > 0 && string(c.provider) != resp.Provider {
		resp.Provider = string(c.provider)
	}
	if c.usage != nil {
		var wu wireUsage
		if err := json.Unmarshal(c.usage, &wu); err != nil {
			return false, streamError(model, CodeBadStream, "invalid usage in the stream: "+err.Error(), p.text.Len() > 0, nil)
		}
		resp.Usage = wu.usage()
		resp.UsageReported = true
		resp.Progressed = true
	}
	finishedWithError := false
	for i := range c.choices {
		ch := &c.choices[i]
		if ch.reasoning != "" {
			resp.ReasoningBytes += len(ch.reasoning)
			resp.Progressed = true
			if resp.ReasoningBytes > p.maxText {
				resp.ReasoningBytes = p.maxText
				resp.FinishReason = FinishTooLong
				return false, p.answerTooLong(model, "thinking")
			}
			p.reasoning.WriteString(ch.reasoning)
			if p.onReasoning != nil {
				p.onReasoning(ch.reasoning)
			}
		}
		if ch.refusal != "" {
			if room := p.maxText - p.refusal.Len(); room > 0 {
				p.refusal.WriteString(clipBytes(ch.refusal, room))
			}
			resp.Progressed = true
		}
		for _, d := range ch.details {
			p.details.addPiece(d)
		}
		if ch.hasDetails {
			resp.Progressed = true
		}
		if ch.annotations != nil || ch.images != nil {
			resp.Progressed = true
			if err := extras(resp, &p.details, nil, ch.annotations, ch.images); err != nil {
				return false, streamError(model, CodeBadStream, "invalid "+err.Error()+" in the stream", p.text.Len() > 0, nil)
			}
		}
		if ch.content != "" {
			content, cut := ch.content, false
			if room := p.maxText - p.text.Len(); len(content) > room {
				content, cut = clipBytes(content, room), true
			}
			p.text.WriteString(content)
			resp.Progressed = true
			if onDelta != nil && content != "" {
				onDelta(content)
			}
			if cut {
				resp.FinishReason = FinishTooLong
				return false, p.answerTooLong(model, "answer")
			}
		}
		if len(ch.finishReason) > 0 {
			if string(ch.finishReason) == "error" {
				finishedWithError = true
			} else if string(ch.finishReason) != resp.FinishReason {
				resp.FinishReason = string(ch.finishReason)
			}
		}
	}
	if c.err != nil || finishedWithError {
		resp.FinishReason = "error"
		var code, msg string
		var md ErrorMetadata
		if c.err != nil {
			var we wireErrorBody
			if json.Unmarshal(c.err, &we) == nil {
				code, msg, md = codeString(we.Code), we.Message, parseMetadata(we.Metadata)
			} else {
				msg = bot.Clip(string(c.err), 200)
			}
		}
		name := model
		if name == "" {
			name = resp.Model
		}
		return false, midStreamError(name, code, msg, md, p.text.Len() > 0)
	}
	return false, nil
}

// FinishTooLong is the finish reason of an answer orchat cut at
// Config.MaxAnswerBytes: a limit ended it.
const FinishTooLong = bot.FinishLength

// answerTooLong is the error of an answer (or its thinking) past maxText:
// the text so far is kept and charged (estimated, at most the hold), the
// rest is never read.
func (p *streamParser) answerTooLong(model, what string) error {
	msg := fmt.Sprintf("The %s went past %s, the most one answer may hold here, so it was cut there", what, byteSize(p.maxText))
	return streamError(model, CodeAnswerTooLong, msg, true, nil)
}

// clipBytes returns the longest prefix of s of at most n bytes that ends
// on a rune boundary.
func clipBytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// byteSize writes n bytes for people: 1 MiB, 512 KiB, 300 bytes.
func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

type wireCompletion struct {
	ID       string `json:"id"`
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Choices  []struct {
		Message struct {
			Content          json.RawMessage `json:"content"`
			Reasoning        *string         `json:"reasoning"`
			Refusal          *string         `json:"refusal"`
			ReasoningDetails json.RawMessage `json:"reasoning_details"`
			Annotations      json.RawMessage `json:"annotations"`
			Images           json.RawMessage `json:"images"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage     `json:"usage"`
	Error *wireErrorBody `json:"error"`
}

// parseCompletion reads a non-streaming chat completion; a text over
// maxText is cut there, as in a stream.
func parseCompletion(body []byte, model string, maxText int) (Response, error) {
	var resp Response
	var w wireCompletion
	if err := json.Unmarshal(body, &w); err != nil {
		return resp, streamError(model, CodeBadJSON, "invalid JSON: "+err.Error(), false, nil)
	}
	resp.GenerationID, resp.Model, resp.Provider = w.ID, w.Model, w.Provider
	if w.Usage != nil {
		resp.Usage = w.Usage.usage()
		resp.UsageReported = true
		resp.Progressed = true
	}
	if w.Error != nil {
		return resp, midStreamError(model, codeString(w.Error.Code), w.Error.Message, parseMetadata(w.Error.Metadata), false)
	}
	if len(w.Choices) == 0 {
		return resp, streamError(model, CodeNoChoices, "a 200 without choices", false, nil)
	}
	ch := w.Choices[0]
	resp.Text = contentText(ch.Message.Content)
	if ch.Message.Reasoning != nil {
		resp.ReasoningBytes = len(*ch.Message.Reasoning)
		resp.Reasoning = *ch.Message.Reasoning
	}
	if ch.Message.Refusal != nil {
		resp.Refusal = *ch.Message.Refusal
	}
	var dm detailMerger
	if err := extras(&resp, &dm, nullToNil(ch.Message.ReasoningDetails), nullToNil(ch.Message.Annotations), nullToNil(ch.Message.Images)); err != nil {
		return resp, streamError(model, CodeBadJSON, "invalid "+err.Error(), false, nil)
	}
	resp.ReasoningDetails = dm.json()
	if ch.FinishReason != nil {
		resp.FinishReason = *ch.FinishReason
	}
	if resp.Text != "" || resp.ReasoningBytes > 0 || resp.Refusal != "" || len(resp.Images)+len(resp.ImageURLs) > 0 {
		resp.Progressed = true
	}
	if resp.FinishReason == "error" {
		return resp, midStreamError(model, "", "the provider failed", ErrorMetadata{}, resp.Text != "")
	}
	if len(resp.Text) > maxText {
		resp.Text, resp.FinishReason = clipBytes(resp.Text, maxText), FinishTooLong
		return resp, (&streamParser{maxText: maxText}).answerTooLong(model, "answer")
	}
	return resp, nil
}

// contentText reads message.content: a string or an array of text parts.
func contentText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	return ""
}
