package main

import (
	"log/slog"

	"github.com/orchat/orchat/bot"
)

// logger returns the process's structured logger, built once from the
// config (level, text or JSON) and writing to stderr.
func (m *Main) logger() *slog.Logger {
	if m.log != nil {
		return m.log
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(m.Config.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(m.Stderr, opts)
	if m.Config.Log.Format == "json" {
		h = slog.NewJSONHandler(m.Stderr, opts)
	}
	m.log = slog.New(h)
	return m.log
}

// metrics returns where every part reports its measurements.
func (m *Main) metrics() bot.Metrics {
	if m.mets == nil {
		m.mets = bot.NopMetrics{}
	}
	return m.mets
}
