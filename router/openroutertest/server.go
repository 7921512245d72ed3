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
	"slices"
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
	// KeyLimit is the credit limit GET /key reports, in USD (nil: a key
	// without a limit); the remaining limit is it less what was billed.
	KeyLimit *float64
	// GenerationDelay is how long after a call GET /generation starts to
	// know it (404 before), as OpenRouter takes a moment to record it.
	GenerationDelay time.Duration
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
	// FirstToken is when the first chunk of answer text was written
	// (zero when none was); load tests time what a member waits from it.
	FirstToken time.Time
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
	// Refusal makes the model refuse with this message.
	Refusal string
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
	// Effort is reasoning.effort (or reasoning_effort); Web says the web
	// plugin (or :online) was asked for, with WebResults results;
	// Modalities are the output modalities asked for; FileParser says the
	// file-parser plugin came along.
	Effort     string
	Web        bool
	WebResults int
	Modalities []string
	FileParser bool
	PDFEngine  string // the file-parser plugin's pdf.engine ("" when none was named)
	// Files are the file parts of every message; CacheMarks counts the
	// cache_control breakpoints.
	Files      []bot.FilePart
	CacheMarks int
	Header     http.Header
	Body       []byte // the raw request body
}

// effort is how hard m thinks for the request: the effort asked for, or
// medium for a model that always thinks; "" when it does not think.
func (r *Request) effort(m bot.Model) string {
	if !m.Reasons() || r.Effort == "none" {
		return ""
	}
	if r.Effort != "" {
		return r.Effort
	}
	// Sent no effort, a model that always thinks thinks a little (real
	// ones default to more; the reasoning tier asks for medium).
	id := strings.ToLower(m.ID)
	for _, f := range []string{"/o1", "/o3", "/o4", "-r1", "thinking", "/gpt-5", "gpt-oss"} {
		if strings.Contains(id, f) && !strings.Contains(id, "-chat") {
			return "low"
		}
	}
	return ""
}

func (r *Request) wantsImage() bool {
	for _, m := range r.Modalities {
		if m == "image" {
			return true
		}
	}
	return false
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
	gens      map[string]generation
	genOrder  []string
	prefixes  map[uint64]bool // prompt prefixes cached, by model
}

// generation is one call as GET /generation reports it.
type generation struct {
	at                  time.Time
	model, finish       string
	cost                float64
	prompt, completion  int
	reasoning, cached   int
	searches            int
	streamed, cancelled bool
}

// maxGenerations bounds what the simulator remembers for /generation.
const maxGenerations = 100_000

func (s *Server) record(a *answer, req *Request, m bot.Model, cost float64, streamed bool) {
	g := generation{at: time.Now(), model: m.ID, finish: a.finish, cost: cost, prompt: a.promptTokens, completion: a.completionTokens,
		reasoning: a.reasoningTokens, cached: a.cachedTokens, searches: a.webSearches, streamed: req != nil && req.Stream, cancelled: a.finish == "error"}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.gens[a.id]; !ok {
		s.genOrder = append(s.genOrder, a.id)
		if len(s.genOrder) > maxGenerations {
			delete(s.gens, s.genOrder[0])
			s.genOrder = s.genOrder[1:]
		}
	}
	s.gens[a.id] = g
}

// forget drops a generation that produced nothing (never billed).
func (s *Server) forget(id string) {
	s.mu.Lock()
	delete(s.gens, id)
	s.mu.Unlock()
}

