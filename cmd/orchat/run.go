package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/ops"
	"github.com/orchat/orchat/scheduler"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/stack"
)

// isTerminal reports whether v is an interactive terminal. /dev/null is
// a character device too, but no terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readsLines reports whether stdin v has lines for the console without
// --console: a terminal, a pipe or a file (`orchat < questions.txt`). Not
// /dev/null, a socket or a closed stdin, which is what a service started
// by systemd or `docker run -d` has: there the console would read nothing
// and end the bot at once, hiding that its platform token is missing.
func readsLines(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	if term.IsTerminal(int(f.Fd())) {
		return true
	}
	st, err := f.Stat()
	return err == nil && (st.Mode()&os.ModeNamedPipe != 0 || st.Mode().IsRegular())
}

// consoleUser turns --user NAME or an identity into a console identity.
func consoleUser(s string) (bot.Identity, error) {
	if !strings.Contains(s, ":") {
		s = "console:" + s
	}
	id, err := bot.ParseIdentity(s)
	if err != nil {
		return "", err
	}
	if id.Platform() != bot.PlatformConsole {
		return "", bot.Errorf(bot.EINVALID, "--user must be a console user such as alice or console:alice, not %s.", id)
	}
	return id, nil
}

// consoleFlags are the console's own flags, shared by run and console.
type consoleFlags struct {
	user      *string
	parallel  *int
	multiUser *bool
}

func (m *Main) consoleFlags(name string) (*consoleFlagSet, consoleFlags) {
	fs := m.flags(name)
	return &consoleFlagSet{fs}, consoleFlags{
		user:      fs.String("user", "", "who you are in the terminal (default: console.user, console:you)"),
		parallel:  fs.Int("parallel", 1, "answer up to `N` lines at once"),
		multiUser: fs.Bool("multi-user", false, `let a line start with "name> " to speak as console:name`),
	}
}

func (m *Main) newConsole(cf consoleFlags) (*console.Adapter, error) {
	user := m.Config.Console.User
	if *cf.user != "" {
		user = *cf.user
	}
	id, err := consoleUser(user)
	if err != nil {
		return nil, err
	}
	if *cf.parallel < 1 || *cf.parallel > 10000 {
		return nil, usagef("--parallel must be between 1 and 10000, not %d", *cf.parallel)
	}
	w, h, tty := terminalSize(m.Stdout)
	return console.New(console.Options{
		In: m.Stdin, Out: m.Stdout, User: id, JSON: m.JSON,
		Live:     !m.JSON && isTerminal(m.Stdout) && *cf.parallel == 1,
		Parallel: *cf.parallel, MultiUser: *cf.multiUser, FilesDir: m.Config.Console.FilesDir,
		// Markdown only for a person at a terminal: NO_COLOR, TERM=dumb,
		// a pipe or --json get the text as written.
		Markdown:      tty && !m.JSON && m.Getenv("NO_COLOR") == "" && m.Getenv("TERM") != "dumb",
		MarkdownStyle: m.Getenv("GLAMOUR_STYLE"),
		Width:         w, Height: h,
		Logger: m.logger().With("component", "console"),
	}), nil
}

// terminalSize returns the columns and rows of v when it is a terminal.
func terminalSize(v any) (width, height int, ok bool) {
	f, isFile := v.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		return 0, 0, false
	}
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0, 0, false
	}
	return w, h, true
}

// runConsole is `orchat console`: the bot in the terminal only. At the end
// of input it waits for the answers in flight and exits.
func runConsole(ctx context.Context, m *Main, args []string) error {
	fs, cf := m.consoleFlags("console")
	pos, err := m.parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("console takes no arguments (type your questions on stdin)")
	}
	m.quietTerminal()
	st, err := m.openStack(ctx)
	if err != nil {
		return err
	}
	con, err := m.newConsole(cf)
	if err != nil {
		return err
	}
	if isTerminal(m.Stdin) && !m.JSON {
		fmt.Fprintln(m.Stderr, "orchat: type a question, or /help for commands; Ctrl-D quits.")
	}
	err = con.Run(ctx, st.Engine)
	m.shutdown(st)
	return err
}

