// Package openroutertest is a fake OpenRouter on loopback that speaks the
// real wire format: GET /api/v1/models from a catalog, POST
// /api/v1/chat/completions streaming (SSE with keep-alive comments, chunks
// shaped like OpenRouter's, a final usage chunk with "choices": [] and
// `data: [DONE]`) and not, and GET /api/v1/key. Answers are deterministic,
// say they are simulated and name the model; token counts come from the
// text and usage.cost from the catalog prices. Faults are programmable per
// model or per request, or drawn at random from a seed.
//
// Tests use NewServer; `orchat simulate-upstream` uses Start with an
// address and prints URL().
package openroutertest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

//go:embed models-2026-02-27.json
var defaultCatalog []byte

// DefaultCatalog returns the embedded catalog: OpenRouter's whole /models
// of 27 February 2026, 344 models (:free ones, vision models,
// million-token contexts, openrouter/auto with its "-1" prices), so every
// model a person may name offline answers, as it would online.
func DefaultCatalog() []byte { return bytes.Clone(defaultCatalog) }

// defaultModels is the embedded catalog parsed once per process: 344
// models take a while to parse under the race detector, and every test
// world starts a simulator.
var defaultModels = sync.OnceValues(func() ([]bot.Model, error) { return router.ParseModels(defaultCatalog) })

// Options configure a Server. Zero values give a fast, fault-free upstream
// on a random loopback port with the embedded catalog.
type Options struct {
	// Addr to listen on; "" is 127.0.0.1:0.
	Addr string
	// Catalog is the body of GET /models; CatalogFile a file holding it.
	// Neither: DefaultCatalog().
	Catalog     []byte
	CatalogFile string
	// Latency is the time to the first token; TokensPerSecond paces the
	// rest (0: as fast as possible).
	Latency         time.Duration
	TokensPerSecond float64
	// FailRate (0..1) draws a fault for that share of chat requests: 429
	// with Retry-After: 1, 502, 503, a stall, a mid-stream error or a
	// truncated stream. The draw depends only on Seed and the request (and
	// how often the same request came before), so a run is reproducible.
	FailRate float64
	Seed     int64
	// Faults by model id (as requested, or its base id without a routing
	// suffix).
	Faults map[string]Fault
	// FaultFunc, when set, is asked first for every chat request; nil
	// means no fault from it.
	FaultFunc func(r *Request) *Fault
	// APIKey, when set, is required as the bearer token of chat and /key.
	APIKey string
	// OnServed, when set, is told about every chat request once its
	// response has ended: when it came and went, the fault it drew and
	// what it billed. Load tests use it to time the upstream and to
	// reconcile the ledger with the upstream's bill, request by request.
	// It runs on the request's goroutine and must not block.
	OnServed func(Served)
}

// Served is one chat request as the simulator served it.
type Served struct {
	Request *Request // nil when the body could not be read
	// Start is when the request arrived; End when its response ended
	// (the last byte written, the connection closed, or the client gone).
	Start, End time.Time
	// Status is the HTTP status answered (200 for every stream, also one
	// that failed midway).
	Status       int
	Fault        *Fault // nil when none
	GenerationID string // "" when no answer was started
	Model        string // the model that answered
	// BilledUSD is the usage.cost sent to the client; PartialUSD, for a
	// stream cut before its usage chunk (a mid-stream error, a truncation,
	// a stall, a garbled chunk), is what the output streamed so far costs:
	// billed upstream, though the client never saw a usage object for it.
	BilledUSD  float64
	PartialUSD float64
}

