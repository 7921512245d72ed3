package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/bot"
)

// Routing suffixes a user may add to a model id: validated against the
// base id, sent as given.
var routingSuffixes = []string{":nitro", ":floor", ":online", ":thinking", ":exacto"}

// DefaultContextLength is assumed for a model whose catalog entry gives no
// context length (OpenAI-compatible servers other than OpenRouter).
const DefaultContextLength = 32_768

// webResultUSD is what one result of OpenRouter's search engine costs
// (4 USD per 1,000 results); models with native search list their own
// price per search (pricing.web_search).
const webResultUSD = 0.004

// WebSearchUSD is what a web search adds to a call on m with at most
// results results: the model's native search price, else the engine's
// price per result. Holds include it.
func WebSearchUSD(m bot.Model, results int) float64 {
	if m.WebSearchPrice > 0 {
		return m.WebSearchPrice
	}
	return webResultUSD * float64(max(results, 1))
}

// Catalog is the list of models the bot can call. It implements
// bot.Catalog. Reads are lock-free and safe during a refresh: a refresh
// builds a new snapshot and swaps a pointer.
type Catalog struct {
	cfg    Config
	client *Client
	log    *slog.Logger
	cur    atomic.Pointer[snapshot]
	mu     sync.Mutex // serializes refreshes and cache writes
}

var _ bot.Catalog = (*Catalog)(nil)

// snapshot is one immutable version of the catalog.
type snapshot struct {
	models  []bot.Model // sorted by id
	byID    map[string]int
	lowerID []string // lower-cased ids, for search and suggestions
	lowerNm []string
	loaded  time.Time
	source  string
}

// NewCatalog returns a catalog for cfg. When cfg.CatalogCache names a file
// that holds a valid catalog, it is loaded at once, so the bot starts
// instantly and survives an OpenRouter outage; call Refresh to fetch the
// current list.
func NewCatalog(cfg Config) *Catalog {
	cfg = cfg.withDefaults()
	c := &Catalog{cfg: cfg, client: NewClient(cfg), log: cfg.Logger}
	if cfg.CatalogCache != "" {
		if err := c.LoadFile(cfg.CatalogCache); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("router: ignoring the cached catalog", "path", cfg.CatalogCache, "err", err)
		}
	}
	return c
}

// Refresh fetches GET /models and, when the answer is a valid catalog,
// swaps it in and persists it to Config.CatalogCache. On any failure the
// last good catalog stays in place.
func (c *Catalog) Refresh(ctx context.Context) error {
	b, err := c.client.Models(ctx)
	if err != nil {
		return fmt.Errorf("router: refresh catalog: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	snap, err := parseSnapshot(b, c.log)
	if err != nil {
		return fmt.Errorf("router: refresh catalog: %w", err)
	}
	snap.loaded, snap.source = c.cfg.Now(), c.cfg.BaseURL+"/models"
	c.cur.Store(snap)
	if c.cfg.CatalogCache != "" {
		if err := writeFileAtomic(c.cfg.CatalogCache, b); err != nil {
			return fmt.Errorf("router: persist catalog: %w", err)
		}
	}
	return nil
}

// LoadFile loads a catalog saved from GET /models (orchat route --catalog).
// An invalid file leaves the current catalog in place.
func (c *Catalog) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("router: load catalog: %w", err)
	}
	if err := c.load(b, path); err != nil {
		return fmt.Errorf("router: load catalog %s: %w", path, err)
	}
	return nil
}

// Load replaces the catalog with the body of a GET /models answer. An
// invalid body leaves the current catalog in place.
func (c *Catalog) Load(body []byte) error { return c.load(body, "memory") }

func (c *Catalog) load(body []byte, source string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap, err := parseSnapshot(body, c.log)
	if err != nil {
		return err
	}
	snap.loaded, snap.source = c.cfg.Now(), source
	c.cur.Store(snap)
	return nil
}

// Source says where the current catalog came from: the /models URL, a
// file path, or "memory".
func (c *Catalog) Source() string {
	if s := c.cur.Load(); s != nil {
		return s.source
	}
	return ""
}

// UpdatedAt returns when the current catalog was loaded (zero before).
func (c *Catalog) UpdatedAt() time.Time {
	if s := c.cur.Load(); s != nil {
		return s.loaded
	}
	return time.Time{}
}

// Len returns how many models the catalog holds.
func (c *Catalog) Len() int {
	if s := c.cur.Load(); s != nil {
		return len(s.models)
	}
	return 0
}

