package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/scheduler"
	"github.com/orchat/orchat/stack"
)

// loadAPIKey is the key the load test's bot sends and its simulator
// requires, so the upstream's authentication is part of the path.
const loadAPIKey = "sk-or-v1-loadtest-not-a-real-key"

// loadRun is one load test in progress: the wired bot, the simulator in
// front of it, the platform that delivers the users' events, and what
// every request and every upstream call did.
type loadRun struct {
	m       *Main
	o       loadOptions
	st      *stack.Stack
	sim     *openroutertest.Server
	billing bot.Billing
	drv     loadDriver
	users   []*loadUser
	initial int64 // every user's balance before the run

	mu         sync.Mutex
	deliveries map[string]*delivery // by event id
	served     []servedRec
	problems   []string // failures no single request explains (a fake's complaint)

	wake []time.Duration // how late a sleeping goroutine woke, during the run

	// The community in the mix: its allowance refills run by the
	// scheduler on a clock that moves a period at a time during the run.
	sched      *scheduler.Scheduler
	clock      *clockwork.FakeClock
	refills    atomic.Int64 // allowance runs that ended
	refillErrs atomic.Int64

	stopOnce sync.Once

	next     atomic.Int64 // the last request number handed out
	inflight atomic.Int64
	peak     atomic.Int64
}

// loadDriver delivers the users' requests through a platform.
type loadDriver interface {
	// newUsers creates n users on the platform.
	newUsers(n int) []*loadUser
	// submit delivers r's event (o.Duplicates times) and returns its
	// event id as the engine sees it. The in-process driver returns once
	// the event is handled, the platforms once it is delivered.
	submit(ctx context.Context, r *loadRequest) (string, error)
	// stop shuts the platform adapter down, letting answers in flight end.
	stop(ctx context.Context)
	// community is where the users talk: the community whose pool,
	// allowance and budgets are in the mix.
	community() string
	// rateLimited counts the calls the platform answered with 429.
	rateLimited() int
}

// loadUser is one simulated person.
type loadUser struct {
	id    bot.Identity
	name  string
	hash  string // the `user` the router sends upstream for id
	ref   string // the platform's user id
	dcRef any    // the discordtest.User, for the Discord driver
	reqs  []*loadRequest
}

// loadRequest is one request a user made.
type loadRequest struct {
	n       int
	user    *loadUser
	compare bool
	prompt  string
	eventID string
	d       *delivery
	failed  string // why the request was not delivered, or hung
	served  []servedRec
}

// servedRec is what the simulator told about one upstream call.
type servedRec struct {
	user       string
	start, end time.Time
	status     int
	fault      string
	gen        string
	billed     float64
	partial    float64
	firstToken time.Time // the upstream's first answer text (zero: none)
}

// runLoad wires the bot as `orchat run` does (stack.Open, from the config
// with the load test's changes), runs the users and checks the outcome.
func runLoad(ctx context.Context, m *Main, o loadOptions) (*loadReport, error) {
	lt, err := newLoadRun(ctx, m, o)
	if err != nil {
		return nil, err
	}
	defer lt.stop()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	elapsed := lt.drive(ctx)
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return nil, err
		}
	}
	return lt.finish(ctx, elapsed)
}

