// Package discord is orchat's Discord adapter: it connects to the gateway with
// discordgo, turns mentions, DMs, replies to the bot, slash commands and vote
// buttons into bot.Events for a bot.Handler, and renders the bot's messages as
// embeds (streamed by edits, split past Discord's limits, compares as one
// embed per model with vote buttons).
//
// Every interaction is acknowledged before the handler runs (a deferred
// response, ephemeral for private commands), every message is sent with
// allowed mentions that ping nobody, and redelivered events are handled once.
// All REST calls, including the gateway lookup, go to Options.APIURL through
// the session's own HTTP transport, so the adapter runs behind a REST proxy
// and against the loopback fake in discord/discordtest.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/orchat/orchat/bot"
)

// DefaultAPIURL is Discord's REST API, the default for Options.APIURL.
const DefaultAPIURL = "https://discord.com/api/v9"

// Intents are the gateway intents the adapter asks for: guilds (channel and
// thread state), guild messages and DMs, and message content (to read
// replies to the bot that do not mention it; a privileged intent to enable
// in the developer portal).
const Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages |
	discordgo.IntentsDirectMessages | discordgo.IntentsMessageContent

// Options configure the adapter.
type Options struct {
	// Token is the bot token (DISCORD_BOT_TOKEN), without "Bot ".
	Token string
	// APIURL is the REST base, default DefaultAPIURL. Every REST call and
	// the gateway lookup go there; the gateway URL it returns is used as given.
	APIURL string
	// ShardCount is how many shards the bot's gateway is split into: 1
	// (or less than 0) none; 0 what GET /gateway/bot recommends.
	ShardCount int
	// Shards are the shards this process serves (discord.shard_id or
	// discord.shard_ids). Empty: the shards it claims through OpenLocks,
	// or every shard without OpenLocks.
	Shards []int
	// OpenLocks, when set (processes share a PostgreSQL database), opens
	// the session of locks through which processes claim shards (when
	// Shards is empty) and take turns to identify (always); Holders then
	// says who holds a lock. See shards.go.
	OpenLocks func(ctx context.Context) (Locks, error)
	Holders   LockHolders
	// Leader, when set, says whether this process is the one of several
	// sharing the ledger that registers the slash commands (the
	// scheduler's leader); nil: the process serving shard 0 does (one
	// process: this one).
	Leader func() bool
	// IdentifyInterval is how long one rate-limit bucket (shard_id %
	// max_concurrency) waits between identifies (default
	// DefaultIdentifyInterval, Discord's 5 s; tests shorten it to their
	// fake's window).
	IdentifyInterval time.Duration
	// Rebalance is how often a process claiming shards looks for
	// processes that came or went (default DefaultRebalance).
	Rebalance time.Duration
	// DevGuilds, when set, registers the slash commands in these guilds
	// (instant updates) instead of globally.
	DevGuilds []string
	// Commands are registered as slash commands on start.
	Commands []*bot.Command
	// Catalog answers the autocomplete of model options; nil offers none.
	Catalog bot.Catalog
	// Rules, when set, are the communities' model rules: autocomplete
	// offers only the models allowed where it was asked.
	Rules bot.ModelRules
	// Handler answers every event (the Engine).
	Handler bot.Handler
	// History caps what the adapter reads back for a conversation (also
	// bounded by what the command asks for). Zero: 20 messages.
	History bot.HistoryLimit
	Logger  *slog.Logger
	Metrics bot.Metrics
	// HTTPClient's transport, when set, carries the REST calls (its
	// timeout too); default http.DefaultTransport and 20 s.
	HTTPClient *http.Client
	// AttachmentHosts are the only hosts attachments are downloaded from
	// (discord.attachment_hosts; default DefaultAttachmentHosts), over
	// https only and never following a redirect off them: an event naming
	// another address (or a redirect to 127.0.0.1) fetches nothing. An
	// entry may name a port ("127.0.0.1:8443", as tests do).
	AttachmentHosts []string
	// AttachmentClient downloads attachments (its transport and timeout;
	// default http.DefaultTransport and 30 s). Its redirect policy is
	// replaced by the host check. Tests pass their fake CDN's TLS client.
	AttachmentClient *http.Client
	// TokenLife is how long an interaction token may be used for follow-ups
	// (Discord: 15 minutes); after it, replies go to the channel (or a DM
	// when private). Tests shorten it.
	TokenLife time.Duration
	// DrainTimeout is how long Run waits, once its context ends, for
	// answers in flight before cancelling them (default 30 s).
	DrainTimeout time.Duration
	// Threads (discord.threads): a mention in a server's text channel
	// starts a thread from it, named from the question, and the answer
	// goes there. Whether or not it is set, the bot answers every message
	// in the threads it started, without a mention, with the thread as
	// context; it archives nothing (Discord archives idle threads). A
	// community or channel decides for itself with /settings threads
	// (read through Rules, when it can show the settings in force).
	Threads bool
	// ThreadStore remembers the threads the bot started (default: in
	// this process only; a store shared by the processes lets every
	// shard answer in them).
	ThreadStore bot.ThreadStore
}

