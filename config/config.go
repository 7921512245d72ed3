// Package config is orchat's config file: TOML parsed over the defaults,
// ${ENV} references and the secret environment variables applied, and every
// value validated, in one place (CONVENTIONS.md 8). config.example.toml
// documents every key. Nothing reads it globally: the binaries pass it down.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/orchat/orchat/bot"
)

// Config is orchat's whole configuration, as read from a TOML file
// (config.example.toml documents every key).
type Config struct {
	Admins          []string `toml:"admins"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// ConfigWatch reloads the file when it changes, as SIGHUP does.
	ConfigWatch bool `toml:"config_watch"`

	OpenRouter OpenRouterConfig `toml:"openrouter"`
	Router     RouterConfig     `toml:"router"`
	Billing    BillingConfig    `toml:"billing"`
	Accounts   AccountsConfig   `toml:"accounts"`
	Scheduler  SchedulerConfig  `toml:"scheduler"`
	Bot        BotConfig        `toml:"bot"`
	Stream     StreamConfig     `toml:"stream"`
	Compare    CompareConfig    `toml:"compare"`
	Discord    DiscordConfig    `toml:"discord"`
	Slack      SlackConfig      `toml:"slack"`
	Console    ConsoleConfig    `toml:"console"`
	HTTP       HTTPConfig       `toml:"http"`
	Log        LogConfig        `toml:"log"`
}

// OpenRouterConfig is the upstream API: where it is, the key, timeouts.
type OpenRouterConfig struct {
	APIKey           string   `toml:"api_key"`
	BaseURL          string   `toml:"base_url"`
	Referer          string   `toml:"referer"`
	Title            string   `toml:"title"`
	ConnectTimeout   Duration `toml:"connect_timeout"`
	FirstByteTimeout Duration `toml:"first_byte_timeout"`
	IdleTimeout      Duration `toml:"idle_timeout"`
	RequestTimeout   Duration `toml:"request_timeout"`
	MaxRetryAfter    Duration `toml:"max_retry_after"`
	// API is "openrouter", "openai" or "" (OpenRouter when base_url is
	// openrouter.ai's): OpenRouter's extras are used only with it.
	API string `toml:"api"`
	// LowCredits: host admins are told when the key has less than this
	// many USD left (0: never).
	LowCredits float64 `toml:"low_credits"`
}

// RouterConfig is how models are chosen.
type RouterConfig struct {
	MaxTokens           int                 `toml:"max_tokens"`
	MinCompletionTokens int                 `toml:"min_completion_tokens"`
	Temperature         *float64            `toml:"temperature"`
	MaxFallbacks        int                 `toml:"max_fallbacks"`
	MaxAnswerBytes      int                 `toml:"max_answer_bytes"`
	CatalogCache        string              `toml:"catalog_cache"`
	AutoModels          []string            `toml:"auto_models"`
	Tiers               map[string][]string `toml:"tiers"`
	Provider            ProviderConfig      `toml:"provider"`
	Reasoning           ReasoningConfig     `toml:"reasoning"`
	Web                 WebConfig           `toml:"web"`
	Learn               LearnConfig         `toml:"learn"`
	Files               FilesConfig         `toml:"files"`
	ImageModel          string              `toml:"image_model"`
	ImageMaxTokens      int                 `toml:"image_max_tokens"`
}

// ReasoningConfig is how reasoning models think: an effort and whether the
// thinking is shown, for every reasoning model, then per tier, then per
// model id.
type ReasoningConfig struct {
	ReasoningSetting
	MaxTokens int                         `toml:"max_tokens"`
	Tiers     map[string]ReasoningSetting `toml:"tiers"`
	Models    map[string]ReasoningSetting `toml:"models"`
}

// ReasoningSetting is one level of [router.reasoning].
type ReasoningSetting struct {
	Effort string `toml:"effort"`
	Show   *bool  `toml:"show"`
}

// LearnConfig is how the auto router learns from each community's compare
// votes ([router.learn]): min_votes a tier needs in a community before its
// ratings order the candidates, the price band they may choose within (a
// multiple of the router's own choice's price) and how often a community's
// ratings are read again.
type LearnConfig struct {
	MinVotes  int      `toml:"min_votes"`
	PriceBand float64  `toml:"price_band"`
	Refresh   Duration `toml:"refresh"`
}

// WebConfig is the web search plugin.
type WebConfig struct {
	MaxResults int    `toml:"max_results"`
	Engine     string `toml:"engine"`
}

// FilesConfig is how documents are read.
type FilesConfig struct {
	PDFEngine string `toml:"pdf_engine"`
}

// ProviderConfig is OpenRouter's provider routing preferences.
type ProviderConfig struct {
	Order              []string `toml:"order"`
	Only               []string `toml:"only"`
	Ignore             []string `toml:"ignore"`
	AllowFallbacks     *bool    `toml:"allow_fallbacks"`
	Sort               string   `toml:"sort"`
	DataCollection     string   `toml:"data_collection"`
	MaxPromptPrice     float64  `toml:"max_prompt_price"`
	MaxCompletionPrice float64  `toml:"max_completion_price"`
	// The rest of OpenRouter's provider object, with the values its chat
	// spec allows.
	SortPartition          string   `toml:"sort_partition"`
	ZDR                    *bool    `toml:"zdr"`
	RequireParameters      *bool    `toml:"require_parameters"`
	Quantizations          []string `toml:"quantizations"`
	MaxRequestPrice        float64  `toml:"max_request_price"`
	MaxImagePrice          float64  `toml:"max_image_price"`
	PreferredMaxLatency    float64  `toml:"preferred_max_latency"`
	PreferredMinThroughput float64  `toml:"preferred_min_throughput"`
}

// BillingConfig says what one balance token is worth.
type BillingConfig struct {
	Mode        string  `toml:"mode"`
	USDPerToken float64 `toml:"usd_per_token"`
}

// AccountsConfig is the ledger.
type AccountsConfig struct {
	Database                   string   `toml:"database"`
	SignupBonus                int64    `toml:"signup_bonus"`
	FreeRequestsPerDay         int      `toml:"free_requests_per_day"`
	FreeRequestsPerDayToppedUp int      `toml:"free_requests_per_day_topped_up"`
	HoldTTL                    Duration `toml:"hold_ttl"`
	LowBalance                 int64    `toml:"low_balance"`
	// Instance names this process among those sharing the ledger (default
	// the host name): at start it frees the holds its own previous boot
	// left open, and it is the name the leader and shard locks show.
	Instance string `toml:"instance"`
}

// SchedulerConfig is the clock-driven chores.
type SchedulerConfig struct {
	Timezone       string   `toml:"timezone"`
	DailyReset     string   `toml:"daily_reset"`
	CatalogRefresh Duration `toml:"catalog_refresh"`
	HoldSweep      Duration `toml:"hold_sweep"`
	NotifyReset    bool     `toml:"notify_reset"`
	Leader         bool     `toml:"leader"`
}

// BotConfig is the engine and the conversation.
type BotConfig struct {
	SystemPrompt         string   `toml:"system_prompt"`
	RequestTimeout       Duration `toml:"request_timeout"`
	RateLimitPerMinute   float64  `toml:"rate_limit_per_minute"`
	RateLimitBurst       int      `toml:"rate_limit_burst"`
	HistoryMessages      int      `toml:"history_messages"`
	HistoryChars         int      `toml:"history_chars"`
	AttachmentTextBytes  int64    `toml:"attachment_text_bytes"`
	AttachmentImageBytes int64    `toml:"attachment_image_bytes"`
	AttachmentFileBytes  int64    `toml:"attachment_file_bytes"`
	HistoryImages        int      `toml:"history_images"`
	HistoryImageBytes    int64    `toml:"history_image_bytes"`
}

// StreamConfig is how answers are streamed into messages.
type StreamConfig struct {
	EditInterval Duration `toml:"edit_interval"`
}

// CompareConfig is /compare's defaults.
type CompareConfig struct {
	Models    []string `toml:"models"`
	MaxTokens int      `toml:"max_tokens"`
}

// DiscordConfig is the Discord adapter.
type DiscordConfig struct {
	Token  string `toml:"token"`
	APIURL string `toml:"api_url"`
	// ShardCount is how many shards the gateway is split into (0: as
	// many as Discord recommends). ShardID or ShardIDs fix the shards this
	// process serves; with neither, it serves every shard (SQLite) or
	// claims its share with the other processes on the database
	// (PostgreSQL).
	ShardID    int   `toml:"shard_id"`
	ShardIDs   []int `toml:"shard_ids"`
	ShardCount int   `toml:"shard_count"`
	// ShardIDSet reports whether the file set shard_id (0 is a shard).
	ShardIDSet bool     `toml:"-"`
	DevGuilds  []string `toml:"dev_guilds"`
	// AttachmentHosts are the only hosts attachments are downloaded from.
	AttachmentHosts []string `toml:"attachment_hosts"`
	// Threads: a mention in a server channel starts a thread named from
	// the question, and the bot answers every message in threads it
	// started without a mention.
	Threads bool `toml:"threads"`
}

// SlackConfig is the Slack adapter.
type SlackConfig struct {
	BotToken      string            `toml:"bot_token"`
	AppToken      string            `toml:"app_token"`
	SigningSecret string            `toml:"signing_secret"`
	Mode          string            `toml:"mode"`
	APIURL        string            `toml:"api_url"`
	Commands      map[string]string `toml:"commands"`
	// UpdatesPerMinute is this process's share of the workspace's
	// chat.update budget (Slack's Tier 3, about 50 a minute per app and
	// workspace): with several processes serving one app, divide it
	// among them. 0: the adapter's default, 50.
	UpdatesPerMinute int `toml:"updates_per_minute"`
	// NativeStreaming streams answers in threads with Slack's
	// chat.startStream/appendStream/stopStream (default on; chat.update
	// where the workspace refuses).
	NativeStreaming bool `toml:"native_streaming"`
	// AgentView serves Slack's agent messaging experience (the manifest's
	// features.agent_view): DM questions in threads of their own, with
	// suggested prompts, titles and status (default on).
	AgentView bool `toml:"agent_view"`
}

// ConsoleConfig is the terminal adapter.
type ConsoleConfig struct {
	User string `toml:"user"`
	// FilesDir is where the console saves the images the bot sends.
	FilesDir string `toml:"files_dir"`
}

// HTTPConfig is the operations server (health, readiness, metrics).
type HTTPConfig struct {
	Addr string `toml:"addr"`
}

// LogConfig is the structured log.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written as "1s", "15m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like 1s, 500ms, 15m or 1h", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultSystemPrompt is the system prompt when the config gives none.
const DefaultSystemPrompt = "You are orchat, a helpful assistant in a {platform} community ({community}), talking with {user}. Today is {date}, {time}. Answer clearly and concisely; use Markdown sparingly."

// Default returns the configuration used when no file is given; a file
// only needs the keys it changes.
func Default() Config {
	return Config{
		Admins:          nil,
		ShutdownTimeout: Duration{20 * time.Second},
		OpenRouter: OpenRouterConfig{
			BaseURL:          "https://openrouter.ai/api/v1",
			Referer:          "https://github.com/orchat/orchat",
			Title:            "orchat",
			ConnectTimeout:   Duration{10 * time.Second},
			FirstByteTimeout: Duration{90 * time.Second},
			IdleTimeout:      Duration{60 * time.Second},
			RequestTimeout:   Duration{5 * time.Minute},
			MaxRetryAfter:    Duration{20 * time.Second},
			LowCredits:       1,
		},
		Router: RouterConfig{
			MaxTokens:           1024,
			MinCompletionTokens: 64,
			MaxFallbacks:        2,
			Reasoning:           ReasoningConfig{MaxTokens: 8192},
			Web:                 WebConfig{MaxResults: 3},
			Learn:               LearnConfig{MinVotes: 20, PriceBand: 2, Refresh: Duration{time.Minute}},
			Files:               FilesConfig{PDFEngine: "pdf-text"},
			ImageModel:          "google/gemini-2.5-flash-image",
			ImageMaxTokens:      4096,
			MaxAnswerBytes:      512 << 10,
		},
		Billing: BillingConfig{Mode: bot.BillingCost, USDPerToken: 0.000001},
		Accounts: AccountsConfig{
			Database:                   "data/orchat.db",
			SignupBonus:                15000,
			FreeRequestsPerDay:         50,
			FreeRequestsPerDayToppedUp: 1000,
			HoldTTL:                    Duration{15 * time.Minute},
		},
		Scheduler: SchedulerConfig{
			Timezone:       "UTC",
			DailyReset:     "00:00",
			CatalogRefresh: Duration{time.Hour},
			HoldSweep:      Duration{time.Minute},
		},
		Bot: BotConfig{
			SystemPrompt:         DefaultSystemPrompt,
			RequestTimeout:       Duration{5 * time.Minute},
			RateLimitPerMinute:   20,
			RateLimitBurst:       5,
			HistoryMessages:      20,
			HistoryChars:         24000,
			AttachmentTextBytes:  100_000,
			AttachmentImageBytes: 10 << 20,
			AttachmentFileBytes:  20 << 20,
			HistoryImages:        4,
			HistoryImageBytes:    20 << 20,
		},
		Stream:  StreamConfig{EditInterval: Duration{time.Second}},
		Compare: CompareConfig{MaxTokens: 512},
		Discord: DiscordConfig{APIURL: "https://discord.com/api/v9", ShardCount: 1, AttachmentHosts: []string{"cdn.discordapp.com", "media.discordapp.net"}},
		Slack:   SlackConfig{Mode: "socket", APIURL: "https://slack.com/api/", NativeStreaming: true, AgentView: true},
		Console: ConsoleConfig{User: "console:you", FilesDir: "data/files"},
		HTTP:    HTTPConfig{Addr: "127.0.0.1:9464"},
		Log:     LogConfig{Level: "info", Format: "text"},
	}
}

// secretEnv maps environment variables to the secrets they override: set
// and non-empty, the variable wins over the file.
var secretEnv = []struct {
	name string
	dst  func(*Config) *string
}{
	{"OPENROUTER_API_KEY", func(c *Config) *string { return &c.OpenRouter.APIKey }},
	{"DISCORD_BOT_TOKEN", func(c *Config) *string { return &c.Discord.Token }},
	{"SLACK_BOT_TOKEN", func(c *Config) *string { return &c.Slack.BotToken }},
	{"SLACK_APP_TOKEN", func(c *Config) *string { return &c.Slack.AppToken }},
	{"SLACK_SIGNING_SECRET", func(c *Config) *string { return &c.Slack.SigningSecret }},
	{"ORCHAT_DATABASE_URL", func(c *Config) *string { return &c.Accounts.Database }},
}

// Parse reads TOML from r over the defaults, expands ${ENV}
// references in string values, applies the secret environment variables
// and validates the result. getenv is os.Getenv outside tests.
func Parse(r io.Reader, getenv func(string) string) (Config, error) {
	cfg := Default()
	if r != nil {
		data, err := io.ReadAll(r)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		md, err := toml.Decode(string(data), &cfg)
		if err != nil {
			return cfg, configDecodeError(err, string(data))
		}
		cfg.Discord.ShardIDSet = md.IsDefined("discord", "shard_id")
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return cfg, fmt.Errorf("config: unknown key %s: check the spelling against config.example.toml", strings.Join(keys, ", "))
		}
	}
	if err := expandEnv(reflect.ValueOf(&cfg).Elem(), getenv); err != nil {
		return cfg, err
	}
	for _, s := range secretEnv {
		if v := getenv(s.name); v != "" {
			*s.dst(&cfg) = v
		}
	}
	return cfg, cfg.Validate()
}

// Load reads the file at path, or only the defaults (and the
// environment) when path is "".
func Load(path string, getenv func(string) string) (Config, error) {
	if path == "" {
		return Parse(nil, getenv)
	}
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f, getenv)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// configDecodeError turns a TOML error into one line naming the line and,
// for a bad value ("15 minutes" for a duration, a number too large), the
// key it was given for.
func configDecodeError(err error, data string) error {
	var perr toml.ParseError
	if errors.As(err, &perr) {
		msg := perr.Message
		if k := perr.LastKey; k != "" && !strings.Contains(msg, k) && lineDefines(data, perr.Position.Line, k) {
			msg = k + ": " + msg
		}
		return fmt.Errorf("config: line %d: %s", perr.Position.Line, msg)
	}
	return fmt.Errorf("config: %w", err)
}

// lineDefines reports whether line n (from 1) of data sets key's last part:
// the parser's last key is only the culprit when the failing line is its
// own, not after a syntax error further on.
func lineDefines(data string, n int, key string) bool {
	lines := strings.Split(data, "\n")
	if n < 1 || n > len(lines) {
		return false
	}
	name := key[strings.LastIndexByte(key, '.')+1:]
	rest, ok := strings.CutPrefix(strings.TrimSpace(lines[n-1]), name)
	return ok && strings.HasPrefix(strings.TrimSpace(rest), "=")
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} in every string of v with the environment
// variable's value. A reference to an unset variable is an error: a secret
// silently becoming "" is worse than a clear refusal to start.
func expandEnv(v reflect.Value, getenv func(string) string) error {
	switch v.Kind() {
	case reflect.String:
		var missing []string
		s := envRef.ReplaceAllStringFunc(v.String(), func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			val := getenv(name)
			if val == "" {
				missing = append(missing, name)
			}
			return val
		})
		if len(missing) > 0 {
			return fmt.Errorf("config: ${%s} is referenced but the environment variable is not set", missing[0])
		}
		v.SetString(s)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if err := expandEnv(v.Field(i), getenv); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := expandEnv(v.Index(i), getenv); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			if err := expandEnv(e, getenv); err != nil {
				return err
			}
			v.SetMapIndex(k, e)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			return expandEnv(v.Elem(), getenv)
		}
	}
	return nil
}

// Validate checks every value; the error names the key, the value and what
// is allowed.
func (c Config) Validate() error {
	var errs []string
	bad := func(key string, val any, allowed string) {
		errs = append(errs, fmt.Sprintf("%s = %v: %s", key, quoteVal(val), allowed))
	}
	for _, a := range c.Admins {
		if err := bot.Identity(a).Validate(); err != nil {
			bad("admins", a, bot.ErrorMessage(err))
		}
	}
	positiveDur := func(key string, d Duration) {
		if d.Duration <= 0 {
			bad(key, d.Duration, "must be a positive duration such as 10s")
		}
	}
	positiveDur("shutdown_timeout", c.ShutdownTimeout)
	if !strings.HasPrefix(c.OpenRouter.BaseURL, "http://") && !strings.HasPrefix(c.OpenRouter.BaseURL, "https://") {
		bad("openrouter.base_url", c.OpenRouter.BaseURL, "must be an http:// or https:// URL")
	}
	positiveDur("openrouter.connect_timeout", c.OpenRouter.ConnectTimeout)
	positiveDur("openrouter.first_byte_timeout", c.OpenRouter.FirstByteTimeout)
	positiveDur("openrouter.idle_timeout", c.OpenRouter.IdleTimeout)
	positiveDur("openrouter.request_timeout", c.OpenRouter.RequestTimeout)
	positiveDur("openrouter.max_retry_after", c.OpenRouter.MaxRetryAfter) // the router would silently use 30s instead
	if c.Router.MaxTokens < 1 || c.Router.MaxTokens > 1_000_000 {
		bad("router.max_tokens", c.Router.MaxTokens, "must be between 1 and 1000000")
	}
	if c.Router.MinCompletionTokens < 1 || c.Router.MinCompletionTokens > c.Router.MaxTokens {
		bad("router.min_completion_tokens", c.Router.MinCompletionTokens, "must be between 1 and router.max_tokens")
	}
	if t := c.Router.Temperature; t != nil && (*t < 0 || *t > 2) {
		bad("router.temperature", *t, "must be between 0 and 2")
	}
	if c.Router.MaxFallbacks < 0 || c.Router.MaxFallbacks > 5 {
		bad("router.max_fallbacks", c.Router.MaxFallbacks, "must be between 0 and 5")
	}
	if c.Router.MaxAnswerBytes < 1024 || c.Router.MaxAnswerBytes > 64<<20 {
		bad("router.max_answer_bytes", c.Router.MaxAnswerBytes, "must be between 1024 and 67108864 (64 MiB); the default 524288 is 512 KiB")
	}
	for tier := range c.Router.Tiers {
		if !slices.Contains([]string{"fast", "general", "code", "reasoning", "long", "vision", "free"}, tier) {
			bad("router.tiers."+tier, "…", "unknown tier: use fast, general, code, reasoning, long, vision or free")
		}
	}
	// The router's own settings (provider preferences, reasoning, web,
	// files) are checked by the router, each naming its key.
	if err := c.router().Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "openrouter.base_url") && !strings.HasPrefix(line, "router.max_tokens") &&
				!strings.HasPrefix(line, "router.min_completion_tokens") && !strings.HasPrefix(line, "router.temperature") &&
				!strings.HasPrefix(line, "router.max_fallbacks") && !strings.HasPrefix(line, "router.tiers.") && !strings.HasPrefix(line, "billing.") {
				errs = append(errs, line)
			}
		}
	}
	if c.OpenRouter.LowCredits < 0 {
		bad("openrouter.low_credits", c.OpenRouter.LowCredits, "must be 0 (off) or a USD amount")
	}
	if c.Bot.AttachmentFileBytes < 0 || c.Bot.HistoryImages < 0 || c.Bot.HistoryImageBytes < 0 {
		bad("bot.attachment_file_bytes, bot.history_images, bot.history_image_bytes", "…", "must be 0 or more")
	}
	if c.Billing.Mode != bot.BillingCost && c.Billing.Mode != bot.BillingRaw {
		bad("billing.mode", c.Billing.Mode, `must be "cost" or "raw"`)
	}
	if c.Billing.USDPerToken <= 0 || c.Billing.USDPerToken > 1 {
		bad("billing.usd_per_token", c.Billing.USDPerToken, "must be a positive USD amount such as 0.000001")
	}
	if c.Accounts.Database == "" {
		bad("accounts.database", c.Accounts.Database, "must be a file path such as data/orchat.db or a postgres:// URL")
	}
	if c.Accounts.SignupBonus < 0 || c.Accounts.SignupBonus > bot.MaxAmount {
		bad("accounts.signup_bonus", c.Accounts.SignupBonus, "must be between 0 and 1000000000000")
	}
	if c.Accounts.FreeRequestsPerDay < 0 {
		bad("accounts.free_requests_per_day", c.Accounts.FreeRequestsPerDay, "must be 0 or more")
	}
	if c.Accounts.FreeRequestsPerDayToppedUp < 0 {
		bad("accounts.free_requests_per_day_topped_up", c.Accounts.FreeRequestsPerDayToppedUp, "must be 0 or more")
	}
	positiveDur("accounts.hold_ttl", c.Accounts.HoldTTL)
	if len(c.Accounts.Instance) > 100 || strings.ContainsFunc(c.Accounts.Instance, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		bad("accounts.instance", c.Accounts.Instance, "must be a name of at most 100 printable characters, such as web-1 (default: the host name)")
	}

	if c.Accounts.LowBalance < 0 {
		bad("accounts.low_balance", c.Accounts.LowBalance, "must be 0 (off) or more")
	}
	if _, err := time.LoadLocation(c.Scheduler.Timezone); err != nil || c.Scheduler.Timezone == "" {
		bad("scheduler.timezone", c.Scheduler.Timezone, "must be an IANA time zone such as UTC or Europe/Berlin")
	}
	if _, err := time.Parse("15:04", c.Scheduler.DailyReset); err != nil {
		bad("scheduler.daily_reset", c.Scheduler.DailyReset, `must be a time of day written HH:MM, such as "00:00"`)
	}
	positiveDur("scheduler.catalog_refresh", c.Scheduler.CatalogRefresh)
	positiveDur("scheduler.hold_sweep", c.Scheduler.HoldSweep)
	positiveDur("bot.request_timeout", c.Bot.RequestTimeout)
	if c.Bot.RateLimitPerMinute < 0 {
		bad("bot.rate_limit_per_minute", c.Bot.RateLimitPerMinute, "must be 0 (off) or more")
	}
	if c.Bot.RateLimitBurst < 0 {
		bad("bot.rate_limit_burst", c.Bot.RateLimitBurst, "must be 0 or more")
	}
	if c.Bot.HistoryMessages < 0 || c.Bot.HistoryMessages > 200 {
		bad("bot.history_messages", c.Bot.HistoryMessages, "must be between 0 and 200")
	}
	if c.Bot.HistoryChars < 0 {
		bad("bot.history_chars", c.Bot.HistoryChars, "must be 0 or more")
	}
	if c.Bot.AttachmentTextBytes < 0 {
		bad("bot.attachment_text_bytes", c.Bot.AttachmentTextBytes, "must be 0 or more")
	}
	if c.Bot.AttachmentImageBytes < 0 {
		bad("bot.attachment_image_bytes", c.Bot.AttachmentImageBytes, "must be 0 or more")
	}
	positiveDur("stream.edit_interval", c.Stream.EditInterval)
	if n := len(c.Compare.Models); n != 0 && (n < 2 || n > 4) {
		bad("compare.models", c.Compare.Models, "must list 2 to 4 models (or none for the defaults)")
	}
	if c.Compare.MaxTokens < 1 {
		bad("compare.max_tokens", c.Compare.MaxTokens, "must be 1 or more")
	}
	c.validateShards(bad)
	if !strings.HasPrefix(c.Discord.APIURL, "http://") && !strings.HasPrefix(c.Discord.APIURL, "https://") {
		bad("discord.api_url", c.Discord.APIURL, "must be an http:// or https:// URL")
	}
	if len(c.Discord.AttachmentHosts) == 0 {
		bad("discord.attachment_hosts", "[]", `must list at least one host, such as "cdn.discordapp.com" (attachments are downloaded from these only)`)
	}
	for _, h := range c.Discord.AttachmentHosts {
		if u, err := url.Parse("https://" + h); h == "" || err != nil || u.Host != h || u.Hostname() == "" {
			bad("discord.attachment_hosts", h, `must be a host name (with an optional :port), such as "cdn.discordapp.com", without https:// or a path`)
		}
	}
	if c.Slack.UpdatesPerMinute < 0 || c.Slack.UpdatesPerMinute > 100000 {
		bad("slack.updates_per_minute", c.Slack.UpdatesPerMinute, "must be between 1 and 100000, or 0 for Slack's 50 a minute")
	}
	if c.Slack.Mode != "socket" && c.Slack.Mode != "http" {
		bad("slack.mode", c.Slack.Mode, `must be "socket" or "http"`)
	}
	if !strings.HasPrefix(c.Slack.APIURL, "http://") && !strings.HasPrefix(c.Slack.APIURL, "https://") {
		bad("slack.api_url", c.Slack.APIURL, "must be an http:// or https:// URL")
	}
	if c.Slack.Mode == "http" && c.Slack.BotToken != "" && c.Slack.SigningSecret == "" {
		bad("slack.signing_secret", "", `is required when slack.mode = "http" (or set SLACK_SIGNING_SECRET)`)
	}
	if c.Slack.Mode == "socket" && c.Slack.BotToken != "" && c.Slack.AppToken == "" {
		bad("slack.app_token", "", `is required in Socket Mode: set SLACK_APP_TOKEN (xapp-…, scope connections:write), or slack.mode = "http" with SLACK_SIGNING_SECRET`)
	}
	if c.Slack.Mode == "http" && c.Slack.BotToken != "" && c.HTTP.Addr == "" {
		bad("http.addr", "", `must be set when slack.mode = "http": Slack's events are served on the [http] server`)
	}
	if err := bot.Identity(c.Console.User).Validate(); err != nil || bot.Identity(c.Console.User).Platform() != bot.PlatformConsole {
		bad("console.user", c.Console.User, "must be a console identity such as console:you")
	}
	if c.Log.Level != "debug" && c.Log.Level != "info" && c.Log.Level != "warn" && c.Log.Level != "error" {
		bad("log.level", c.Log.Level, `must be "debug", "info", "warn" or "error"`)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", c.Log.Format, `must be "text" or "json"`)
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return fmt.Errorf("config: %s", strings.Join(errs, "; "))
}

