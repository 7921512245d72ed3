package main

import (
	"context"
	"fmt"

	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/stack"
)

// simulated reports whether orchat should answer from its built-in
// simulator: asked to, or no key and no other upstream configured.
func (m *Main) simulated() bool {
	c := m.Config.OpenRouter
	return m.Simulate || (c.APIKey == "" && m.Upstream == "" && c.BaseURL == router.DefaultBaseURL)
}

// deps are what every part of the bot is handed: the process's logger and
// metrics.
func (m *Main) deps() stack.Deps {
	return stack.Deps{Logger: m.logger(), Metrics: m.metrics()}
}

// openStack builds the pipeline from the config. With no key it answers
// from the simulator and says so on stderr, first thing.
func (m *Main) openStack(ctx context.Context) (*stack.Stack, error) {
	for _, w := range m.Config.Warnings() {
		m.logger().Warn("config: " + w)
	}
	sc := m.Config.Stack()
	if m.simulated() {
		sc.Simulate = true
		fmt.Fprintln(m.Stderr, "orchat: no OPENROUTER_API_KEY set, so answers come from the built-in OpenRouter simulator (nothing real is called or paid). Set OPENROUTER_API_KEY to use real models.")
	}
	st, err := stack.Open(ctx, sc, m.deps())
	if err != nil {
		return nil, err
	}
	m.onClose(st.Close)
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.watchConfig(wctx, st)
	}()
	m.onClose(func() error { stop(); <-done; return nil })
	return st, nil
}
