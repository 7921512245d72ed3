package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Command is one thing the bot can do (ask, compare, balance, …). The
// commands package defines them; the engine runs them.
type Command struct {
	Name    string
	Usage   string // e.g. "topup USER AMOUNT [note]"
	Summary string // one line for /help
	Admin   bool   // only identities listed in `admins` may run it
	Private bool   // its replies are shown only to the asking user
	// Options name the arguments in positional order; they may also be given
	// by name (name:value), and platforms register them as slash options.
	Options []Option
	Run     func(ctx context.Context, req *Request) error
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
	// Choices, when set, are the only values (platforms offer them as a
	// list).
	Choices []string
}

// Invocation is a parsed command: its name and arguments.
type Invocation struct {
	Name string
	Args Args
}

// Args are a command's arguments, by position and by name (name:value).
type Args struct {
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
	ID        string // request id, in every log line and internal error message
	Event     Event
	Command   *Command
	Args      Args
	Reply     *Reply
	Admin     bool
	NewUser   bool
	Logger    *slog.Logger
	StartedAt time.Time
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
}

// Engine turns platform events into command runs: it ensures the user,
// refuses blocked and too-fast users, parses the command, runs it with a
// deadline, and turns every error into a message a person understands.
// One Engine serves every platform adapter concurrently.
type Engine struct {
	users    Users
	commands map[string]*Command
	list     []*Command
	parse    Parser
	admins   map[Identity]bool
	limit    RateLimit
	timeout  time.Duration
	interval time.Duration
	log      *slog.Logger
	metrics  Metrics
	now      func() time.Time

	limiter *limiter         // per-user buckets, idle full ones dropped
	seen    *Cache[struct{}] // event ids already handled
	// mu orders entering the in-flight group against Drain: once draining
	// is set no Add happens, so Drain's Wait never races an Add from zero
	// (which the WaitGroup forbids, and which panics under load).
	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
	hard     context.Context // cancelled when a drain runs out of time
	cancel   context.CancelFunc
}

// NewEngine returns an Engine with opts, defaults filled in.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{
		users: opts.Users, commands: map[string]*Command{}, list: opts.Commands,
		parse: opts.Parse, admins: map[Identity]bool{}, limit: opts.Limit,
		timeout: opts.Timeout, interval: opts.EditInterval,
		log: opts.Logger, metrics: opts.Metrics, now: opts.Now,
	}
	for _, c := range opts.Commands {
		e.commands[c.Name] = c
	}
	for _, a := range opts.Admins {
		e.admins[a] = true
	}
	if e.timeout <= 0 {
		e.timeout = 5 * time.Minute
	}
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
	e.limiter = newLimiter(e.limit)
	e.hard, e.cancel = context.WithCancel(context.Background())
	return e
}

// Commands returns the commands in the order they were given (for /help and
// for registering slash commands).
func (e *Engine) Commands() []*Command { return e.list }

// Command returns the command with the given name.
func (e *Engine) Command(name string) (*Command, bool) {
	c, ok := e.commands[name]
	return c, ok
}

// IsAdmin reports whether id is listed in `admins`.
func (e *Engine) IsAdmin(id Identity) bool { return e.admins[id] }

// Handle answers one event, writing to out. Redelivered events (an ID seen
// before) are dropped. It returns when the command has finished and every
// message has been written; the error is for logs and tests, the user has
// already been told.
func (e *Engine) Handle(ctx context.Context, ev Event, out Output) error {
	if ev.ID != "" && !e.seen.Add(ev.ID, struct{}{}) {
		e.log.Debug("dropped a redelivered event", "event", ev.ID)
		return nil
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

	inv, perr := e.parse(ev)
	if perr == nil {
		req.Command = e.commands[inv.Name]
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
	req.Admin = e.admins[ev.Identity]
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
	if err := e.takeTurn(ctx, ev.Identity, out); err != nil {
		return err
	}
	if req.Command.Admin && !req.Admin {
		req.Logger.Warn("non-admin tried an admin command", "command", req.Command.Name)
		return Errorf(EUNAUTHORIZED, "Only admins can use /%s.", req.Command.Name)
	}

	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	stop := context.AfterFunc(e.hard, cancel)
	defer stop()
	return e.run(cctx, req, reply())
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

// welcome tells a first-time user what they got.
func (e *Engine) welcome(ctx context.Context, req *Request, r *Reply) {
	bal, err := e.users.Balance(ctx, req.Event.Identity)
	if err != nil {
		req.Logger.Warn("welcome: read balance", "err", err)
		return
	}
	_ = r.Send(Message{Kind: KindNotice, Text: fmt.Sprintf(
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
func (e *Engine) takeTurn(ctx context.Context, id Identity, out Output) error {
	for {
		wait, ok := e.allow(id)
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

// allow takes one token from id's bucket; when it is empty it returns how
// long until the next token.
func (e *Engine) allow(id Identity) (time.Duration, bool) {
	return e.limiter.allow(id, e.now())
}

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