// Warnings lists settings that are allowed but probably not meant, for
// the log at start-up.
func (c Config) Warnings() []string {
	var w []string
	if c.Accounts.HoldTTL.Duration <= c.Bot.RequestTimeout.Duration {
		w = append(w, fmt.Sprintf("accounts.hold_ttl (%s) is not longer than bot.request_timeout (%s): an answer that outlives its hold is not charged",
			c.Accounts.HoldTTL.Duration, c.Bot.RequestTimeout.Duration))
	}
	return w
}

// quoteVal writes a config value for an error message: strings quoted,
// secrets never (validation never reports a secret's value).
func quoteVal(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// Location returns the configured time zone (validated already).
func (c Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Scheduler.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// AdminIdentities returns the admins as identities.
func (c Config) AdminIdentities() []bot.Identity {
	ids := make([]bot.Identity, len(c.Admins))
	for i, a := range c.Admins {
		ids[i] = bot.Identity(a)
	}
	return ids
}

// RestartNeeded names the keys that differ between c and the config in
// force (old) but that a running orchat cannot change: tokens and secrets
// (named, never shown), addresses, the database, the scheduler's clock,
// the log, the adapters' fixed settings. A reload applies the rest at once.
func (c Config) RestartNeeded(old Config) []string {
	var keys []string
	diff := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	diff("accounts.database", c.Accounts.Database != old.Accounts.Database)
	diff("accounts.hold_ttl", c.Accounts.HoldTTL != old.Accounts.HoldTTL)
	diff("openrouter.api_key", c.OpenRouter.APIKey != old.OpenRouter.APIKey)
	diff("openrouter.base_url", c.OpenRouter.BaseURL != old.OpenRouter.BaseURL)
	diff("router.catalog_cache", c.Router.CatalogCache != old.Router.CatalogCache)
	diff("discord.token", c.Discord.Token != old.Discord.Token)
	diff("discord.api_url", c.Discord.APIURL != old.Discord.APIURL)
	diff("discord.shard_id", c.Discord.ShardID != old.Discord.ShardID || c.Discord.ShardIDSet != old.Discord.ShardIDSet)
	diff("discord.shard_ids", !slices.Equal(c.Discord.ShardIDs, old.Discord.ShardIDs))
	diff("discord.shard_count", c.Discord.ShardCount != old.Discord.ShardCount)
	diff("discord.dev_guilds", !slices.Equal(c.Discord.DevGuilds, old.Discord.DevGuilds))
	diff("slack.bot_token", c.Slack.BotToken != old.Slack.BotToken)
	diff("slack.app_token", c.Slack.AppToken != old.Slack.AppToken)
	diff("slack.signing_secret", c.Slack.SigningSecret != old.Slack.SigningSecret)
	diff("slack.mode", c.Slack.Mode != old.Slack.Mode)
	diff("slack.api_url", c.Slack.APIURL != old.Slack.APIURL)
	diff("slack.commands", !reflect.DeepEqual(c.Slack.Commands, old.Slack.Commands))
	diff("slack.native_streaming", c.Slack.NativeStreaming != old.Slack.NativeStreaming)
	diff("slack.agent_view", c.Slack.AgentView != old.Slack.AgentView)
	diff("scheduler", c.Scheduler != old.Scheduler)
	diff("http.addr", c.HTTP.Addr != old.HTTP.Addr)
	diff("log", c.Log != old.Log)
	diff("console.user", c.Console.User != old.Console.User)
	diff("stream.edit_interval", c.Stream.EditInterval != old.Stream.EditInterval)
	diff("bot.history_messages", c.Bot.HistoryMessages != old.Bot.HistoryMessages)
	diff("bot.history_chars", c.Bot.HistoryChars != old.Bot.HistoryChars)
	diff("config_watch", c.ConfigWatch != old.ConfigWatch)
	return keys
}
