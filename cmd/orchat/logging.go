package main

import (
	"log/slog"

	"github.com/orchat/orchat/bot"
)

// logger returns the process's structured logger, built once from the
// config (level, text or JSON) and writing to stderr.
func (m *Main) logger() *slog.Logger {
	if m.log == nil {
		m.log = m.Config.Logger(m.Stderr)
	}
	return m.log
}

// metrics returns where every part reports its measurements.
func (m *Main) metrics() bot.Metrics {
	if m.mets == nil {
		m.mets = bot.NopMetrics{}
	}
	return m.mets
}