// writeHeapProfile writes the allocation profile (in use and since the
// start) to file.
func writeHeapProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// newLoadRun starts the simulator, wires the bot and its platform, and
// creates and funds the users.
func newLoadRun(ctx context.Context, m *Main, o loadOptions) (*loadRun, error) {
	lt := &loadRun{m: m, o: o, deliveries: map[string]*delivery{}}
	c := &m.Config
	c.Log.Level = o.LogLevel
	c.Admins = nil
	c.Accounts.LowBalance = 0
	c.Bot.RateLimitPerMinute = 0 // users send as fast as they are answered
	c.Stream.EditInterval.Duration = o.EditInterval
	c.Router.MaxTokens = o.MaxTokens
	c.Router.MinCompletionTokens = min(c.Router.MinCompletionTokens, o.MaxTokens)
	c.Compare.MaxTokens = o.MaxTokens
	if len(o.Compare) >= 2 {
		c.Compare.Models = o.Compare
	}
	c.OpenRouter.IdleTimeout.Duration = o.IdleTimeout
	if o.MaxRetryAfter > 0 {
		c.OpenRouter.MaxRetryAfter.Duration = o.MaxRetryAfter
	}
	c.OpenRouter.APIKey = loadAPIKey
	deps := m.deps()
	if o.DBDelay > 0 {
		deps.Hooks.BeforeCommit = func() { fsyncDelay(o.DBDelay) }
	}
	deps.HTTPClient = &http.Client{Transport: &timedTransport{base: upstreamTransport(c.OpenRouter.ConnectTimeout.Duration)}}

	sim, err := openroutertest.Start(openroutertest.Options{
		Latency: o.Latency, TokensPerSecond: o.TokensPerSecond, FailRate: o.FailRate, Seed: o.Seed,
		APIKey: loadAPIKey, OnServed: lt.onServed,
	})
	if err != nil {
		return nil, fmt.Errorf("start the simulator: %w", err)
	}
	m.onClose(func() error { sim.Close(); return nil })
	lt.sim = sim
	c.OpenRouter.BaseURL, c.OpenRouter.API = sim.URL(), "openrouter"
	if lt.st, err = stack.Open(ctx, c.Stack(), deps); err != nil {
		return nil, err
	}
	m.onClose(lt.st.Close)
	lt.billing = lt.st.Router.Config().Billing
	switch o.Platform {
	case "discord":
		lt.drv, err = newDiscordDriver(lt)
	case "slack":
		lt.drv, err = newSlackDriver(lt)
	default:
		lt.drv = &inProcess{lt: lt}
	}
	if err != nil {
		return nil, err
	}
	lt.users = lt.drv.newUsers(o.Users)
	if err := lt.fund(ctx); err != nil {
		lt.stop()
		return nil, err
	}
	if err := lt.community(ctx); err != nil {
		lt.stop()
		return nil, err
	}
	return lt, nil
}

// loadAdmin runs the load test's community.
const loadAdmin bot.Identity = "console:loadtest-admin"

// community puts a community in the mix, as its admins would set it up:
// the host funds its pool, its admins set an allowance and daily budgets,
// every user is a member, and the scheduler's allowance job runs on a
// clock that moves one period each --allowance-tick of the run.
func (lt *loadRun) community(ctx context.Context) error {
	o := lt.o
	c := lt.drv.community()
	if o.Pool > 0 {
		if _, _, err := lt.st.Store.FundPool(ctx, bot.PoolAdjustment{Community: c, Amount: o.Pool, Key: "loadtest:pool", Actor: loadAdmin, Note: "orchat-loadtest"}); err != nil {
			return fmt.Errorf("loadtest: fund the pool: %w", err)
		}
	}
	set := func(key, value string) error {
		if value == "" {
			return nil
		}
		_, _, err := lt.st.Communities.Set(ctx, bot.SettingUpdate{Community: c, Key: key, Value: value, Actor: loadAdmin})
		return err
	}
	var allowance string
	if o.Allowance > 0 {
		allowance = bot.Allowance{Amount: o.Allowance, Every: time.Hour}.String()
	}
	for _, kv := range [][2]string{
		{bot.SettingAllowance, allowance},
		{bot.SettingBudgetDaily, tokensSetting(o.Budget)},
		{bot.SettingBudgetMemberDaily, tokensSetting(o.MemberBudget)},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return fmt.Errorf("loadtest: set %s: %w", kv[0], err)
		}
	}
	for _, u := range lt.users {
		if err := lt.st.Store.NoteMember(ctx, c, u.id); err != nil {
			return fmt.Errorf("loadtest: note the members: %w", err)
		}
	}
	if o.Allowance == 0 {
		return nil
	}
	lt.clock = clockwork.NewFakeClock()
	var err error
	lt.sched, err = scheduler.New(scheduler.Options{
		Clock: lt.clock, Allowances: lt.st.Store, AllowanceEvery: time.Hour,
		Logger: lt.m.logger().With("component", "scheduler"), Metrics: refillCounter{lt: lt},
	})
	if err != nil {
		return err
	}
	lt.sched.Start()
	return nil
}

func tokensSetting(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// refillCounter counts the allowance job's runs.
type refillCounter struct {
	bot.NopMetrics
	lt *loadRun
}

// JobRun counts a run of the allowance job.
func (r refillCounter) JobRun(name string, err error, _ time.Duration) {
	if name != scheduler.JobAllowances {
		return
	}
	r.lt.refills.Add(1)
	if err != nil {
		r.lt.refillErrs.Add(1)
	}
}

// tick moves the scheduler's clock one allowance period every
// --allowance-tick until ctx ends: refills run among the requests.
func (lt *loadRun) tick(ctx context.Context) {
	if lt.clock == nil {
		return
	}
	t := time.NewTicker(lt.o.AllowanceTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lt.clock.Advance(time.Hour)
		}
	}
}

