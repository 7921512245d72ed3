// Package ops is orchat's operations room: the Prometheus metrics every part
// reports to (through bot.Metrics) and the HTTP server of /healthz, /readyz
// and /metrics. It is the only package that imports client_golang.
package ops

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orchat/orchat/bot"
)

// Metrics reports every part's measurements to Prometheus, on a registry
// of its own (served at /metrics by a Server). It implements bot.Metrics.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	requestTime  *prometheus.HistogramVec
	upstreamTime *prometheus.HistogramVec
	ttft         *prometheus.HistogramVec
	upstreamErrs *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	charged      *prometheus.CounterVec
	costUSD      *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	ledgerWrite  *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	platform429  *prometheus.CounterVec
	jobRuns      *prometheus.CounterVec
	jobTime      *prometheus.HistogramVec
	shards       shardGauges // registered at the first report (shards.go)
}

var _ bot.Metrics = (*Metrics)(nil)

// NewMetrics registers every orchat metric, and Go's and the process's own.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fast := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	slow := []float64{.1, .25, .5, 1, 2, 4, 8, 15, 30, 60, 120, 300}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_requests_total", Help: "Events handled, by platform, command and outcome (ok or an error code)."}, []string{"platform", "command", "outcome"})
	m.requestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orchat_request_duration_seconds", Help: "Time to handle an event, model call included.", Buckets: slow}, []string{"platform", "command"})
	m.upstreamTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orchat_upstream_latency_seconds", Help: "Time of one model call attempt, by model.", Buckets: slow}, []string{"model"})
	m.ttft = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orchat_upstream_ttft_seconds", Help: "Time to the first token of a model call, by model.", Buckets: slow}, []string{"model"})
	m.upstreamErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_upstream_errors_total", Help: "Failed model call attempts by HTTP status (0: transport failure)."}, []string{"status"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_tokens_total", Help: "Model tokens consumed, by model and kind (prompt, completion)."}, []string{"model", "kind"})
	m.charged = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_charged_tokens_total", Help: "Balance tokens charged to users, by model."}, []string{"model"})
	m.costUSD = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_upstream_cost_usd_total", Help: "What the upstream billed, in USD, by model."}, []string{"model"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_fallbacks_total", Help: "Moves from a failed candidate model to the next."}, []string{"from", "to"})
	m.ledgerWrite = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orchat_ledger_write_seconds", Help: "Ledger write transactions, by operation.", Buckets: fast}, []string{"op"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_refusals_total", Help: "Requests refused, by reason (free_tier, rate_limit)."}, []string{"reason"})
	m.platform429 = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_platform_rate_limited_total", Help: "429 answers from a chat platform."}, []string{"platform"})
	m.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchat_job_runs_total", Help: "Scheduler job runs, by job and outcome (ok, error)."}, []string{"job", "outcome"})
	m.jobTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orchat_job_duration_seconds", Help: "Scheduler job run time.", Buckets: fast}, []string{"job"})
	for _, c := range []prometheus.Collector{m.requests, m.requestTime, m.upstreamTime, m.ttft, m.upstreamErrs, m.tokens, m.charged, m.costUSD, m.fallbacks, m.ledgerWrite, m.refusals, m.platform429, m.jobRuns, m.jobTime} {
		f(c)
	}
	return m
}

// Holds is the ledger call behind the open-holds gauges.
type Holds interface {
	// OpenHolds returns how many holds are open and the tokens they hold.
	OpenHolds(ctx context.Context) (count int, tokens int64, err error)
}

// WatchHolds publishes the open holds, read from the ledger at scrape time.
func (m *Metrics) WatchHolds(l Holds) {
	read := func() (int, int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, tokens, err := l.OpenHolds(ctx)
		if err != nil {
			return -1, -1
		}
		return n, tokens
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orchat_holds_open", Help: "Holds open for answers in flight."},
		func() float64 { n, _ := read(); return float64(n) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orchat_held_tokens", Help: "Balance tokens held for answers in flight."},
		func() float64 { _, t := read(); return float64(t) }))
}

// Pool is a database's connection pool as /metrics shows it: open, in use
// and idle connections, the most that may be open, and the waits for one
// (cumulative). cmd/orchat fills it from accounts.Store.PoolStats.
type Pool struct {
	Open, InUse, Idle, MaxOpen int
	WaitCount                  int64
	WaitDuration               time.Duration
}

// WatchPool publishes the ledger's connection pool, read at scrape time:
// with several processes on one PostgreSQL server, a pool always at its
// maximum with waits growing is the first sign the processes need a bigger
// pool (pool_max_conns) or the server more connections.
func (m *Metrics) WatchPool(read func() Pool) {
	gauge := func(name, help string, v func(Pool) float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(read()) }))
	}
	gauge("orchat_db_connections_open", "Database connections open (in use and idle).", func(p Pool) float64 { return float64(p.Open) })
	gauge("orchat_db_connections_in_use", "Database connections in use.", func(p Pool) float64 { return float64(p.InUse) })
	gauge("orchat_db_connections_idle", "Database connections idle.", func(p Pool) float64 { return float64(p.Idle) })
	gauge("orchat_db_connections_max", "The most database connections the pool may open.", func(p Pool) float64 { return float64(p.MaxOpen) })
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orchat_db_connection_waits_total", Help: "Times a caller waited for a free database connection."},
		func() float64 { return float64(read().WaitCount) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orchat_db_connection_wait_seconds_total", Help: "Time callers spent waiting for a free database connection."},
		func() float64 { return read().WaitDuration.Seconds() }))
}

// Request counts and times one handled event.
func (m *Metrics) Request(platform, command, outcome string, d time.Duration) {
	m.requests.WithLabelValues(platform, command, outcome).Inc()
	m.requestTime.WithLabelValues(platform, command).Observe(d.Seconds())
}

// Upstream times one model call attempt and counts its failure.
func (m *Metrics) Upstream(model string, status int, ttft, latency time.Duration) {
	m.upstreamTime.WithLabelValues(model).Observe(latency.Seconds())
	if ttft > 0 {
		m.ttft.WithLabelValues(model).Observe(ttft.Seconds())
	}
	if status != 200 {
		m.upstreamErrs.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}

// Tokens adds what one call consumed, charged and cost.
func (m *Metrics) Tokens(model string, prompt, completion, charged int64, usd float64) {
	m.tokens.WithLabelValues(model, "prompt").Add(float64(max(prompt, 0)))
	m.tokens.WithLabelValues(model, "completion").Add(float64(max(completion, 0)))
	m.charged.WithLabelValues(model).Add(float64(max(charged, 0)))
	if usd > 0 {
		m.costUSD.WithLabelValues(model).Add(usd)
	}
}

// Fallback counts a move from one candidate model to the next.
func (m *Metrics) Fallback(from, to string) { m.fallbacks.WithLabelValues(from, to).Inc() }

// LedgerWrite times one ledger write transaction.
func (m *Metrics) LedgerWrite(op string, d time.Duration) {
	m.ledgerWrite.WithLabelValues(op).Observe(d.Seconds())
}

// Refusal counts a request refused for a reason.
func (m *Metrics) Refusal(reason string) { m.refusals.WithLabelValues(reason).Inc() }

// PlatformRateLimited counts a platform's 429.
func (m *Metrics) PlatformRateLimited(platform string) {
	m.platform429.WithLabelValues(platform).Inc()
}

// JobRun counts and times one scheduler job run.
func (m *Metrics) JobRun(job string, err error, d time.Duration) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.jobRuns.WithLabelValues(job, outcome).Inc()
	m.jobTime.WithLabelValues(job).Observe(d.Seconds())
}
