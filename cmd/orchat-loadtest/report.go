package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// loadReport is what `orchat-loadtest` prints. The figures:
//
//   - requests: events sent (asks + compares); deliveries counts the
//     duplicates too, handler_runs how often the engine's handler ran.
//   - answers: requests that ended with a finished answer or compare;
//     clear_errors: requests that ended with a bot.Error the user can act
//     on (kind by code), an answer that broke off with a note after some
//     text ("broke_off"), or a compare whose every panel failed.
//   - unexplained_failures: everything else, which must be 0: an internal
//     error or panic, no final message or two of them, a hang, a platform
//     that refused a message or never delivered the event, an upstream
//     call outside any request, a compare panel's internal error.
//   - overhead_*_us (asks): wall time from the handler's start to the
//     return of the platform call that delivered the final message, minus
//     the upstream time the router saw: from its first upstream request
//     to the end of its last response body, so fallback waits (which
//     honour Retry-After) count as upstream time; minus, in process, the
//     simulated platform 429 waits after the upstream had finished. Edit
//     pacing before the final message is counted as bot time.
//     overhead_strict_*: the same with the upstream time taken from the
//     simulator (request arrival to last byte written), which also charges
//     the bot for the loopback HTTP hand-offs.
//   - compare_extra_ms_*: the same for compares: wall time minus the span
//     in which the compared models were at work (the slowest one's).
//   - wake_delay_*_us: how late a goroutine sleeping 1 ms at a time woke
//     during the run: the machine's scheduling delay, which every hand-off
//     of a request pays too.
//   - peak_rss_mb: VmHWM of the whole process (bot, simulator, fakes).
//   - ledger_ok: accounts Verify passes, no hold is left open, every
//     generation the upstream billed is charged exactly its bill and none
//     other is charged, no request that failed before any output was
//     charged, and every user's balance and charges add up with what the
//     answers told them.
//   - charged_tokens: the sum of the ledger's charge rows. billed_tokens:
//     the upstream's bill converted per generation with the bot's
//     bot.Billing (usage.cost sent, or for a stream cut before its usage the
//     cost of the output sent, partial_billed_tokens), summed.
type loadReport struct {
	Platform    string `json:"platform"`
	Users       int    `json:"users"`
	Requests    int    `json:"requests"`
	Asks        int    `json:"asks"`
	Compares    int    `json:"compares"`
	Deliveries  int    `json:"deliveries"`
	HandlerRuns int    `json:"handler_runs"`

	Answers            int            `json:"answers"`
	ClearErrors        int            `json:"clear_errors"`
	ClearErrorKinds    map[string]int `json:"clear_error_kinds"`
	ComparePanelErrors int            `json:"compare_panel_errors"`
	Unexplained        int            `json:"unexplained_failures"`
	UnexplainedSamples []string       `json:"unexplained,omitempty"`

	OverheadP50 int64 `json:"overhead_p50_us"`
	OverheadP95 int64 `json:"overhead_p95_us"`
	OverheadP99 int64 `json:"overhead_p99_us"`
	OverheadMax int64 `json:"overhead_max_us"`

	StrictP50 int64 `json:"overhead_strict_p50_us"`
	StrictP95 int64 `json:"overhead_strict_p95_us"`
	StrictP99 int64 `json:"overhead_strict_p99_us"`

	CompareExtraP50  float64 `json:"compare_extra_ms_p50"`
	CompareExtraP99  float64 `json:"compare_extra_ms_p99"`
	CompareExtraMax  float64 `json:"compare_extra_ms_max"`
	CompareStrictP99 float64 `json:"compare_extra_strict_ms_p99"`

	LatencyP50 float64 `json:"latency_ms_p50"`
	LatencyP99 float64 `json:"latency_ms_p99"`
	DurationS  float64 `json:"duration_s"`
	RPS        float64 `json:"requests_per_second"`

	WakeDelayP50 int64 `json:"wake_delay_p50_us"`
	WakeDelayP99 int64 `json:"wake_delay_p99_us"`
	WakeDelayMax int64 `json:"wake_delay_max_us"`

	PeakRSS      float64 `json:"peak_rss_mb"`
	PeakInFlight int64   `json:"peak_in_flight"`
	Goroutines   int     `json:"goroutines_after"`

	// The community in the mix: what its pool holds after the run, what
	// it gave members (allowance refills), how often the allowance job ran.
	Pool          int64 `json:"pool_tokens"`
	PoolGranted   int64 `json:"pool_granted_tokens"`
	AllowanceRuns int   `json:"allowance_runs"`
	// BudgetRefusals are the clear errors that were a daily budget's.
	BudgetRefusals int `json:"budget_refusals"`

	LedgerOK       bool     `json:"ledger_ok"`
	LedgerProblems []string `json:"ledger_problems,omitempty"`
	ChargedTokens  int64    `json:"charged_tokens"`
	BilledTokens   int64    `json:"billed_tokens"`
	PartialTokens  int64    `json:"partial_billed_tokens"`
	Charges        int      `json:"charges"`
	FailedCharged  int      `json:"failed_requests_charged"`
	OpenHolds      int      `json:"open_holds"`

	overheads []time.Duration // every ask's overhead, for BenchmarkEndToEnd
	visible   []time.Duration // every ask's first-visible-token delay

	// FirstVisible*: per ask, from the upstream's first token (the
	// simulator writing the first chunk of answer text) to the return of
	// the platform call that first showed answer text (a post, an edit,
	// a stream's start or append): what a member waits beyond the model.
	FirstVisibleN   int   `json:"first_visible_n"`
	FirstVisibleP50 int64 `json:"first_visible_p50_us"`
	FirstVisibleP99 int64 `json:"first_visible_p99_us"`
	FirstVisibleMax int64 `json:"first_visible_max_us"`

	Upstream loadUpstream   `json:"upstream"`
	Messages loadMessages   `json:"platform_messages"`
	Settings map[string]any `json:"settings"`
}