// Models returns every model, sorted by id. The slice is a copy.
func (c *Catalog) Models() []bot.Model {
	s := c.cur.Load()
	if s == nil {
		return nil
	}
	return slices.Clone(s.models)
}

func (c *Catalog) snap() *snapshot {
	if s := c.cur.Load(); s != nil {
		return s
	}
	return &snapshot{byID: map[string]int{}}
}

// Lookup returns the model for id. A routing suffix (:nitro, :floor,
// :online, :thinking, :exacto) is validated against the base id and kept:
// the returned model's ID is id as given. ":free" variants are catalog
// entries of their own. ENOTFOUND, with the closest ids, for unknown ids.
func (c *Catalog) Lookup(id string) (bot.Model, error) {
	return c.snap().lookup(id)
}

func (s *snapshot) lookup(id string) (bot.Model, error) {
	id = strings.TrimSpace(id)
	if i, ok := s.byID[id]; ok {
		return s.models[i], nil
	}
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		suffix := id[i:]
		if slices.Contains(routingSuffixes, suffix) {
			if j, ok := s.byID[id[:i]]; ok {
				m := s.models[j]
				m.ID = id
				if suffix == ":online" && !m.Router() {
					m.RequestPrice += WebSearchUSD(m, 5)
				}
				return m, nil
			}
		}
	}
	if len(s.models) == 0 {
		return bot.Model{}, bot.Errorf(bot.EUNAVAILABLE, "The model list is not loaded yet; please try again in a minute.")
	}
	return bot.Model{}, bot.Errorf(bot.ENOTFOUND, "%s", s.unknownMessage(id))
}

func (s *snapshot) unknownMessage(id string) string {
	shown := id
	if r := []rune(shown); len(r) > 60 {
		shown = string(r[:60]) + "…"
	}
	sugg := s.suggest(id, 3)
	switch len(sugg) {
	case 0:
		return fmt.Sprintf("Unknown model %q. Try /models.", shown)
	case 1:
		return fmt.Sprintf("Unknown model %q. Did you mean %s? Try /models.", shown, sugg[0])
	default:
		return fmt.Sprintf("Unknown model %q. Did you mean %s or %s? Try /models.", shown, strings.Join(sugg[:len(sugg)-1], ", "), sugg[len(sugg)-1])
	}
}

// Suggest returns up to n catalog ids closest to id: ids containing it (or
// its part after the slash) first, then by edit distance on the id, its
// model part and the display name.
func (c *Catalog) Suggest(id string, n int) []string { return c.snap().suggest(id, n) }

func (s *snapshot) suggest(id string, n int) []string {
	q := strings.ToLower(strings.TrimSpace(id))
	if q == "" || n <= 0 {
		return nil
	}
	if len(q) > 100 {
		q = q[:100]
	}
	_, qModel, hasSlash := strings.Cut(q, "/")
	if !hasSlash {
		qModel = q
	}
	type scored struct {
		i     int
		score int
	}
	best := make([]scored, 0, len(s.models))
	for i, lid := range s.lowerID {
		_, mPart, _ := strings.Cut(lid, "/")
		var sc int
		switch {
		case strings.Contains(lid, q):
			sc = len(lid) - len(q) // closer in length is better
		case len(qModel) >= 3 && strings.Contains(mPart, qModel):
			sc = 50 + len(mPart) - len(qModel)
		default:
			d := min(bot.EditDistance(q, lid), bot.EditDistance(qModel, mPart)+2, bot.EditDistance(q, s.lowerNm[i])+1)
			sc = 1000 + d*10
			// Too far to be a plausible typo.
			if d > max(3, len(qModel)/2) {
				continue
			}
		}
		best = append(best, scored{i, sc})
	}
	slices.SortFunc(best, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(s.models[a.i].ID, s.models[b.i].ID))
	})
	out := make([]string, 0, n)
	for _, b := range best {
		if len(out) == n {
			break
		}
		out = append(out, s.models[b.i].ID)
	}
	return out
}