// Adapter is the Discord platform: a gateway session for each shard this
// process serves (shards.go) and the REST calls its answers make, through
// a session of its own.
type Adapter struct {
	opts    Options
	log     *slog.Logger
	metrics bot.Metrics
	session *discordgo.Session // REST only; its State is every shard's
	api     rest

	gate       *identifyGate
	fatal      chan error    // a shard's refusal that retrying cannot help
	firstReady chan struct{} // closed at the first READY
	readyOnce  sync.Once
	shardMu    sync.Mutex
	shards     map[int]*shard
	shardCount int // 0 until Run has asked Discord
	locksMu    sync.Mutex
	locks      Locks // the current lock session, or nil (guarded by locksMu: the gate reads it while shardMu may be held)

	commands   map[string]*bot.Command // by registered (Discord) name
	registered atomic.Bool

	mu     sync.Mutex
	botID  string
	appID  string
	dms    map[string]string // user id → DM channel id
	chans  map[string]channelMeta
	seen   *bot.Cache[struct{}]
	votes  *bot.Cache[*compareRef]
	guilds *bot.Cache[*guildRoles] // for the permissions of a message's author
	closed bool
	files  *http.Client // attachment downloads (see filesClient)

	serving atomic.Bool // the shards to serve are known (a process may serve none, waiting for a share)
	threads bot.ThreadStore

	inflight sync.WaitGroup
	work     context.Context // the context answers run with
	stopWork context.CancelFunc
}

// rest is the part of discordgo's REST API the adapter uses (interaction
// callbacks go around it: see Adapter.respond).
type rest interface {
	InteractionResponseDelete(i *discordgo.Interaction, opts ...discordgo.RequestOption) error
	// RequestWithLockedBucket carries the webhook calls, each in its
	// interaction's bucket (see Adapter.webhook), files too (multipart).
	RequestWithLockedBucket(method, url, contentType string, b []byte, bucket *discordgo.Bucket, sequence int, opts ...discordgo.RequestOption) ([]byte, error)
	ChannelMessageSendComplex(channelID string, m *discordgo.MessageSend, opts ...discordgo.RequestOption) (*discordgo.Message, error)
	ChannelMessageEditComplex(m *discordgo.MessageEdit, opts ...discordgo.RequestOption) (*discordgo.Message, error)
	ChannelMessage(channelID, messageID string, opts ...discordgo.RequestOption) (*discordgo.Message, error)
	ChannelMessages(channelID string, limit int, before, after, around string, opts ...discordgo.RequestOption) ([]*discordgo.Message, error)
	ChannelTyping(channelID string, opts ...discordgo.RequestOption) error
	Channel(channelID string, opts ...discordgo.RequestOption) (*discordgo.Channel, error)
	UserChannelCreate(userID string, opts ...discordgo.RequestOption) (*discordgo.Channel, error)
	ApplicationCommandBulkOverwrite(appID, guildID string, cmds []*discordgo.ApplicationCommand, opts ...discordgo.RequestOption) ([]*discordgo.ApplicationCommand, error)
	Guild(guildID string, opts ...discordgo.RequestOption) (*discordgo.Guild, error)
	MessageThreadStartComplex(channelID, messageID string, data *discordgo.ThreadStart, opts ...discordgo.RequestOption) (*discordgo.Channel, error)
}

var _ rest = (*discordgo.Session)(nil)

