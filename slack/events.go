package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/orchat/orchat/bot"
)

// incoming is one user message, from an app_mention or a message event.
type incoming struct {
	eventID     string
	team        string
	channel     string
	channelType string // im, mpim, channel, group; "" when unknown
	user        string
	botID       string
	subtype     string
	text        string
	ts          string
	threadTS    string
	files       []slackapi.File
	mention     bool // an app_mention event
}

// onEventsAPI handles one Events API callback (from Socket Mode or HTTP).
func (a *Adapter) onEventsAPI(data any, retry int) {
	var outer slackevents.EventsAPIEvent
	switch v := data.(type) {
	case slackevents.EventsAPIEvent:
		outer = v
	case *slackevents.EventsAPIEvent:
		outer = *v
	default:
		return
	}
	cb, ok := outer.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok {
		return
	}
	if cb.EventID != "" && !a.events.Add("event:"+cb.EventID, struct{}{}) {
		a.log.Debug("dropped a redelivered slack event", "event", cb.EventID, "retry", retry)
		return
	}
	team := cb.TeamID
	switch ev := outer.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		a.dispatch(func(ctx context.Context) {
			a.onMessage(ctx, incoming{
				eventID: cb.EventID, team: team, channel: ev.Channel, channelType: channelTypeOf(ev.Channel),
				user: ev.User, botID: ev.BotID, text: ev.Text, ts: ev.TimeStamp, threadTS: ev.ThreadTimeStamp,
				files: ev.Files, mention: true,
			})
		})
	case *slackevents.MessageEvent:
		in := incoming{
			eventID: cb.EventID, team: team, channel: ev.Channel, channelType: ev.ChannelType,
			user: ev.User, botID: ev.BotID, subtype: ev.SubType, text: ev.Text, ts: ev.TimeStamp, threadTS: ev.ThreadTimeStamp,
		}
		if ev.Message != nil {
			in.files = ev.Message.Files
		}
		a.dispatch(func(ctx context.Context) { a.onMessage(ctx, in) })
	case *slackevents.AppHomeOpenedEvent:
		a.onHomeOpened(team, ev)
	case *slackevents.AppContextChangedEvent:
		a.onContextChanged(team, ev)
	}
}

// channelTypeOf guesses a conversation's type from its id when the event
// does not say (app_mention).
func channelTypeOf(channel string) string {
	if strings.HasPrefix(channel, "D") {
		return slackevents.ChannelTypeIM
	}
	return ""
}

// onMessage decides whether a message is for the bot and answers it: a
// mention (answered in a thread under it), a message in a thread the bot
// takes part in, or a DM. Everything else, and anything from a bot, is
// ignored.
func (a *Adapter) onMessage(ctx context.Context, in incoming) {
	me, err := a.whoami(ctx, false)
	if err != nil {
		a.log.Warn("slack event dropped: the bot's own id is unknown", "err", err)
		return
	}
	switch in.subtype {
	case "", "file_share", "thread_broadcast":
	default:
		return // edits, deletions, joins, bot_message …
	}
	if in.botID != "" || in.user == "" || in.user == me.UserID {
		return
	}
	dm := in.channelType == slackevents.ChannelTypeIM
	mentioned := strings.Contains(in.text, "<@"+me.UserID+">") || strings.Contains(in.text, "<@"+me.UserID+"|")
	var root string // the thread to answer in; "" answers at the top of a DM
	newThread := false
	switch {
	case dm:
		root = in.threadTS
		if a.opts.AgentView && root == "" {
			// The agent experience answers every question in a thread.
			root, newThread = in.ts, true
		}
	case in.mention:
		root = in.threadTS
		if root == "" {
			root = in.ts
		}
	case mentioned:
		return // the app_mention event of this message answers it
	case in.threadTS != "" && a.inThread(ctx, in.channel, in.threadTS, me):
		root = in.threadTS
	default:
		return
	}
	// app_mention and message events describe the same message: answer once.
	if !a.events.Add("message:"+in.channel+":"+in.ts, struct{}{}) {
		return
	}
	if root != "" {
		a.threads.Put(threadKey(in.channel, root), struct{}{})
	}
	id := in.eventID
	if id == "" {
		id = in.channel + ":" + in.ts
	}
	// A typed command keeps its mentions (<@U…>, <#C…>): it may name a
	// member or a channel.
	typed := strings.HasPrefix(strings.TrimSpace(plainText(in.text, me.UserID, false)), "/")
	ev := bot.Event{
		ID: "slack:" + id, Platform: bot.PlatformSlack,
		Identity: identity(in.team, in.user), UserName: a.userName(ctx, in.user),
		Community: "slack:" + in.team, Channel: in.channel,
		Text: plainText(in.text, me.UserID, typed), Direct: dm,
		Attachments: a.attachments(in.files), Time: tsTime(in.ts, a.now()),
		ManagesCommunity: a.managesWorkspace(in.user),
	}
	if h := a.history(in, root, me); h != nil {
		ev.History = h
	}
	if dm && a.opts.AgentView {
		if cmd := a.plainCommand(plainText(in.text, me.UserID, true)); cmd != "" {
			ev.Text = cmd
		}
		ev.Context = a.viewContext(in.team, in.user)
		if newThread && !strings.HasPrefix(ev.Text, "/") {
			a.setTitle(ctx, in.team, in.channel, root, ev.Text)
		}
	}
	out := a.newOutput(in.team, in.channel, in.user)
	out.thread, out.dm = root, dm
	a.answer(ctx, ev, out)
}

