package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// Client is a thin client for OpenRouter's OpenAI-compatible API: chat
// completions (streaming and not), /models and /key. It never sends a
// request twice: retries are the Router's decision.
type Client struct {
	cfg Config
	hc  *http.Client
}

// NewClient returns a client for cfg (zero fields take their defaults).
func NewClient(cfg Config) *Client {
	cfg = cfg.withDefaults()
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport(cfg)}
	}
	return &Client{cfg: cfg, hc: hc}
}

func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Request is one chat completion to send.
type Request struct {
	Model string
	// Models, when set, is sent as OpenRouter's `models` so it can fall
	// back server-side; it starts with Model.
	Models    []string
	Messages  []bot.ChatMessage
	MaxTokens int
	// AutoModels are the auto-router plugin's allowed_models, sent only
	// when Model is openrouter/auto.
	AutoModels []string
	SessionID  string
	// User is the hashed identity (never the raw one).
	User string
	// Reasoning is the reasoning effort ("" sends none).
	Reasoning string
	// Web sends the web search plugin with at most WebResults results.
	Web        bool
	WebResults int
	// Modalities are the output modalities ("image", "text"); nil: text.
	Modalities []string
	// OnReasoning receives the thinking as it streams.
	OnReasoning func(string)
}

type wireRequest struct {
	Model           string         `json:"model"`
	Models          []string       `json:"models,omitempty"`
	Messages        []wireMessage  `json:"messages"`
	MaxTokens       int            `json:"max_tokens,omitempty"`
	Temperature     *float64       `json:"temperature,omitempty"`
	Stream          bool           `json:"stream,omitempty"`
	StreamOptions   *streamOptions `json:"stream_options,omitempty"`
	Provider        *wireProvider  `json:"provider,omitempty"`
	Plugins         []wirePlugin   `json:"plugins,omitempty"`
	Reasoning       *wireReasoning `json:"reasoning,omitempty"`
	ReasoningEffort string         `json:"reasoning_effort,omitempty"`
	Modalities      []string       `json:"modalities,omitempty"`
	SessionID       string         `json:"session_id,omitempty"`
	User            string         `json:"user,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type wireMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // a string, or parts (images, files, cache breakpoints)
	// ReasoningDetails go back with an assistant turn (OpenRouter only).
	ReasoningDetails json.RawMessage `json:"reasoning_details,omitempty"`
}

type wirePart struct {
	Type         string        `json:"type"`
	Text         string        `json:"text,omitempty"`
	ImageURL     *imageURL     `json:"image_url,omitempty"`
	File         *wireFile     `json:"file,omitempty"`
	CacheControl *cacheControl `json:"cache_control,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

type wireFile struct {
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data"`
}

type cacheControl struct {
	Type string `json:"type"`
}

type wireProvider struct {
	Order                  []string      `json:"order,omitempty"`
	Only                   []string      `json:"only,omitempty"`
	Ignore                 []string      `json:"ignore,omitempty"`
	AllowFallbacks         *bool         `json:"allow_fallbacks,omitempty"`
	Sort                   any           `json:"sort,omitempty"` // a string, or {by, partition}
	DataCollection         string        `json:"data_collection,omitempty"`
	ZDR                    *bool         `json:"zdr,omitempty"`
	RequireParameters      *bool         `json:"require_parameters,omitempty"`
	Quantizations          []string      `json:"quantizations,omitempty"`
	MaxPrice               *wireMaxPrice `json:"max_price,omitempty"`
	PreferredMaxLatency    float64       `json:"preferred_max_latency,omitempty"`
	PreferredMinThroughput float64       `json:"preferred_min_throughput,omitempty"`
}

type wireSort struct {
	By        string `json:"by"`
	Partition string `json:"partition,omitempty"`
}

// wireMaxPrice holds USD (per million tokens for prompt and completion);
// the API reference types them as strings.
type wireMaxPrice struct {
	Prompt     string `json:"prompt,omitempty"`
	Completion string `json:"completion,omitempty"`
	Request    string `json:"request,omitempty"`
	Image      string `json:"image,omitempty"`
}

type wirePlugin struct {
	ID            string         `json:"id"`
	AllowedModels []string       `json:"allowed_models,omitempty"`
	MaxResults    int            `json:"max_results,omitempty"`
	Engine        string         `json:"engine,omitempty"`
	PDF           *wirePDFParser `json:"pdf,omitempty"`
}

type wirePDFParser struct {
	Engine string `json:"engine"`
}

// wireReasoning is the chat spec's reasoning object: an effort (and a
// summary verbosity orchat leaves to the model).
type wireReasoning struct {
	Effort string `json:"effort"`
}

func usd(v float64) string {
	if v <= 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// provider returns the provider object to send, nil when nothing is set.
func (p ProviderPrefs) wire() *wireProvider {
	wp := &wireProvider{
		Order: p.Order, Only: p.Only, Ignore: p.Ignore, AllowFallbacks: p.AllowFallbacks,
		DataCollection: p.DataCollection, ZDR: p.ZDR, RequireParameters: p.RequireParameters,
		Quantizations: p.Quantizations, PreferredMaxLatency: p.PreferredMaxLatency, PreferredMinThroughput: p.PreferredMinThroughput,
	}
	switch {
	case p.Sort != "" && p.SortPartition != "":
		wp.Sort = wireSort{By: p.Sort, Partition: p.SortPartition}
	case p.Sort != "":
		wp.Sort = p.Sort
	}
	if p.MaxPrice != (MaxPrice{}) {
		wp.MaxPrice = &wireMaxPrice{Prompt: usd(p.MaxPrice.Prompt), Completion: usd(p.MaxPrice.Completion), Request: usd(p.MaxPrice.Request), Image: usd(p.MaxPrice.Image)}
	}
	if reflect.ValueOf(*wp).IsZero() {
		return nil
	}
	return wp
}

func (c *Client) body(req Request, stream bool) ([]byte, error) {
	or := c.cfg.OpenRouterAPI()
	w := wireRequest{
		Model:       req.Model,
		MaxTokens:   req.MaxTokens,
		Temperature: c.cfg.Temperature,
		User:        req.User,
		Modalities:  req.Modalities,
	}
	if or {
		w.Models, w.SessionID = req.Models, req.SessionID
	}
	if len(w.Models) < 2 {
		w.Models = nil
	}
	if stream {
		w.Stream = true
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	files := false
	w.Messages = make([]wireMessage, len(req.Messages))
	for i, m := range req.Messages {
		wm := wireMessage{Role: m.Role, Content: m.Content}
		if or && len(m.ReasoningDetails) > 0 && m.Role == bot.RoleAssistant && json.Valid(m.ReasoningDetails) {
			wm.ReasoningDetails = m.ReasoningDetails
		}
		cache := or && m.Cache
		if len(m.Images)+len(m.Files) > 0 || cache {
			parts := make([]wirePart, 0, 1+len(m.Images)+len(m.Files))
			if m.Content != "" || cache {
				part := wirePart{Type: "text", Text: m.Content}
				if cache {
					part.CacheControl = &cacheControl{Type: "ephemeral"}
				}
				parts = append(parts, part)
			}
			for _, u := range m.Images {
				parts = append(parts, wirePart{Type: "image_url", ImageURL: &imageURL{URL: u}})
			}
			for _, f := range m.Files {
				parts = append(parts, wirePart{Type: "file", File: &wireFile{Filename: f.Name, FileData: f.Data}})
				files = true
			}
			wm.Content = parts
		}
		w.Messages[i] = wm
	}
	if !or {
		// A plain OpenAI-compatible server: the top-level effort is the
		// one reasoning parameter it knows.
		w.ReasoningEffort = req.Reasoning
		return json.Marshal(w)
	}
	w.Provider = c.cfg.Provider.wire()
	if baseID(req.Model) == AutoModel && len(req.AutoModels) > 0 {
		w.Plugins = append(w.Plugins, wirePlugin{ID: "auto-router", AllowedModels: req.AutoModels})
	}
	if req.Web && !strings.HasSuffix(req.Model, ":online") {
		w.Plugins = append(w.Plugins, wirePlugin{ID: "web", MaxResults: req.WebResults, Engine: c.cfg.Web.Engine})
	}
	if files {
		p := wirePlugin{ID: "file-parser"}
		if c.cfg.PDFEngine != "" {
			p.PDF = &wirePDFParser{Engine: c.cfg.PDFEngine}
		}
		w.Plugins = append(w.Plugins, p)
	}
	if req.Reasoning != "" {
		w.Reasoning = &wireReasoning{Effort: req.Reasoning}
	}
	return json.Marshal(w)
}

func (c *Client) header(h http.Header, auth bool) {
	if auth && c.cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	if c.cfg.Referer != "" {
		h.Set("HTTP-Referer", c.cfg.Referer)
	}
	if c.cfg.Title != "" {
		h.Set("X-OpenRouter-Title", c.cfg.Title)
		h.Set("X-Title", c.cfg.Title)
	}
}

// Watchdog causes: which timer ended an attempt.
var (
	errFirstByte = errors.New("no response headers within the first-byte timeout")
	errIdle      = errors.New("no data within the idle timeout")
	errRequest   = errors.New("the request took longer than the request timeout")
)

// Stream sends req with stream: true and reads the answer, calling onDelta
// with each piece of text. On error, the Response holds whatever arrived;
// the error is an *UpstreamError, or the context's error when ctx ended.
func (c *Client) Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error) {
	return c.chat(ctx, req, true, onDelta)
}

// Complete sends req without streaming.
func (c *Client) Complete(ctx context.Context, req Request) (Response, error) {
	return c.chat(ctx, req, false, nil)
}

func (c *Client) chat(ctx context.Context, req Request, stream bool, onDelta func(string)) (resp Response, err error) {
	start := time.Now()
	defer func() { resp.Latency = time.Since(start) }()
	body, err := c.body(req, stream)
	if err != nil {
		return resp, bot.Errorf(bot.EINTERNAL, "router: encode request: %v", err)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	actx, cancelTimeout := context.WithTimeoutCause(actx, c.cfg.RequestTimeout, errRequest)
	defer cancelTimeout()
	wd := newWatchdog(c.cfg.FirstByteTimeout, func() { cancel(errFirstByte) })
	defer wd.stop()

	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, c.cfg.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return resp, bot.Errorf(bot.EINTERNAL, "router: build request: %v", err)
	}
	c.header(hreq.Header, true)
	hreq.Header.Set("Content-Type", "application/json")
	if stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	res, err := c.hc.Do(hreq)
	wd.stop()
	if err != nil {
		return resp, c.attemptError(ctx, actx, req.Model, err, false)
	}
	defer res.Body.Close()
	resp.Status = res.StatusCode

	// From here on, the gap between two reads (two events, in a stream) is
	// bounded by the idle timeout (a watchdog that a paused process does
	// not fool).
	idle := newWatchdog(c.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer idle.stop()
	r := &idleReader{r: res.Body, w: idle}

	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, rerr := io.ReadAll(io.LimitReader(r, 1<<20))
		if rerr != nil && len(b) == 0 && ctx.Err() != nil {
			return resp, canceled(ctx)
		}
		return resp, c.httpError(req.Model, res.StatusCode, res.Header, b)
	}

	ct := strings.ToLower(res.Header.Get("Content-Type"))
	if !stream || strings.Contains(ct, "json") || strings.Contains(ct, "text/html") {
		// A whole answer in one body: its text JSON-escaped (at most six
		// bytes a byte) and the rest of the object.
		limit := int64(c.cfg.MaxAnswerBytes)*6 + int64(c.cfg.MaxEventBytes)
		b, rerr := io.ReadAll(io.LimitReader(r, limit+1))
		if rerr != nil {
			return resp, c.attemptError(ctx, actx, req.Model, rerr, false)
		}
		if int64(len(b)) > limit {
			return resp, streamError(req.Model, CodeBadJSON, "a response body longer than "+byteSize(int(limit)), false, nil)
		}
		if e := c.bodyProblem(req.Model, res, b); e != nil {
			return resp, e
		}
		out, perr := parseCompletion(b, req.Model, c.cfg.MaxAnswerBytes)
		out.Status, out.Latency = resp.Status, time.Since(start)
		if perr == nil && req.OnReasoning != nil && out.Reasoning != "" {
			req.OnReasoning(out.Reasoning)
		}
		if (perr == nil || out.FinishReason == FinishTooLong) && onDelta != nil && out.Text != "" {
			out.TTFT = time.Since(start)
			onDelta(out.Text)
		}
		c.fetchImages(ctx, &out)
		return out, perr
	}

	// In a stream, only events count as progress: OpenRouter's keep-alive
	// comments would otherwise hide a provider that stopped.
	p := streamParser{maxEvent: c.cfg.MaxEventBytes, maxText: c.cfg.MaxAnswerBytes}
	p.onEvent = idle.touch
	p.onReasoning = req.OnReasoning
	first := true
	out, perr := p.parse(res.Body, req.Model, func(s string) {
		if first {
			first = false
			resp.TTFT = time.Since(start)
		}
		if onDelta != nil {
			onDelta(s)
		}
	})
	out.Status, out.TTFT = resp.Status, resp.TTFT
	var re *readError
	if errors.As(perr, &re) {
		perr = c.attemptError(ctx, actx, req.Model, re.err, out.Text != "")
	}
	if perr == nil {
		c.fetchImages(ctx, &out)
	}
	return out, perr
}

// fetchImages downloads the images an answer sent as links (most send
// data: URLs), each within maxImageBytes; one that fails is left out.
func (c *Client) fetchImages(ctx context.Context, out *Response) {
	for _, u := range out.ImageURLs {
		b, err := c.fetch(ctx, u, maxImageBytes)
		if err != nil {
			c.cfg.Logger.Warn("router: could not download a generated image", "err", err)
			continue
		}
		if mime := http.DetectContentType(b); strings.HasPrefix(mime, "image/") {
			out.Images = append(out.Images, bot.Image{MIME: mime, Data: b})
		}
	}
	out.ImageURLs = nil
}

func (c *Client) fetch(ctx context.Context, u string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = errors.New("image too large")
	}
	return b, err
}

// bodyProblem reports an HTML or empty body where JSON was expected.
func (c *Client) bodyProblem(model string, res *http.Response, b []byte) error {
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return streamError(model, CodeEmptyBody, "an empty body with status "+strconv.Itoa(res.StatusCode), false, nil)
	case looksHTML(res.Header, t):
		return streamError(model, CodeHTML, "an HTML page instead of JSON", false, nil)
	}
	return nil
}