// runBot is `orchat` and `orchat run`: every platform that has
// credentials, and the console when stdin is a terminal, a pipe or a file,
// or --console is given.
func runBot(ctx context.Context, m *Main, args []string) error {
	fs, cf := m.consoleFlags("run")
	withConsole := fs.Bool("console", false, "also read questions from stdin")
	pos, err := m.parse(fs.FlagSet, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("run takes no arguments")
	}
	c := m.Config
	// Decided before anything starts: the console goroutine must not read
	// a count the platforms below are still adding to.
	consoleOnly := c.Discord.Token == "" && c.Slack.BotToken == ""
	withStdin := *withConsole || readsLines(m.Stdin)
	if consoleOnly && !withStdin {
		return bot.Errorf(bot.EINVALID, "Nothing to run: no platform has credentials and stdin is not a terminal, a pipe or a file. Set DISCORD_BOT_TOKEN, or SLACK_BOT_TOKEN with SLACK_APP_TOKEN (SLACK_SIGNING_SECRET in slack.mode = \"http\"); or chat on stdin with --console or 'orchat console'.")
	}
	m.quietTerminal()
	mets := ops.NewMetrics()
	m.mets = mets
	st, err := m.openStack(ctx)
	if err != nil {
		return err
	}
	mets.WatchHolds(st.Store)
	mets.WatchPool(func() ops.Pool { p := st.Store.PoolStats(); return ops.Pool(p) })
	parts := []ops.Part{
		{Name: "database", Check: st.Store.Writable},
		{Name: "catalog", Check: func(context.Context) error {
			if st.Catalog.Len() == 0 {
				return errors.New("no models loaded yet")
			}
			return nil
		}},
		{Name: "openrouter_credits", Check: func(context.Context) error {
			if st.Router.Credits().Out() {
				return errors.New("the OpenRouter key has no credit left: paid answers are refused")
			}
			return nil
		}, Report: func() string { return creditsReport(st.Router.Credits()) }},
	}
	// Every platform and the HTTP server run in one group: the first to
	// fail stops the others (ctx ends), and so does the end of the input
	// of a console that runs alone (cancel).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	start := func(name string, run func(context.Context) error) {
		g.Go(func() error {
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	// abort stops what started before a later part failed to start.
	abort := func(err error) error {
		cancel()
		_ = g.Wait()
		return err
	}
	if withStdin {
		con, err := m.newConsole(cf)
		if err != nil {
			return err
		}
		if isTerminal(m.Stdin) && !m.JSON {
			fmt.Fprintln(m.Stderr, "orchat: type a question, or /help for commands; Ctrl-D quits.")
		}
		start("console", func(ctx context.Context) error {
			err := con.Run(ctx, st.Engine)
			if consoleOnly {
				cancel() // the console was the only platform: end of input ends the bot
			}
			return err
		})
	}
	notifiers := &notifierSet{}
	// instance names this process in the locks and leases other
	// processes sharing the database see.
	instance := c.InstanceName() + "/" + bootID()
	sched, err := scheduler.New(scheduler.Options{
		Location: c.Location(), DailyReset: c.Scheduler.DailyReset,
		CatalogRefresh: c.Scheduler.CatalogRefresh.Duration, HoldSweep: c.Scheduler.HoldSweep.Duration,
		NotifyReset: c.Scheduler.NotifyReset, Notifier: notifiers,
		// On PostgreSQL several processes may share the ledger: only the
		// leader (an advisory lock) runs the ledger jobs and registers
		// the slash commands, and a follower takes a dead leader's place
		// within a second or two.
		Leader: c.Scheduler.Leader || st.Shared(), Lease: st.Store, Instance: instance,
		Campaign: campaign(st.Shared()),
		Ledger:   st.Store, Resets: st.Store, Catalog: st.Catalog,
		Allowances: st.Store, Alerts: st.Store, ChannelNotifier: notifiers,
		Credits: st.Router, LowCredits: c.OpenRouter.LowCredits, HostAdmins: c.AdminIdentities(),
		Logger: m.logger().With("component", "scheduler"), Metrics: mets,
	})
	if err != nil {
		return abort(err)
	}
	sched.Start()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := sched.Shutdown(sctx); err != nil {
			m.logger().Warn("scheduler shutdown", "err", err)
		}
	}()
	history := c.History()
	if c.Discord.Token != "" {
		dopts := discord.Options{
			Token: c.Discord.Token, APIURL: c.Discord.APIURL, Shards: c.Discord.FixedShards(), ShardCount: c.Discord.ShardCount,
			DevGuilds: c.Discord.DevGuilds, AttachmentHosts: c.Discord.AttachmentHosts, Threads: c.Discord.Threads,
			Commands: st.Commands, Catalog: st.Catalog, Rules: st.Communities, Handler: st.Engine, History: history,
			Logger: m.logger().With("component", "discord"), Metrics: mets, DrainTimeout: c.ShutdownTimeout.Duration,
		}
		if st.Shared() {
			// Processes sharing PostgreSQL claim shards and take turns to
			// identify through its locks; the scheduler's leader registers
			// the commands.
			shareDiscord(st.Store, &dopts, instance)
			dopts.Leader = sched.Leader
		}
		dc, err := discord.New(dopts)
		if err != nil {
			return abort(err)
		}
		notifiers.add(bot.PlatformDiscord, dc)
		parts = append(parts, ops.Part{Name: "discord", Check: ops.Connected(dc.Connected)})
		start("discord", dc.Run)
	}
	extra := map[string]http.Handler{}
	if c.Slack.BotToken != "" {
		sl, err := slack.New(slack.Options{
			BotToken: c.Slack.BotToken, AppToken: c.Slack.AppToken, SigningSecret: c.Slack.SigningSecret, Shared: st.Shared(),
			UpdatesPerMinute: c.Slack.UpdatesPerMinute,
			Mode:             c.Slack.Mode, APIURL: c.Slack.APIURL, CommandNames: c.Slack.Commands,
			Commands: st.Commands, Handler: st.Engine, History: history,
			Logger: m.logger().With("component", "slack"), Metrics: mets,
			NativeStreaming: c.Slack.NativeStreaming, AgentView: c.Slack.AgentView,
		})
		if err != nil {
			return abort(err)
		}
		notifiers.add(bot.PlatformSlack, sl)
		parts = append(parts, ops.Part{Name: "slack", Check: ops.Connected(sl.Connected)})
		if c.Slack.Mode == "http" {
			extra["POST /slack/events"] = sl.HTTPHandler()
		}
		start("slack", sl.Run)
	}
	var srv *ops.Server
	if addr := m.Config.HTTP.Addr; addr != "" {
		srv, err = ops.Listen(addr, mets, parts, extra)
		switch {
		case err != nil && consoleOnly:
			// A chat in the terminal needs no health endpoint: a second
			// orchat on the same machine still chats.
			fmt.Fprintf(m.Stderr, "orchat: health and metrics are off: %v (another orchat running?). --http ADDR serves them elsewhere.\n", err)
		case err != nil:
			return abort(listenError(err, c.Slack.Mode == "http" && c.Slack.BotToken != ""))
		default:
			m.logger().Info("serving /healthz, /readyz and /metrics", "addr", srv.Addr())
			if m.OpsListening != nil {
				m.OpsListening(srv.Addr())
			}
			start("http", func(context.Context) error { return srv.Serve() })
		}
	}
	<-ctx.Done()
	m.shutdown(st)
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	return g.Wait()
}

// campaign is how often a follower tries to take the scheduler lease: on
// a shared (PostgreSQL) ledger every second, so a leader killed with -9
// is replaced in about that; one process on SQLite decides at its jobs.
func campaign(shared bool) time.Duration {
	if shared {
		return time.Second
	}
	return 0
}

// bootID names this run of the process, beside its instance name, in the
// lock holders other processes see.
func bootID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// listenError says what to do when the health and metrics server cannot
// listen (another orchat holds the port): another address, or none, unless
// Slack's events come there.
func listenError(err error, slackHTTP bool) error {
	if slackHTTP {
		return bot.Errorf(bot.EINVALID, "Cannot serve Slack's events: %v. Set http.addr (or --http ADDR) to a free address, or stop the other program.", err)
	}
	return bot.Errorf(bot.EINVALID, "Cannot serve health and metrics: %v (another orchat running?). Set http.addr (or --http ADDR) to a free address, or --http \"\" to turn the server off.", err)
}

// shutdown lets answers in flight finish (up to shutdown_timeout), then
// cancels the rest; their holds are settled or released by the commands.
func (m *Main) shutdown(st *stack.Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), m.inForce().ShutdownTimeout.Duration)
	defer cancel()
	st.Drain(ctx)
}