// drive runs every user until the requests are sent and answered (or the
// duration has passed) and returns how long that took.
func (lt *loadRun) drive(ctx context.Context) time.Duration {
	probe := newWakeProbe()
	start := time.Now()
	var deadline time.Time
	if lt.o.Duration > 0 {
		deadline = start.Add(lt.o.Duration)
	}
	tctx, stopTick := context.WithCancel(ctx)
	ticked := make(chan struct{})
	go func() { defer close(ticked); lt.tick(tctx) }()
	defer func() { stopTick(); <-ticked }()
	var wg sync.WaitGroup
	for i, u := range lt.users {
		delay := lt.o.Ramp * time.Duration(i) / time.Duration(len(lt.users))
		wg.Go(func() {
			if sleepCtx(ctx, delay) {
				lt.run(ctx, u, deadline)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	lt.wake = probe.stop()
	return elapsed
}

// finish stops the platform, lets the engine drain, collects the
// simulator's last reports and checks everything.
func (lt *loadRun) finish(ctx context.Context, elapsed time.Duration) (*loadReport, error) {
	lt.stop()
	lt.awaitServed(15 * time.Second)
	return lt.report(ctx, elapsed)
}

// stop shuts the platform adapter down and drains the engine; later calls
// do nothing.
func (lt *loadRun) stop() {
	lt.stopOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if lt.sched != nil {
			_ = lt.sched.Shutdown(sctx)
		}
		lt.drv.stop(sctx)
		lt.st.Drain(sctx)
	})
}

// fund creates every user (with the signup bonus) and tops them up, so no
// request is refused for want of tokens and no welcome note is part of
// an answer.
func (lt *loadRun) fund(ctx context.Context) error {
	st := lt.st.Store
	users := make(chan *loadUser)
	errs := make(chan error, len(lt.users))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for u := range users {
				u.hash = lt.st.Router.UserHash(u.id)
				if _, _, err := st.EnsureUser(ctx, u.id); err != nil {
					errs <- err
					continue
				}
				if lt.o.TopUp > 0 {
					if _, _, err := st.TopUp(ctx, bot.Adjustment{Identity: u.id, Amount: lt.o.TopUp, Key: "loadtest:topup:" + string(u.id), Actor: bot.ActorSystem, Note: "orchat-loadtest"}); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	for _, u := range lt.users {
		users <- u
	}
	close(users)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("loadtest: create the users: %w", err)
	}
	lt.initial = lt.m.Config.Accounts.SignupBonus + lt.o.TopUp
	return nil
}

// run is one user: a request, its answer, the next request.
func (lt *loadRun) run(ctx context.Context, u *loadUser, deadline time.Time) {
	for ctx.Err() == nil {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return
		}
		k := int(lt.next.Add(1))
		if deadline.IsZero() && k > lt.o.Requests {
			return
		}
		r := &loadRequest{n: k, user: u, compare: lt.pick(k) < lt.o.CompareShare}
		r.prompt = fmt.Sprintf(loadPrompts[k%len(loadPrompts)], k, u.name)
		u.reqs = append(u.reqs, r)
		lt.do(ctx, r)
		if lt.o.Think > 0 && !sleepCtx(ctx, rand.N(lt.o.Think)) {
			return
		}
	}
}

// wakeProbe measures how late a goroutine that sleeps 1 ms at a time
// wakes up: the scheduling delay every request also suffers on a busy
// machine (CPU contention, the garbage collector), apart from the bot's
// own work.
type wakeProbe struct {
	quit chan struct{}
	done chan []time.Duration
}

func newWakeProbe() *wakeProbe {
	p := &wakeProbe{quit: make(chan struct{}), done: make(chan []time.Duration, 1)}
	go func() {
		var late []time.Duration
		for {
			t := time.Now()
			select {
			case <-p.quit:
				p.done <- late
				return
			case <-time.After(time.Millisecond):
			}
			late = append(late, max(time.Since(t)-time.Millisecond, 0))
		}
	}()
	return p
}

func (p *wakeProbe) stop() []time.Duration {
	close(p.quit)
	return <-p.done
}

// sleepCtx sleeps d; it reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loadPrompts are the questions users ask, in turn; the auto router puts
// them in different tiers.
var loadPrompts = []string{
	"Question %d from %s: what is the tallest mountain in Europe, and how tall is it?",
	"Request %d by %s: explain step by step why the sky is blue.",
	"Number %d for %s: write a haiku about ledgers that never lose a token.",
	"Task %d from %s: in Go, how do I reverse a slice in place? Show the code.",
	"Hi, %d from %s here: suggest three names for a bot that brings models to chat.",
	// The whole answer: a web search with citations, and a reasoning
	// model thinking inside its cap (cut streams among them when faults
	// are on, settled from /generation).
	"/ask Search %d for %s: what changed in Go this month? web:on",
	"/ask Puzzle %d from %s: how many ways can eight rooks share a chessboard unattacked? model:openai/o4-mini effort:low",
}

// pick is the request mix's draw for request k: a number in [0, 1) that
// depends only on the seed and k (SplitMix64).
func (lt *loadRun) pick(k int) float64 {
	x := uint64(lt.o.Seed)*0x9e3779b97f4a7c15 + uint64(k)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53)
}

// do delivers one request and waits for its answer, or gives up on it as
// a hang.
func (lt *loadRun) do(ctx context.Context, r *loadRequest) {
	n := lt.inflight.Add(1)
	for p := lt.peak.Load(); n > p && !lt.peak.CompareAndSwap(p, n); p = lt.peak.Load() {
	}
	defer lt.inflight.Add(-1)
	id, err := lt.drv.submit(ctx, r)
	r.eventID = id
	if err != nil {
		r.failed = "delivery failed: " + err.Error()
		return
	}
	r.d = lt.delivery(id)
	t := time.NewTimer(lt.o.HangAfter)
	defer t.Stop()
	select {
	case <-r.d.done:
	case <-t.C:
		r.failed = fmt.Sprintf("no answer within %s (a hang)", lt.o.HangAfter)
	}
}

// problem records a failure no single request explains.
func (lt *loadRun) problem(format string, args ...any) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.problems = append(lt.problems, fmt.Sprintf(format, args...))
}

