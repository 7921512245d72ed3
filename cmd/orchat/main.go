// Command orchat runs the orchat bot and its tools: the bot itself (Discord,
// Slack and a terminal console), ledger administration, the model catalog,
// the router's plans and the OpenRouter simulator. The load test is a
// command of its own, cmd/orchat-loadtest, so this binary links no
// platform fake.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	_ "time/tzdata" // time zones work on machines without a zoneinfo database

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/config"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A latency-sensitive server on a small machine: collect half as
		// often as Go's default for a heap about a third larger. On 2
		// cores with 500 users streaming, orchat-loadtest measured the
		// p99 overhead at 4.8-5.0 ms with it and 5.3-6.7 ms without
		// (docs/BENCHMARKS.md). GOGC in the environment still decides.
		debug.SetGCPercent(200)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// SIGHUP reloads the config instead of ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-sigs
		cancel() // first signal: graceful shutdown
		<-sigs
		fmt.Fprintln(os.Stderr, "orchat: second signal, exiting now")
		os.Exit(130)
	}()

	m := NewMain()
	m.Hangups = hup
	code := m.Run(ctx, os.Args[1:])
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "orchat:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Main is the program: its streams, its global flags and what it opened.
// Tests build one with their own streams and run it like the binary.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// Global flags, accepted before or after the subcommand.
	ConfigPath string
	DBPath     string
	Upstream   string
	HTTPAddr   string
	// HTTPAddrSet says --http was given, so --http "" (the server off) is
	// told apart from no --http at all.
	HTTPAddrSet bool
	JSON        bool
	Simulate    bool

	Config  config.Config
	closers []func() error
	// OpsListening, when set, is told the address the HTTP server listens
	// on (tests use http.addr = 127.0.0.1:0).
	OpsListening func(addr string)
	// Hangups delivers SIGHUP: reload the config file (main sets it; tests
	// send on a channel of their own).
	Hangups <-chan os.Signal
	// live is the config a reload put in force (nil: Config).
	live atomic.Pointer[config.Config]

	log  *slog.Logger
	mets bot.Metrics
}

// NewMain returns a Main wired to the process's streams and environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Close releases everything Run opened, last opened first.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

func (m *Main) onClose(f func() error) { m.closers = append(m.closers, f) }

// Exit statuses.
const (
	exitOK    = 0
	exitUser  = 1 // a user error: one line on stderr says what and how to fix it
	exitUsage = 2 // the command line itself was wrong
)

// usageError marks a wrong command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// subcommand is one `orchat NAME`.
type subcommand struct {
	usage string
	help  string
	run   func(ctx context.Context, m *Main, args []string) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"migrate":           {"migrate", "create or upgrade the database schema", runMigrate},
		"balance":           {"balance IDENTITY|pool:COMMUNITY", "show a user's balance, holds and free requests, or a community's pool", runBalance},
		"topup":             {"topup IDENTITY|pool:COMMUNITY AMOUNT [--key K] [--note TEXT]", "add tokens to a user, or fund a community's pool (idempotent by --key)", runTopUp},
		"ledger":            {"ledger IDENTITY|pool:COMMUNITY [--limit N] | verify | copy", "a user's or a pool's last ledger rows; check every balance and pool; copy --to DB", runLedger},
		"models":            {"models [--search TEXT] [--free] [--vision] [--tools] [--catalog FILE]", "list the models with prices per million tokens and context", runModels},
		"route":             {"route [--catalog FILE] [--model ID] [--image] [--balance N] PROMPT|-", "show the auto router's plan for a prompt, calling no model", runRoute},
		"simulate-upstream": {"simulate-upstream [--addr A] [--catalog FILE] [--latency D] [--fail-rate F] [--seed N]", "serve the OpenRouter simulator and print its base URL", runSimulate},
		"run":               {"run [--console]", "run the bot on every platform with credentials (the default command)", runBot},
		"console":           {"console [--user NAME] [--parallel N] [--multi-user]", "chat with the bot in the terminal (stdin lines; --json for scripts)", runConsole},
	}
}

