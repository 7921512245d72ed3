package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Command is one thing the bot can do (ask, compare, balance, …). The
// commands package defines them; the engine runs them.
type Command struct {
	Name    string
	Usage   string // e.g. "topup USER AMOUNT [note]"
	Summary string // one line for /help
	Admin   bool   // only identities listed in `admins` may run it
	// CommunityAdmin: the host's admins and the community's own admins
	// may run it (Request.CommunityAdmin says which the user is).
	CommunityAdmin bool
	Private        bool // its replies are shown only to the asking user
	// Platforms, when set, are the only platforms that offer it (bot.
	// PlatformSlack, …): elsewhere it is not registered, not in /help, and
	// refused. For a command only a platform's own surface can give
	// meaningful arguments (/feedback: Slack's buttons under an answer).
	Platforms []string
	// Options name the arguments in positional order; they may also be given
	// by name (name:value), and platforms register them as slash options.
	Options []Option
	// Subcommands, when set, are what the command does (the Options are
	// then unused): platforms register them as subcommands and groups,
	// typed commands name them first ("/settings models allow …").
	Subcommands []Subcommand
	Run         func(ctx context.Context, req *Request) error
}

// OfferedOn reports whether platform offers the command (see Platforms).
func (c *Command) OfferedOn(platform string) bool {
	return len(c.Platforms) == 0 || slices.Contains(c.Platforms, platform)
}

// Subcommand is one action of a command with subcommands, or a group of
// them (Subcommands set; one level deep, as Discord allows).
type Subcommand struct {
	Name        string
	Description string
	Options     []Option
	Subcommands []Subcommand
	// Default, in a group, is the subcommand a typed command means when
	// the next word names none ("/settings persona You are…" is "persona
	// set").
	Default string
}

// Find returns the subcommand named by path ("models allow").
func (c *Command) Find(path string) (*Subcommand, bool) {
	subs := c.Subcommands
	var found *Subcommand
	for _, name := range strings.Fields(path) {
		found = nil
		for i := range subs {
			if subs[i].Name == name {
				found = &subs[i]
				break
			}
		}
		if found == nil {
			return nil, false
		}
		subs = found.Subcommands
	}
	return found, found != nil && len(found.Subcommands) == 0
}

// Option is one named argument of a command.
type Option struct {
	Name        string
	Description string
	Required    bool
	// Rest: the option takes the rest of the text as written (a prompt).
	Rest bool
	// Model: the value is a model id (platforms offer autocomplete).
	Model bool
	// Kind is what the value names, for platforms with pickers: "" (text),
	// OptionChannel, OptionMentionable (a user or a role), OptionFile (an
	// uploaded file: the platform passes it as one of the event's
	// Attachments, not as text).
	Kind string
	// Choices, when set, are the only values (platforms offer them as a
	// list).
	Choices []string
}

// Option kinds.
const (
	OptionChannel     = "channel"
	OptionMentionable = "mentionable"
	OptionFile        = "file"
)

// Invocation is a parsed command: its name and arguments.
type Invocation struct {
	Name string
	Args Args
}

// Args are a command's arguments, by position and by name (name:value).
type Args struct {
	// Sub is the subcommand's path ("models allow") of a command with
	// subcommands.
	Sub   string
	Pos   []string
	Named map[string]string
}

// Get returns the argument given by name, else the one at position pos
// (pos < 0: by name only), else "".
func (a Args) Get(name string, pos int) string {
	if v, ok := a.Named[name]; ok {
		return v
	}
	if pos >= 0 && pos < len(a.Pos) {
		return a.Pos[pos]
	}
	return ""
}

// Rest joins the positional arguments from pos on with spaces: the prompt
// of `ask` and `compare`.
func (a Args) Rest(pos int) string {
	if pos >= len(a.Pos) {
		return ""
	}
	return strings.Join(a.Pos[pos:], " ")
}

// Request is one command run: the event, its parsed arguments, and where to
// reply.
type Request struct {
	ID      string // request id, in every log line and internal error message
	Event   Event
	Command *Command
	Args    Args
	Reply   *Reply
	Admin   bool
	// CommunityAdmin: the user runs the event's community (or is a host
	// admin); set for commands that need it.
	CommunityAdmin bool
	NewUser        bool
	Logger         *slog.Logger
	StartedAt      time.Time
}

