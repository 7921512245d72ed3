// Package router is orchat's way to the models: a plain net/http client for
// OpenRouter's OpenAI-compatible API (streaming with every quirk of the
// real wire format, /models, /key), the model catalog (persisted, refreshed,
// searchable), a local deterministic auto router that turns a prompt into a
// plan, and the fallback and compare logic that runs a plan.
//
// It imports only bot and the standard library. The package
// router/openroutertest is a fake OpenRouter for tests and offline runs.
package router

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/internal/tiermodel"
)

// Router plans, streams and compares model calls. It implements bot.Chat.
type Router struct {
	cfg     Config
	client  *Client
	catalog *Catalog
	log     *slog.Logger
	metrics bot.Metrics

	// defaultAutoModels: openrouter/auto's allowed models when none are
	// configured (every paid tier's candidates).
	defaultAutoModels []string
	warned            sync.Map // tier → struct{}: the missing-candidates warning was logged
	credits           atomic.Pointer[bot.Credits]

	// learner keeps the communities' ratings per tier (nil when the
	// router has no votes to learn from).
	learner *learner

	// model is the tier classifier (weights embedded at build time).
	model *tiermodel.Model
	// baseline, when set, classifies instead of the tier model: only the
	// evaluation sets it (export_test.go), to measure the first router's
	// keyword scan on the same prompts.
	baseline func(msgs []bot.ChatMessage, promptTokens, longTokens int) classification
}

var _ bot.Chat = (*Router)(nil)

// New returns a router for cfg over cat. A nil cat is created with
// NewCatalog(cfg) (loading Config.CatalogCache if it exists); call
// Catalog().Refresh to fetch the current model list.
func New(cfg Config, cat *Catalog) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	cfg = cfg.withDefaults()
	if cat == nil {
		cat = NewCatalog(cfg)
	}
	r := &Router{cfg: cfg, client: NewClient(cfg), catalog: cat, log: cfg.Logger, metrics: cfg.Metrics, model: tiermodel.Default(), learner: newLearner(cfg)}
	for _, t := range Tiers {
		if t == TierFree {
			continue
		}
		for _, id := range cfg.Tiers[t] {
			if !slices.Contains(r.defaultAutoModels, id) {
				r.defaultAutoModels = append(r.defaultAutoModels, id)
			}
		}
	}
	return r, nil
}

// Catalog returns the router's catalog.
func (r *Router) Catalog() *Catalog { return r.catalog }

// Client returns the router's upstream client.
func (r *Router) Client() *Client { return r.client }

// Config returns the configuration in force, defaults filled in.
func (r *Router) Config() Config { return r.cfg }

// warnTier logs, once per tier, that every configured candidate is gone.
func (r *Router) warnTier(tier, picked string) {
	if _, loaded := r.warned.LoadOrStore(tier, struct{}{}); !loaded {
		r.log.Warn("router: no configured candidate of the tier is usable; picking from the catalog (update router.tiers)",
			"tier", tier, "configured", r.cfg.Tiers[tier], "picked", picked)
	}
}

// UserHash returns what is sent as OpenRouter's `user` for an identity: a
// keyed hash, stable across restarts, that does not reveal the identity.
func (r *Router) UserHash(id bot.Identity) string {
	if id == "" {
		return ""
	}
	mac := hmac.New(sha256.New, []byte("orchat-user:"+r.cfg.UserSalt))
	mac.Write([]byte(id))
	return "u_" + hex.EncodeToString(mac.Sum(nil)[:16])
}

// maxModelsArray is how many ids OpenRouter accepts in `models`.
const maxModelsArray = 3

