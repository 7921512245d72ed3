package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"time"

	"github.com/orchat/orchat/config"
	"github.com/orchat/orchat/stack"
)

// configPoll is how often config_watch looks at the file.
const configPoll = 500 * time.Millisecond

// readConfig reads the config file and applies the flags that override
// it, without changing the config in force.
func (m *Main) readConfig() (config.Config, error) {
	cfg, err := config.Load(m.ConfigPath, m.Getenv)
	if err != nil {
		return cfg, err
	}
	if m.DBPath != "" {
		cfg.Accounts.Database = m.DBPath
	}
	if m.Upstream != "" {
		cfg.OpenRouter.BaseURL = strings.TrimRight(m.Upstream, "/")
	}
	if m.HTTPAddr != "" {
		cfg.HTTP.Addr = m.HTTPAddr
	}
	return cfg, nil
}

// watchConfig reloads the config on SIGHUP (Hangups) and, with
// config_watch, when the file changes, until ctx ends. A file that does
// not parse or validate keeps the config in force, and the log says why;
// a good one applies at once what a running bot can change and names, in
// the log, what needs a restart.
func (m *Main) watchConfig(ctx context.Context, st *stack.Stack) {
	if m.ConfigPath == "" {
		return
	}
	var tick <-chan time.Time
	if m.Config.ConfigWatch {
		t := time.NewTicker(configPoll)
		defer t.Stop()
		tick = t.C
	}
	last := fileDigest(m.ConfigPath)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-m.Hangups:
			if !ok {
				m.Hangups = nil
				continue
			}
			last = fileDigest(m.ConfigPath)
			m.reload(st, "SIGHUP")
		case <-tick:
			d := fileDigest(m.ConfigPath)
			if d == nil || bytes.Equal(d, last) {
				continue
			}
			last = d
			m.reload(st, "the file changed")
		}
	}
}

// reload reads the config again and applies it to the running stack.
func (m *Main) reload(st *stack.Stack, why string) {
	log := m.logger().With("component", "config", "file", m.ConfigPath, "trigger", why)
	cfg, err := m.readConfig()
	if err != nil {
		log.Error("config reload failed; the running config stays in force", "err", userMessage(err))
		return
	}
	// Against the config the bot started with: what needs a restart is
	// named at every reload until there is one.
	restart := cfg.RestartNeeded(m.Config)
	sc := cfg.Stack()
	sc.Simulate = m.simulated()
	rep, err := st.Reload(sc)
	if err != nil {
		log.Error("config reload failed; the running config stays in force", "err", userMessage(err))
		return
	}
	for _, k := range rep.Kept {
		if !hasKey(restart, k) {
			restart = append(restart, k)
		}
	}
	for _, w := range cfg.Warnings() {
		log.Warn("config: " + w)
	}
	m.live.Store(&cfg)
	attrs := []any{"applied", strings.Join(rep.Applied, ", ")}
	if len(restart) > 0 {
		attrs = append(attrs, "needs_restart", strings.Join(restart, ", "))
		log.Warn("config reloaded; these settings changed but need a restart to apply", attrs...)
		return
	}
	log.Info("config reloaded", attrs...)
}

// inForce is the config the bot runs with: the last one reloaded, else
// the one it started with.
func (m *Main) inForce() config.Config {
	if c := m.live.Load(); c != nil {
		return *c
	}
	return m.Config
}

// fileDigest is a file's SHA-256 (nil when it cannot be read): a change
// of the file, whatever its timestamps say.
func fileDigest(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	return sum[:]
}

func hasKey(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