// inThread reports whether the bot takes part in a thread: it answered
// there since it started, or (asked once, remembered for a while) the
// thread's parent or replies include one of its messages.
func (a *Adapter) inThread(ctx context.Context, channel, threadTS string, me *self) bool {
	key := threadKey(channel, threadTS)
	if _, ok := a.threads.Get(key); ok {
		return true
	}
	if _, ok := a.outside.Get(key); ok {
		return false
	}
	cursor := ""
	for page := 0; page < 5; page++ {
		msgs, more, next, err := a.api.GetConversationRepliesContext(ctx, &slackapi.GetConversationRepliesParameters{
			ChannelID: channel, Timestamp: threadTS, Limit: 200, Cursor: cursor,
		})
		if err != nil {
			a.log.Warn("slack: reading a thread to see whether the bot is in it", "channel", channel, "err", err)
			return false
		}
		for _, m := range msgs {
			if isMine(m.Msg, me) {
				a.threads.Put(key, struct{}{})
				return true
			}
		}
		if !more || next == "" {
			break
		}
		cursor = next
	}
	if !a.opts.Shared {
		a.outside.Put(key, struct{}{})
	}
	return false
}

func threadKey(channel, ts string) string { return channel + ":" + ts }

func isMine(m slackapi.Msg, me *self) bool {
	return (m.User != "" && m.User == me.UserID) || (m.BotID != "" && m.BotID == me.BotID)
}

// identity is a Slack user's orchat identity: the workspace the bot is
// installed in and the user id.
func identity(team, user string) bot.Identity {
	return bot.Identity("slack:" + team + ":" + user)
}

// userName returns a user's display name (users.info, remembered for an
// hour); the user id when Slack does not say.
func (a *Adapter) userName(ctx context.Context, user string) string {
	if n, ok := a.names.Get(user); ok {
		return n
	}
	name := user
	if u, err := a.api.GetUserInfoContext(ctx, user); err == nil && u != nil {
		a.admins.Put(user, u.IsAdmin || u.IsOwner || u.IsPrimaryOwner)
		for _, n := range []string{u.Profile.DisplayName, u.RealName, u.Name} {
			if strings.TrimSpace(n) != "" {
				name = n
				break
			}
		}
	} else if err != nil {
		a.log.Debug("slack users.info failed", "user", user, "err", err)
	}
	a.names.Put(user, name)
	return name
}