// attemptError turns a transport or read error into an *UpstreamError
// saying which timer fired, or into a cancellation when ctx itself ended.
func (c *Client) attemptError(ctx, actx context.Context, model string, err error, partial bool) error {
	if ctx.Err() != nil {
		return canceled(ctx)
	}
	switch cause := context.Cause(actx); {
	case errors.Is(cause, errFirstByte):
		return streamError(model, CodeTimeout, errFirstByte.Error(), partial, err)
	case errors.Is(cause, errIdle):
		return streamError(model, CodeIdleTimeout, errIdle.Error(), partial, err)
	case errors.Is(cause, errRequest):
		return streamError(model, CodeTimeout, errRequest.Error(), partial, err)
	}
	if partial {
		return streamError(model, CodeTruncated, "the connection broke: "+err.Error(), true, err)
	}
	return streamError(model, CodeTransport, err.Error(), false, err)
}

// canceled is the error of a call whose context ended: the caller gave up.
func canceled(ctx context.Context) error {
	return errors.Join(bot.Errorf(bot.EUNAVAILABLE, "The request was cancelled before the answer finished."), context.Cause(ctx))
}

// idleReader re-arms the idle watchdog after every read that returned data.
type idleReader struct {
	r io.Reader
	w *watchdog
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.touch()
	}
	return n, err
}

