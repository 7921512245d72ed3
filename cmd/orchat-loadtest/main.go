// Command orchat-loadtest loads the real orchat stack (the ledger on a
// SQLite file, the router, the commands, the engine, and with --platform
// the real Discord or Slack adapter against its loopback fake) with many
// concurrent users and an upstream simulator with a fault mix, and checks
// that every request was answered or refused clearly and every token is
// accounted for. It is a command of its own so that orchat, the product,
// links no platform fake.
//
//	go run ./cmd/orchat-loadtest --users 500 --requests 5000 --fail-rate 0.3 --json
//
// docs/BENCHMARKS.md quotes its figures; --help lists every flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // as orchat: time zones work without a zoneinfo database

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/config"
	"github.com/orchat/orchat/stack"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200) // as orchat runs (cmd/orchat/main.go says why)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := m.Run(ctx, os.Args[1:])
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "orchat-loadtest:", err)
		if code == exitOK {
			code = exitUser
		}
	}
	os.Exit(code)
}

// Main is one run of the command: its streams, the config the bot is
// built from, and what it opened. Tests build one and run it like the
// binary.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// Config is orchat's config (--config FILE, else the defaults) with the
	// load test's changes.
	Config config.Config
	// DBPath is --db: a new ledger file to keep (default a temporary one).
	DBPath string
	// JSON is --json: the report as one JSON object.
	JSON bool

	log     *slog.Logger
	closers []func() error
}

// Exit statuses, as orchat's.
const (
	exitOK    = 0
	exitUser  = 1 // the run was not clean, or it could not start: stderr says why
	exitUsage = 2 // the command line itself was wrong
)

// usageError marks a wrong command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Run runs the load test with the command line args and returns the exit
// status.
func (m *Main) Run(ctx context.Context, args []string) int {
	err := m.run(ctx, args)
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(m.Stderr, "orchat-loadtest: %s\nRun 'orchat-loadtest --help' for the flags.\n", uerr.msg)
		return exitUsage
	}
	msg := err.Error()
	var e *bot.Error
	if errors.As(err, &e) && e.Code != bot.EINTERNAL {
		msg = e.Message
	}
	fmt.Fprintln(m.Stderr, "orchat-loadtest:", msg)
	return exitUser
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

// loadConfig reads orchat's config: the file, or only the defaults (and
// the environment) when path is "".
func (m *Main) loadConfig(path string) error {
	cfg, err := config.Load(path, m.Getenv)
	if err != nil {
		return err
	}
	m.Config = cfg
	return nil
}

// logger is the bot's log during the run, on stderr, built once from the
// config (the load test sets its level from --log-level).
func (m *Main) logger() *slog.Logger {
	if m.log == nil {
		m.log = m.Config.Logger(m.Stderr)
	}
	return m.log
}

// deps are what the stack is handed: the log, and no metrics (the report
// measures for itself).
func (m *Main) deps() stack.Deps { return stack.Deps{Logger: m.logger()} }

func (m *Main) printJSON(v any) error { return json.NewEncoder(m.Stdout).Encode(v) }