// managesWorkspace says, when a command asks, whether a user runs the
// workspace: Slack's admins and owners (users.info is_admin, is_owner),
// remembered for ten minutes.
func (a *Adapter) managesWorkspace(user string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		if admin, ok := a.admins.Get(user); ok {
			return admin, nil
		}
		u, err := a.api.GetUserInfoContext(ctx, user)
		if err != nil {
			return false, fmt.Errorf("slack: users.info: %w", err)
		}
		admin := u.IsAdmin || u.IsOwner || u.IsPrimaryOwner
		a.admins.Put(user, admin)
		return admin, nil
	}
}

// onSlash handles a slash command: the text goes to the engine as the
// command's text, and its parser splits it into options.
func (a *Adapter) onSlash(cmd slackapi.SlashCommand, envelope string) {
	id := cmd.TriggerID
	if id == "" {
		id = envelope
	}
	if id != "" && !a.events.Add("command:"+id, struct{}{}) {
		return
	}
	slash := strings.ToLower(strings.TrimPrefix(cmd.Command, "/"))
	name, ok := a.bySlash[slash]
	if !ok {
		name = slash
	}
	c := a.commands[name]
	a.dispatch(func(ctx context.Context) {
		botUser := ""
		if me, err := a.whoami(ctx, false); err == nil {
			botUser = me.UserID
		}
		// Admin commands name users: keep <@U…> so the command can
		// resolve it to an identity.
		text := plainText(cmd.Text, botUser, c != nil && (c.Admin || c.CommunityAdmin))
		ev := bot.Event{
			ID: "slack:" + id, Platform: bot.PlatformSlack,
			Identity: identity(cmd.TeamID, cmd.UserID), UserName: cmd.UserName,
			Community: "slack:" + cmd.TeamID, Channel: cmd.ChannelID,
			Text: text, Command: name, Time: a.now(),
			ManagesCommunity: a.managesWorkspace(cmd.UserID),
		}
		out := a.newOutput(cmd.TeamID, cmd.ChannelID, cmd.UserID)
		out.responseURL = cmd.ResponseURL
		if c != nil && c.Private {
			out.private = true
		} else {
			// Slack does not show the command to the channel: say who asked what.
			who := cmd.UserName
			if who == "" {
				who = "<@" + cmd.UserID + ">"
			} else {
				who = escape(who)
			}
			intro := who + " used */" + escape(slash) + "*"
			if t := strings.TrimSpace(unescape(cmd.Text)); t != "" {
				intro += ": " + escape(bot.Clip(t, 300))
			}
			out.intro = intro
		}
		a.answer(ctx, ev, out)
	})
}

// onInteraction handles a click on a compare's vote button.
func (a *Adapter) onInteraction(cb slackapi.InteractionCallback, envelope string) {
	if cb.Type == slackapi.InteractionTypeMessageAction {
		if cb.CallbackID == a.opts.ShortcutID {
			a.onShortcut(cb, envelope)
		}
		return
	}
	if cb.Type != slackapi.InteractionTypeBlockActions {
		return
	}
	var compareID, choice string
	for _, act := range cb.ActionCallback.BlockActions {
		if act == nil {
			continue
		}
		if answer, model, vote, ok := parseFeedback(act.ActionID, act.Value); ok {
			a.onFeedback(cb, envelope, answer, model, vote)
			return
		}
		if !strings.HasPrefix(act.ActionID, voteActionID) {
			continue
		}
		if id, c, ok := parseVoteValue(act.Value); ok {
			compareID, choice = id, c
			break
		}
	}
	if compareID == "" {
		return
	}
	id, team, channel, first := a.interaction(cb, envelope, "action:")
	if !first {
		return
	}
	msgTS := cb.Container.MessageTs
	if msgTS == "" {
		msgTS = cb.Message.Timestamp
	}
	a.dispatch(func(ctx context.Context) {
		name := cb.User.Name
		if name == "" {
			name = a.userName(ctx, cb.User.ID)
		}
		ev := bot.Event{
			ID: "slack:" + id, Platform: bot.PlatformSlack,
			Identity: identity(team, cb.User.ID), UserName: name,
			Community: "slack:" + team, Channel: channel,
			Command: "vote", Options: map[string]string{"compare": compareID, "choice": choice},
			Time: a.now(),
		}
		out := a.newOutput(team, channel, cb.User.ID)
		out.thread = cb.Message.ThreadTimestamp
		out.responseURL = cb.ResponseURL
		out.private = true
		out.vote = &voteTarget{channel: channel, ts: msgTS, text: cb.Message.Text, blocks: cb.Message.Blocks.BlockSet}
		a.answer(ctx, ev, out)
	})
}