// Stream runs the plan: candidates in order until one answers. Before any
// text has reached onDelta, a retryable failure moves to the next
// candidate (after a short backoff that honours Retry-After up to
// MaxFallbackWait), and a last candidate that was rate-limited for less
// than that is tried once more; a call that had started generating is
// never sent again, and after text it never restarts: the partial text
// comes back with the error. Result.Err is the returned error.
func (r *Router) Stream(ctx context.Context, req bot.ChatRequest, onDelta func(delta string)) (bot.Result, error) {
	start := time.Now()
	plan := req.Plan
	var res bot.Result
	if plan.Model == "" || len(plan.Messages) == 0 {
		res.Err = bot.Errorf(bot.EINVALID, "Nothing to send: the plan has no model or no messages.")
		return res, res.Err
	}
	cands := plan.Candidates()
	user := r.UserHash(req.User)
	retriedLast := false
	for i := 0; i < len(cands); i++ {
		model := cands[i]
		res.Attempts = append(res.Attempts, model)
		creq := Request{
			Model:       model,
			Messages:    r.cacheBreakpoints(model, plan.Messages),
			MaxTokens:   plan.MaxTokens,
			SessionID:   req.SessionID,
			User:        user,
			Web:         plan.Web,
			WebResults:  plan.WebResults,
			Modalities:  plan.Modalities,
			OnReasoning: req.OnReasoning,
		}
		if m, err := r.catalog.Lookup(model); err == nil && m.Reasons() {
			creq.Reasoning = plan.Reasoning
		}
		if baseID(model) == AutoModel {
			creq.AutoModels = plan.AutoModels
		} else if rest := cands[i:]; len(rest) > 1 {
			creq.Models = rest[:min(len(rest), maxModelsArray)]
		}
		resp, err := r.client.Stream(ctx, creq, onDelta)
		r.metrics.Upstream(model, resp.Status, resp.TTFT, resp.Latency)
		var ue *UpstreamError
		if err == nil || resp.Text != "" || resp.Progressed || ctx.Err() != nil || !errors.As(err, &ue) || !ue.Retryable {
			return r.result(ctx, res, resp, model, plan, err, start)
		}
		wait := r.cfg.FallbackBackoff
		if ue.RetryAfter > wait {
			wait = min(ue.RetryAfter, r.cfg.MaxFallbackWait)
		}
		if i == len(cands)-1 {
			// The last candidate was rate-limited for a moment: wait as
			// asked (within the cap) and try it once more. Nothing was
			// generated, so nothing can be billed twice. The wait asked
			// for is compared uncapped: RetryAfter is capped at
			// MaxRetryAfter, which may be shorter than MaxFallbackWait.
			if retriedLast || ue.Status != http.StatusTooManyRequests || max(ue.RetryAfter, ue.waitFor) > r.cfg.MaxFallbackWait {
				return r.result(ctx, res, resp, model, plan, err, start)
			}
			retriedLast = true
			i-- // the same candidate again
		} else {
			r.metrics.Fallback(model, cands[i+1])
		}
		r.log.Info("router: retrying", "failed", model, "next", cands[i+1], "status", ue.Status, "code", ue.Code, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return r.result(ctx, res, resp, model, plan, canceled(ctx), start)
		}
	}
	panic("unreachable")
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// result fills in the result of the last attempt and what to charge: the
// reported usage priced by the model that answered; for a stream cut
// before its usage, what GET /generation says it cost (OpenRouter only,
// asked for a short while) or else an estimate from the prompt and what
// was received; never above the plan's hold; nothing when no output came.
func (r *Router) result(ctx context.Context, res bot.Result, resp Response, model string, plan bot.Plan, err error, start time.Time) (bot.Result, error) {
	res.Text = resp.Text
	res.Model = resp.Model
	if res.Model == "" {
		res.Model = model
	}
	res.Provider = resp.Provider
	res.GenerationID = resp.GenerationID
	res.FinishReason = resp.FinishReason
	res.Reasoning, res.ReasoningDetails, res.Refusal = resp.Reasoning, resp.ReasoningDetails, resp.Refusal
	res.Citations, res.Images = resp.Citations, resp.Images
	res.TTFT = resp.TTFT
	answered := r.pricedModel(res.Model, model, plan)
	switch {
	case resp.UsageReported:
		res.Usage = resp.Usage
		res.Cost = r.cfg.Billing.Charge(resp.Usage, answered)
		res.Settled = "usage"
	case resp.Progressed:
		if g, ok := r.generation(ctx, resp.GenerationID); ok {
			res.Usage = g
			res.Settled = "generation"
		} else {
			res.Usage = bot.Usage{
				PromptTokens:     int64(plan.PromptTokens),
				CompletionTokens: int64(EstimateTokens(resp.Text) + (resp.ReasoningBytes+bytesPerToken-1)/bytesPerToken + imageTokens*len(resp.Images)),
			}
			res.Estimated = true
			res.Settled = "estimate"
		}
		res.Cost = r.cfg.Billing.Charge(res.Usage, answered)
	}
	if plan.Cost > 0 && res.Cost > plan.Cost {
		res.Cost = plan.Cost
	}
	res.Latency = time.Since(start)
	if err != nil {
		err = fmt.Errorf("router: %s: %w", model, err)
		r.log.Debug("router: call failed", "model", model, "partial", resp.Text != "", "settled", res.Settled, "err", err)
	}
	res.Err = err
	return res, err
}

// imageTokens is what one generated image is billed as, about: the
// estimate of a cut image answer.
const imageTokens = 1300

// generation asks GET /generation what a cut stream cost, retrying for
// Config.GenerationRetry while OpenRouter has not recorded it yet. Only an
// OpenRouter upstream has the endpoint; ok is false when the answer is not
// known in time.
func (r *Router) generation(ctx context.Context, id string) (bot.Usage, bool) {
	if id == "" || !r.cfg.OpenRouterAPI() || r.cfg.GenerationRetry < 0 {
		return bot.Usage{}, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.GenerationRetry)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		g, err := r.client.Generation(ctx, id)
		if err == nil {
			u := bot.Usage{CostUSD: min(g.TotalCost, maxUsageUSD), CostReported: true, IsBYOK: g.IsBYOK}
			if g.TokensPrompt != nil {
				u.PromptTokens = clampCount(float64(*g.TokensPrompt))
			}
			if g.TokensCompletion != nil {
				u.CompletionTokens = clampCount(float64(*g.TokensCompletion))
			}
			if g.NativeReasoning != nil {
				u.ReasoningTokens = min(clampCount(float64(*g.NativeReasoning)), u.CompletionTokens)
			}
			if g.NativeCached != nil {
				u.CachedTokens = min(clampCount(float64(*g.NativeCached)), u.PromptTokens)
			}
			if g.IsBYOK && g.UpstreamCost != nil && validUSD(*g.UpstreamCost) {
				u.UpstreamCostUSD = min(*g.UpstreamCost, maxUsageUSD)
			}
			return u, true
		}
		var ue *UpstreamError
		if !errors.As(err, &ue) || (ue.Status != http.StatusNotFound && !ue.Retryable) {
			r.log.Debug("router: generation lookup failed", "generation", id, "err", err)
			return bot.Usage{}, false
		}
		if sleep(ctx, wait) != nil {
			return bot.Usage{}, false
		}
		wait = min(2*wait, time.Second)
	}
}