// consoleFlagSet wraps the FlagSet so run and console share flag setup.
type consoleFlagSet struct{ *flag.FlagSet }

// notifierSet delivers a scheduler notice through the platform of the
// user's identity, when that adapter can send one (a DM). The scheduler
// starts before the platforms (it decides who registers commands), so
// adapters are added while its jobs may already read the set.
type notifierSet struct {
	mu sync.RWMutex
	m  map[string]scheduler.Notifier
}

func (n *notifierSet) add(platform string, adapter any) {
	if nt, ok := adapter.(scheduler.Notifier); ok {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.m == nil {
			n.m = map[string]scheduler.Notifier{}
		}
		n.m[platform] = nt
	}
}

func (n *notifierSet) get(platform string) (scheduler.Notifier, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	nt, ok := n.m[platform]
	return nt, ok
}

// NotifyChannel posts text in a channel of a community, through the
// platform of the community.
func (n *notifierSet) NotifyChannel(ctx context.Context, community, channel, text string) error {
	platform, _, _ := strings.Cut(community, ":")
	nt, _ := n.get(platform)
	cn, ok := nt.(scheduler.ChannelNotifier)
	if !ok {
		return fmt.Errorf("no way to post in %s channels", platform)
	}
	return cn.NotifyChannel(ctx, community, channel, text)
}