// attachments turns a message's files into attachments whose Fetch sends
// the bot token, which url_private needs, and only to Slack.
func (a *Adapter) attachments(files []slackapi.File) []bot.Attachment {
	var out []bot.Attachment
	for _, f := range files {
		u := f.URLPrivateDownload
		if u == "" {
			u = f.URLPrivate
		}
		if u == "" {
			continue
		}
		name := f.Name
		if name == "" {
			name = f.Title
		}
		out = append(out, bot.Attachment{
			Name: name, ContentType: f.Mimetype, Size: int64(f.Size), URL: u,
			Fetch: func(ctx context.Context, max int64) ([]byte, error) { return a.download(ctx, u, max) },
		})
	}
	return out
}

// download fetches at most max bytes of a private Slack file. The errors
// are sentences for the user (they never hold the token or the URL).
func (a *Adapter) download(ctx context.Context, rawURL string, max int64) ([]byte, error) {
	if !a.mayReceiveToken(rawURL) {
		return nil, errors.New("it is not stored on Slack.")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, errors.New("its address is not valid.")
	}
	req.Header.Set("Authorization", "Bearer "+a.opts.BotToken)
	resp, err := a.http.Do(req)
	if errors.Is(err, errOffSlack) {
		a.log.Warn("a file download redirected off Slack; not followed")
		return nil, errors.New("Slack sent it from somewhere else, which I do not follow.")
	}
	if err != nil {
		return nil, errors.New("the download from Slack failed.")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("Slack answered %d (the app needs the files:read scope).", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		// Slack answers a missing scope with its login page.
		return nil, errors.New("Slack did not hand the file over (the app needs the files:read scope).")
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		return nil, errors.New("the download from Slack broke off.")
	}
	return data, nil
}

// errOffSlack marks a file download redirected off Slack's hosts.
var errOffSlack = errors.New("slack: file redirect off Slack")

// mayReceiveToken reports whether a file URL is Slack's (or the configured
// API host's, for GovCloud and tests): the token is never sent elsewhere.
func (a *Adapter) mayReceiveToken(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if u.Scheme == a.apiURL.Scheme && u.Host == a.apiURL.Host {
		return true
	}
	if u.Scheme != "https" {
		return false
	}
	for _, d := range []string{"slack.com", "slack-gov.com"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// tsTime reads a Slack timestamp ("1712345678.123456").
func tsTime(ts string, fallback time.Time) time.Time {
	sec, micro, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return fallback
	}
	for len(micro) < 6 {
		micro += "0"
	}
	us, _ := strconv.ParseInt(micro[:6], 10, 64)
	return time.Unix(s, us*1000)
}

// tsLess reports whether Slack timestamp a is before b.
func tsLess(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	if as != bs {
		return as < bs
	}
	for len(af) < len(bf) {
		af += "0"
	}
	for len(bf) < len(af) {
		bf += "0"
	}
	return af < bf
}

// interaction names an interaction callback once: its id (the trigger id,
// else the envelope's), the workspace, the channel it came from, and
// whether this is its first delivery (kind, such as "action:", keeps the
// ids of different callbacks apart in the adapter's seen set).
func (a *Adapter) interaction(cb slackapi.InteractionCallback, envelope, kind string) (id, team, channel string, first bool) {
	id = cb.TriggerID
	if id == "" {
		id = envelope
	}
	if id != "" && !a.events.Add(kind+id, struct{}{}) {
		return id, "", "", false
	}
	team = cb.Team.ID
	if team == "" {
		team = cb.User.TeamID
	}
	channel = cb.Container.ChannelID
	if channel == "" {
		channel = cb.Channel.ID
	}
	return id, team, channel, true
}
