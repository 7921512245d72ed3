package stacktest

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orchat/orchat/bot"
)

// Tap is a bot.Output that passes every message on to Out and, for each
// one the platform took, calls OnWrite with its platform id (posted: a new
// message, else an edit), so a test can compare what the platform shows
// with what the engine meant. It keeps Out's optional powers (Limiter,
// Typer).
type Tap struct {
	Out     bot.Output
	OnWrite func(id string, m bot.Message, posted bool)
}

var (
	_ bot.Limiter = (*Tap)(nil)
	_ bot.Typer   = (*Tap)(nil)
)

// Post posts m through Out.
func (t *Tap) Post(ctx context.Context, m bot.Message) (string, error) {
	id, err := t.Out.Post(ctx, m)
	if err == nil {
		t.OnWrite(id, m, true)
	}
	return id, err
}

// Edit edits message id through Out.
func (t *Tap) Edit(ctx context.Context, id string, m bot.Message) error {
	err := t.Out.Edit(ctx, id, m)
	if err == nil {
		t.OnWrite(id, m, false)
	}
	return err
}

// Limits are Out's, or the engine's defaults.
func (t *Tap) Limits() bot.Limits {
	if l, ok := t.Out.(bot.Limiter); ok {
		return l.Limits()
	}
	return bot.Limits{}
}

// Typing shows Out's typing indicator, where it has one.
func (t *Tap) Typing(ctx context.Context) error {
	if ty, ok := t.Out.(bot.Typer); ok {
		return ty.Typing(ctx)
	}
	return nil
}

// Metrics counts what an adapter reports that its tests check: the 429s
// of its platform.
type Metrics struct {
	bot.NopMetrics
	Platform    string
	RateLimited atomic.Int64
}

// PlatformRateLimited counts a 429 of m.Platform.
func (m *Metrics) PlatformRateLimited(platform string) {
	if platform == m.Platform {
		m.RateLimited.Add(1)
	}
}

// Go runs an adapter (its Run) until the test ends, or until the returned
// stop is called (it may be called again, and from a Cleanup): stop cancels
// Run, waits for it and fails the test if it returned an error.
func Go(tb testing.TB, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// TypedCommand writes a command as a person types it after the slash, for
// the platforms whose slash commands (or lines) carry text: the name, the
// subcommand path if name has one ("settings persona set"), options as
// name:value, and the option that takes the rest of the text (a prompt, a
// persona) last. Values of other options must be single words.
func TypedCommand(cmds []*bot.Command, name string, options map[string]string) string {
	words := strings.Fields(name)
	var opts []bot.Option
	for _, c := range cmds {
		if len(words) > 0 && c.Name == words[0] {
			opts = c.Options
			if sub, ok := c.Find(strings.Join(words[1:], " ")); ok {
				opts = sub.Options
			}
		}
	}
	rest := "prompt"
	for _, o := range opts {
		if o.Rest {
			rest = o.Name
		}
	}
	keys := make([]string, 0, len(options))
	for k := range options {
		if k != rest {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	line := name
	for _, k := range keys {
		line += " " + k + ":" + options[k]
	}
	if v, ok := options[rest]; ok {
		line += " " + v
	}
	return line
}
