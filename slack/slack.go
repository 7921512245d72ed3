// Package slack is orchat's Slack adapter. It connects with Socket Mode by
// default (no public URL needed; Events API over HTTP as an option), turns
// mentions, thread replies, DMs, slash commands and vote buttons into
// bot.Events, and shows the engine's answers as Block Kit messages: streamed
// into a thread with chat.update, paced per workspace, with private replies
// ephemeral.
//
// Only this package imports slack-go (aliased slackapi, since this package
// is also called slack).
package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/orchat/orchat/bot"
)

// Connection modes.
const (
	ModeSocket = "socket" // Socket Mode: a websocket the app opens (default)
	ModeHTTP   = "http"   // Events API, interactivity and slash commands posted to HTTPHandler
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// DefaultUpdatesPerMinute is Slack's Tier 3 for chat.update: about 50 a
// minute per workspace.
const DefaultUpdatesPerMinute = 50

// DefaultCommandNames maps the engine's command names to the Slack slash
// commands the manifest registers. Slash command names are per workspace,
// so each can be renamed (Options.CommandNames); `help` is /orchat-help
// because /help belongs to Slack.
func DefaultCommandNames() map[string]string {
	return map[string]string{
		"ask": "ask", "compare": "compare", "balance": "balance", "usage": "usage",
		"models": "models", "model": "model", "leaderboard": "leaderboard", "help": "orchat-help",
		"topup": "topup", "deduct": "deduct", "block": "block", "unblock": "unblock", "ledger": "ledger",
		"imagine": "imagine", "credits": "credits", "settings": "orchat-settings",
	}
}

// Options configure the adapter.
type Options struct {
	// BotToken (xoxb-…) calls the Web API; AppToken (xapp-…, with the
	// connections:write scope) opens the Socket Mode connection.
	BotToken string
	AppToken string
	// SigningSecret verifies every request in http mode.
	SigningSecret string
	// Shared says other orchat processes serve the same app (a shared
	// PostgreSQL ledger): a thread another process answered in is news to
	// this one, so a thread found without the bot is asked about again
	// rather than remembered as outside for ten minutes.
	Shared bool
	// Mode is ModeSocket (default) or ModeHTTP.
	Mode string
	// APIURL is the Web API base (default DefaultAPIURL). Every call goes
	// there, apps.connections.open included; the websocket URL that call
	// returns is used as given.
	APIURL string
	// CommandNames maps engine command names to slash command names
	// (without "/"); missing names keep DefaultCommandNames.
	CommandNames map[string]string
	// Commands are the engine's commands: the adapter reads which are
	// private (their replies are ephemeral) and which are admin commands.
	Commands []*bot.Command
	// Handler answers every event (the engine).
	Handler bot.Handler
	// History bounds what a thread read-back fetches.
	History bot.HistoryLimit
	Logger  *slog.Logger
	Metrics bot.Metrics
	// Now is the clock for request timestamps (signature checks, events).
	Now func() time.Time
	// UpdatesPerMinute is the chat.update budget per workspace
	// (default DefaultUpdatesPerMinute), shared by every answer streaming there.
	UpdatesPerMinute int
	// HTTPClient makes the Web API calls and file downloads (default: a
	// client with a 30 s timeout).
	HTTPClient *http.Client
	// NativeStreaming streams answers in threads with chat.startStream,
	// chat.appendStream and chat.stopStream (with feedback buttons),
	// falling back to paced chat.update where the workspace refuses.
	NativeStreaming bool
	// AgentView is Slack's agent messaging experience (the manifest's
	// features.agent_view): the app's DM offers suggested prompts when it
	// is opened, every DM question is answered in its own thread with a
	// title and a status while the answer is on its way, commands work as
	// plain messages there ("balance"), and the channel a member looks at
	// (app_context_changed) is named to the model.
	AgentView bool
	// ShortcutID is the callback_id of the "Ask orchat about this" message
	// shortcut (default DefaultShortcutID).
	ShortcutID string
}

// DefaultShortcutID is the callback_id of the message shortcut in
// manifest.yaml.
const DefaultShortcutID = "orchat_ask_about"

// webAPI is the part of the Slack Web API the adapter calls.
type webAPI interface {
	AuthTestContext(ctx context.Context) (*slackapi.AuthTestResponse, error)
	PostMessageContext(ctx context.Context, channelID string, options ...slackapi.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slackapi.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slackapi.MsgOption) (string, error)
	GetConversationRepliesContext(ctx context.Context, params *slackapi.GetConversationRepliesParameters) ([]slackapi.Message, bool, string, error)
	GetConversationHistoryContext(ctx context.Context, params *slackapi.GetConversationHistoryParameters) (*slackapi.GetConversationHistoryResponse, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slackapi.GetUserInfoOption) (*slackapi.User, error)
	// UploadFileContext is Slack's external upload flow:
	// files.getUploadURLExternal, the bytes to the upload URL, then
	// files.completeUploadExternal into the channel or thread.
	UploadFileContext(ctx context.Context, params slackapi.UploadFileParameters) (*slackapi.FileSummary, error)
}

var _ webAPI = (*slackapi.Client)(nil)

// agentAPI is the part of the Web API behind Slack's agent surfaces:
// native streams, the thread's status, title and suggested prompts, and
// App Home.
type agentAPI interface {
	StartStreamContext(ctx context.Context, channelID string, options ...slackapi.MsgOption) (string, string, error)
	AppendStreamContext(ctx context.Context, channelID, timestamp string, options ...slackapi.MsgOption) (string, string, error)
	StopStreamContext(ctx context.Context, channelID, timestamp string, options ...slackapi.MsgOption) (string, string, error)
	SetAssistantThreadsStatusContext(ctx context.Context, params slackapi.AssistantThreadsSetStatusParameters) error
	SetAssistantThreadsTitleContext(ctx context.Context, params slackapi.AssistantThreadsSetTitleParameters) error
	SetAssistantThreadsSuggestedPromptsContext(ctx context.Context, params slackapi.AssistantThreadsSetSuggestedPromptsParameters) error
	PublishViewContext(ctx context.Context, req slackapi.PublishViewContextRequest) (*slackapi.ViewResponse, error)
}

var _ agentAPI = (*slackapi.Client)(nil)

// self is who the bot is in the workspace it is installed in (auth.test).
type self struct {
	UserID string // the bot's user (mentions are <@UserID>)
	BotID  string // the bot's bot id (bot_id on its messages)
	TeamID string
}

// Adapter is the Slack platform.
type Adapter struct {
	opts    Options
	log     *slog.Logger
	metrics bot.Metrics
	now     func() time.Time
	apiURL  *url.URL
	http    *http.Client
	client  *slackapi.Client
	api     webAPI
	agent   agentAPI
	pacer   *pacer

	bySlash  map[string]string // slash name → engine name
	commands map[string]*bot.Command

	me        atomic.Pointer[self]
	meMu      sync.Mutex
	connected atomic.Bool

	events  *bot.Cache[struct{}] // event ids and message keys already handled
	threads *bot.Cache[struct{}] // channel:thread_ts where the bot takes part
	outside *bot.Cache[struct{}] // threads checked and found without the bot
	names   *bot.Cache[string]   // user id → display name
	admins  *bot.Cache[bool]     // user id → a workspace admin or owner (users.info)
	tallyMu sync.Mutex
	tallies *bot.Cache[int] // channel:ts of a compare → votes its tally shows
	// noStream: workspaces that refused chat.startStream (answers there
	// use chat.update). viewing: team:user → the channel the member looks
	// at (app_context_changed), named to the model, never stored.
	noStream *bot.Cache[struct{}]
	viewing  *bot.Cache[string]
	// baseMu guards base and closed, and orders dispatch's Add against
	// Wait: once closed is set no Add happens, so Wait never races an Add
	// from zero (which the WaitGroup forbids).
	baseMu   sync.Mutex
	base     context.Context // handlers run on it; set by Run
	closed   bool            // set by Wait: no more events are dispatched
	inflight sync.WaitGroup
}

// New returns an adapter; it makes no network call until Run.
func New(opts Options) (*Adapter, error) {
	if opts.Handler == nil {
		return nil, errors.New("slack: a handler is required")
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeSocket
	case ModeSocket, ModeHTTP:
	default:
		return nil, fmt.Errorf("slack: mode %q is not known: use %q or %q", opts.Mode, ModeSocket, ModeHTTP)
	}
	if opts.BotToken == "" {
		return nil, errors.New("slack: a bot token is required: set SLACK_BOT_TOKEN or slack.bot_token")
	}
	if !strings.HasPrefix(opts.BotToken, "xoxb-") {
		return nil, errors.New("slack: the bot token must be a bot token starting with xoxb- (SLACK_BOT_TOKEN or slack.bot_token)")
	}
	if opts.Mode == ModeSocket {
		if opts.AppToken == "" {
			return nil, errors.New("slack: Socket Mode needs an app-level token: set SLACK_APP_TOKEN or slack.app_token (or use slack.mode = \"http\")")
		}
		if !strings.HasPrefix(opts.AppToken, "xapp-") {
			return nil, errors.New("slack: the app token must be an app-level token starting with xapp- (SLACK_APP_TOKEN or slack.app_token)")
		}
	}
	if opts.Mode == ModeHTTP && opts.SigningSecret == "" {
		return nil, errors.New("slack: http mode needs the signing secret: set SLACK_SIGNING_SECRET or slack.signing_secret")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	u, err := url.Parse(opts.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("slack: api_url %q is not an http(s) URL such as %s", opts.APIURL, DefaultAPIURL)
	}
	if !strings.HasSuffix(opts.APIURL, "/") {
		opts.APIURL += "/"
	}
	if opts.UpdatesPerMinute < 0 {
		return nil, fmt.Errorf("slack: updates_per_minute must be positive, not %d", opts.UpdatesPerMinute)
	}
	if opts.UpdatesPerMinute == 0 {
		opts.UpdatesPerMinute = DefaultUpdatesPerMinute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "slack")
	}
	if opts.Metrics == nil {
		opts.Metrics = bot.NopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}

	a := &Adapter{
		opts: opts, log: opts.Logger, metrics: opts.Metrics, now: opts.Now, apiURL: u,
		pacer:    newPacer(opts.UpdatesPerMinute),
		bySlash:  map[string]string{},
		commands: map[string]*bot.Command{},
		events:   bot.NewCache[struct{}](50_000, time.Hour, nil),
		threads:  bot.NewCache[struct{}](20_000, 7*24*time.Hour, nil),
		outside:  bot.NewCache[struct{}](20_000, 10*time.Minute, nil),
		names:    bot.NewCache[string](10_000, time.Hour, nil),
		admins:   bot.NewCache[bool](10_000, 10*time.Minute, nil),
		tallies:  bot.NewCache[int](10_000, 24*time.Hour, nil),
		noStream: bot.NewCache[struct{}](1_000, time.Hour, nil),
		viewing:  bot.NewCache[string](20_000, 12*time.Hour, nil),
		base:     context.Background(),
	}
	// File downloads carry the bot token: they follow a redirect only to
	// where the token may go, so no file is fetched from elsewhere.
	a.http = &http.Client{
		Transport: opts.HTTPClient.Transport, Timeout: opts.HTTPClient.Timeout, Jar: opts.HTTPClient.Jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !a.mayReceiveToken(req.URL.String()) {
				return errOffSlack
			}
			if len(via) >= 3 {
				return errors.New("slack: too many file redirects")
			}
			return nil
		},
	}
	names := DefaultCommandNames()
	for engine, slash := range opts.CommandNames {
		slash = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(slash), "/"))
		if slash == "" || strings.ContainsAny(slash, " /") {
			return nil, fmt.Errorf("slack: command name for %q must be a slash command name such as %q", engine, "ask")
		}
		names[engine] = slash
	}
	for engine, slash := range names {
		if other, ok := a.bySlash[slash]; ok {
			return nil, fmt.Errorf("slack: /%s is the command name of both %q and %q", slash, other, engine)
		}
		a.bySlash[slash] = engine
	}
	for _, c := range opts.Commands {
		a.commands[c.Name] = c
	}
	a.client = slackapi.New(opts.BotToken,
		slackapi.OptionAPIURL(opts.APIURL),
		slackapi.OptionAppLevelToken(opts.AppToken),
		slackapi.OptionHTTPClient(opts.HTTPClient),
		slackapi.OptionLog(quietLog(opts.Logger)))
	a.api, a.agent = a.client, a.client
	if a.opts.ShortcutID == "" {
		a.opts.ShortcutID = DefaultShortcutID
	}
	return a, nil
}