// Models fetches GET /models (no key needed) and returns the raw body.
func (c *Client) Models(ctx context.Context) ([]byte, error) {
	if c.cfg.OpenRouterAPI() {
		// Without the filter OpenRouter lists the models that write text
		// only; orchat also lists (and /imagine uses) those that draw.
		return c.get(ctx, "/models?output_modalities=text,image", false, 64<<20)
	}
	return c.get(ctx, "/models", false, 64<<20)
}

// KeyInfo is GET /key: the API key's limit and usage, in USD.
type KeyInfo struct {
	Label string `json:"label"`
	// Limit is the key's credit limit; LimitRemaining what is left of it
	// (both nil for a key without a limit).
	Limit          *float64 `json:"limit"`
	LimitRemaining *float64 `json:"limit_remaining"`
	LimitReset     *string  `json:"limit_reset"`
	Usage          float64  `json:"usage"`
	UsageDaily     float64  `json:"usage_daily"`
	UsageMonthly   float64  `json:"usage_monthly"`
	IsFreeTier     bool     `json:"is_free_tier"`
}

// Generation is GET /generation?id=: what one call really cost, known
// once OpenRouter has recorded it (a second or so after it ended).
type Generation struct {
	ID               string   `json:"id"`
	Model            string   `json:"model"`
	TotalCost        float64  `json:"total_cost"`
	TokensPrompt     *int64   `json:"tokens_prompt"`
	TokensCompletion *int64   `json:"tokens_completion"`
	NativeReasoning  *int64   `json:"native_tokens_reasoning"`
	NativeCached     *int64   `json:"native_tokens_cached"`
	Cancelled        *bool    `json:"cancelled"`
	FinishReason     *string  `json:"finish_reason"`
	IsBYOK           bool     `json:"is_byok"`
	UpstreamCost     *float64 `json:"upstream_inference_cost"`
}