// delivery returns the record of an event id, creating it: the platform
// may hand the event to the handler before its driver has learnt the id.
func (lt *loadRun) delivery(id string) *delivery {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	d := lt.deliveries[id]
	if d == nil {
		expect := 1 // a platform adapter drops duplicates itself
		if lt.o.Platform == "console" {
			expect = lt.o.Duplicates // the engine drops them
		}
		d = &delivery{expect: expect, done: make(chan struct{})}
		lt.deliveries[id] = d
	}
	return d
}

// Handle is the handler the platform sees: the engine, timed and recorded.
func (lt *loadRun) Handle(ctx context.Context, ev bot.Event, out bot.Output) (err error) {
	d := lt.delivery(ev.ID)
	o := &recOutput{lt: lt, next: out}
	d.begin()
	ctx = context.WithValue(ctx, deliveryKey{}, d)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			d.mu.Lock()
			d.panics = append(d.panics, fmt.Sprint(p))
			d.mu.Unlock()
		}
		d.finish(o, err)
	}()
	return lt.st.Engine.Handle(ctx, ev, o)
}

var _ bot.Handler = (*loadRun)(nil)

// onServed keeps what the simulator says about an upstream call.
func (lt *loadRun) onServed(s openroutertest.Served) {
	rec := servedRec{start: s.Start, end: s.End, status: s.Status, gen: s.GenerationID, billed: s.BilledUSD, partial: s.PartialUSD, fault: faultKind(s.Fault), firstToken: s.FirstToken}
	if s.Request != nil {
		rec.user = s.Request.User
	}
	lt.mu.Lock()
	lt.served = append(lt.served, rec)
	lt.mu.Unlock()
}