// Fault is what can go wrong with one request.
type Fault struct {
	// Status answers with this HTTP status and OpenRouter's error body for
	// it (402, 403, 404, 429, 500, 502, 503, 524, 529...).
	Status     int
	Message    string   // the error message (a realistic default per status)
	RetryAfter string   // the Retry-After header, such as "1" (429, 503)
	DailyCap   bool     // 429 with the free-models-per-day body
	Reasons    []string // 403 moderation reasons (default harassment)
	HTML       bool     // an HTML page (Status, or 502) instead of JSON
	EmptyBody  bool     // no body (Status, or 502)
	// Body is a raw body to send with Status (200 if zero), in place of an
	// answer: as JSON, or as an SSE stream when it starts with "data:" or
	// ":" (a hand-written stream, for wire-format oddities).
	Body string
	// Answer replaces the simulated answer's text (clipped to max_tokens
	// like any answer); the reply is otherwise normal: streamed, with
	// usage and cost. Tests use it for answers with @everyone, <!channel>
	// or a long code block.
	Answer string

	FirstByteDelay  time.Duration // before the response headers
	TTFT            time.Duration // overrides Options.Latency when positive
	TokensPerSecond float64       // overrides Options.TokensPerSecond when positive

	// Stream faults, after AfterChunks content chunks (0: before any
	// text): an error chunk with finish_reason "error" and no [DONE]; the
	// connection closed without usage or [DONE]; nothing sent any more
	// until the client gives up; or a chunk that is not JSON.
	MidStreamError bool
	ErrorCode      any // the mid-stream error's code: a number (default 502) or a string
	Truncate       bool
	Stall          bool
	BadJSON        bool
	AfterChunks    int
	// NoChoices answers 200 with an empty choices list.
	NoChoices bool
	// Flood streams this many bytes of text after the answer's first
	// chunk, 16 KiB a chunk, as a broken or hostile upstream might (a
	// generation loop that never stops); with FloodEvent the bytes are
	// the data lines of one event that never ends. The answer's usage and
	// [DONE] follow, for a client that reads that far.
	Flood      int64
	FloodEvent bool
}

// Request is one chat request as the simulator parsed it.
type Request struct {
	Seq        int64 // 1 for the first chat request served
	Model      string
	Models     []string
	Messages   []bot.ChatMessage
	MaxTokens  int
	Stream     bool
	User       string
	SessionID  string
	AutoModels []string
	Header     http.Header
	Body       []byte // the raw request body
}

// Stats counts what the server did.
type Stats struct {
	Requests  int64 // chat requests
	Streams   int64 // of which streaming
	Faults    int64 // requests answered with a fault
	Completed int64 // answers that ended normally
	// BilledUSD is the sum of usage.cost actually sent to clients (also in
	// partial streams that carried usage): what the upstream billed.
	BilledUSD float64
	// PartialUSD is the cost of the output of streams cut before their
	// usage chunk (see Served.PartialUSD); the upstream bills it too.
	PartialUSD float64
}

// Server is a running simulator.
type Server struct {
	opts      Options
	catalog   []byte
	models    map[string]bot.Model
	autoPick  []string // openrouter/auto's default choices
	ln        net.Listener
	srv       *http.Server
	url       string
	done      chan struct{}
	closeOnce sync.Once

	seq       atomic.Int64
	streams   atomic.Int64
	faults    atomic.Int64
	completed atomic.Int64
	mu        sync.Mutex
	billed    float64
	partial   float64
	seen      map[uint64]int // request body hash → times seen (fault draws)
}