// Generation fetches GET /generation?id= once. ENOTFOUND (as an
// *UpstreamError with status 404) while OpenRouter has not recorded it yet.
func (c *Client) Generation(ctx context.Context, id string) (Generation, error) {
	g, err := getData[Generation](ctx, c, "/generation?id="+url.QueryEscape(id), "a generation")
	if err == nil && !validUSD(g.TotalCost) {
		return g, streamError("", CodeBadJSON, "GET /generation: total_cost is not a cost", false, nil)
	}
	return g, err
}

// Key fetches GET /key, the state of the bot's API key.
func (c *Client) Key(ctx context.Context) (KeyInfo, error) {
	return getData[KeyInfo](ctx, c, "/key", "a key")
}

// getData fetches an authenticated GET whose answer is {"data": T}.
func getData[T any](ctx context.Context, c *Client, path, what string) (T, error) {
	var zero T
	b, err := c.get(ctx, path, true, 1<<20)
	if err != nil {
		return zero, err
	}
	var w struct {
		Data *T `json:"data"`
	}
	if err := json.Unmarshal(b, &w); err != nil || w.Data == nil {
		p, _, _ := strings.Cut(path, "?")
		return zero, streamError("", CodeBadJSON, "GET "+p+": not "+what+" object", false, err)
	}
	return *w.Data, nil
}

func (c *Client) get(ctx context.Context, path string, auth bool, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.RequestTimeout, errRequest)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+path, nil)
	if err != nil {
		return nil, bot.Errorf(bot.EINTERNAL, "router: build request: %v", err)
	}
	c.header(req.Header, auth)
	req.Header.Set("Accept", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, streamError("", CodeTransport, "GET "+path+": "+err.Error(), false, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return nil, streamError("", CodeTransport, "GET "+path+": "+err.Error(), false, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, c.httpError("", res.StatusCode, res.Header, b)
	}
	if e := c.bodyProblem("", res, b); e != nil {
		return nil, e
	}
	return b, nil
}
