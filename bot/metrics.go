package bot

import "time"

// Metrics receives the measurements every part reports. The ops package
// implements it with Prometheus; tests and tools use NopMetrics. Methods must
// be cheap and safe for concurrent use.
type Metrics interface {
	// Request: one handled event, by platform, command and outcome
	// ("ok" or an error code).
	Request(platform, command, outcome string, d time.Duration)
	// Upstream: one model call attempt; status is the HTTP status (0 for a
	// transport failure); ttft is 0 when no token came.
	Upstream(model string, status int, ttft, latency time.Duration)
	// Tokens: what one call consumed and what it was charged.
	Tokens(model string, prompt, completion, charged int64, usd float64)
	// Fallback: the router moved from one candidate to the next.
	Fallback(from, to string)
	// LedgerWrite: one ledger write operation and its duration.
	LedgerWrite(op string, d time.Duration)
	// Refusal: a request refused for a reason such as "free_tier" or
	// "rate_limit".
	Refusal(reason string)
	// PlatformRateLimited: a platform answered 429.
	PlatformRateLimited(platform string)
	// JobRun: one scheduler job run; err is nil on success.
	JobRun(job string, err error, d time.Duration)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) Request(string, string, string, time.Duration)      {}
func (NopMetrics) Upstream(string, int, time.Duration, time.Duration) {}
func (NopMetrics) Tokens(string, int64, int64, int64, float64)        {}
func (NopMetrics) Fallback(string, string)                            {}
func (NopMetrics) LedgerWrite(string, time.Duration)                  {}
func (NopMetrics) Refusal(string)                                     {}
func (NopMetrics) PlatformRateLimited(string)                         {}
func (NopMetrics) JobRun(string, error, time.Duration)                {}
