package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchat/orchat/bot"
)

// loadOptions are the knobs of one `orchat-loadtest` run.
type loadOptions struct {
	Users        int
	Requests     int           // total requests (with Duration: 0, until it ends)
	Duration     time.Duration // send new requests until this has passed
	CompareShare float64       // share of the requests that are compares
	Compare      []string      // the models of a compare
	Platform     string        // console (in-process adapter), discord or slack
	Duplicates   int           // deliveries of each event (1: no duplicates)

	// The upstream simulator.
	Latency         time.Duration // time to the first token
	TokensPerSecond float64       // pace of the answer after it
	FailRate        float64       // share of upstream requests given a fault
	Seed            int64
	MaxTokens       int           // router.max_tokens and compare.max_tokens
	IdleTimeout     time.Duration // openrouter.idle_timeout (ends stalls)
	MaxRetryAfter   time.Duration // openrouter.max_retry_after (0: the config's)

	// The platform and the disk.
	EditInterval time.Duration // stream.edit_interval
	Edit429Rate  float64       // share of edits answered with a 429
	Edit429Wait  time.Duration // that 429's Retry-After
	DBDelay      time.Duration // sleep inside every ledger write (a slow fsync)
	// Slack: answers stream natively ("native": chat.startStream and
	// friends) or with chat.update ("update"); SlackTiers, when positive,
	// makes the fake enforce Slack's documented rate limits with a minute
	// this long (time.Minute: real time; shorter scales every limit).
	SlackStream string
	SlackTiers  time.Duration

	Ramp  time.Duration // users start evenly spread over this time
	Think time.Duration // a user waits up to this long (at random) between requests

	TopUp int64 // tokens each user is topped up with before the run

	// The community in the mix: its pool, the allowance members are
	// refilled up to every period (a period passing every AllowanceTick of
	// the run), and its daily budgets (counted on every hold).
	Pool          int64
	Allowance     int64
	AllowanceTick time.Duration
	Budget        int64
	MemberBudget  int64

	HangAfter time.Duration // a request running longer is a hang
	LogLevel  string

	CPUProfile, MemProfile string // pprof files of the run
}

// defaultCompareModels are four catalog models with different prices, so
// a compare takes four holds and four settles.
var defaultCompareModels = []string{"google/gemini-2.5-flash", "openai/gpt-5-mini", "deepseek/deepseek-v3.2", "qwen/qwen3-coder"}