// Connected reports whether the adapter is connected to Slack: the Socket
// Mode websocket is open, or (http mode) the bot token works. For /readyz.
func (a *Adapter) Connected() bool { return a.connected.Load() }

// Run connects and handles events until ctx ends. Answers in flight keep
// running after it returns (the engine's Drain bounds them); Wait waits for
// them. It returns an error only when Slack refuses the tokens.
func (a *Adapter) Run(ctx context.Context) error {
	a.baseMu.Lock()
	a.base = context.WithoutCancel(ctx)
	a.baseMu.Unlock()
	defer a.connected.Store(false)
	if _, err := a.whoami(ctx, true); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if a.opts.Mode == ModeHTTP {
		a.connected.Store(true)
		<-ctx.Done()
		return nil
	}
	return a.runSocket(ctx)
}

// Wait blocks until every event handed to the handler has been answered.
// From then on the adapter hands no event to the handler: one that still
// arrives (in http mode the endpoint may outlive Run) is dropped, so what
// the caller closes after Wait is never used again.
func (a *Adapter) Wait() {
	a.baseMu.Lock()
	a.closed = true
	a.baseMu.Unlock()
	a.inflight.Wait()
}

// fatalAuth lists the auth.test errors that retrying cannot fix.
var fatalAuth = map[string]bool{"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true, "token_expired": true, "not_allowed_token_type": true}

// whoami returns the bot's own ids, asking auth.test once. With retry it
// keeps trying (with backoff) until Slack answers or refuses the token.
func (a *Adapter) whoami(ctx context.Context, retry bool) (*self, error) {
	if me := a.me.Load(); me != nil {
		return me, nil
	}
	a.meMu.Lock()
	defer a.meMu.Unlock()
	if me := a.me.Load(); me != nil {
		return me, nil
	}
	backoff := time.Second
	for {
		res, err := a.api.AuthTestContext(ctx)
		if err == nil {
			me := &self{UserID: res.UserID, BotID: res.BotID, TeamID: res.TeamID}
			a.me.Store(me)
			a.log.Info("connected to the Slack Web API", "team", res.TeamID, "bot_user", res.UserID)
			return me, nil
		}
		var se slackapi.SlackErrorResponse
		if errors.As(err, &se) && fatalAuth[se.Err] {
			return nil, fmt.Errorf("slack: the bot token was refused (%s): check SLACK_BOT_TOKEN", se.Err)
		}
		if !retry {
			return nil, fmt.Errorf("slack: auth.test: %w", err)
		}
		a.log.Warn("slack auth.test failed; retrying", "err", err, "in", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return nil, err
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// runSocket runs the Socket Mode connection: every request is acked
// first, then handled in its own goroutine.
func (a *Adapter) runSocket(ctx context.Context) error {
	smc := socketmode.New(a.client, socketmode.OptionLog(quietLog(a.log)))
	errc := make(chan error, 1)
	go func() { errc <- smc.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			var se slackapi.SlackErrorResponse
			if errors.As(err, &se) && fatalAuth[se.Err] {
				return fmt.Errorf("slack: the app token was refused (%s): check SLACK_APP_TOKEN (an app-level token with connections:write)", se.Err)
			}
			return fmt.Errorf("slack: socket mode: %w", err)
		case evt := <-smc.Events:
			a.onSocketEvent(ctx, smc, evt)
		}
	}
}

func (a *Adapter) onSocketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.log.Debug("connecting to Slack Socket Mode")
	case socketmode.EventTypeConnected:
		a.connected.Store(true)
		a.log.Info("connected to Slack Socket Mode")
	case socketmode.EventTypeHello:
		a.connected.Store(true)
	case socketmode.EventTypeConnectionError:
		a.connected.Store(false)
		if e, ok := evt.Data.(*slackapi.ConnectionErrorEvent); ok {
			a.log.Warn("slack socket mode connection failed; retrying", "attempt", e.Attempt, "in", e.Backoff, "err", e.ErrorObj)
		}
	case socketmode.EventTypeInvalidAuth:
		a.connected.Store(false)
		a.log.Error("Slack refused the app token: check SLACK_APP_TOKEN (it needs connections:write)")
	case socketmode.EventTypeDisconnect:
		a.connected.Store(false)
		a.log.Info("slack asked to reconnect")
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		a.log.Warn("slack socket mode error", "type", string(evt.Type))
	case socketmode.EventTypeEventsAPI:
		a.ack(ctx, smc, evt.Request)
		a.onEventsAPI(evt.Data, retryOf(evt.Request))
	case socketmode.EventTypeSlashCommand:
		a.ack(ctx, smc, evt.Request)
		if cmd, ok := evt.Data.(slackapi.SlashCommand); ok {
			a.onSlash(cmd, envelopeOf(evt.Request))
		}
	case socketmode.EventTypeInteractive:
		a.ack(ctx, smc, evt.Request)
		if cb, ok := evt.Data.(slackapi.InteractionCallback); ok {
			a.onInteraction(cb, envelopeOf(evt.Request))
		}
	}
}

// ack tells Slack the request arrived, before anything else is done, so
// the 3-second deadline holds whatever the handler does.
func (a *Adapter) ack(ctx context.Context, smc *socketmode.Client, req *socketmode.Request) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	if err := smc.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
		a.log.Warn("slack ack failed", "envelope", req.EnvelopeID, "err", err)
	}
}

func retryOf(req *socketmode.Request) int {
	if req == nil {
		return 0
	}
	return req.RetryAttempt
}

func envelopeOf(req *socketmode.Request) string {
	if req == nil {
		return ""
	}
	return req.EnvelopeID
}

// dispatch hands an event to the handler in its own goroutine, unless
// Wait has been called.
func (a *Adapter) dispatch(work func(ctx context.Context)) {
	a.baseMu.Lock()
	if a.closed {
		a.baseMu.Unlock()
		a.log.Debug("slack event after shutdown dropped")
		return
	}
	ctx := a.base
	a.inflight.Add(1)
	a.baseMu.Unlock()
	go func() {
		defer a.inflight.Done()
		work(ctx)
	}()
}

// answer runs the handler for ev.
func (a *Adapter) answer(ctx context.Context, ev bot.Event, out *output) {
	if err := a.opts.Handler.Handle(ctx, ev, out); err != nil {
		a.log.Debug("event answered with an error", "event", ev.ID, "err", err)
	}
}

// quietLog routes slack-go's own logger (used only in its debug mode, which
// stays off) to slog at debug level, never to stderr.
func quietLog(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), "source", "slack-go")
	return len(p), nil
}

var _ io.Writer = slogWriter{}
