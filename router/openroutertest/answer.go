package openroutertest

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"math"
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
	reasoning        string // the thinking, streamed before the text
	refusal          string // set instead of text when the model refuses
	citations        []citation
	images           [][]byte // PNGs, for image-output requests
	promptTokens     int
	cachedTokens     int // of promptTokens, read from the cache
	cacheWriteTokens int // of promptTokens, written to the cache
	reasoningTokens  int // of completionTokens
	completionTokens int
	webSearches      int
	promptCost       float64
	completionCost   float64
	webCost          float64
	parseCost        float64 // the file parser's OCR, billed whole even when the answer is cut
	cost             float64
}

type citation struct{ url, title string }

// piece is one streamed delta: thinking or text.
type piece struct {
	text      string
	reasoning bool
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

// Reasoning budgets: how many tokens a simulated model thinks at each
// effort. The thinking counts inside max_tokens, as real models count it,
// so a cap smaller than the budget leaves an empty answer cut at the cap.
var thinkBudget = map[string]int{"minimal": 48, "low": 192, "medium": 640, "high": 1600, "xhigh": 3200, "max": 4800}

// imageTokens is what one simulated image is billed as (completion tokens,
// as Gemini's image models bill an image).
const imageTokens = 1290

// newAnswer builds the deterministic reply of model to req: it says it is
// simulated, names the model, echoes the start of the latest user message
// and adds sentences in proportion to max_tokens (bounded). A reasoning
// model thinks first (inside max_tokens), a web request cites sources, an
// image request gets an image, "[refuse]" in the prompt a refusal and
// "[filter]" an answer stopped by the content filter.
func newAnswer(m bot.Model, req *Request) *answer {
	last := lastUser(req.Messages)
	a := &answer{
		id:      "gen-sim-" + strconv.FormatInt(req.Seq, 10) + "-" + strconv.FormatUint(hash64(m.ID+"\x00"+last+"\x00"+strconv.Itoa(req.MaxTokens))%1e12, 36),
		model:   m.ID,
		created: time.Now().Unix(),
		finish:  "stop",
	}
	budget := req.MaxTokens
	if effort := req.effort(m); effort != "" {
		think := thinkBudget[effort]
		if budget > 0 && think >= budget {
			think = budget
		}
		a.reasoning = thinking(m.ID, last, think)
		a.reasoningTokens = router.EstimateTokens(a.reasoning)
		if budget > 0 {
			budget -= a.reasoningTokens
		}
	}
	switch {
	case strings.Contains(last, "[refuse]"):
		a.refusal = "I can't help with that request. (This refusal is simulated: the prompt asked for one with [refuse].)"
	case req.MaxTokens > 0 && budget <= 0:
		a.finish = "length" // it thought until the cap: no answer left
	default:
		a.setText(a.compose(m, req, last), budget)
		if strings.Contains(last, "[filter]") {
			a.text, a.finish = cutBytes(a.text, len(a.text)/2), "content_filter"
		}
	}
	if req.Web {
		a.webSearches = 1
		topic := bot.Clip(strings.Join(strings.Fields(last), " "), 40)
		slug := strings.Trim(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			if r >= 'A' && r <= 'Z' {
				return r + 32
			}
			return '-'
		}, topic), "-")
		for i := 1; i <= min(3, max(req.WebResults, 1)); i++ {
			a.citations = append(a.citations, citation{
				url:   "https://example.org/simulated/" + slug + "-" + strconv.Itoa(i),
				title: "Simulated source " + strconv.Itoa(i) + " about " + topic,
			})
		}
		if a.text != "" {
			a.text += " [1][2][3]"
		}
	}
	if req.wantsImage() && m.ImageOutput() && a.refusal == "" {
		a.images = append(a.images, simulatedImage(m.ID+"\x00"+last))
	}
	a.completionTokens = a.reasoningTokens + router.EstimateTokens(a.text+a.refusal) + imageTokens*len(a.images)
	a.promptTokens = router.EstimatePrompt(req.Messages)
	return a
}