// TB is the part of testing.TB the simulator uses (a *testing.T is one);
// the package does not import testing, because orchat itself runs the
// simulator.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// MustStart starts a simulator for a test; it stops when the test ends.
func MustStart(tb TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("openroutertest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a simulator on opts.Addr (default 127.0.0.1:0) for a
// program (orchat's offline mode, simulate-upstream, the load test); Close
// stops it.
func Start(opts Options) (*Server, error) {
	cat := opts.Catalog
	if opts.CatalogFile != "" {
		b, err := os.ReadFile(opts.CatalogFile)
		if err != nil {
			return nil, err
		}
		cat = b
	}
	var list []bot.Model
	var err error
	if cat == nil {
		cat = defaultCatalog
		list, err = defaultModels()
	} else {
		list, err = router.ParseModels(cat)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	s := &Server{opts: opts, catalog: cat, models: make(map[string]bot.Model, len(list)), done: make(chan struct{}), seen: map[uint64]int{}}
	for _, m := range list {
		s.models[m.ID] = m
		if !m.Router() && !m.Free() && len(s.autoPick) < 3 && autoDefault(m.ID) {
			s.autoPick = append(s.autoPick, m.ID)
		}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/models", s.handleModels)
	mux.HandleFunc("GET /api/v1/key", s.handleKey)
	mux.HandleFunc("POST /api/v1/chat/completions", s.handleChat)
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String() + "/api/v1"
	go s.srv.Serve(ln)
	return s, nil
}

// autoDefault reports whether id is a plain general-purpose model that
// openrouter/auto may pick when the request names no allowed models.
func autoDefault(id string) bool {
	return strings.HasPrefix(id, "google/gemini-2.5-flash") || strings.HasPrefix(id, "openai/gpt-5-mini") || strings.HasPrefix(id, "deepseek/")
}

// URL returns the base URL, such as http://127.0.0.1:PORT/api/v1.
func (s *Server) URL() string { return s.url }

// Addr returns the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and ends every stream in flight.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	billed, partial := s.billed, s.partial
	s.mu.Unlock()
	return Stats{Requests: s.seq.Load(), Streams: s.streams.Load(), Faults: s.faults.Load(), Completed: s.completed.Load(), BilledUSD: billed, PartialUSD: partial}
}

// Requests returns how many chat requests were served.
func (s *Server) Requests() int64 { return s.seq.Load() }

// BilledUSD returns the sum of usage.cost sent to clients.
func (s *Server) BilledUSD() float64 { return s.Stats().BilledUSD }

func (s *Server) bill(sv *Served, usd float64) {
	s.mu.Lock()
	s.billed += usd
	s.mu.Unlock()
	sv.BilledUSD += usd
}

// billPartial bills the output of a stream cut before its usage chunk:
// the prompt and the text of the first n pieces, priced as a whole answer
// is (and as the router estimates a cut stream).
func (s *Server) billPartial(sv *Served, model bot.Model, ans *answer, pieces []string, n int) {
	if n <= 0 || model.Free() {
		return
	}
	completion := router.EstimateTokens(strings.Join(pieces[:min(n, len(pieces))], ""))
	usd := float64(ans.promptTokens)*math.Max(model.PromptPrice, 0) + float64(completion)*math.Max(model.CompletionPrice, 0)
	s.mu.Lock()
	s.partial += usd
	s.mu.Unlock()
	sv.PartialUSD += usd
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.catalog)
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey == "" || r.Header.Get("Authorization") == "Bearer "+s.opts.APIKey {
		return true
	}
	writeError(w, http.StatusUnauthorized, 401, "No auth credentials found", nil)
	return false
}

func (s *Server) handleKey(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	st := s.Stats()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"data":{"label":"sk-or-v1-sim...000","limit":null,"limit_remaining":null,"limit_reset":null,"usage":%s,"usage_daily":%s,"usage_weekly":%s,"usage_monthly":%s,"byok_usage":0,"is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,"include_byok_in_limit":false,"expires_at":null}}`,
		num(st.BilledUSD), num(st.BilledUSD), num(st.BilledUSD), num(st.BilledUSD))
}

// wireRequest is the part of a chat request the simulator reads.
type wireRequest struct {
	Model     string   `json:"model"`
	Models    []string `json:"models"`
	MaxTokens int      `json:"max_tokens"`
	Stream    bool     `json:"stream"`
	User      string   `json:"user"`
	SessionID string   `json:"session_id"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Plugins []struct {
		ID            string   `json:"id"`
		AllowedModels []string `json:"allowed_models"`
	} `json:"plugins"`
}

func (s *Server) parseRequest(r *http.Request) (*Request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %v", err)
	}
	req := &Request{Model: w.Model, Models: w.Models, MaxTokens: w.MaxTokens, Stream: w.Stream, User: w.User, SessionID: w.SessionID, Header: r.Header, Body: body}
	if req.Model == "" && len(req.Models) > 0 {
		req.Model = req.Models[0]
	}
	for _, p := range w.Plugins {
		if p.ID == "auto-router" {
			req.AutoModels = p.AllowedModels
		}
	}
	req.Messages = make([]bot.ChatMessage, len(w.Messages))
	for i, m := range w.Messages {
		cm := bot.ChatMessage{Role: m.Role}
		var text string
		if json.Unmarshal(m.Content, &text) == nil {
			cm.Content = text
		} else {
			var parts []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				ImageURL *struct {
					URL string `json:"url"`
				} `json:"image_url"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return nil, fmt.Errorf("messages[%d].content: neither a string nor parts", i)
			}
			for _, p := range parts {
				switch p.Type {
				case "text":
					cm.Content += p.Text
				case "image_url":
					if p.ImageURL != nil {
						cm.Images = append(cm.Images, p.ImageURL.URL)
					}
				}
			}
		}
		req.Messages[i] = cm
	}
	if len(req.Messages) == 0 {
		return nil, errors.New("messages: at least one message is required")
	}
	return req, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	sv := &Served{Start: time.Now()}
	if s.opts.OnServed != nil {
		defer func() {
			sv.End = time.Now()
			s.opts.OnServed(*sv)
		}()
	}
	if !s.authorized(w, r) {
		sv.Status = http.StatusUnauthorized
		return
	}
	req, err := s.parseRequest(r)
	seq := s.seq.Add(1)
	if err != nil {
		sv.Status = http.StatusBadRequest
		writeError(w, http.StatusBadRequest, 400, err.Error(), nil)
		return
	}
	req.Seq = seq
	sv.Request = req
	if req.Stream {
		s.streams.Add(1)
	}
	f := s.faultFor(req)
	if f != nil {
		sv.Fault = f
		s.faults.Add(1)
		if f.FirstByteDelay > 0 && !s.wait(r, f.FirstByteDelay) {
			return
		}
		if status, ok := s.errorFault(w, r, req, f); ok {
			sv.Status = status
			return
		}
	}
	model, ok := s.resolve(req)
	if !ok {
		sv.Status = http.StatusBadRequest
		writeError(w, http.StatusBadRequest, 400, req.Model+" is not a valid model ID", nil)
		return
	}
	sv.Model = model.ID
	ans := newAnswer(model, req)
	if f != nil && f.Answer != "" {
		ans.setText(f.Answer, req.MaxTokens)
	}
	cost := float64(ans.promptTokens)*math.Max(model.PromptPrice, 0) + float64(ans.completionTokens)*math.Max(model.CompletionPrice, 0)
	if model.Free() {
		cost = 0
	}
	ans.cost = cost
	sv.GenerationID = ans.id
	sv.Status = http.StatusOK
	if req.Stream {
		s.stream(w, r, sv, model, ans, f)
		return
	}
	s.complete(w, r, sv, ans, f)
}