// run parses the command line, runs the load test and prints its report;
// it fails unless every request was answered or refused clearly and every
// token is accounted for. loadReport defines the figures.
func (m *Main) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("orchat-loadtest", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	cfgPath := fs.String("config", "", "orchat's TOML config `file` the bot is built from (default: the built-in defaults)")
	fs.StringVar(&m.DBPath, "db", "", "a new database `file` for the ledger, kept afterwards (default: a temporary one)")
	fs.BoolVar(&m.JSON, "json", false, "print the report as one JSON object")
	o := loadOptions{}
	fs.IntVar(&o.Users, "users", 50, "concurrent users, each with an identity of their own and one request in flight at a time")
	fs.IntVar(&o.Requests, "requests", 0, "requests in all (default: 10 per user; 0: none, to measure the idle stack)")
	fs.DurationVar(&o.Duration, "duration", 0, "send requests for this `duration` instead of a number of them")
	fs.Float64Var(&o.CompareShare, "compare-share", 0.1, "share (0-1) of the requests that are /compare of the --compare-models")
	compare := fs.String("compare-models", strings.Join(defaultCompareModels, ","), "the `models` of a /compare, comma-separated (2-4)")
	fs.StringVar(&o.Platform, "platform", "console", "console (an in-process adapter), discord or slack (the real adapter against its loopback fake)")
	fs.IntVar(&o.Duplicates, "duplicates", 1, "deliver every event `N` times (1-3), as a gateway resume or an Events API retry does")
	fs.DurationVar(&o.Latency, "latency", 200*time.Millisecond, "the simulated model's time to the first token")
	fs.Float64Var(&o.TokensPerSecond, "tokens-per-second", 200, "the simulated model's pace after the first token (0: all at once)")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "share (0-1) of upstream requests given a fault: 429 with Retry-After, 502, 503, a stall, a mid-stream error or a truncated stream")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the fault draws and of the request mix")
	fs.IntVar(&o.MaxTokens, "max-tokens", 256, "router.max_tokens and compare.max_tokens (the simulator answers about half of it)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 0, "openrouter.idle_timeout, which ends a stalled stream (default: --latency + 2s)")
	fs.DurationVar(&o.MaxRetryAfter, "max-retry-after", 0, "openrouter.max_retry_after, the cap on an upstream Retry-After (default: the config's)")
	fs.DurationVar(&o.EditInterval, "edit-interval", time.Millisecond, "stream.edit_interval: the least time between two edits of a message")
	fs.Float64Var(&o.Edit429Rate, "edit-429-rate", 0, "share (0-1) of message edits the platform answers with 429 (waited out, then sent again)")
	fs.DurationVar(&o.Edit429Wait, "edit-429-wait", 250*time.Millisecond, "the Retry-After of such a 429 (Slack's is whole seconds: rounded up)")
	fs.StringVar(&o.SlackStream, "slack-stream", "native", "how answers stream on Slack: native (chat.startStream/appendStream/stopStream) or update (chat.update)")
	fs.DurationVar(&o.SlackTiers, "slack-tiers", 0, "make the Slack fake enforce Slack's documented rate limits (chat.update Tier 3 per workspace, the stream methods' tiers), with a minute this long (1m: real time; 0: no limits)")
	fs.DurationVar(&o.DBDelay, "db-delay", 0, "block this long inside every ledger write transaction before it commits, as a slow disk's fsync does")
	fs.DurationVar(&o.Ramp, "ramp", time.Second, "start the users evenly spread over this `duration`, not all in the same instant")
	fs.DurationVar(&o.Think, "think", 0, "a user waits a random time up to this `duration` between an answer and the next question")
	fs.Int64Var(&o.TopUp, "topup", 10_000_000, "tokens every user is topped up with before the run (on top of the signup bonus)")
	fs.DurationVar(&o.HangAfter, "hang-after", 2*time.Minute, "a request still unanswered after this long counts as a hang")
	fs.Int64Var(&o.Pool, "pool", 0, "tokens the host funds the community's pool with (default: 200,000 per user; 0 with --allowance 0: no pool)")
	fs.Int64Var(&o.Allowance, "allowance", -1, "members are refilled up to this many tokens every period, from the pool (default: the signup bonus plus --topup plus 10,000; 0: off)")
	fs.DurationVar(&o.AllowanceTick, "allowance-tick", 100*time.Millisecond, "an allowance period passes every this much of the run (the scheduler's clock moves an hour)")
	fs.Int64Var(&o.Budget, "budget", bot.MaxAmount, "the community's daily budget in tokens: every hold counts against it (0: none)")
	fs.Int64Var(&o.MemberBudget, "member-budget", 0, "each member's daily budget in tokens (0: none); requests past it are refused with the reset time")
	fs.StringVar(&o.LogLevel, "log-level", "error", "the bot's log level during the run: debug, info, warn or error")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to `file` (go tool pprof)")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile of the run to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("orchat-loadtest takes flags only, not %q", fs.Arg(0))
	}
	if err := m.loadConfig(*cfgPath); err != nil {
		return err
	}
	requestsSet := false
	fs.Visit(func(f *flag.Flag) { requestsSet = requestsSet || f.Name == "requests" })
	if !requestsSet && o.Duration == 0 {
		o.Requests = 10 * o.Users
	}
	o.Compare = splitList(*compare)
	if err := o.validate(requestsSet); err != nil {
		return err
	}
	if o.Allowance < 0 {
		o.Allowance = m.Config.Accounts.SignupBonus + o.TopUp + 10_000
	}
	poolSet := false
	fs.Visit(func(f *flag.Flag) { poolSet = poolSet || f.Name == "pool" })
	if !poolSet && o.Allowance > 0 {
		o.Pool = 200_000 * int64(o.Users)
	}
	if o.IdleTimeout == 0 {
		// The client's idle timer runs from the response headers, and
		// only events re-arm it (keep-alive comments do not): it must
		// outlast the time to the first token.
		o.IdleTimeout = o.Latency + 2*time.Second
	}

	// The ledger is a new file, never one holding real balances.
	dir, err := os.MkdirTemp("", "orchat-loadtest-")
	if err != nil {
		return err
	}
	m.onClose(func() error { return os.RemoveAll(dir) })
	db := m.DBPath
	if db == "" {
		db = filepath.Join(dir, "loadtest.db")
	} else if fi, err := os.Stat(db); err == nil && fi.Size() > 0 {
		return bot.Errorf(bot.EINVALID, "--db %s already exists; the load test writes thousands of users and charges, so give it a new file (or none: a temporary one).", db)
	}
	m.Config.Accounts.Database = db
	m.Config.Router.CatalogCache = filepath.Join(dir, "models.json")

	rep, err := runLoad(ctx, m, o)
	if err != nil {
		return err
	}
	if m.JSON {
		if err := m.printJSON(rep); err != nil {
			return err
		}
	} else {
		rep.print(m.Stdout)
	}
	if !rep.clean() {
		return bot.Errorf(bot.EUNAVAILABLE, "The load test is not clean: %d unexplained failures, ledger_ok=%v, charged %d tokens for %d billed.",
			rep.Unexplained, rep.LedgerOK, rep.ChargedTokens, rep.BilledTokens)
	}
	return nil
}