// Notify sends text to the user on their platform.
func (n *notifierSet) Notify(ctx context.Context, id bot.Identity, text string) error {
	nt, ok := n.get(id.Platform())
	if !ok {
		return fmt.Errorf("no way to notify %s users", id.Platform())
	}
	return nt.Notify(ctx, id, text)
}

// quietTerminal keeps routine log lines out of a chat in the terminal: when
// a person types at the console and only the console runs, the default
// "info" level becomes "warn" (a level set in a config file is kept).
func (m *Main) quietTerminal() {
	c := m.Config
	if isTerminal(m.Stdin) && isTerminal(m.Stderr) && m.ConfigPath == "" && c.Log.Level == "info" &&
		c.Discord.Token == "" && c.Slack.BotToken == "" {
		m.Config.Log.Level = "warn"
	}
}

// creditsReport is what /readyz says of the host's OpenRouter key.
func creditsReport(c bot.Credits) string {
	switch {
	case !c.Known:
		return "unknown (not read yet, or the upstream is not OpenRouter)"
	case c.RemainingUSD == nil:
		return fmt.Sprintf("no limit; %.4f USD used", c.UsageUSD)
	}
	return fmt.Sprintf("%.4f USD left of %.2f", *c.RemainingUSD, deref(c.LimitUSD))
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}