// resolve finds the model that answers: the requested one without its
// routing suffix, or, for openrouter/auto, one of the allowed models.
func (s *Server) resolve(req *Request) (bot.Model, bool) {
	id := req.Model
	if m, ok := s.models[id]; ok && !m.Router() {
		return m, true
	}
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		switch id[i:] {
		case ":nitro", ":floor", ":online", ":thinking", ":exacto":
			if m, ok := s.models[id[:i]]; ok && !m.Router() {
				return m, true
			}
		}
	}
	if m, ok := s.models[id]; ok && m.Router() {
		choices := s.autoPick
		if len(req.AutoModels) > 0 {
			choices = nil
			for _, a := range req.AutoModels {
				if am, ok := s.models[a]; ok && !am.Router() {
					choices = append(choices, a)
				}
			}
		}
		if len(choices) == 0 {
			return bot.Model{}, false
		}
		return s.models[choices[int(hash64(lastUser(req.Messages))%uint64(len(choices)))]], true
	}
	return bot.Model{}, false
}

// faultFor returns the fault of a request: FaultFunc's, the model's, or a
// random one.
func (s *Server) faultFor(req *Request) *Fault {
	if s.opts.FaultFunc != nil {
		if f := s.opts.FaultFunc(req); f != nil {
			return f
		}
	}
	if f, ok := s.opts.Faults[req.Model]; ok {
		return &f
	}
	if i := strings.LastIndexByte(req.Model, ':'); i > 0 {
		if f, ok := s.opts.Faults[req.Model[:i]]; ok {
			return &f
		}
	}
	if s.opts.FailRate <= 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write(req.Body)
	key := h.Sum64()
	s.mu.Lock()
	n := s.seen[key]
	s.seen[key] = n + 1
	s.mu.Unlock()
	x := mix(uint64(s.opts.Seed) ^ key ^ mix(uint64(n)+0x9e3779b97f4a7c15))
	if float64(x>>11)/float64(1<<53) >= s.opts.FailRate {
		return nil
	}
	after := int(x>>8) % 3
	switch (x >> 20) % 6 {
	case 0:
		return &Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}
	case 1:
		return &Fault{Status: http.StatusBadGateway}
	case 2:
		return &Fault{Status: http.StatusServiceUnavailable}
	case 3:
		return &Fault{Stall: true, AfterChunks: after}
	case 4:
		return &Fault{MidStreamError: true, AfterChunks: 1 + after}
	default:
		return &Fault{Truncate: true, AfterChunks: 1 + after}
	}
}