// Parser turns an event into an invocation. EINVALID for an unknown command,
// with the nearest known one.
type Parser func(ev Event) (Invocation, error)

// RateLimit is a per-user token bucket: PerMinute requests refill per
// minute, up to Burst at once. PerMinute 0 disables it.
type RateLimit struct {
	PerMinute float64
	Burst     int
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Users are the two ledger calls the engine makes (an *accounts.Store).
	Users    Users
	Commands []*Command
	Parse    Parser
	Admins   []Identity
	Limit    RateLimit
	// Timeout bounds one command run (default 5 minutes).
	Timeout time.Duration
	// EditInterval is the least time between two edits of one message
	// (stream.edit_interval, default 1 s).
	EditInterval time.Duration
	Logger       *slog.Logger
	Metrics      Metrics
	Now          func() time.Time
	// Communities, when set, decides who runs each community (for
	// CommunityAdmin commands) and where the bot answers mentions.
	Communities *Communities
	// Members, when set, is told who used the bot in which community
	// (once per member and process), for allowances.
	Members Members
	// Events, when set, remembers event ids across restarts and processes
	// (the ledger's seen_events): a redelivery that reaches a restarted
	// process, or another process, is dropped as one this process saw
	// already is. The in-memory set stays the first, free check.
	Events EventLog
	// Shared, when set, keeps the per-user rate-limit buckets where every
	// process sharing the ledger takes from them (PostgreSQL), instead of
	// in this process's memory. A failing store falls back to the memory
	// bucket.
	Shared SharedLimiter
}

// Engine turns platform events into command runs: it ensures the user,
// refuses blocked and too-fast users, parses the command, runs it with a
// deadline, and turns every error into a message a person understands.
// One Engine serves every platform adapter concurrently.
type Engine struct {
	users       Users
	cmds        atomic.Pointer[commandSet]
	conf        atomic.Pointer[engineConf]
	interval    time.Duration
	log         *slog.Logger
	metrics     Metrics
	now         func() time.Time
	communities *Communities
	members     Members
	events      EventLog
	shared      SharedLimiter
	noted       *Cache[struct{}] // community/identity pairs told to members

	seen *Cache[struct{}] // event ids already handled
	// mu orders entering the in-flight group against Drain: once draining
	// is set no Add happens, so Drain's Wait never races an Add from zero
	// (which the WaitGroup forbids, and which panics under load).
	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
	hard     context.Context // cancelled when a drain runs out of time
	cancel   context.CancelFunc
}

// commandSet is the commands the engine runs and their parser; a config
// reload swaps the whole set.
type commandSet struct {
	byName map[string]*Command
	list   []*Command
	parse  Parser
}

// engineConf is what a config reload may change in a running engine.
type engineConf struct {
	admins  map[Identity]bool
	limiter *limiter // per-user buckets under the rate limit, idle full ones dropped
	timeout time.Duration
}