// New returns an adapter; Run connects it.
func New(opts Options) (*Adapter, error) {
	if strings.TrimSpace(opts.Token) == "" {
		return nil, errors.New("discord: a bot token is required (DISCORD_BOT_TOKEN or discord.token)")
	}
	if opts.Handler == nil {
		return nil, errors.New("discord: a handler is required")
	}
	opts.Token = strings.TrimPrefix(strings.TrimSpace(opts.Token), "Bot ")
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	base, err := url.Parse(strings.TrimRight(opts.APIURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("discord: api_url %q is not an http(s) URL", opts.APIURL)
	}
	if opts.ShardCount < 0 {
		opts.ShardCount = 1
	}
	seen := map[int]bool{}
	for _, id := range opts.Shards {
		if id < 0 || (opts.ShardCount > 0 && id >= opts.ShardCount) {
			return nil, fmt.Errorf("discord: shard %d is outside 0..%d", id, max(opts.ShardCount, 1)-1)
		}
		if seen[id] {
			return nil, fmt.Errorf("discord: shard %d is listed twice", id)
		}
		seen[id] = true
	}
	if opts.OpenLocks != nil && opts.Holders == nil {
		return nil, errors.New("discord: OpenLocks needs Holders (who holds a lock)")
	}
	if opts.IdentifyInterval <= 0 {
		opts.IdentifyInterval = DefaultIdentifyInterval
	}
	if opts.Rebalance <= 0 {
		opts.Rebalance = DefaultRebalance
	}
	if opts.History.Messages <= 0 {
		opts.History.Messages = 20
	}
	if len(opts.AttachmentHosts) == 0 {
		opts.AttachmentHosts = DefaultAttachmentHosts()
	}
	if opts.TokenLife <= 0 {
		opts.TokenLife = 15 * time.Minute
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "discord")
	}
	if opts.Metrics == nil {
		opts.Metrics = bot.NopMetrics{}
	}

	s, err := discordgo.New("Bot " + opts.Token)
	if err != nil {
		return nil, fmt.Errorf("discord: session: %w", err)
	}
	baseRT := http.DefaultTransport
	timeout := 20 * time.Second
	if opts.HTTPClient != nil {
		if opts.HTTPClient.Transport != nil {
			baseRT = opts.HTTPClient.Transport
		}
		if opts.HTTPClient.Timeout > 0 {
			timeout = opts.HTTPClient.Timeout
		}
	}
	s.Client = &http.Client{Timeout: timeout, Transport: &transport{base: baseRT, api: base, metrics: opts.Metrics}}
	s.Identify.Intents = Intents
	s.LogLevel = discordgo.LogError // higher levels print the identify payload, token included
	// Handlers run on the gateway's reading goroutine, in order, so READY
	// (the bot's own id) is known before the first message; every handler
	// hands its slow work to a goroutine.
	s.SyncEvents = true
	s.State.MaxMessageCount = 0
	s.State.TrackPresences = false
	s.State.TrackMembers = false
	s.State.TrackVoice = false
	s.State.TrackEmojis = false
	s.State.TrackRoles = false

	a := &Adapter{
		opts: opts, log: opts.Logger, metrics: opts.Metrics, session: s, api: s,
		commands: map[string]*bot.Command{},
		dms:      map[string]string{}, chans: map[string]channelMeta{},
		seen: bot.NewCache[struct{}](100_000, time.Hour, nil), votes: bot.NewCache[*compareRef](2000, 0, nil),
		guilds: bot.NewCache[*guildRoles](10_000, 5*time.Minute, nil),
		fatal:  make(chan error, 1), firstReady: make(chan struct{}), shards: map[int]*shard{},
	}
	a.gate = newIdentifyGate(opts.IdentifyInterval, opts.Logger, a.currentLocks)
	a.files = a.filesClient(opts.AttachmentClient)
	a.threads = opts.ThreadStore
	if a.threads == nil {
		a.threads = newMemThreads()
	}
	for _, c := range opts.Commands {
		a.commands[commandName(c.Name)] = c
	}
	a.work, a.stopWork = context.WithCancel(context.Background())
	return a, nil
}

// Connected reports whether the gateway sessions of every shard this
// process serves are up (for /readyz).
func (a *Adapter) Connected() bool {
	if !a.serving.Load() {
		return false
	}
	return a.connectedShards()
}

// Run connects this process's shards to the gateway and serves events
// until ctx ends; then it stops taking events, waits for answers in
// flight (up to DrainTimeout, after which they are cancelled) and closes
// the sessions. It first asks GET /gateway/bot for the shard count (when
// ShardCount is 0) and the identify concurrency. discordgo reconnects and
// resumes on its own while Run is running; a failure to connect is
// retried with backoff, except a refused token, intents or sharding,
// which ends Run.
func (a *Adapter) Run(ctx context.Context) error {
	claim, err := a.planShards(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	if claim {
		bg.Add(1)
		go func() { defer bg.Done(); a.claim(ctx) }()
	} else {
		a.serving.Store(true)
	}
	if !claim && a.opts.OpenLocks != nil {
		bg.Add(1)
		go func() { defer bg.Done(); a.keepLocks(ctx) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); a.registerWhenDue(ctx) }()
	var fatal error
	select {
	case <-ctx.Done():
	case fatal = <-a.fatal:
	}

	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.opts.DrainTimeout):
		a.log.Warn("answers still in flight at shutdown: cancelling them")
		a.stopWork()
		<-done
	}
	cancel() // no more claims
	bg.Wait()
	owned, _ := a.Shards()
	a.stopShards(owned)
	a.stopWork()
	a.serving.Store(false)
	return fatal
}