// awaitServed waits until the simulator has reported every chat request
// it received (a handler reports once its response has ended).
func (lt *loadRun) awaitServed(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		lt.mu.Lock()
		n := len(lt.served)
		lt.mu.Unlock()
		if int64(n) >= lt.sim.Stats().Requests {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	lt.problem("the simulator did not report every upstream call within %s", limit)
}

func faultKind(f *openroutertest.Fault) string {
	switch {
	case f == nil:
		return ""
	case f.Stall:
		return "stall"
	case f.MidStreamError:
		return "mid_stream_error"
	case f.Truncate:
		return "truncated"
	case f.BadJSON:
		return "bad_json"
	case f.Status != 0:
		return fmt.Sprint(f.Status)
	}
	return "other"
}

// delivery is what happened to one event id: how often the handler ran
// and what each run wrote.
type delivery struct {
	expect int // handler runs expected (duplicates the engine drops included)

	mu         sync.Mutex
	handled    int
	running    int
	start, end time.Time // the first run's start, the last run's end
	calls      []span    // upstream calls as the router saw them
	outs       []*recOutput
	errs       []error
	panics     []string
	closed     bool
	done       chan struct{} // closed once the answer is complete
}

func (d *delivery) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handled++
	d.running++
	if d.start.IsZero() {
		d.start = time.Now()
	}
}

func (d *delivery) finish(o *recOutput, err error) {
	now := time.Now()
	wrote := o.calls() > 0
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running--
	d.end = now
	if wrote {
		d.outs = append(d.outs, o)
	}
	if err != nil {
		d.errs = append(d.errs, err)
	}
	// The answer is complete when a run that wrote something ends (the
	// other runs of a duplicated event write nothing), or when every
	// expected run has ended.
	if !d.closed && (wrote || (d.running == 0 && d.handled >= d.expect)) {
		d.closed = true
		close(d.done)
	}
}

// deliveryKey carries a request's delivery in its context, down to the
// router's HTTP client.
type deliveryKey struct{}

// upstreamTransport is the router's own transport (router.newTransport's
// settings) for the load test to wrap.
func upstreamTransport(connect time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: connect, MaxIdleConns: 256, MaxIdleConnsPerHost: 256,
		IdleConnTimeout: 90 * time.Second, ExpectContinueTimeout: time.Second,
	}
}

// timedTransport notes, for the request in the context, when each
// upstream call started (the router handed it to HTTP) and ended (the
// router closed the body, or reading it failed): the upstream time the
// router saw.
type timedTransport struct{ base http.RoundTripper }

func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, _ := req.Context().Value(deliveryKey{}).(*delivery)
	if d == nil {
		return t.base.RoundTrip(req)
	}
	start := time.Now()
	res, err := t.base.RoundTrip(req)
	if err != nil {
		d.call(start)
		return nil, err
	}
	res.Body = &timedBody{ReadCloser: res.Body, done: func() { d.call(start) }}
	return res, nil
}

// timedBody calls done once, when the body ends or is closed.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// call records an upstream call that started at start and ends now.
func (d *delivery) call(start time.Time) {
	now := time.Now()
	d.mu.Lock()
	d.calls = append(d.calls, span{start, now})
	d.mu.Unlock()
}

// recOutput is the bot.Output of one handler run. In process (no next) it
// is the platform: it keeps the counts, the final message and its time,
// and answers a share of edits like a 429 that the adapter waits out. In
// front of a real adapter it passes everything on and records the same.
type recOutput struct {
	lt   *loadRun
	next bot.Output

	mu        sync.Mutex
	seq       int
	posts     int
	edits     int
	throttled int
	waits     []span // simulated 429 waits
	final     finalMsg
	finals    map[string]bool // messages that reached a final state
	finalAt   time.Time
	perr      error // the first error the platform returned
	// firstShown is when the platform call that first showed answer text
	// returned: the member can read the first token from then on.
	firstShown time.Time
}

type span struct{ from, to time.Time }

// finalMsg is the part of a request's final message the checks need.
type finalMsg struct {
	kind         bot.Kind
	status       bot.Status
	text         string // errors only
	charged      int64
	partial      bool // a reply that broke off after some text
	panels       int
	panelsFailed int
	panelErrors  []string
}

var (
	_ bot.Output  = (*recOutput)(nil)
	_ bot.Limiter = (*recOutput)(nil)
	_ bot.Typer   = (*recOutput)(nil)
)

func (o *recOutput) calls() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.posts + o.edits
}

// Limits are the adapter's; in process, the engine's defaults.
func (o *recOutput) Limits() bot.Limits {
	if l, ok := o.next.(bot.Limiter); ok {
		return l.Limits()
	}
	return bot.Limits{}
}

// Typing passes the indicator on to the adapter.
func (o *recOutput) Typing(ctx context.Context) error {
	if t, ok := o.next.(bot.Typer); ok {
		return t.Typing(ctx)
	}
	return nil
}

