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
	// AttachmentFileBytes: documents (PDFs) up to this size are sent as
	// file parts.
	AttachmentFileBytes int64
	// HistoryImages and HistoryImageBytes bound the images of earlier
	// turns (reply chain, thread) kept for vision models: at most this
	// many, each at most AttachmentImageBytes, this many bytes in all.
	HistoryImages     int
	HistoryImageBytes int64
	// LowCreditsUSD: tell host admins when the OpenRouter key has less
	// than this left (0: off).
	LowCreditsUSD float64
}

// Deps are the parts the commands use.
type Deps struct {
	Ledger  bot.Ledger
	Votes   bot.Votes
	Prefs   bot.Preferences
	Catalog bot.Catalog
	Chat    bot.Chat
	// Credits reads the host's OpenRouter credits (nil: not known).
	Credits bot.CreditsSource
	Config  Config
	// Communities, when set, are the community settings (personas, model
	// rules, compare defaults, budgets) and /settings; Pools, Budgets and
	// Alerts the pools, daily caps and admins' alerts beside them. Any of
	// them nil: that part is off.
	Communities *bot.Communities
	Pools       bot.Pools
	Budgets     bot.Budgets
	Alerts      bot.Alerts
	Logger      *slog.Logger
	Metrics     bot.Metrics
	Now         func() time.Time
	// Settler settles and releases holds, retrying failed writes (default:
	// a new one on Ledger; the stack passes its own, to flush at shutdown).
	Settler *Settler
}

// set is the commands sharing one Deps.
type set struct {
	Deps
	list []*bot.Command
	// details keeps reasoning models' reasoning_details for the next turn;
	// lowNotice the admins told that credits run low, once an hour.
	details   *bot.Cache[[]byte]
	lowNotice *bot.Cache[struct{}]
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
	if d.Config.AttachmentFileBytes <= 0 {
		d.Config.AttachmentFileBytes = 10 << 20
	}
	s := &set{Deps: d, details: bot.NewCache[[]byte](10_000, time.Hour, d.Now), lowNotice: bot.NewCache[struct{}](1000, time.Hour, d.Now)}
	s.list = []*bot.Command{
		s.ask(), s.compare(), s.imagine(), s.vote(), s.feedback(), s.leaderboard(),
		s.balance(), s.usage(), s.models(), s.model(), s.help(), s.settings(),
		s.topup(), s.deduct(), s.block(), s.unblock(), s.ledger(), s.credits(),
	}
	return s.list
}