// fatalOpenError says why retrying the connection cannot help ("" when it
// may): the token was refused (REST 401, gateway close 4004) or the intents
// are not allowed (4014: the Message Content intent is off).
func fatalOpenError(err error) string {
	var rerr *discordgo.RESTError
	if errors.As(err, &rerr) && rerr.Response != nil && rerr.Response.StatusCode == http.StatusUnauthorized {
		return "Discord refused the bot token (check DISCORD_BOT_TOKEN or discord.token)"
	}
	var cerr *websocket.CloseError
	if errors.As(err, &cerr) {
		switch cerr.Code {
		case 4004:
			return "Discord refused the bot token (check DISCORD_BOT_TOKEN or discord.token)"
		case 4013, 4014:
			return "Discord refused the gateway intents: enable the Message Content intent (Developer Portal → Bot → Privileged Gateway Intents)"
		case 4010, 4011:
			return "Discord refused the sharding (check discord.shard_id and discord.shard_count)"
		case 4012:
			return "Discord refused the gateway version"
		}
	}
	return ""
}

// redact removes the token from an error's text, should a library ever put
// it there.
func (a *Adapter) redact(err error) error { return redactSecret(err, a.opts.Token, "[token]") }

// redactInteraction removes the bot token and an interaction's token from
// an error's text. The interaction token is in the URL of every callback
// and webhook call, and net/http quotes the URL in its errors (a timeout,
// a reset connection); for 15 minutes it posts and edits as the bot.
func (a *Adapter) redactInteraction(err error, i *discordgo.Interaction) error {
	err = a.redact(err)
	if i != nil {
		err = redactSecret(err, i.Token, "[interaction token]")
	}
	return err
}

func redactSecret(err error, secret, mark string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), secret, mark), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

func (a *Adapter) onReady(s *discordgo.Session, r *discordgo.Ready) {
	a.mu.Lock()
	if r.User != nil {
		a.botID = r.User.ID
	}
	if r.Application != nil && r.Application.ID != "" {
		a.appID = r.Application.ID
	} else if a.appID == "" {
		a.appID = a.botID // the application id of a bot equals its user id
	}
	appID := a.appID
	botID := a.botID
	a.mu.Unlock()
	shard := 0
	if r.Shard != nil {
		shard = r.Shard[0]
	}
	a.log.Info("gateway ready", "bot", botID, "app", appID, "shard", shard, "guilds", len(r.Guilds))
	a.readyOnce.Do(func() { close(a.firstReady) })
}

func (a *Adapter) onResumed(s *discordgo.Session, r *discordgo.Resumed) {
	a.log.Info("gateway session resumed")
}

func (a *Adapter) ids() (botID, appID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botID, a.appID
}

// start runs f as an answer in flight, unless Run is shutting down.
func (a *Adapter) start(f func(ctx context.Context)) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.inflight.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.inflight.Done()
		f(a.work)
	}()
	return true
}

// transport sends discordgo's requests, aimed at discord.com, to the
// configured API base, and counts 429 answers.
type transport struct {
	base    http.RoundTripper
	api     *url.URL
	metrics bot.Metrics
}

// defaultAPI is where discordgo aims every request (its package endpoints).
var defaultAPI = mustParse(discordgo.EndpointAPI)

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == defaultAPI.Scheme && req.URL.Host == defaultAPI.Host && strings.HasPrefix(req.URL.Path, defaultAPI.Path) {
		r := req.Clone(req.Context())
		u := *t.api
		u.Path = strings.TrimRight(t.api.Path, "/") + "/" + strings.TrimPrefix(req.URL.Path, defaultAPI.Path)
		u.RawPath = ""
		if req.URL.RawPath != "" {
			u.RawPath = strings.TrimRight(t.api.EscapedPath(), "/") + "/" + strings.TrimPrefix(req.URL.RawPath, defaultAPI.Path)
		}
		u.RawQuery = req.URL.RawQuery
		r.URL, r.Host = &u, ""
		req = r
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		t.metrics.PlatformRateLimited(bot.PlatformDiscord)
	}
	return resp, err
}