func (o *recOutput) Post(ctx context.Context, m bot.Message) (string, error) {
	var id string
	var err error
	if o.next != nil {
		id, err = o.next.Post(ctx, m)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.posts++
	if o.next == nil {
		o.seq++
		id = fmt.Sprint(o.seq)
	}
	o.shown(m, err)
	o.record(id, m, err)
	return id, err
}

// shown notes the first write that shows answer text; o.mu is held.
func (o *recOutput) shown(m bot.Message, err error) {
	if err == nil && o.firstShown.IsZero() && m.Kind == bot.KindReply && !m.Thinking && strings.TrimSpace(m.Text) != "" {
		o.firstShown = time.Now()
	}
}

func (o *recOutput) Edit(ctx context.Context, id string, m bot.Message) error {
	var err error
	if o.next != nil {
		err = o.next.Edit(ctx, id, m)
	} else if rate := o.lt.o.Edit429Rate; rate > 0 && rand.Float64() < rate {
		// The platform answered 429 with a Retry-After; the adapter waits
		// it out and sends the edit again.
		from := time.Now()
		time.Sleep(o.lt.o.Edit429Wait)
		o.mu.Lock()
		o.throttled++
		o.waits = append(o.waits, span{from, time.Now()})
		o.mu.Unlock()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.edits++
	o.shown(m, err)
	o.record(id, m, err)
	return err
}

// record notes a message that reached its final state; o.mu is held.
func (o *recOutput) record(id string, m bot.Message, err error) {
	if err != nil {
		if o.perr == nil {
			o.perr = err
		}
		return
	}
	if !isFinal(m) {
		return
	}
	if o.finals == nil {
		o.finals = map[string]bool{}
	}
	o.finals[id] = true
	o.finalAt = time.Now()
	f := finalMsg{kind: m.Kind, status: m.Status}
	switch m.Kind {
	case bot.KindError:
		f.text = m.Text
	case bot.KindReply:
		if m.Meta != nil {
			f.charged = m.Meta.Charged
		}
		f.partial = m.Status == bot.StatusFailed
	case bot.KindCompare:
		if c := m.Compare; c != nil {
			f.panels = len(c.Panels)
			for _, p := range c.Panels {
				f.charged += p.Charged
				if p.Status == bot.StatusFailed {
					f.panelsFailed++
					f.panelErrors = append(f.panelErrors, p.Error)
				}
			}
		}
	}
	o.final = f
}

// isFinal reports whether m ends a request: an answer with its footer, a
// finished compare, or an error.
func isFinal(m bot.Message) bool {
	switch m.Kind {
	case bot.KindError:
		return true
	case bot.KindReply:
		return m.Status != bot.StatusStreaming && m.Footer != ""
	case bot.KindCompare:
		return m.Status != bot.StatusStreaming
	}
	return false
}

// inProcess is the load test's console platform: the engine is called
// directly, each delivery with an Output of its own.
type inProcess struct{ lt *loadRun }

func (p *inProcess) newUsers(n int) []*loadUser {
	users := make([]*loadUser, n)
	for i := range users {
		name := fmt.Sprintf("load%05d", i+1)
		users[i] = &loadUser{id: bot.Identity("console:" + name), name: name, ref: name}
	}
	return users
}

func (p *inProcess) submit(ctx context.Context, r *loadRequest) (string, error) {
	id := fmt.Sprintf("loadtest:%d", r.n)
	text := r.prompt
	if r.compare {
		text = "/compare " + text
	}
	ev := bot.Event{
		ID: id, Platform: bot.PlatformConsole, Identity: r.user.id, UserName: r.user.name,
		Community: "console", Channel: "loadtest", Text: text, Direct: true, Time: time.Now(),
	}
	if p.lt.o.Duplicates == 1 {
		_ = p.lt.Handle(ctx, ev, nil)
		return id, nil
	}
	var wg sync.WaitGroup
	for range p.lt.o.Duplicates {
		wg.Go(func() { _ = p.lt.Handle(ctx, ev, nil) })
	}
	wg.Wait()
	return id, nil
}

func (p *inProcess) stop(context.Context) {}

func (p *inProcess) community() string { return bot.CommunityConsole }

// rateLimited is 0: the in-process platform's simulated 429s are the
// report's edit_429s.
func (p *inProcess) rateLimited() int { return 0 }