// compose is the simulated answer's text, about max_tokens/4 tokens
// (bounded).
func (a *answer) compose(m bot.Model, req *Request, last string) string {
	var b strings.Builder
	b.WriteString("[simulated ")
	b.WriteString(m.ID)
	b.WriteString("] You said: ")
	b.WriteString(bot.Clip(strings.Join(strings.Fields(last), " "), 160))
	b.WriteString(".")
	for _, f := range req.Files {
		b.WriteString(" I read " + f.Name)
		if t := pdfText(f.Data); t != "" {
			b.WriteString(", which says: \"" + bot.Clip(t, 120) + "\"")
		}
		b.WriteString(".")
	}
	if req.wantsImage() && m.ImageOutput() {
		b.WriteString(" Here is the picture you asked for.")
	}
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
	return b.String()
}

// thinking is a simulated model's reasoning of about tokens tokens.
func thinking(model, last string, tokens int) string {
	var b strings.Builder
	b.WriteString("The user asks: " + bot.Clip(strings.Join(strings.Fields(last), " "), 80) + ".")
	steps := []string{
		" First, work out what is really being asked.",
		" Then recall what is known about it and check each fact.",
		" Consider another reading of the question, and whether it changes the answer.",
		" Weigh the two, keep the simpler one, and plan a short answer.",
		" This thinking is simulated by orchat's built-in OpenRouter stand-in; it counts inside max_tokens, as " + model + "'s would.",
	}
	for i := 0; router.EstimateTokens(b.String()) < tokens; i++ {
		b.WriteString(steps[i%len(steps)])
	}
	return cutBytes(b.String(), tokens*3)
}