// Search returns the models matching q. With text, the best matches come
// first (id, then name, then description), cheaper before dearer; without
// text, models are listed by id.
func (c *Catalog) Search(q bot.ModelQuery) []bot.Model {
	s := c.snap()
	text := strings.ToLower(strings.TrimSpace(q.Text))
	type hit struct {
		m     *bot.Model
		score int
	}
	var hits []hit
	for i := range s.models {
		m := &s.models[i]
		if q.Free && !m.Free() || q.Vision && !m.Vision() || q.Tools && !m.Tools() || q.ImageOutput && !m.ImageOutput() {
			continue
		}
		if q.MaxPromptPrice > 0 && (m.Router() || m.PromptPrice > q.MaxPromptPrice) {
			continue
		}
		score := 0
		if text != "" {
			switch id := s.lowerID[i]; {
			case id == text:
				score = 0
			case strings.HasPrefix(id, text):
				score = 1
			case strings.Contains(id, text):
				score = 2
			case strings.Contains(s.lowerNm[i], text):
				score = 3
			case strings.Contains(strings.ToLower(m.Description), text):
				score = 4
			default:
				continue
			}
		}
		hits = append(hits, hit{m, score})
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if text == "" {
			return strings.Compare(a.m.ID, b.m.ID)
		}
		return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(priceKey(*a.m), priceKey(*b.m)), strings.Compare(a.m.ID, b.m.ID))
	})
	if q.Limit > 0 && len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	out := make([]bot.Model, len(hits))
	for i, h := range hits {
		out[i] = *h.m
	}
	return out
}

// priceKey orders models by what a typical call costs (three prompt tokens
// per completion token); routers ("varies") sort last.
func priceKey(m bot.Model) float64 {
	if m.Router() {
		return 1e9
	}
	return 3*m.PromptPrice + m.CompletionPrice
}

// PricePerMillion returns a model's prompt and completion prices in USD per
// million tokens, as the catalog lists them (negative: varies).
func PricePerMillion(m bot.Model) (prompt, completion float64) {
	return m.PromptPrice * 1e6, m.CompletionPrice * 1e6
}

// PriceInTokens returns what a million prompt and a million completion
// tokens of m cost in balance tokens under b (DESIGN.md "Unit"); -1 for a
// router whose price varies.
func PriceInTokens(b bot.Billing, m bot.Model) (prompt, completion int64) {
	if m.Router() {
		return -1, -1
	}
	if b.Mode == bot.BillingRaw {
		if m.Free() {
			return 0, 0
		}
		return 1_000_000, 1_000_000
	}
	return b.Estimate(m, 1_000_000, 0) - b.Estimate(m, 0, 0), b.Estimate(m, 0, 1_000_000) - b.Estimate(m, 0, 0)
}

// wireModel is one entry of GET /models.
type wireModel struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	Created       int64  `json:"created"`
	ContextLength *int   `json:"context_length"`
	Architecture  struct {
		InputModalities  []string `json:"input_modalities"`
		OutputModalities []string `json:"output_modalities"`
	} `json:"architecture"`
	Pricing     map[string]json.RawMessage `json:"pricing"`
	TopProvider *struct {
		ContextLength       *int `json:"context_length"`
		MaxCompletionTokens *int `json:"max_completion_tokens"`
	} `json:"top_provider"`
	SupportedParameters []string `json:"supported_parameters"`
}

// ParseModels parses the body of GET /models into models sorted by id. It
// refuses a body that is not JSON, lacks `data`, holds no models or a model
// without an id; a model with an unreadable price is skipped.
func ParseModels(body []byte) ([]bot.Model, error) {
	s, err := parseSnapshot(body, nil)
	if err != nil {
		return nil, err
	}
	return s.models, nil
}

func parseSnapshot(body []byte, log *slog.Logger) (*snapshot, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, bot.Errorf(bot.EINVALID, "the catalog is empty")
	}
	if body[0] == '<' {
		return nil, bot.Errorf(bot.EINVALID, "the catalog is an HTML page, not the JSON of GET /models")
	}
	var w struct {
		Data *[]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, bot.Errorf(bot.EINVALID, "the catalog is not JSON: %v", err)
	}
	if w.Data == nil {
		return nil, bot.Errorf(bot.EINVALID, `the catalog has no "data" list (expected the JSON of GET /models)`)
	}
	if len(*w.Data) == 0 {
		return nil, bot.Errorf(bot.EINVALID, "the catalog lists no models")
	}
	s := &snapshot{byID: make(map[string]int, len(*w.Data))}
	for i, raw := range *w.Data {
		var wm wireModel
		if err := json.Unmarshal(raw, &wm); err != nil {
			return nil, bot.Errorf(bot.EINVALID, "catalog model #%d is not a model object: %v", i+1, err)
		}
		if strings.TrimSpace(wm.ID) == "" {
			return nil, bot.Errorf(bot.EINVALID, "catalog model #%d has no id", i+1)
		}
		m, err := wm.model()
		if err != nil {
			if log != nil {
				log.Warn("router: skipping a catalog model", "model", wm.ID, "err", err)
			}
			continue
		}
		if _, dup := s.byID[m.ID]; dup {
			continue
		}
		s.byID[m.ID] = len(s.models)
		s.models = append(s.models, m)
	}
	if len(s.models) == 0 {
		return nil, bot.Errorf(bot.EINVALID, "the catalog lists no usable models")
	}
	slices.SortFunc(s.models, func(a, b bot.Model) int { return strings.Compare(a.ID, b.ID) })
	s.lowerID = make([]string, len(s.models))
	s.lowerNm = make([]string, len(s.models))
	for i, m := range s.models {
		s.byID[m.ID] = i
		s.lowerID[i] = strings.ToLower(m.ID)
		s.lowerNm[i] = strings.ToLower(m.Name)
	}
	return s, nil
}