// cache decides which prompt tokens come from the cache: a prompt whose
// prefix (every message but the last) this model saw before reads it from
// the cache. Models with explicit caching cache only prefixes marked with
// cache_control (and write them the first time); the others cache by
// themselves.
func (s *Server) cache(m bot.Model, req *Request, a *answer) {
	if len(req.Messages) < 2 || m.Free() {
		return
	}
	if m.ExplicitCache() && req.CacheMarks == 0 {
		return
	}
	prefix := req.Messages[:len(req.Messages)-1]
	h := fnv.New64a()
	h.Write([]byte(m.ID))
	tokens := router.PromptOverheadTokens
	for _, msg := range prefix {
		h.Write([]byte{0})
		h.Write([]byte(msg.Role))
		h.Write([]byte{0})
		h.Write([]byte(msg.Content))
		tokens += router.EstimateMessage(msg)
	}
	key := h.Sum64()
	s.mu.Lock()
	seen := s.prefixes[key]
	if !seen && len(s.prefixes) < maxGenerations {
		s.prefixes[key] = true
	}
	s.mu.Unlock()
	tokens = min(tokens, a.promptTokens)
	switch {
	case seen:
		a.cachedTokens = tokens
	case m.ExplicitCache():
		a.cacheWriteTokens = tokens
	}
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
	served, err := conformCatalog(cat)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	s := &Server{opts: opts, catalog: served, models: make(map[string]bot.Model, len(list)), done: make(chan struct{}), seen: map[uint64]int{},
		gens: map[string]generation{}, prefixes: map[uint64]bool{}}
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
	mux.HandleFunc("GET /api/v1/generation", s.handleGeneration)
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
// the prompt and the first n pieces (thinking and text), priced as a
// whole answer is (and as the router estimates a cut stream). The bill is
// recorded for GET /generation, which then reports it exactly.
func (s *Server) billPartial(sv *Served, model bot.Model, ans *answer, pieces []piece, n int, r *http.Request) {
	if n <= 0 {
		s.forget(ans.id) // nothing was generated: nothing to look up
		return
	}
	cut := *ans
	cut.reasoningTokens, cut.completionTokens = 0, 0
	var text, thought strings.Builder
	for _, p := range pieces[:min(n, len(pieces))] {
		if p.reasoning {
			thought.WriteString(p.text)
		} else {
			text.WriteString(p.text)
		}
	}
	cut.reasoningTokens = router.EstimateTokens(thought.String())
	cut.completionTokens = cut.reasoningTokens + router.EstimateTokens(text.String())
	cut.images, cut.citations, cut.finish = nil, nil, ""
	// The search ran before the answer began: it is billed whole.
	cut.webSearches = 0
	cut.price(model, 0)
	cut.webCost, cut.webSearches = ans.webCost, ans.webSearches
	cut.cost += cut.webCost + ans.parseCost // the files were read before the answer began too
	usd := cut.cost
	s.mu.Lock()
	s.partial += usd
	s.mu.Unlock()
	sv.PartialUSD += usd
	cut.finish = "error"
	s.record(&cut, sv.Request, model, usd, true)
}

// handleModels serves the catalog, filtered by output_modalities as
// OpenRouter does: a comma list (text, image, audio, embeddings), "all",
// or, without the parameter, "text".
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	want := r.URL.Query().Get("output_modalities")
	if want == "" {
		want = "text"
	}
	if want == "all" || s.allOutput(want) {
		w.Write(s.catalog)
		return
	}
	b, err := filterCatalog(s.catalog, strings.Split(want, ","))
	if err != nil {
		writeError(w, http.StatusInternalServerError, 500, err.Error(), nil)
		return
	}
	w.Write(b)
}