// NewEngine returns an Engine with opts, defaults filled in.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{
		users: opts.Users, interval: opts.EditInterval,
		log: opts.Logger, metrics: opts.Metrics, now: opts.Now,
		communities: opts.Communities, members: opts.Members,
		events: opts.Events, shared: opts.Shared,
	}
	e.SetCommands(opts.Commands, opts.Parse)
	e.Reconfigure(opts.Admins, opts.Limit, opts.Timeout)
	if e.interval <= 0 {
		e.interval = time.Second
	}
	if e.log == nil {
		e.log = slog.Default().With("component", "engine")
	}
	if e.metrics == nil {
		e.metrics = NopMetrics{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.seen = NewCache[struct{}](200_000, time.Hour, e.now)
	e.noted = NewCache[struct{}](200_000, 24*time.Hour, e.now)
	e.hard, e.cancel = context.WithCancel(context.Background())
	return e
}

// SetCommands replaces the commands and their parser (a config reload
// rebuilds the commands with the new settings); events already running
// finish with the old ones.
func (e *Engine) SetCommands(cmds []*Command, parse Parser) {
	set := &commandSet{byName: map[string]*Command{}, list: cmds, parse: parse}
	for _, c := range cmds {
		set.byName[c.Name] = c
	}
	e.cmds.Store(set)
}

// Reconfigure replaces the host's admins, the rate limit and the timeout
// of a command run (a config reload); the next event sees them.
func (e *Engine) Reconfigure(admins []Identity, limit RateLimit, timeout time.Duration) {
	c := &engineConf{admins: map[Identity]bool{}, timeout: timeout}
	// The buckets stay while the limit does; a new limit starts them full.
	if old := e.conf.Load(); old != nil && old.limiter.limit == limit {
		c.limiter = old.limiter
	} else {
		c.limiter = newLimiter(limit)
	}
	for _, a := range admins {
		c.admins[a] = true
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Minute
	}
	e.conf.Store(c)
}

// Commands returns the commands in the order they were given (for /help and
// for registering slash commands).
func (e *Engine) Commands() []*Command { return e.cmds.Load().list }

// Command returns the command with the given name.
func (e *Engine) Command(name string) (*Command, bool) {
	c, ok := e.cmds.Load().byName[name]
	return c, ok
}

// IsAdmin reports whether id is listed in `admins`.
func (e *Engine) IsAdmin(id Identity) bool { return e.conf.Load().admins[id] }

// Handle answers one event, writing to out. Redelivered events (an ID seen
// before) are dropped. It returns when the command has finished and every
// message has been written; the error is for logs and tests, the user has
// already been told.
func (e *Engine) Handle(ctx context.Context, ev Event, out Output) error {
	if ev.ID != "" && !e.seen.Add(ev.ID, struct{}{}) {
		e.log.Debug("dropped a redelivered event", "event", ev.ID)
		return nil
	}
	if ev.ID != "" && e.events != nil {
		first, err := e.events.SeenEvent(ctx, ev.ID, e.now())
		switch {
		case err != nil:
			// This process's own redeliveries were dropped above; with
			// the store failing, the answer's hold fails too and says so.
			e.log.Warn("could not record the event id; answering it anyway", "event", ev.ID, "err", err)
		case !first:
			e.log.Info("dropped an event already received by this or another process", "event", ev.ID)
			return nil
		}
	}
	if e.enter() {
		defer e.inflight.Done()
	}

	start := e.now()
	req := &Request{ID: newRequestID(), Event: ev, StartedAt: start}
	req.Logger = e.log.With("request", req.ID, "platform", ev.Platform, "user", string(ev.Identity))
	name := "?"
	err := e.handle(ctx, req, out)
	if req.Command != nil {
		name = req.Command.Name
	}
	outcome := "ok"
	if err != nil {
		outcome = ErrorCode(err)
	}
	e.metrics.Request(ev.Platform, name, outcome, e.now().Sub(start))
	return err
}

func (e *Engine) handle(ctx context.Context, req *Request, out Output) (err error) {
	ev := req.Event
	private := false
	reply := func() *Reply {
		if req.Reply == nil {
			req.Reply = NewReply(ctx, out, e.interval, private, req.Logger)
		}
		return req.Reply
	}
	defer func() {
		if err != nil {
			e.report(req, reply(), err)
		}
	}()

	if e.isDraining() {
		return Errorf(EUNAVAILABLE, "The bot is restarting; please ask again in a moment.")
	}
	if err := ev.Identity.Validate(); err != nil {
		return fmt.Errorf("engine: event %s: %w", ev.ID, errors.New(ErrorMessage(err)))
	}

	cmds, conf := e.cmds.Load(), e.conf.Load()
	inv, perr := cmds.parse(ev)
	if perr == nil && e.ignored(ctx, req, inv) {
		return nil
	}
	if perr == nil {
		req.Command = cmds.byName[inv.Name]
		req.Args = inv.Args
		if req.Command == nil {
			perr = fmt.Errorf("engine: parser returned unknown command %q", inv.Name)
		} else {
			private = req.Command.Private
		}
	}

	user, created, err := e.users.EnsureUser(ctx, ev.Identity)
	if err != nil {
		return fmt.Errorf("engine: ensure user: %w", err)
	}
	req.NewUser = created
	req.Admin = conf.admins[ev.Identity]
	e.noteMember(ctx, req)
	if created {
		e.welcome(ctx, req, reply())
	}
	if user.Blocked {
		private = true
		return Errorf(EUNAUTHORIZED, "You are blocked from using this bot. Ask an admin if you think this is a mistake.")
	}
	if perr != nil {
		return perr
	}
	if err := e.takeTurn(ctx, ev.Identity, conf.limiter, out); err != nil {
		return err
	}
	if !req.Command.OfferedOn(ev.Platform) {
		names := make([]string, len(req.Command.Platforms))
		for i, p := range req.Command.Platforms {
			names[i] = platformNames[p]
			if names[i] == "" {
				names[i] = p
			}
		}
		return Errorf(EINVALID, "/%s is not available here, only on %s. /help lists what is.", req.Command.Name, strings.Join(names, " and "))
	}
	if req.Command.Admin && !req.Admin {
		req.Logger.Warn("non-admin tried an admin command", "command", req.Command.Name)
		return Errorf(EUNAUTHORIZED, "Only admins can use /%s.", req.Command.Name)
	}
	if req.Command.CommunityAdmin {
		if err := e.checkCommunityAdmin(ctx, req); err != nil {
			return err
		}
	}

	cctx, cancel := context.WithTimeout(ctx, conf.timeout)
	defer cancel()
	stop := context.AfterFunc(e.hard, cancel)
	defer stop()
	return e.run(cctx, req, reply())
}

// ignored reports whether the event is a mention in a channel where the
// community does not want the bot to answer (/settings channels): it gets
// no answer at all. Commands, typed or native, and DMs are always answered.
func (e *Engine) ignored(ctx context.Context, req *Request, inv Invocation) bool {
	ev := req.Event
	if e.communities == nil || inv.Name != "ask" || ev.Command != "" || ev.Direct || !IsCommunity(ev.Community) {
		return false
	}
	v, err := e.communities.View(ctx, ev.Community, ev.SettingsChannel())
	if err != nil {
		req.Logger.Warn("read the community's channels; answering", "err", err)
		return false
	}
	if v.Channels().Allows(ev.SettingsChannel()) {
		return false
	}
	req.Logger.Debug("mention in a channel the community excluded", "community", ev.Community, "channel", ev.Channel)
	return true
}

// noteMember tells Members, once per process, that the user used the bot
// in this community.
func (e *Engine) noteMember(ctx context.Context, req *Request) {
	ev := req.Event
	if e.members == nil || !IsCommunity(ev.Community) || !e.noted.Add(ev.Community+" "+string(ev.Identity), struct{}{}) {
		return
	}
	if err := e.members.NoteMember(ctx, ev.Community, ev.Identity); err != nil {
		e.noted.Delete(ev.Community + " " + string(ev.Identity))
		req.Logger.Warn("remember the community's member", "err", err)
	}
}

// checkCommunityAdmin lets a CommunityAdmin command run for the host's
// admins and the community's own; everyone else is refused, with who may.
func (e *Engine) checkCommunityAdmin(ctx context.Context, req *Request) error {
	if req.Admin {
		req.CommunityAdmin = true
		return nil
	}
	ok := false
	if e.communities != nil {
		var err error
		if ok, err = e.communities.IsAdmin(ctx, req.Event); err != nil {
			req.Logger.Warn("could not tell whether the user runs the community", "community", req.Event.Community, "err", err)
			return Errorf(EUNAVAILABLE, "I could not check with %s whether you run %s; please try again in a moment.", platformTitle(req.Event.Platform), CommunityWord(req.Event.Community, false))
		}
	}
	if !ok {
		req.Logger.Warn("non-admin tried a community admin command", "command", req.Command.Name, "community", req.Event.Community)
		return Errorf(EUNAUTHORIZED, "Only %s can use /%s.", communityAdmins(req.Event), req.Command.Name)
	}
	req.CommunityAdmin = true
	return nil
}

func platformTitle(p string) string {
	switch p {
	case PlatformDiscord:
		return "Discord"
	case PlatformSlack:
		return "Slack"
	}
	return "the platform"
}

// communityAdmins says who runs the event's community, for a refusal.
func communityAdmins(ev Event) string {
	switch {
	case !IsCommunity(ev.Community):
		return "the bot's admins, and a server's admins in its channels,"
	case ev.Platform == PlatformDiscord:
		return "this server's admins (Manage Server, or a role or member the server made an orchat admin) and the bot's host admins"
	case ev.Platform == PlatformSlack:
		return "this workspace's admins and owners (or members it made orchat admins) and the bot's host admins"
	}
	return "the bot's admins (admins in the config)"
}

// run calls the command, turning a panic into an internal error so one bad
// input never takes the bot down.
func (e *Engine) run(ctx context.Context, req *Request, r *Reply) (err error) {
	defer func() {
		if p := recover(); p != nil {
			req.Logger.Error("command panicked", "command", req.Command.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = Errorf(EINTERNAL, "panic in %s", req.Command.Name)
		}
	}()
	req.Reply = r
	return req.Command.Run(ctx, req)
}

// welcome tells a first-time user what they got, privately: in a shared
// channel only they see it (Slack: an ephemeral message; Discord: a line
// in the answer's footer, or an ephemeral follow-up of a command); in a DM
// it is an ordinary message.
func (e *Engine) welcome(ctx context.Context, req *Request, r *Reply) {
	bal, err := e.users.Balance(ctx, req.Event.Identity)
	if err != nil {
		req.Logger.Warn("welcome: read balance", "err", err)
		return
	}
	_ = r.Send(Message{Kind: KindNotice, Private: true, Welcome: true, Text: fmt.Sprintf(
		"Welcome to orchat! You have %s free tokens to start (they never expire), and %d free-model requests a day. Type /help to see what I can do.",
		FormatTokens(bal.Balance), bal.Free.Limit)})
}

// report tells the user what went wrong. Internal errors are logged with the
// request id, which the apology quotes so the host can find the log line.
func (e *Engine) report(req *Request, r *Reply, err error) {
	msg := ErrorMessage(err)
	if ErrorCode(err) == EINTERNAL {
		req.Logger.Error("request failed", "err", err)
		msg = fmt.Sprintf("%s (ref %s)", msg, req.ID)
	} else {
		req.Logger.Info("request refused", "code", ErrorCode(err), "err", err)
	}
	_ = r.Send(Message{Kind: KindError, Status: StatusFailed, Text: msg})
}

// Drain stops taking new events and waits for the ones in flight. When ctx
// ends first, it cancels them (commands then settle or release their holds
// and end their replies with a note) and waits for them to finish doing so.
func (e *Engine) Drain(ctx context.Context) {
	e.mu.Lock()
	e.draining = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	e.log.Warn("shutdown timeout reached: cancelling answers in flight")
	e.cancel()
	<-done
}

// enter counts an event as in flight unless a drain has begun; false
// means the event is refused.
func (e *Engine) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.draining {
		return false
	}
	e.inflight.Add(1)
	return true
}

func (e *Engine) isDraining() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.draining
}