func (o *loadOptions) validate(requestsSet bool) error {
	switch {
	case o.Users < 1 || o.Users > 100_000:
		return usagef("--users must be between 1 and 100000, not %d", o.Users)
	case o.Requests < 0:
		return usagef("--requests must not be negative, not %d", o.Requests)
	case o.Duration < 0:
		return usagef("--duration must not be negative")
	case requestsSet && o.Duration > 0:
		return usagef("give --requests or --duration, not both")
	case o.CompareShare < 0 || o.CompareShare > 1:
		return usagef("--compare-share must be between 0 and 1, not %g", o.CompareShare)
	case o.CompareShare > 0 && (len(o.Compare) < 2 || len(o.Compare) > 4):
		return usagef("--compare-models must name 2 to 4 models, not %d", len(o.Compare))
	case o.Platform != "console" && o.Platform != "discord" && o.Platform != "slack":
		return usagef("--platform must be console, discord or slack, not %q", o.Platform)
	case o.SlackStream != "native" && o.SlackStream != "update":
		return usagef("--slack-stream must be native or update, not %q", o.SlackStream)
	case o.SlackTiers < 0 || (o.SlackTiers > 0 && o.SlackTiers < time.Second):
		return usagef("--slack-tiers must be 0 (off) or a minute's length of 1s or more, not %s", o.SlackTiers)
	case o.Duplicates < 1 || o.Duplicates > 3:
		return usagef("--duplicates must be 1, 2 or 3, not %d", o.Duplicates)
	case o.Latency < 0 || o.TokensPerSecond < 0:
		return usagef("--latency and --tokens-per-second must not be negative")
	case o.FailRate < 0 || o.FailRate > 1:
		return usagef("--fail-rate must be between 0 and 1, not %g", o.FailRate)
	case o.MaxTokens < 64 || o.MaxTokens > 100_000:
		return usagef("--max-tokens must be between 64 and 100000, not %d", o.MaxTokens)
	case o.IdleTimeout < 0 || o.MaxRetryAfter < 0:
		return usagef("--idle-timeout and --max-retry-after must not be negative")
	case o.EditInterval <= 0:
		return usagef("--edit-interval must be positive")
	case o.Edit429Rate < 0 || o.Edit429Rate > 1 || o.Edit429Wait < 0:
		return usagef("--edit-429-rate must be between 0 and 1, and --edit-429-wait not negative")
	case o.DBDelay < 0 || o.DBDelay > 10*time.Second:
		return usagef("--db-delay must be between 0 and 10s")
	case o.TopUp < 0 || o.TopUp > bot.MaxAmount:
		return usagef("--topup must be between 0 and %d", bot.MaxAmount)
	case o.Ramp < 0 || o.Think < 0:
		return usagef("--ramp and --think must not be negative")
	case o.HangAfter <= 0:
		return usagef("--hang-after must be positive")
	case o.Pool < 0 || o.Pool > bot.MaxAmount || o.Budget < 0 || o.Budget > bot.MaxAmount || o.MemberBudget < 0 || o.MemberBudget > bot.MaxAmount:
		return usagef("--pool, --budget and --member-budget must be between 0 and %d", bot.MaxAmount)
	case o.Allowance > bot.MaxAmount:
		return usagef("--allowance must be at most %d", bot.MaxAmount)
	case o.AllowanceTick <= 0:
		return usagef("--allowance-tick must be positive")
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return usagef("--log-level must be debug, info, warn or error, not %q", o.LogLevel)
	}
	return nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// printf writes a line of the text report.
func printf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}
