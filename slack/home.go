package slack

import (
	"context"
	"fmt"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// App Home: when a member opens the app's Home tab (app_home_opened, tab
// "home") the adapter publishes (views.publish) what the engine's own
// commands say for them: /balance (tokens, holds, today's free requests),
// /usage (spend by model), /leaderboard and, for the workspace's admins,
// /settings show (every setting in force and the pool). Running the
// commands keeps one source of truth; the view is the member's alone.

// homeSection is one part of App Home: a heading and the command behind it.
type homeSection struct {
	title, command, sub string
	admins              bool // only for the workspace's admins
}

var homeSections = []homeSection{
	{title: "Your balance", command: "balance"},
	{title: "Your usage by model", command: "usage"},
	{title: "Leaderboard", command: "leaderboard"},
	{title: "Workspace settings and pool (admins)", command: "settings", sub: "show", admins: true},
}

// homeBlockLimit is how many blocks a Home tab view holds.
const homeBlockLimit = 100

// publishHome builds and publishes a member's App Home.
func (a *Adapter) publishHome(ctx context.Context, team, user string) {
	name := a.userName(ctx, user)
	admin := false
	if ok, err := a.managesWorkspace(user)(ctx); err == nil {
		admin = ok
	}
	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, "orchat", false, false)),
		contextBlock("orchat.home.intro", "Every OpenRouter model in Slack. Mention @orchat in a channel, or ask in the Messages tab."),
	}
	for i, sec := range homeSections {
		if sec.admins && !admin {
			continue
		}
		if _, ok := a.commands[sec.command]; !ok {
			continue
		}
		text, ok := a.runForHome(ctx, team, user, name, sec, i)
		if !ok {
			continue
		}
		part := []slackapi.Block{
			slackapi.NewDividerBlock(),
			sectionBlock(fmt.Sprintf("orchat.home.%s", sec.command), "*"+escape(sec.title)+"*"),
		}
		for j, t := range sectionsOf(text) {
			part = append(part, sectionBlock(fmt.Sprintf("orchat.home.%s.%d", sec.command, j), t))
		}
		if len(blocks)+len(part) > homeBlockLimit {
			break
		}
		blocks = append(blocks, part...)
	}
	err := a.call(ctx, team, false, func() error {
		_, err := a.agent.PublishViewContext(ctx, slackapi.PublishViewContextRequest{
			UserID: user, View: slackapi.HomeTabViewRequest{Type: slackapi.VTHomeTab, Blocks: slackapi.Blocks{BlockSet: blocks}},
		})
		return err
	})
	if err != nil {
		a.log.Warn("slack: publishing App Home failed (enable the Home tab in the app's settings)", "err", err)
	}
}

// runForHome runs one command for the member and returns what it
// answered; false when it answered with an error.
func (a *Adapter) runForHome(ctx context.Context, team, user, name string, sec homeSection, n int) (string, bool) {
	ev := bot.Event{
		ID: fmt.Sprintf("slack:home:%s:%s:%d:%d", team, user, a.now().UnixNano(), n), Platform: bot.PlatformSlack,
		Identity: identity(team, user), UserName: name, Community: "slack:" + team,
		Channel: "", Command: sec.command, Subcommand: sec.sub, Time: a.now(),
		ManagesCommunity: a.managesWorkspace(user),
	}
	out := &homeOutput{msgs: map[string]bot.Message{}}
	if err := a.opts.Handler.Handle(ctx, ev, out); err != nil {
		a.log.Debug("slack: an App Home section failed", "command", sec.command, "err", err)
	}
	return out.text()
}

// homeOutput keeps what a command answered for App Home. It is patient:
// a section waits for the member's rate limit rather than being refused.
type homeOutput struct {
	mu    sync.Mutex
	seq   int
	order []string
	msgs  map[string]bot.Message
}

var (
	_ bot.Output  = (*homeOutput)(nil)
	_ bot.Patient = (*homeOutput)(nil)
)

func (h *homeOutput) Post(_ context.Context, m bot.Message) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	id := fmt.Sprint(h.seq)
	h.order = append(h.order, id)
	h.msgs[id] = m
	return id, nil
}

func (h *homeOutput) Edit(_ context.Context, id string, m bot.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[id] = m
	return nil
}

func (h *homeOutput) Waiting(time.Duration) {}

// text is the command's answer: its messages that are not errors or the
// welcome, in order.
func (h *homeOutput) text() (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out string
	ok := false
	for _, id := range h.order {
		m := h.msgs[id]
		if m.Kind == bot.KindError {
			return "", false
		}
		if out != "" {
			out += "\n\n"
		}
		out += m.Text
		ok = true
	}
	return out, ok
}