type loadUpstream struct {
	Requests   int64          `json:"requests"`
	Faults     int64          `json:"faults"`
	FaultKinds map[string]int `json:"fault_kinds"`
	BilledUSD  float64        `json:"billed_usd"`
	PartialUSD float64        `json:"partial_usd"`
}

type loadMessages struct {
	Posts        int `json:"posts"`
	Edits        int `json:"edits"`
	Edit429s     int `json:"edit_429s"`
	PlatformErrs int `json:"platform_errors"`
	// Platform429s counts the calls the platform fake answered with 429
	// (waited out by the adapter), every method.
	Platform429s int `json:"platform_429s"`
}

// firstVisible is the first-visible-token delay of an ask: from the first
// token of the upstream answer shown (the latest first token before the
// platform showed text, so a fallback's answer counts, not the failed
// try's) to when the platform showed it.
func firstVisible(served []servedRec, shown time.Time) (time.Duration, bool) {
	if shown.IsZero() {
		return 0, false
	}
	var first time.Time
	for _, s := range served {
		if !s.firstToken.IsZero() && !s.firstToken.After(shown) && s.firstToken.After(first) {
			first = s.firstToken
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return shown.Sub(first), true
}

// clean reports whether the run passes: no unexplained failure, a sound
// ledger, and every billed token charged exactly once.
func (r *loadReport) clean() bool {
	return r.Unexplained == 0 && r.LedgerOK && r.ChargedTokens == r.BilledTokens
}

// report checks every request, reconciles the ledger with the upstream's
// bill and measures.
func (lt *loadRun) report(ctx context.Context, elapsed time.Duration) (*loadReport, error) {
	o := lt.o
	rep := &loadReport{
		Platform: o.Platform, Users: o.Users, ClearErrorKinds: map[string]int{},
		Upstream:  loadUpstream{FaultKinds: map[string]int{}},
		DurationS: elapsed.Seconds(), PeakInFlight: lt.peak.Load(),
	}
	lt.mu.Lock()
	served := slices.Clone(lt.served)
	problems := slices.Clone(lt.problems)
	lt.mu.Unlock()
	unexplained := func(format string, args ...any) {
		rep.Unexplained++
		if len(rep.UnexplainedSamples) < 20 {
			rep.UnexplainedSamples = append(rep.UnexplainedSamples, fmt.Sprintf(format, args...))
		}
	}
	for _, p := range problems {
		unexplained("%s", p)
	}
	ledger := func(format string, args ...any) {
		if len(rep.LedgerProblems) < 20 {
			rep.LedgerProblems = append(rep.LedgerProblems, fmt.Sprintf(format, args...))
		}
	}

	// Upstream calls belong to the request of their user that was running
	// when they arrived: a user has one request in flight at a time.
	byHash := map[string]*loadUser{}
	for _, u := range lt.users {
		byHash[u.hash] = u
		sort.Slice(u.reqs, func(i, j int) bool { return u.reqs[i].n < u.reqs[j].n })
	}
	st := lt.sim.Stats()
	rep.Upstream.Requests, rep.Upstream.Faults = st.Requests, st.Faults
	rep.Upstream.BilledUSD, rep.Upstream.PartialUSD = st.BilledUSD, st.PartialUSD
	billed := map[string]int64{} // generation → tokens the upstream billed
	partial := map[string]bool{} // generation → billed as a cut stream
	for _, s := range served {
		if s.fault != "" {
			rep.Upstream.FaultKinds[s.fault]++
		}
		if s.gen != "" && (s.billed > 0 || s.partial > 0) {
			t := lt.billing.FromUSD(s.billed) + lt.billing.FromUSD(s.partial)
			billed[s.gen] += t
			rep.BilledTokens += t
			if s.partial > 0 {
				partial[s.gen] = true
				rep.PartialTokens += t
			}
		}
		u := byHash[s.user]
		if u == nil {
			ledger("an upstream call came from no load test user")
			continue
		}
		var owner *loadRequest
		for _, r := range u.reqs {
			if d := r.d; d != nil {
				d.mu.Lock()
				in := !s.start.Before(d.start) && !s.start.After(d.end)
				d.mu.Unlock()
				if in {
					owner = r
					break
				}
			}
		}
		if owner == nil {
			unexplained("%s: an upstream call at %s outside any of the user's requests", u.id, s.start.Format(time.StampMicro))
			continue
		}
		owner.served = append(owner.served, s)
	}

	// The ledger's side.
	charged := map[string]int64{} // generation → tokens charged
	var chargedBy = map[bot.Identity]int64{}
	err := lt.st.Store.EachCharge(ctx, func(e bot.Entry) error {
		rep.Charges++
		rep.ChargedTokens += -e.Amount
		chargedBy[e.Identity] += -e.Amount
		if e.GenerationID == "" {
			ledger("charge %d (%s, %d tokens) names no generation, so it matches no upstream bill", e.ID, e.Identity, -e.Amount)
			return nil
		}
		charged[e.GenerationID] += -e.Amount
		return nil
	})
	if err != nil {
		return nil, err
	}
	for gen, t := range billed {
		if c := charged[gen]; c != t {
			kind := "billed"
			if partial[gen] {
				kind = "billed for a cut stream"
			}
			ledger("generation %s: %s %d tokens, charged %d", gen, kind, t, c)
		}
	}
	for gen, c := range charged {
		if _, ok := billed[gen]; !ok {
			ledger("generation %s: charged %d tokens the upstream never billed", gen, c)
		}
	}
	vr, err := lt.st.Store.Verify(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range vr.Problems {
		ledger("verify: %s", p)
	}
	holds, held, err := lt.st.Store.OpenHolds(ctx)
	if err != nil {
		return nil, err
	}
	rep.OpenHolds = holds
	if holds > 0 {
		ledger("%d holds (%d tokens) are still open after every request ended", holds, held)
	}

	// The community's pool: what it gave each member, and that it gave
	// no more than it was funded with.
	granted, err := lt.st.Store.PoolGrants(ctx, lt.drv.community())
	if err != nil {
		return nil, err
	}
	pool, err := lt.st.Store.Pool(ctx, lt.drv.community())
	if err != nil {
		return nil, err
	}
	for _, g := range granted {
		rep.PoolGranted += g
	}
	rep.Pool, rep.AllowanceRuns = pool.Balance, int(lt.refills.Load())
	if pool.Funded != lt.o.Pool || pool.Balance != pool.Funded-rep.PoolGranted || pool.Balance < 0 {
		ledger("pool of %s: funded %d (want %d), holds %d, gave members %d", pool.Community, pool.Funded, lt.o.Pool, pool.Balance, rep.PoolGranted)
	}
	if n := lt.refillErrs.Load(); n > 0 {
		ledger("%d allowance runs failed", n)
	}

	// Every request.
	var overheads, strictOverheads, extras, extrasStrict, latencies, visible []time.Duration
	for _, u := range lt.users {
		var told int64
		for _, r := range u.reqs {
			rep.Requests++
			if r.compare {
				rep.Compares++
			} else {
				rep.Asks++
			}
			f, ok := lt.check(r, unexplained)
			if !ok {
				continue
			}
			told += f.final.charged
			switch {
			case f.final.kind == bot.KindError:
				rep.ClearErrors++
				rep.ClearErrorKinds[f.code]++
				if strings.Contains(f.final.text, "daily budget") {
					rep.BudgetRefusals++
				}
				var c int64
				for _, s := range r.served {
					c += charged[s.gen]
				}
				if c > 0 {
					rep.FailedCharged++
					ledger("%s: request %d failed before any answer (%q) and was charged %d tokens", u.id, r.n, f.final.text, c)
				}
			case f.final.partial:
				rep.ClearErrors++
				rep.ClearErrorKinds["broke_off"]++
			case f.final.kind == bot.KindCompare && f.final.panelsFailed == f.final.panels:
				rep.ClearErrors++
				rep.ClearErrorKinds["compare_all_failed"]++
			default:
				rep.Answers++
			}
			rep.ComparePanelErrors += f.final.panelsFailed
			for _, e := range f.final.panelErrors {
				if e == bot.InternalMessage {
					unexplained("%s: request %d: a compare panel failed with an internal error", u.id, r.n)
				}
			}
			n := 0
			for _, s := range r.served {
				if charged[s.gen] > 0 {
					n++
				}
			}
			if !r.compare && n > 1 {
				ledger("%s: request %d was charged for %d generations", u.id, r.n, n)
			}

			wall := f.at.Sub(r.d.start)
			latencies = append(latencies, wall)
			var seen, served []span
			for _, s := range r.served {
				served = append(served, span{s.start, s.end})
			}
			r.d.mu.Lock()
			seen = append(seen, r.d.calls...)
			r.d.mu.Unlock()
			over := max(wall-upstreamTime(seen, f.waits), 0)
			strict := max(wall-upstreamTime(served, f.waits), 0)
			if fv, ok := firstVisible(r.served, f.shown); ok && !r.compare {
				visible = append(visible, fv)
			}
			if r.compare {
				extras = append(extras, over)
				extrasStrict = append(extrasStrict, strict)
			} else {
				overheads = append(overheads, over)
				strictOverheads = append(strictOverheads, strict)
			}
		}
		if c := chargedBy[u.id]; c != told {
			ledger("%s: the ledger charged %d tokens, the answers told the user %d", u.id, c, told)
		}
		b, err := lt.st.Store.Balance(ctx, u.id)
		if err != nil {
			return nil, err
		}
		if want := lt.initial + granted[u.id] - chargedBy[u.id]; b.Balance != want || b.Held != 0 {
			ledger("%s: balance %d (held %d), want %d (start %d + from the pool %d − charges %d)", u.id, b.Balance, b.Held, want, lt.initial, granted[u.id], chargedBy[u.id])
		}
	}
	lt.mu.Lock()
	for _, d := range lt.deliveries {
		d.mu.Lock()
		rep.HandlerRuns += d.handled
		for _, o := range d.outs {
			o.mu.Lock()
			rep.Messages.Posts += o.posts
			rep.Messages.Edits += o.edits
			rep.Messages.Edit429s += o.throttled
			if o.perr != nil {
				rep.Messages.PlatformErrs++
			}
			o.mu.Unlock()
		}
		d.mu.Unlock()
	}
	lt.mu.Unlock()
	rep.Deliveries = rep.Requests * o.Duplicates
	rep.LedgerOK = len(rep.LedgerProblems) == 0 && rep.ChargedTokens == rep.BilledTokens
	if rep.ChargedTokens != rep.BilledTokens && len(rep.LedgerProblems) == 0 {
		rep.LedgerProblems = append(rep.LedgerProblems, fmt.Sprintf("charged %d tokens in all, billed %d", rep.ChargedTokens, rep.BilledTokens))
	}

	rep.overheads = overheads
	rep.visible = visible
	rep.FirstVisibleN = len(visible)
	rep.FirstVisibleP50 = percentile(visible, 0.50).Microseconds()
	rep.FirstVisibleP99 = percentile(visible, 0.99).Microseconds()
	rep.FirstVisibleMax = percentile(visible, 1).Microseconds()
	rep.Messages.Platform429s = lt.drv.rateLimited() + rep.Messages.Edit429s
	rep.OverheadP50 = percentile(overheads, 0.50).Microseconds()
	rep.OverheadP95 = percentile(overheads, 0.95).Microseconds()
	rep.OverheadP99 = percentile(overheads, 0.99).Microseconds()
	rep.OverheadMax = percentile(overheads, 1).Microseconds()
	rep.StrictP50 = percentile(strictOverheads, 0.50).Microseconds()
	rep.StrictP95 = percentile(strictOverheads, 0.95).Microseconds()
	rep.StrictP99 = percentile(strictOverheads, 0.99).Microseconds()
	rep.CompareStrictP99 = ms(percentile(extrasStrict, 0.99))
	rep.CompareExtraP50 = ms(percentile(extras, 0.50))
	rep.CompareExtraP99 = ms(percentile(extras, 0.99))
	rep.CompareExtraMax = ms(percentile(extras, 1))
	rep.LatencyP50 = ms(percentile(latencies, 0.50))
	rep.LatencyP99 = ms(percentile(latencies, 0.99))
	if elapsed > 0 {
		rep.RPS = math.Round(float64(rep.Requests)/elapsed.Seconds()*10) / 10
	}
	rep.WakeDelayP50 = percentile(lt.wake, 0.50).Microseconds()
	rep.WakeDelayP99 = percentile(lt.wake, 0.99).Microseconds()
	rep.WakeDelayMax = percentile(lt.wake, 1).Microseconds()
	rep.PeakRSS = peakRSSMB()
	rep.Goroutines = runtime.NumGoroutine()
	rep.Settings = lt.settings()
	return rep, nil
}

// checked is a request whose answer is complete.
type checked struct {
	final finalMsg
	at    time.Time // when the final message reached the platform
	shown time.Time // when the first answer text reached the platform
	waits []span    // simulated 429 waits of its output
	code  string    // the error code of a refusal
}

// check finds the one final message of a request, or reports why there is
// none.
func (lt *loadRun) check(r *loadRequest, unexplained func(string, ...any)) (checked, bool) {
	var c checked
	who := fmt.Sprintf("%s: request %d (%s)", r.user.id, r.n, r.eventID)
	if r.failed != "" {
		unexplained("%s: %s", who, r.failed)
		return c, false
	}
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handled == 0 {
		unexplained("%s: the platform never handed the event to the bot", who)
		return c, false
	}
	for _, p := range d.panics {
		unexplained("%s: panic: %s", who, p)
	}
	for _, err := range d.errs {
		c.code = bot.ErrorCode(err)
		if c.code == bot.EINTERNAL {
			unexplained("%s: internal error: %v", who, err)
			return c, false
		}
	}
	finals := 0
	for _, o := range d.outs {
		o.mu.Lock()
		finals += len(o.finals)
		if len(o.finals) > 0 {
			c.final, c.at, c.waits = o.final, o.finalAt, slices.Clone(o.waits)
		}
		if !o.firstShown.IsZero() && (c.shown.IsZero() || o.firstShown.Before(c.shown)) {
			c.shown = o.firstShown
		}
		if o.perr != nil {
			unexplained("%s: the platform refused a message: %v", who, o.perr)
		}
		o.mu.Unlock()
	}
	switch {
	case finals == 0:
		unexplained("%s: no final message (handled %d times, %d outputs)", who, d.handled, len(d.outs))
		return c, false
	case finals > 1:
		unexplained("%s: %d final messages: answered more than once", who, finals)
		return c, false
	case len(d.panics) > 0:
		return c, false
	}
	if c.final.kind == bot.KindError && c.code == "" {
		c.code = "error"
	}
	return c, true
}

// upstreamTime is the time a request waited on the upstream: from the
// start of its first upstream call to the end of its last one (so the
// router's backoff between fallbacks, which honours Retry-After, counts
// as upstream time), plus the simulated platform 429 waits that fell
// after the upstream had finished.
func upstreamTime(calls, waits []span) time.Duration {
	var from, to time.Time
	for _, c := range calls {
		if from.IsZero() || c.from.Before(from) {
			from = c.from
		}
		if c.to.After(to) {
			to = c.to
		}
	}
	d := to.Sub(from)
	for _, w := range waits {
		start := w.from
		if start.Before(to) {
			start = to
		}
		if w.to.After(start) {
			d += w.to.Sub(start)
		}
	}
	return d
}

// percentile is the nearest-rank percentile of ds (p = 1: the maximum).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// peakRSSMB is the process's peak resident set (VmHWM), in MB; where
// /proc is missing, what the Go runtime got from the system.
func peakRSSMB() float64 {
	if kb := procStatusKB("VmHWM"); kb > 0 {
		return math.Round(float64(kb)/1024*10) / 10
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return math.Round(float64(ms.Sys)/(1<<20)*10) / 10
}

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status.
func procStatusKB(name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// settings are the knobs of the run, as the report shows them.
func (lt *loadRun) settings() map[string]any {
	o, c := lt.o, lt.m.Config
	return map[string]any{
		"requests_flag": o.Requests, "duration": o.Duration.String(), "compare_share": o.CompareShare,
		"compare_models": c.Compare.Models, "duplicates": o.Duplicates,
		"latency_ms": o.Latency.Milliseconds(), "tokens_per_second": o.TokensPerSecond,
		"fail_rate": o.FailRate, "seed": o.Seed, "max_tokens": o.MaxTokens,
		"idle_timeout_ms": o.IdleTimeout.Milliseconds(), "max_retry_after_ms": c.OpenRouter.MaxRetryAfter.Milliseconds(),
		"edit_interval_ms": float64(o.EditInterval.Microseconds()) / 1000, "edit_429_rate": o.Edit429Rate, "edit_429_wait_ms": o.Edit429Wait.Milliseconds(),
		"db_delay_ms": float64(o.DBDelay.Microseconds()) / 1000, "db": c.Accounts.Database,
		"ramp": o.Ramp.String(), "think": o.Think.String(),
		"signup_bonus": c.Accounts.SignupBonus, "topup": o.TopUp, "rate_limit_per_minute": c.Bot.RateLimitPerMinute,
		"pool": o.Pool, "allowance": o.Allowance, "allowance_tick": o.AllowanceTick.String(), "budget": o.Budget, "member_budget": o.MemberBudget,
		"billing":    fmt.Sprintf("%s, %g USD per token", lt.billing.Mode, lt.billing.USDPerToken),
		"gomaxprocs": runtime.GOMAXPROCS(0),
	}
}

// print writes the report for people.
func (r *loadReport) print(w io.Writer) {
	printf(w, "orchat-loadtest: %d users, %d requests (%d asks, %d compares) on %s in %.1fs (%.1f/s)", r.Users, r.Requests, r.Asks, r.Compares, r.Platform, r.DurationS, r.RPS)
	printf(w, "  answers %d, clear errors %d %v, unexplained failures %d", r.Answers, r.ClearErrors, r.ClearErrorKinds, r.Unexplained)
	for _, s := range r.UnexplainedSamples {
		printf(w, "    %s", s)
	}
	printf(w, "  overhead p50 %dµs, p95 %dµs, p99 %dµs, max %dµs (strict: p50 %dµs, p99 %dµs); compare extra p99 %.2fms", r.OverheadP50, r.OverheadP95, r.OverheadP99, r.OverheadMax, r.StrictP50, r.StrictP99, r.CompareExtraP99)
	printf(w, "  first visible token p50 %dµs, p99 %dµs, max %dµs (%d asks); platform 429s %d", r.FirstVisibleP50, r.FirstVisibleP99, r.FirstVisibleMax, r.FirstVisibleN, r.Messages.Platform429s)
	printf(w, "  wake delay p99 %dµs, max %dµs", r.WakeDelayP99, r.WakeDelayMax)
	printf(w, "  upstream: %d calls, %d faults %v", r.Upstream.Requests, r.Upstream.Faults, r.Upstream.FaultKinds)
	printf(w, "  ledger ok %v: charged %d tokens in %d charges, billed %d (%d of them for cut streams), %d open holds", r.LedgerOK, r.ChargedTokens, r.Charges, r.BilledTokens, r.PartialTokens, r.OpenHolds)
	for _, p := range r.LedgerProblems {
		printf(w, "    %s", p)
	}
	printf(w, "  community: pool holds %d tokens after giving members %d in %d allowance runs; %d requests refused by a daily budget", r.Pool, r.PoolGranted, r.AllowanceRuns, r.BudgetRefusals)
	printf(w, "  peak RSS %.1f MB, peak in flight %d", r.PeakRSS, r.PeakInFlight)
}