// allOutput reports whether every model outputs one of the listed
// modalities (then the catalog is served as it is).
func (s *Server) allOutput(list string) bool {
	for _, m := range s.models {
		ok := false
		for _, o := range strings.Split(list, ",") {
			if slices.Contains(m.OutputModalities, strings.TrimSpace(o)) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
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
	used := st.BilledUSD + st.PartialUSD
	limit, remaining := "null", "null"
	if l := s.opts.KeyLimit; l != nil {
		limit, remaining = num(*l), num(math.Max(*l-used, 0))
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"data":{"label":"sk-or-v1-sim...000","limit":%s,"limit_remaining":%s,"limit_reset":null,"usage":%s,"usage_daily":%s,"usage_weekly":%s,"usage_monthly":%s,"byok_usage":0,"byok_usage_daily":0,"byok_usage_weekly":0,"byok_usage_monthly":0,"is_free_tier":false,"is_management_key":false,"is_provisioning_key":false,"include_byok_in_limit":false,"creator_user_id":null,"expires_at":null,"rate_limit":{"requests":-1,"interval":"10s","note":"This field is deprecated and safe to ignore."}}}`,
		limit, remaining, num(used), num(used), num(used), num(used))
}

// handleGeneration answers GET /generation?id= with what the call billed,
// as OpenRouter records it a moment after the call (Options.GenerationDelay).
func (s *Server) handleGeneration(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	id := r.URL.Query().Get("id")
	if id == "" {
		writeError(w, http.StatusBadRequest, 400, "id is required", nil)
		return
	}
	s.mu.Lock()
	g, ok := s.gens[id]
	s.mu.Unlock()
	if !ok || time.Since(g.at) < s.opts.GenerationDelay {
		writeError(w, http.StatusNotFound, 404, "Generation not found", nil)
		return
	}
	b := append([]byte(nil), `{"data":{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"upstream_id":null,"total_cost":`...)
	b = strconv.AppendFloat(b, g.cost, 'g', -1, 64)
	b = append(b, `,"cache_discount":null,"upstream_inference_cost":`...)
	b = strconv.AppendFloat(b, g.cost, 'g', -1, 64)
	b = append(b, `,"created_at":`...)
	b = appendJSONString(b, g.at.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"model":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"app_id":null,"streamed":`...)
	b = strconv.AppendBool(b, g.streamed)
	b = append(b, `,"cancelled":`...)
	b = strconv.AppendBool(b, g.cancelled)
	b = append(b, `,"provider_name":"Simulated","latency":null,"moderation_latency":null,"generation_time":null,"finish_reason":`...)
	b = appendJSONString(b, g.finish)
	b = append(b, `,"native_finish_reason":`...)
	b = appendJSONString(b, g.finish)
	b = append(b, `,"service_tier":null,"tokens_prompt":`...)
	b = strconv.AppendInt(b, int64(g.prompt), 10)
	b = append(b, `,"tokens_completion":`...)
	b = strconv.AppendInt(b, int64(g.completion), 10)
	b = append(b, `,"native_tokens_prompt":`...)
	b = strconv.AppendInt(b, int64(g.prompt), 10)
	b = append(b, `,"native_tokens_completion":`...)
	b = strconv.AppendInt(b, int64(g.completion), 10)
	b = append(b, `,"native_tokens_completion_images":0,"native_tokens_reasoning":`...)
	b = strconv.AppendInt(b, int64(g.reasoning), 10)
	b = append(b, `,"native_tokens_cached":`...)
	b = strconv.AppendInt(b, int64(g.cached), 10)
	b = append(b, `,"num_media_prompt":null,"num_input_audio_prompt":null,"num_media_completion":null,"num_search_results":`...)
	b = strconv.AppendInt(b, int64(g.searches), 10)
	b = append(b, `,"num_fetches":null,"web_search_engine":null,"origin":"","usage":`...)
	b = strconv.AppendFloat(b, g.cost, 'g', -1, 64)
	b = append(b, `,"is_byok":false,"external_user":null,"api_type":"completions","preset_id":null,"router":null,"provider_responses":null,"user_agent":null,"http_referer":null,"data_region":"global","workspace_id":null}}`...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
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
		MaxResults    int      `json:"max_results"`
		PDF           *struct {
			Engine string `json:"engine"`
		} `json:"pdf"`
	} `json:"plugins"`
	Reasoning *struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
	ReasoningEffort string   `json:"reasoning_effort"`
	Modalities      []string `json:"modalities"`
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
		switch p.ID {
		case "auto-router":
			req.AutoModels = p.AllowedModels
		case "web":
			req.Web, req.WebResults = true, p.MaxResults
		case "file-parser":
			req.FileParser = true
			if p.PDF != nil {
				req.PDFEngine = p.PDF.Engine
			}
		}
	}
	if strings.HasSuffix(req.Model, ":online") {
		req.Web = true
	}
	if req.Web && req.WebResults <= 0 {
		req.WebResults = 5
	}
	req.Effort = w.ReasoningEffort
	if w.Reasoning != nil && w.Reasoning.Effort != "" {
		req.Effort = w.Reasoning.Effort
	}
	req.Modalities = w.Modalities
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
				File *struct {
					Filename string `json:"filename"`
					FileData string `json:"file_data"`
				} `json:"file"`
				CacheControl *struct {
					Type string `json:"type"`
				} `json:"cache_control"`
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
				case "file":
					if p.File == nil || p.File.FileData == "" {
						return nil, fmt.Errorf("messages[%d].content: a file part needs file.file_data", i)
					}
					fp := bot.FilePart{Name: p.File.Filename, Data: p.File.FileData, Tokens: router.EstimateFileTokens(p.File.FileData)}
					cm.Files = append(cm.Files, fp)
					req.Files = append(req.Files, fp)
				}
				if p.CacheControl != nil {
					cm.Cache = true
					req.CacheMarks++
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
	// OpenRouter parses a PDF for a model that cannot read files, with
	// every file-parser engine but "native".
	if len(req.Files) > 0 && !model.Files() && (!req.FileParser || req.PDFEngine == "native") {
		sv.Status = http.StatusBadRequest
		writeError(w, http.StatusBadRequest, 400, model.ID+" does not support file input", nil)
		return
	}
	sv.Model = model.ID
	ans := newAnswer(model, req)
	if f != nil && f.Answer != "" {
		ans.setText(f.Answer, req.MaxTokens-ans.reasoningTokens)
		ans.completionTokens = ans.reasoningTokens + router.EstimateTokens(ans.text) + imageTokens*len(ans.images)
	}
	if f != nil && f.Refusal != "" {
		ans.text, ans.refusal = "", f.Refusal
		ans.completionTokens = ans.reasoningTokens + router.EstimateTokens(ans.refusal)
	}
	s.cache(model, req, ans)
	ans.price(model, req.WebResults)
	if len(req.Files) > 0 {
		engine := req.PDFEngine
		if !req.FileParser {
			engine = "native" // no plugin: the model reads the files itself
		}
		ans.addParseCost(router.PDFParseUSD(engine, model, req.Files))
	}
	sv.GenerationID = ans.id
	s.record(ans, req, model, ans.cost, true)
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
			s.billPartial(sv, model, ans, pieces, i, r)
			s.streamFault(w, r, ans, f, bp, send)
			return
		}
		if i == len(pieces) {
			break
		}
		d := delta{content: pieces[i].text}
		if pieces[i].reasoning {
			d = delta{reasoning: pieces[i].text}
		}
		b := appendChunk((*bp)[:0], ans, d)
		*bp = b
		at := time.Now()
		if !send(b) {
			return
		}
		if sv.FirstToken.IsZero() && !pieces[i].reasoning && pieces[i].text != "" {
			sv.FirstToken = at
		}
		if i == 0 && f != nil && f.Flood > 0 && !s.flood(ans, f, send) {
			return
		}
		if tps > 0 {
			if !s.wait(r, time.Duration(float64(time.Second)*float64(router.EstimateTokens(pieces[i].text))/tps)) {
				return
			}
		}
	}
	b := (*bp)[:0]
	if ans.refusal != "" {
		b = appendChunk(b, ans, delta{refusal: ans.refusal})
	}
	if len(ans.images) > 0 {
		b = appendChunk(b, ans, delta{images: ans.images})
	}
	b = appendChunk(b, ans, delta{finish: ans.finish, citations: ans.citations})
	b = append(b, "data: "...)
	b = appendUsage(b, ans)
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
	// A runaway upstream keeps no usable record of what it generated:
	// GET /generation does not know the call, and the client estimates.
	s.forget(ans.id)
	var b []byte
	if f.FloodEvent {
		line := "data: " + strings.Repeat("x", 4<<10-len("data: \n")) + "\n"
		b = []byte(strings.Repeat(line, 4))
	} else {
		b = appendChunk(nil, ans, delta{content: floodPiece})
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
			s.forget(ans.id)
			s.stall(r)
			return
		case f.MidStreamError:
			s.forget(ans.id)
			sv.Status = http.StatusBadGateway
			writeError(w, http.StatusBadGateway, 502, "Provider returned error", map[string]any{"provider_name": "Simulated"})
			return
		case f.Truncate, f.BadJSON:
			s.forget(ans.id)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"`+ans.id+`","choices":[{"message":{"content":"cut`)
			return
		}
	}
	text := ans.text
	b := append([]byte(nil), `{"id":"`...)
	_ = text
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
	b = appendMessageExtras(b, ans.reasoning, ans.refusal, ans.citations, ans.images, ans.reasoning != "")
	b = append(b, `}}],"usage":`...)
	b = appendUsageObject(b, ans)
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
