// Package commands holds every command of orchat, one file each, and the
// argument parser every platform shares. Commands speak only in bot types:
// the ledger, the router and the platform's reply are all interfaces.
package commands

import (
	"log/slog"
	"time"

	"github.com/orchat/orchat/bot"
)

// Config is what the commands need from the configuration.
type Config struct {
	// SystemPrompt with {date}, {time}, {platform}, {community}, {user}.
	SystemPrompt string
	// History bounds the conversation read back from the platform.
	History bot.HistoryLimit
	// AttachmentTextBytes: text files up to this size are inlined.
	AttachmentTextBytes int64
	// AttachmentImageBytes: images up to this size go to vision models.
	AttachmentImageBytes int64
	// CompareModels are /compare's defaults (2-4).
	CompareModels []string
	// CompareMaxTokens caps each model's answer in a compare.
	CompareMaxTokens int
	// Location is the time zone of the free-tier day, for "resets at".
	Location *time.Location
	// LowBalance: tell a user once when their balance falls below it (0: off).
	LowBalance int64
}

// Deps are the parts the commands use.
type Deps struct {
	Ledger  bot.Ledger
	Votes   bot.Votes
	Prefs   bot.Preferences
	Catalog bot.Catalog
	Chat    bot.Chat
	Config  Config
	Logger  *slog.Logger
	Metrics bot.Metrics
	Now     func() time.Time
	// Settler settles and releases holds, retrying failed writes (default:
	// a new one on Ledger; the stack passes its own, to flush at shutdown).
	Settler *Settler
}

// set is the commands sharing one Deps.
type set struct {
	Deps
	list []*bot.Command
}

// New returns every command, in the order /help lists them.
func New(d Deps) []*bot.Command {
	if d.Logger == nil {
		d.Logger = slog.Default().With("component", "commands")
	}
	if d.Metrics == nil {
		d.Metrics = bot.NopMetrics{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Config.Location == nil {
		d.Config.Location = time.UTC
	}
	if d.Settler == nil {
		d.Settler = NewSettler(d.Ledger, d.Logger)
	}
	if d.Config.CompareMaxTokens <= 0 {
		d.Config.CompareMaxTokens = 512
	}
	s := &set{Deps: d}
	s.list = []*bot.Command{
		s.ask(), s.compare(), s.vote(), s.leaderboard(),
		s.balance(), s.usage(), s.models(), s.model(), s.help(),
		s.topup(), s.deduct(), s.block(), s.unblock(), s.ledger(),
	}
	return s.list
}