// controlRune reports whether r acts on a terminal instead of showing
// (C0 but newline and tab, DEL, C1) or reorders text (a bidi override).
func controlRune(r rune) bool {
	return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || bot.IsBidiOverride(r)
}

// printable drops the control characters of a catalog's text: a name or
// description from the upstream reaches terminals (orchat models) and
// every platform.
func printable(s string) string {
	if !strings.ContainsFunc(s, controlRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if controlRune(r) {
			return -1
		}
		return r
	}, s)
}

func (wm *wireModel) model() (bot.Model, error) {
	if strings.ContainsFunc(wm.ID, controlRune) || strings.ContainsAny(wm.ID, " \n\t") {
		return bot.Model{}, fmt.Errorf("the id %q holds spaces or control characters", wm.ID)
	}
	m := bot.Model{
		ID:                  wm.ID,
		Name:                printable(wm.Name),
		Description:         printable(wm.Description),
		InputModalities:     wm.Architecture.InputModalities,
		OutputModalities:    wm.Architecture.OutputModalities,
		SupportedParameters: wm.SupportedParameters,
	}
	if m.Name == "" {
		m.Name = m.ID
	}
	if len(m.InputModalities) == 0 {
		m.InputModalities = []string{"text"}
	}
	if len(m.OutputModalities) == 0 {
		m.OutputModalities = []string{"text"}
	}
	if wm.Created > 0 {
		m.Created = time.Unix(wm.Created, 0).UTC()
	}
	if wm.ContextLength != nil {
		m.ContextLength = *wm.ContextLength
	}
	if tp := wm.TopProvider; tp != nil {
		if m.ContextLength <= 0 && tp.ContextLength != nil {
			m.ContextLength = *tp.ContextLength
		}
		if tp.MaxCompletionTokens != nil && *tp.MaxCompletionTokens > 0 {
			m.MaxCompletionTokens = *tp.MaxCompletionTokens
		}
	}
	if m.ContextLength <= 0 {
		// Other OpenAI-compatible servers do not say; assume a common size.
		m.ContextLength = DefaultContextLength
	}
	var err error
	price := func(key string) float64 {
		raw, ok := wm.Pricing[key]
		if !ok || err != nil {
			return 0 // a missing price is zero
		}
		v, perr := parsePrice(raw)
		if perr != nil {
			err = fmt.Errorf("pricing.%s: %w", key, perr)
		}
		return v
	}
	m.PromptPrice = price("prompt")
	m.CompletionPrice = price("completion")
	m.RequestPrice = price("request")
	m.ImagePrice = price("image")
	m.WebSearchPrice = price("web_search")
	m.CacheReadPrice = price("input_cache_read")
	m.CacheWritePrice = price("input_cache_write")
	if m.Router() {
		// "-1" means varies: keep the sentinel on both so nothing prices
		// from it by accident.
		m.PromptPrice, m.CompletionPrice = -1, -1
	}
	return m, err
}

// parsePrice reads a price: a string of a decimal number (as OpenRouter
// sends them), a bare number, or null (zero).
func parsePrice(raw json.RawMessage) (float64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a price", s)
	}
	if v != v || v > 1e6 || (v < 0 && v != -1) {
		return 0, fmt.Errorf("%q is not a price", s)
	}
	return v, nil
}

// writeFileAtomic writes b to a temporary file beside path and renames it
// over path, so a crash never leaves half a catalog.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