// pdfText pulls the text shown by a simple PDF's (…) Tj operators out of a
// data: URL, for the simulated answer to quote.
func pdfText(data string) string {
	_, b64, ok := strings.Cut(data, ";base64,")
	if !ok {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	var out []string
	s := string(raw)
	for {
		end := strings.Index(s, ") Tj")
		if end < 0 {
			break
		}
		start := strings.LastIndexByte(s[:end], '(')
		if start >= 0 {
			out = append(out, s[start+1:end])
		}
		s = s[end+4:]
	}
	return strings.Join(out, " ")
}

// simulatedImage draws a small deterministic PNG: a gradient whose colours
// come from seed.
func simulatedImage(seed string) []byte {
	h := hash64(seed)
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	r0, g0, b0 := uint8(h), uint8(h>>8), uint8(h>>16)
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{r0 + uint8(x*2), g0 + uint8(y*2), b0 + uint8(x+y), 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// price fills in the costs from the model's catalog prices: cached prompt
// tokens at the cache-read price, written ones at the cache-write price,
// the web search at the model's (or the engine's) search price.
// addParseCost adds the file parser's charge (OCR by the page) to the
// answer's cost, as OpenRouter bills it in usage.cost.
func (a *answer) addParseCost(usd float64) { a.parseCost = usd; a.cost += usd }

func (a *answer) price(m bot.Model, webResults int) {
	a.webCost = 0
	if m.Free() {
		a.promptCost, a.completionCost, a.webCost, a.cost = 0, 0, 0, 0
		if a.webSearches > 0 {
			a.webCost = router.WebSearchUSD(m, webResults) // searches cost even on free models
			a.cost = a.webCost
		}
		return
	}
	pp, cp := math.Max(m.PromptPrice, 0), math.Max(m.CompletionPrice, 0)
	read := m.CacheReadPrice
	if read <= 0 {
		read = pp / 4
	}
	write := m.CacheWritePrice
	if write <= 0 {
		write = pp
	}
	plain := a.promptTokens - a.cachedTokens - a.cacheWriteTokens
	a.promptCost = float64(plain)*pp + float64(a.cachedTokens)*read + float64(a.cacheWriteTokens)*write
	a.completionCost = float64(a.completionTokens) * cp
	if a.webSearches > 0 {
		a.webCost = router.WebSearchUSD(m, webResults)
	}
	a.cost = a.promptCost + a.completionCost + a.webCost
}

// setText replaces the answer's text, clipped to maxTokens like a real
// answer.
func (a *answer) setText(text string, maxTokens int) {
	a.text, a.finish = text, "stop"
	if maxTokens > 0 && router.EstimateTokens(text) > maxTokens {
		a.text, a.finish = cutBytes(text, maxTokens*3), "length"
	}
}

// pieces splits the thinking and then the text into stream chunks of
// about four words.
func (a *answer) pieces() []piece {
	var out []piece
	for _, w := range split4(a.reasoning) {
		out = append(out, piece{text: w, reasoning: true})
	}
	for _, w := range split4(a.text) {
		out = append(out, piece{text: w})
	}
	return out
}

// split4 splits s into pieces of about four words.
func split4(s string) []string {
	var out []string
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

// delta is what one stream chunk carries.
type delta struct {
	content, reasoning, refusal string
	finish                      string
	citations                   []citation
	images                      [][]byte
}

// appendChunk writes one SSE chunk shaped like OpenRouter's.
func appendChunk(b []byte, a *answer, d delta) []byte {
	b = append(b, `data: {"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","provider":"Simulated","model":`...)
	b = appendJSONString(b, a.model)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":`...)
	b = appendJSONString(b, d.content)
	b = appendMessageExtras(b, d.reasoning, d.refusal, d.citations, d.images, d.reasoning != "")
	b = append(b, `},"finish_reason":`...)
	if d.finish == "" {
		b = append(b, `null,"native_finish_reason":null`...)
	} else {
		b = append(b, '"')
		b = append(b, d.finish...)
		b = append(b, `","native_finish_reason":"`...)
		b = append(b, d.finish...)
		b = append(b, '"')
	}
	b = append(b, `,"logprobs":null}]}`+"\n\n"...)
	return b
}

// appendMessageExtras writes a delta's or message's reasoning (with its
// reasoning_details), refusal, annotations and images.
func appendMessageExtras(b []byte, reasoning, refusal string, cits []citation, images [][]byte, details bool) []byte {
	if reasoning != "" {
		b = append(b, `,"reasoning":`...)
		b = appendJSONString(b, reasoning)
		if details {
			b = append(b, `,"reasoning_details":[{"type":"reasoning.text","text":`...)
			b = appendJSONString(b, reasoning)
			b = append(b, `,"format":"unknown","index":0}]`...)
		}
	}
	if refusal != "" {
		b = append(b, `,"refusal":`...)
		b = appendJSONString(b, refusal)
	}
	if len(cits) > 0 {
		b = append(b, `,"annotations":[`...)
		for i, c := range cits {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"url_citation","url_citation":{"url":`...)
			b = appendJSONString(b, c.url)
			b = append(b, `,"title":`...)
			b = appendJSONString(b, c.title)
			b = append(b, `,"content":"Simulated search result.","start_index":0,"end_index":0}}`...)
		}
		b = append(b, ']')
	}
	if len(images) > 0 {
		b = append(b, `,"images":[`...)
		for i, im := range images {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"image_url","image_url":{"url":"data:image/png;base64,`...)
			b = base64.StdEncoding.AppendEncode(b, im)
			b = append(b, `"}}`...)
		}
		b = append(b, ']')
	}
	return b
}

// appendUsage writes the final usage chunk with "choices": [] (without the
// "data: " prefix).
func appendUsage(b []byte, a *answer) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","provider":"Simulated","model":`...)
	b = appendJSONString(b, a.model)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, a.created, 10)
	b = append(b, `,"choices":[],"usage":`...)
	b = appendUsageObject(b, a)
	return append(b, '}')
}

// appendUsageObject writes usage as the chat spec's ChatUsage: counts,
// cost, and the details of caching, reasoning, cost and web search.
func appendUsageObject(b []byte, a *answer) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(a.promptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(a.completionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(a.promptTokens+a.completionTokens), 10)
	b = append(b, `,"cost":`...)
	b = strconv.AppendFloat(b, a.cost, 'g', -1, 64)
	b = append(b, `,"is_byok":false,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(a.cachedTokens), 10)
	if a.cacheWriteTokens > 0 {
		b = append(b, `,"cache_write_tokens":`...)
		b = strconv.AppendInt(b, int64(a.cacheWriteTokens), 10)
	}
	b = append(b, `},"cost_details":{"upstream_inference_cost":`...)
	b = strconv.AppendFloat(b, a.cost, 'g', -1, 64)
	b = append(b, `,"upstream_inference_prompt_cost":`...)
	b = strconv.AppendFloat(b, a.promptCost, 'g', -1, 64)
	b = append(b, `,"upstream_inference_completions_cost":`...)
	b = strconv.AppendFloat(b, a.completionCost, 'g', -1, 64)
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(a.reasoningTokens), 10)
	b = append(b, '}')
	if a.webSearches > 0 {
		b = append(b, `,"server_tool_use_details":{"web_search_requests":`...)
		b = strconv.AppendInt(b, int64(a.webSearches), 10)
		b = append(b, '}')
	}
	return append(b, '}')
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