// Run runs the command line args and returns the exit status.
func (m *Main) Run(ctx context.Context, args []string) int {
	err := m.run(ctx, args)
	if err == nil {
		return exitOK
	}
	var uerr *usageError
	if errors.As(err, &uerr) {
		fmt.Fprintf(m.Stderr, "orchat: %s\nRun 'orchat help' for usage.\n", uerr.msg)
		return exitUsage
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintln(m.Stderr, "orchat:", userMessage(err))
	return exitUser
}

// userMessage is the one line a person reads for err: a bot.Error's own
// sentence, otherwise the error text.
func userMessage(err error) string {
	var e *bot.Error
	if errors.As(err, &e) && e.Code != bot.EINTERNAL {
		return e.Message
	}
	return err.Error()
}

func (m *Main) run(ctx context.Context, args []string) error {
	name, rest := splitSubcommand(args)
	switch name {
	case "help":
		m.printHelp()
		return nil
	case "":
		if hasHelp(rest) {
			m.printHelp()
			return nil
		}
		name = "run"
	}
	sc, ok := subcommands()[name]
	if !ok && name == "loadtest" {
		return usagef("the load test is a command of its own, so that orchat links no platform fake: go run ./cmd/orchat-loadtest --help")
	}
	if !ok {
		return usagef("unknown command %q", name)
	}
	return sc.run(ctx, m, rest)
}

func hasHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// globalValueFlags take a value; splitSubcommand must skip it.
var globalValueFlags = map[string]bool{"config": true, "db": true, "upstream": true, "http": true}

// splitSubcommand finds the subcommand (the first word that is not a flag
// or a flag's value) and returns it with every other argument, in order.
func splitSubcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") && !isNumber(a) {
			n := strings.TrimLeft(a, "-")
			if !strings.Contains(n, "=") && globalValueFlags[n] {
				i++
			}
			continue
		}
		rest := append(append([]string{}, args[:i]...), args[i+1:]...)
		return a, rest
	}
	return "", args
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// flags returns a FlagSet for a subcommand with the global flags on it.
func (m *Main) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("orchat "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.ConfigPath, "config", m.ConfigPath, "TOML config `file` (default: none, built-in defaults)")
	fs.StringVar(&m.DBPath, "db", m.DBPath, "database `file` or postgres:// URL (default: ORCHAT_DATABASE_URL, accounts.database, data/orchat.db)")
	fs.StringVar(&m.Upstream, "upstream", m.Upstream, "OpenRouter-compatible base `URL` (overrides openrouter.base_url)")
	fs.Func("http", "health and metrics `address` (overrides http.addr; \"\" turns the server off)", func(v string) error {
		m.HTTPAddr, m.HTTPAddrSet = v, true
		return nil
	})
	fs.BoolVar(&m.JSON, "json", m.JSON, "machine-readable output")
	fs.BoolVar(&m.Simulate, "simulate", m.Simulate, "use the built-in OpenRouter simulator even when a key is set")
	return fs
}

// parse parses flags anywhere among args and returns the positional
// arguments. Negative numbers are positional (so "-5" reaches the amount
// check and gets a clear message).
func (m *Main) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
		for len(args) > 0 && strings.HasPrefix(args[0], "-") && isNumber(args[0]) {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, m.loadConfig()
}

// loadConfig reads the config once flags are known and applies the flags
// that override it.
func (m *Main) loadConfig() error {
	cfg, err := config.Load(m.ConfigPath, m.Getenv)
	if err != nil {
		return err
	}
	if m.DBPath != "" {
		cfg.Accounts.Database = m.DBPath
	}
	if m.Upstream != "" {
		cfg.OpenRouter.BaseURL = strings.TrimRight(m.Upstream, "/")
	}
	if m.HTTPAddrSet {
		if m.HTTPAddr == "" && cfg.Slack.Mode == "http" && cfg.Slack.BotToken != "" {
			return bot.Errorf(bot.EINVALID, `--http "" turns off the server that Slack's events come to in slack.mode = "http": give an address, or use Socket Mode.`)
		}
		cfg.HTTP.Addr = m.HTTPAddr
	}
	m.Config = cfg
	return nil
}

func (m *Main) printHelp() {
	fmt.Fprint(m.Stdout, `orchat brings every model on OpenRouter into Discord, Slack and your terminal.

Usage: orchat [global flags] COMMAND [arguments]

Commands:
`)
	names := []string{"run", "console", "models", "route", "simulate-upstream", "migrate", "balance", "topup", "ledger"}
	scs := subcommands()
	for _, n := range names {
		sc := scs[n]
		fmt.Fprintf(m.Stdout, "  %-48s %s\n", sc.usage, sc.help)
	}
	fmt.Fprint(m.Stdout, `
Global flags (before or after the command):
  --config FILE    TOML config (see config.example.toml); default: built-in defaults
  --db FILE|URL    database file or postgres:// URL; default data/orchat.db
  --upstream URL   OpenRouter-compatible base URL
  --http ADDR      health and metrics address (default 127.0.0.1:9464; "" turns it off)
  --json           machine-readable output
  --simulate       use the built-in OpenRouter simulator
`)
}
