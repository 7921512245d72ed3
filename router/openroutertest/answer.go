package openroutertest

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

// answer is the simulated reply to one request.
type answer struct {
	id               string
	model            string
	created          int64
	text             string
	finish           string
	promptTokens     int
	completionTokens int
	cost             float64
}

// sentences are what a simulated answer is made of: true things about the
// simulator and orchat, so a newcomer's first answer explains itself.
var sentences = []string{
	"This answer comes from orchat's built-in OpenRouter simulator: no model was called and nothing was paid.",
	"Set OPENROUTER_API_KEY and start orchat again to talk to real models.",
	"The simulator streams its answer in small chunks, with keep-alive comments and a final usage chunk, the way OpenRouter does.",
	"Its token counts come from the text, and its cost from this model's catalog prices, so the footer shows what a real answer of this size would cost.",
	"The same question to the same model always gets the same words.",
	"Try /compare to put several models side by side, /models to browse the catalog, or /balance to see your tokens.",
	"Rate limits, provider errors, stalls and cut-off streams can be switched on to see how orchat handles them.",
	"Longer answers are split over several messages, with code blocks closed and reopened at each cut.",
}

// newAnswer builds the deterministic reply of model to req: it says it is
// simulated, names the model, echoes the start of the latest user message
// and adds sentences in proportion to max_tokens (bounded), never more
// than max_tokens tokens.
func newAnswer(m bot.Model, req *Request) *answer {
	last := lastUser(req.Messages)
	var b strings.Builder
	b.WriteString("[simulated ")
	b.WriteString(m.ID)
	b.WriteString("] You said: ")
	b.WriteString(bot.Clip(strings.Join(strings.Fields(last), " "), 160))
	b.WriteString(".")
	target := 96
	if req.MaxTokens > 0 {
		target = min(req.MaxTokens/4, 160)
	}
	x := hash64(m.ID + "\x00" + last + "\x00" + strconv.Itoa(req.MaxTokens))
	b.WriteByte(' ')
	b.WriteString(sentences[0]) // first, say what this is
	rest := sentences[1:]
	next := int(x % uint64(len(rest)))
	for router.EstimateTokens(b.String()) < target {
		b.WriteByte(' ')
		b.WriteString(rest[next%len(rest)])
		next++
	}
	text, finish := b.String(), "stop"
	if req.MaxTokens > 0 && router.EstimateTokens(text) > req.MaxTokens {
		text, finish = cutBytes(text, req.MaxTokens*3), "length"
	}
	return &answer{
		id:               "gen-sim-" + strconv.FormatInt(req.Seq, 10) + "-" + strconv.FormatUint(x%1e12, 36),
		model:            m.ID,
		created:          time.Now().Unix(),
		text:             text,
		finish:           finish,
		promptTokens:     router.EstimatePrompt(req.Messages),
		completionTokens: router.EstimateTokens(text),
	}
}

// setText replaces the answer's text, clipped to maxTokens like a real
// answer.
func (a *answer) setText(text string, maxTokens int) {
	a.text, a.finish = text, "stop"
	if maxTokens > 0 && router.EstimateTokens(text) > maxTokens {
		a.text, a.finish = cutBytes(text, maxTokens*3), "length"
	}
	a.completionTokens = router.EstimateTokens(a.text)
}

// pieces splits the text into stream chunks of about four words.
func (a *answer) pieces() []string {
	var out []string
	s := a.text
	for len(s) > 0 {
		n, words := 0, 0
		for n < len(s) {
			if s[n] == ' ' {
				words++
				if words == 4 {
					break
				}
			}
			n++
		}
		if n < len(s) {
			n++ // keep the space with the piece
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func lastUser(msgs []bot.ChatMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == bot.RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

// cutBytes cuts s to at most n bytes on a rune boundary: a simulated
// answer stopped at its token budget (finish_reason "length").
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// appendChunk writes one SSE content chunk shaped like OpenRouter's.
func appendChunk(b []byte, a *answer, content, finish string, first bool) []byte {
	b = append(b, `data: {"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","provider":"Simulated","model":`...)
	b = appendJSONString(b, a.model)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":`...)
	b = appendJSONString(b, content)
	b = append(b, `},"finish_reason":`...)
	if finish == "" {
		b = append(b, `null,"native_finish_reason":null`...)
	} else {
		b = append(b, '"')
		b = append(b, finish...)
		b = append(b, `","native_finish_reason":"`...)
		b = append(b, finish...)
		b = append(b, '"')
	}
	b = append(b, `,"logprobs":null}]}`+"\n\n"...)
	return b
}

// appendUsage writes the final usage chunk with "choices": [] (without the
// "data: " prefix).
func appendUsage(b []byte, a *answer, prompt, completion int, cost float64) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","provider":"Simulated","model":`...)
	b = appendJSONString(b, a.model)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"choices":[],"usage":`...)
	b = appendUsageObject(b, prompt, completion, cost)
	return append(b, '}')
}

func appendUsageObject(b []byte, prompt, completion int, cost float64) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	b = append(b, `,"cost":`...)
	b = strconv.AppendFloat(b, cost, 'g', -1, 64)
	b = append(b, `,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"cost_details":{"upstream_inference_cost":`...)
	b = strconv.AppendFloat(b, cost, 'g', -1, 64)
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":0}}`...)
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