// mix is SplitMix64's finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// errorFault answers the faults that replace the answer; it reports
// whether it answered, and with which status.
func (s *Server) errorFault(w http.ResponseWriter, r *http.Request, req *Request, f *Fault) (int, bool) {
	status := f.Status
	switch {
	case f.HTML:
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>cloudflare</p></body></html>")
		return status, true
	case f.EmptyBody:
		if status == 0 {
			status = http.StatusBadGateway
		}
		w.WriteHeader(status)
		return status, true
	case f.Body != "":
		if status == 0 {
			status = http.StatusOK
		}
		ct := "application/json"
		if strings.HasPrefix(f.Body, "data:") || strings.HasPrefix(f.Body, ":") {
			ct = "text/event-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, f.Body)
		return status, true
	case f.NoChoices:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"gen-sim-%d","provider":"Simulated","model":%q,"object":"chat.completion","created":%d,"choices":[]}`, req.Seq, req.Model, time.Now().Unix())
		return http.StatusOK, true
	case status == 0:
		return 0, false
	}
	msg := f.Message
	var md map[string]any
	switch status {
	case http.StatusPaymentRequired:
		if msg == "" {
			msg = "This request requires more credits, or fewer max_tokens. You requested up to " + strconv.Itoa(max(req.MaxTokens, 1)) + " tokens, but can only afford 0. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account"
		}
		md = map[string]any{"provider_name": nil}
	case http.StatusForbidden:
		reasons := f.Reasons
		if reasons == nil {
			reasons = []string{"harassment"}
		}
		if msg == "" {
			msg = fmt.Sprintf("%s requires moderation. Your input was flagged for %q. No credits were charged.", req.Model, strings.Join(reasons, ", "))
		}
		md = map[string]any{"reasons": reasons, "flagged_input": bot.Clip(lastUser(req.Messages), 40), "provider_name": "Simulated", "model_slug": req.Model}
	case http.StatusNotFound:
		if msg == "" {
			msg = "No endpoints found for " + req.Model + "."
		}
	case http.StatusTooManyRequests:
		if f.DailyCap {
			if msg == "" {
				msg = "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day"
			}
			y, m, d := time.Now().UTC().Date()
			reset := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
			md = map[string]any{"headers": map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset.UnixMilli(), 10)}, "provider_name": nil}
		} else if msg == "" {
			msg = "Rate limit exceeded"
		}
	default:
		if msg == "" {
			msg = "Provider returned error"
		}
		if status >= 500 {
			md = map[string]any{"raw": "upstream connect error or disconnect/reset before headers", "provider_name": "Simulated"}
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	writeError(w, status, status, msg, md)
	return status, true
}

func writeError(w http.ResponseWriter, status int, code any, msg string, md map[string]any) {
	e := map[string]any{"code": code, "message": msg}
	if md != nil {
		e["metadata"] = md
	}
	b, _ := json.Marshal(map[string]any{"error": e, "user_id": "user_simulated"})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// wait sleeps d unless the client leaves or the server closes; it reports
// whether to go on.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const keepAlive = ": OPENROUTER PROCESSING\n\n"

func (s *Server) stream(w http.ResponseWriter, r *http.Request, sv *Served, model bot.Model, ans *answer, f *Fault) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Generation-Id", ans.id)
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, keepAlive); err != nil {
		return
	}
	rc.Flush()

	ttft, tps := s.opts.Latency, s.opts.TokensPerSecond
	if f != nil && f.TTFT > 0 {
		ttft = f.TTFT
	}
	if f != nil && f.TokensPerSecond > 0 {
		tps = f.TokensPerSecond
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	send := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	faultAt := -1
	if f != nil && (f.MidStreamError || f.Truncate || f.Stall || f.BadJSON) {
		faultAt = f.AfterChunks
	}
	// Wait for the first token, with OpenRouter's keep-alive comments
	// (unless the stream is to stall before any text).
	if faultAt != 0 || !f.Stall {
		for ttft > 0 {
			step := min(ttft, time.Second)
			if !s.wait(r, step) {
				return
			}
			ttft -= step
			if ttft > 0 && !send([]byte(keepAlive)) {
				return
			}
		}
	}
	pieces := ans.pieces()
	for i := 0; ; i++ {
		if i == faultAt {
			// The output so far was generated, so it is billed.
			s.billPartial(sv, model, ans, pieces, i)
			s.streamFault(w, r, ans, f, bp, send)
			return
		}
		if i == len(pieces) {
			break
		}
		b := appendChunk((*bp)[:0], ans, pieces[i], "", i == 0)
		*bp = b
		if !send(b) {
			return
		}
		if i == 0 && f != nil && f.Flood > 0 && !s.flood(ans, f, send) {
			return
		}
		if tps > 0 {
			if !s.wait(r, time.Duration(float64(time.Second)*float64(router.EstimateTokens(pieces[i]))/tps)) {
				return
			}
		}
	}
	b := appendChunk((*bp)[:0], ans, "", ans.finish, false)
	b = append(b, "data: "...)
	b = appendUsage(b, ans, ans.promptTokens, ans.completionTokens, ans.cost)
	b = append(b, "\n\ndata: [DONE]\n\n"...)
	*bp = b
	// Count before sending, so a client that has read the usage always
	// finds it counted; take it back if the write failed.
	s.bill(sv, ans.cost)
	s.completed.Add(1)
	if !send(b) {
		s.bill(sv, -ans.cost)
		s.completed.Add(-1)
	}
}

// floodPiece is the text of one flood chunk: 16 KiB of words.
var floodPiece = strings.Repeat("flooding ", 16<<10/len("flooding "))

// flood sends f.Flood bytes of text (see Fault.Flood); it reports whether
// the client is still reading.
func (s *Server) flood(ans *answer, f *Fault, send func([]byte) bool) bool {
	var b []byte
	if f.FloodEvent {
		line := "data: " + strings.Repeat("x", 4<<10-len("data: \n")) + "\n"
		b = []byte(strings.Repeat(line, 4))
	} else {
		b = appendChunk(nil, ans, floodPiece, "", false)
	}
	for sent := int64(0); sent < f.Flood; sent += int64(len(b)) {
		select {
		case <-s.done:
			return false
		default:
		}
		if !send(b) {
			return false
		}
	}
	if f.FloodEvent {
		return send([]byte("\n"))
	}
	return true
}

func (s *Server) streamFault(w http.ResponseWriter, r *http.Request, ans *answer, f *Fault, bp *[]byte, send func([]byte) bool) {
	switch {
	case f.Stall:
		s.stall(r)
	case f.Truncate:
		// Close the connection without usage or [DONE].
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
	case f.BadJSON:
		send([]byte("data: {\"id\":\"" + ans.id + "\",\"choices\":[{\"delta\":{\"content\":\"oops\"\n\n"))
	case f.MidStreamError:
		code := f.ErrorCode
		if code == nil {
			code = 502
		}
		msg := f.Message
		if msg == "" {
			msg = "Provider disconnected unexpectedly"
		}
		e, _ := json.Marshal(map[string]any{"code": code, "message": msg})
		b := append((*bp)[:0], `data: {"id":"`...)
		b = append(b, ans.id...)
		b = append(b, `","object":"chat.completion.chunk","created":`...)
		b = strconv.AppendInt(b, ans.created, 10)
		b = append(b, `,"model":`...)
		b = appendJSONString(b, ans.model)
		b = append(b, `,"provider":"Simulated","error":`...)
		b = append(b, e...)
		b = append(b, `,"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}`+"\n\n"...)
		*bp = b
		send(b)
	}
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, sv *Served, ans *answer, f *Fault) {
	ttft := s.opts.Latency
	if f != nil && f.TTFT > 0 {
		ttft = f.TTFT
	}
	if !s.wait(r, ttft) {
		return
	}
	if f != nil {
		switch {
		case f.Stall:
			s.stall(r)
			return
		case f.MidStreamError:
			sv.Status = http.StatusBadGateway
			writeError(w, http.StatusBadGateway, 502, "Provider returned error", map[string]any{"provider_name": "Simulated"})
			return
		case f.Truncate, f.BadJSON:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"`+ans.id+`","choices":[{"message":{"content":"cut`)
			return
		}
	}
	text := ans.text
	b := append([]byte(nil), `{"id":"`...)
	b = append(b, ans.id...)
	b = append(b, `","provider":"Simulated","model":`...)
	b = appendJSONString(b, ans.model)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, ans.created, 10)
	b = append(b, `,"system_fingerprint":null,"choices":[{"logprobs":null,"finish_reason":"`...)
	b = append(b, ans.finish...)
	b = append(b, `","native_finish_reason":"`...)
	b = append(b, ans.finish...)
	b = append(b, `","index":0,"message":{"role":"assistant","content":`...)
	b = appendJSONString(b, text)
	b = append(b, `,"refusal":null,"reasoning":null}}],"usage":`...)
	b = appendUsageObject(b, ans.promptTokens, ans.completionTokens, ans.cost)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	s.bill(sv, ans.cost)
	s.completed.Add(1)
	if _, err := w.Write(b); err != nil {
		s.bill(sv, -ans.cost)
		s.completed.Add(-1)
	}
}

// num writes a float as a JSON number.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