// cacheBreakpoints marks where a model with explicit prompt caching should
// cache: the system prompt, and the end of the earlier turns when they are
// long enough to be worth caching (1,024 tokens, the smallest cacheable
// prefix). Other models cache by themselves and get no marks.
func (r *Router) cacheBreakpoints(model string, msgs []bot.ChatMessage) []bot.ChatMessage {
	m, err := r.catalog.Lookup(model)
	if err != nil || !m.ExplicitCache() || len(msgs) < 2 {
		return msgs
	}
	out := slices.Clone(msgs)
	last := len(out) - 1 // the new message: not a cached prefix
	prefix := PromptOverheadTokens
	for _, msg := range out[:last] {
		prefix += EstimateMessage(msg)
	}
	if prefix < minCachePrefix {
		return msgs
	}
	if out[0].Role == bot.RoleSystem {
		out[0].Cache = true
	}
	if last-1 > 0 {
		out[last-1].Cache = true
	}
	return out
}

// minCachePrefix is the shortest prompt prefix worth a breakpoint.
const minCachePrefix = 1024

// pricedModel returns the catalog model to price a call by: the model that
// answered, else the candidate; for a router (whose price is "-1"), the
// dearest of its allowed models.
func (r *Router) pricedModel(answered, candidate string, plan bot.Plan) bot.Model {
	s := r.catalog.snap()
	m, err := s.lookup(answered)
	if err != nil {
		if m, err = s.lookup(candidate); err != nil {
			return bot.Model{ID: candidate}
		}
	}
	if !m.Router() {
		return m
	}
	var worst bot.Model
	for _, id := range plan.AutoModels {
		if a, err := s.lookup(id); err == nil && !a.Router() && priceKey(a) > priceKey(worst) {
			worst = a
		}
	}
	if worst.ID == "" {
		return m
	}
	return worst
}

// Compare runs 2-4 requests concurrently, each its own stream and result;
// onDelta gets the index of the request (calls are serialized). One
// failure never sinks the others; it returns when the slowest ends or ctx
// ends.
func (r *Router) Compare(ctx context.Context, reqs []bot.ChatRequest, onDelta func(i int, delta string)) []bot.Result {
	results := make([]bot.Result, len(reqs))
	if len(reqs) < 2 || len(reqs) > 4 {
		for i := range results {
			results[i].Err = bot.Errorf(bot.EINVALID, "A compare takes 2 to 4 models, not %d.", len(reqs))
		}
		return results
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			res, _ := r.Stream(ctx, req, func(d string) {
				if onDelta != nil {
					mu.Lock()
					defer mu.Unlock()
					onDelta(i, d)
				}
			})
			results[i] = res
		})
	}
	wg.Wait()
	return results
}