// takeTurn takes id's rate-limit token. Over the limit, a Patient output
// waits for the token (the console); any other is refused with the wait.
// A wait ends early, refused, when the request's context ends or a drain
// begins.
func (e *Engine) takeTurn(ctx context.Context, id Identity, limiter *limiter, out Output) error {
	for {
		wait, ok := e.allow(ctx, id, limiter)
		if ok {
			return nil
		}
		p, patient := out.(Patient)
		if !patient {
			e.metrics.Refusal("rate_limit")
			return Errorf(ERATELIMIT, "You're sending requests faster than this bot allows. Try again in %s.", FormatWait(wait))
		}
		p.Waiting(wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Errorf(EUNAVAILABLE, "The request was cancelled while it waited for its turn under the rate limit.")
		case <-e.hard.Done():
			t.Stop()
		}
		if e.isDraining() {
			return Errorf(EUNAVAILABLE, "The bot is restarting; please ask again in a moment.")
		}
	}
}

// allow takes id's token from the shared buckets when there are some,
// else (or when the store fails) from this process's.
func (e *Engine) allow(ctx context.Context, id Identity, limiter *limiter) (time.Duration, bool) {
	if e.shared != nil && limiter.limit.PerMinute > 0 {
		wait, ok, err := e.shared.TakeToken(ctx, "user:"+string(id), limiter.limit, e.now())
		if err == nil {
			return wait, ok
		}
		e.log.Warn("the shared rate limit could not be read; using this process's", "user", string(id), "err", err)
	}
	return limiter.allow(id, e.now())
}

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// platformNames are the platforms as a member reads them in a message.
var platformNames = map[string]string{PlatformDiscord: "Discord", PlatformSlack: "Slack", PlatformConsole: "the terminal"}
