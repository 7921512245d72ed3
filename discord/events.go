package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// Event ids: "discord:message:<id>" and "discord:interaction:<id>".
func messageEventID(id string) string     { return "discord:message:" + id }
func interactionEventID(id string) string { return "discord:interaction:" + id }

// onMessageCreate turns a message into an ask when it mentions the bot, is
// in a DM, or replies to one of the bot's messages.
func (a *Adapter) onMessageCreate(s *discordgo.Session, mc *discordgo.MessageCreate) {
	m := mc.Message
	if m == nil || m.Author == nil {
		return
	}
	botID, _ := a.ids()
	if botID == "" || m.Author.Bot || m.Author.ID == botID || m.WebhookID != "" {
		return
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return // joins, pins, thread notices…
	}
	direct := m.GuildID == ""
	mentioned := mentionsUser(m, botID)
	if !direct && !mentioned && !repliesTo(m, botID) && !a.botThread(context.Background(), m.ChannelID) {
		return
	}
	id := messageEventID(m.ID)
	if !a.seen.Add(id, struct{}{}) {
		a.log.Debug("dropped a redelivered message", "event", id)
		return
	}
	ev := bot.Event{
		ID: id, Platform: bot.PlatformDiscord,
		Identity: bot.Identity("discord:" + m.Author.ID), UserName: displayName(m.Author, m.Member),
		Community: community(m.GuildID), Channel: m.ChannelID,
		Text: stripMention(m.Content, botID), Direct: direct,
		Attachments: a.attachments(m.Attachments), Time: m.Timestamp,
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.History = &history{a: a, channel: m.ChannelID, before: m.ID, parent: m.MessageReference, parentMsg: m.ReferencedMessage}
	if !direct && m.Member != nil {
		// A message's member has roles but no permissions: the guild's
		// roles (and owner) decide them, as Discord computes base
		// permissions; read from the REST API when a command asks.
		ev.Roles = m.Member.Roles
		guild, user, roles := m.GuildID, m.Author.ID, m.Member.Roles
		ev.ManagesCommunity = func(ctx context.Context) (bool, error) { return a.managesByRoles(ctx, guild, user, roles) }
	}
	a.start(func(ctx context.Context) {
		thread := ""
		if !direct {
			ev.ParentChannel = a.parentChannel(ctx, m.ChannelID)
			if mentioned && ev.ParentChannel == "" && a.threadsHere(ctx, m.GuildID, m.ChannelID) {
				thread = a.startThread(ctx, m, ev.Text, ev.UserName)
			}
		}
		if thread != "" {
			// The answer goes to the new thread; its settings are the
			// channel's.
			ev.Channel, ev.ParentChannel = thread, m.ChannelID
		} else if ev.ParentChannel != "" {
			if ok := a.botThread(ctx, m.ChannelID); ok {
				ev.History = &history{a: a, channel: m.ChannelID, before: m.ID, parent: m.MessageReference, parentMsg: m.ReferencedMessage,
					starter: ev.ParentChannel}
			}
		}
		out := newOutput(a, modeMessage, ev)
		out.source = m
		out.inThread = thread != ""
		a.handle(ctx, ev, out)
	})
}

// onInteractionCreate acknowledges slash commands and buttons (within
// Discord's 3 seconds) and hands them to the handler; autocomplete is
// answered directly.
func (a *Adapter) onInteractionCreate(s *discordgo.Session, ic *discordgo.InteractionCreate) {
	i := ic.Interaction
	if i == nil {
		return
	}
	id := interactionEventID(i.ID)
	switch i.Type {
	case discordgo.InteractionApplicationCommandAutocomplete:
		if a.seen.Add(id, struct{}{}) {
			a.start(func(ctx context.Context) { a.autocomplete(ctx, i) })
		}
	case discordgo.InteractionApplicationCommand:
		if !a.seen.Add(id, struct{}{}) {
			a.log.Debug("dropped a redelivered interaction", "event", id)
			return
		}
		received := time.Now()
		a.start(func(ctx context.Context) { a.runCommand(ctx, i, received) })
	case discordgo.InteractionMessageComponent:
		if !a.seen.Add(id, struct{}{}) {
			a.log.Debug("dropped a redelivered interaction", "event", id)
			return
		}
		received := time.Now()
		a.start(func(ctx context.Context) { a.runComponent(ctx, i, received) })
	}
}

// runCommand defers the response (ephemeral for private commands, and
// wherever the bot is not a member) and runs the command; the first post
// of the answer fills the deferred response. A message command runs its
// bot command with the message as the prompt.
func (a *Adapter) runCommand(ctx context.Context, i *discordgo.Interaction, received time.Time) {
	data := i.ApplicationCommandData()
	ev := a.interactionEvent(i, received)
	name, private, refusal := data.Name, false, ""
	if data.CommandType == discordgo.MessageApplicationCommand {
		if cmd, ok := messageCommand(data.Name); ok {
			name = cmd
		}
		var prompt string
		prompt, ev.Attachments, refusal = a.targetMessage(data)
		ev.Options = map[string]string{"prompt": prompt}
	} else {
		if cmd := a.commands[data.Name]; cmd != nil {
			name, private = cmd.Name, cmd.Private
		}
		ev.Subcommand, ev.Options = subcommandPath(data.Options)
		resolveMentions(ev.Options, data.Options, data.Resolved)
		var err error
		if ev.Attachments, err = a.optionFiles(ev.Options, data.Options, data.Resolved); err != nil {
			refusal = err.Error()
		}
	}
	ev.Command = name
	if ev.Identity == "" {
		refusal = "Discord did not say who ran this command, so I cannot answer it; please try again."
	}
	outside := userInstalled(i)
	private = private || outside || refusal != ""
	resp := &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}
	if private {
		resp.Data = &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral}
	}
	out := newOutput(a, modeCommand, ev)
	out.ia, out.ephemeral, out.deadline = i, private, received.Add(a.opts.TokenLife)
	out.private = outside
	if !a.ack(ctx, i, resp, out) {
		return
	}
	if refusal != "" {
		if _, err := out.Post(ctx, bot.Message{Kind: bot.KindError, Status: bot.StatusFailed, Private: true, Text: refusal}); err != nil {
			a.log.Debug("could not refuse an interaction", "event", ev.ID, "err", a.redactInteraction(err, i))
		}
		out.close(ctx)
		return
	}
	if i.GuildID != "" && !outside {
		// After the acknowledgement: the channel may take a REST call.
		ev.ParentChannel = a.parentChannel(ctx, i.ChannelID)
		out.ev = ev
	}
	a.handle(ctx, ev, out)
}

// userInstalled reports whether an interaction reached orchat through a
// member's own install only (Discord's authorizing_integration_owners
// names no guild install): in a server the bot is not in, or in a DM or
// group DM between other people. There the bot can answer only through
// the interaction (ephemerally, as the member's own tool) and may not
// read the channel or the server. The bot's own DM is never outside.
func userInstalled(i *discordgo.Interaction) bool {
	if len(i.AuthorizingIntegrationOwners) == 0 || i.Context == discordgo.InteractionContextBotDM {
		return false // older payloads name no owners: a guild install
	}
	_, guild := i.AuthorizingIntegrationOwners[discordgo.ApplicationIntegrationGuildInstall]
	return !guild
}

// targetMessage reads the message a message command was run on (from the
// interaction's resolved data: the bot may not be able to read the
// channel): its text as the prompt and its files as attachments, or a
// sentence saying why there is nothing to answer.
func (a *Adapter) targetMessage(data discordgo.ApplicationCommandInteractionData) (string, []bot.Attachment, string) {
	var m *discordgo.Message
	if data.Resolved != nil {
		m = data.Resolved.Messages[data.TargetID]
	}
	if m == nil {
		return "", nil, "I can't read that message: it may have been deleted. Pick another message, or ask with /ask."
	}
	botID, _ := a.ids()
	text := stripMention(m.Content, botID)
	if m.Author != nil && m.Author.ID == botID {
		text = botText(m) // one of the bot's own answers: its embeds' bodies
	}
	atts := a.attachments(m.Attachments)
	if text == "" && len(atts) == 0 {
		return "", nil, "That message has no text or files I can read (embeds, stickers and polls are not read). Pick another message, or ask with /ask."
	}
	return text, atts, ""
}

// optionFiles takes a slash command's attachment options (type 11) out of
// opts and returns the files they picked (data.resolved.attachments), to
// be downloaded by the same host checks and size caps as a message's.
func (a *Adapter) optionFiles(opts map[string]string, data []*discordgo.ApplicationCommandInteractionDataOption, res *discordgo.ApplicationCommandInteractionDataResolved) ([]bot.Attachment, error) {
	var files []*discordgo.MessageAttachment
	var walk func([]*discordgo.ApplicationCommandInteractionDataOption) error
	walk = func(list []*discordgo.ApplicationCommandInteractionDataOption) error {
		for _, o := range list {
			if o == nil {
				continue
			}
			if len(o.Options) > 0 {
				if err := walk(o.Options); err != nil {
					return err
				}
				continue
			}
			if o.Type != discordgo.ApplicationCommandOptionAttachment {
				continue
			}
			delete(opts, o.Name)
			id, _ := o.Value.(string)
			var f *discordgo.MessageAttachment
			if res != nil {
				f = res.Attachments[id]
			}
			if f == nil {
				return errors.New("Discord did not send the file you picked; attach it again.")
			}
			files = append(files, f)
		}
		return nil
	}
	if err := walk(data); err != nil {
		return nil, err
	}
	return a.attachments(files), nil
}

// runComponent acknowledges a vote button with a deferred update (the
// button's message stays as it is) and records the vote.
func (a *Adapter) runComponent(ctx context.Context, i *discordgo.Interaction, received time.Time) {
	data := i.MessageComponentData()
	compare, choice, ok := parseVoteID(data.CustomID)
	out := newOutput(a, modeComponent, a.interactionEvent(i, received))
	out.ia, out.ephemeral, out.deadline = i, true, received.Add(a.opts.TokenLife)
	if !a.ack(ctx, i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}, out) || !ok {
		return
	}
	ev := out.ev
	ev.Command = "vote"
	ev.Options = map[string]string{"compare": compare, "choice": choice}
	out.ev = ev
	a.handle(ctx, ev, out)
}

// ack answers the interaction. It reports whether to go on: an interaction
// another process already acknowledged is not ours to answer; on any other
// failure the answer still goes out, as channel messages.
func (a *Adapter) ack(ctx context.Context, i *discordgo.Interaction, resp *discordgo.InteractionResponse, out *output) bool {
	err := a.respond(ctx, i, resp)
	if err == nil {
		return true
	}
	err = a.redactInteraction(err, i)
	if restCode(err) == 40060 { // Interaction has already been acknowledged
		a.log.Info("interaction already acknowledged elsewhere", "event", interactionEventID(i.ID))
		return false
	}
	a.log.Warn("could not acknowledge an interaction; answering in the channel", "event", interactionEventID(i.ID), "err", err)
	out.expired = true
	return true
}

// respond sends an interaction's callback (its response) straight through
// the session's HTTP client. Discord exempts callbacks from the global rate
// limit, but discordgo holds every request while a global 429 lasts: sent
// through it, acknowledgements would wait behind the streamed edits that
// hit the limit, past Discord's 3 seconds.
func (a *Adapter) respond(ctx context.Context, i *discordgo.Interaction, resp *discordgo.InteractionResponse) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, discordgo.EndpointInteractionResponse(i.ID, i.Token), bytes.NewReader(body))
	if err != nil {
		return err
	}
	// As discordgo sends it (Discord does not need it here; a REST proxy may).
	req.Header.Set("Authorization", a.session.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", a.session.UserAgent)
	res, err := a.session.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	rerr := &discordgo.RESTError{Request: req, Response: res, ResponseBody: data}
	var msg discordgo.APIErrorMessage
	if json.Unmarshal(data, &msg) == nil {
		rerr.Message = &msg
	}
	return rerr
}

// handle runs the handler for one event and tidies its output.
func (a *Adapter) handle(ctx context.Context, ev bot.Event, out *output) {
	err := a.opts.Handler.Handle(ctx, ev, out)
	out.close(ctx)
	if err != nil {
		a.log.Debug("event handled with an error", "event", ev.ID, "err", a.redact(err))
	}
}

// interactionEvent is the part of an event every interaction shares.
func (a *Adapter) interactionEvent(i *discordgo.Interaction, received time.Time) bot.Event {
	user, member := i.User, i.Member
	if member != nil && member.User != nil {
		user = member.User
	}
	ev := bot.Event{
		ID: interactionEventID(i.ID), Platform: bot.PlatformDiscord,
		Community: community(i.GuildID), Channel: i.ChannelID, Direct: i.GuildID == "", Time: received,
	}
	if user != nil && user.ID != "" {
		ev.Identity = bot.Identity("discord:" + user.ID)
		ev.UserName = displayName(user, member)
	}
	if userInstalled(i) {
		// A member's own install, where the bot is no member: their own
		// balance and the host's defaults, no server settings or pool, and
		// no history (the bot cannot read the channel).
		ev.Community, ev.Direct = community(""), false
		return ev
	}
	if member != nil && i.GuildID != "" {
		// Discord sends the member's permissions in the channel with
		// every interaction: Manage Server or Administrator run the server.
		ev.Roles = member.Roles
		perms := member.Permissions
		ev.ManagesCommunity = func(context.Context) (bool, error) { return managesGuild(perms), nil }
	}
	if i.GuildID != "" {
		ev.History = &history{a: a, channel: i.ChannelID, threadOnly: true}
	}
	return ev
}

// subcommandPath reads the subcommand (and its group) a slash command
// was run with, and its options by name: ("models allow", {list: …}).
func subcommandPath(opts []*discordgo.ApplicationCommandInteractionDataOption) (string, map[string]string) {
	var path []string
	for len(opts) == 1 && opts[0] != nil && (opts[0].Type == discordgo.ApplicationCommandOptionSubCommand || opts[0].Type == discordgo.ApplicationCommandOptionSubCommandGroup) {
		path = append(path, opts[0].Name)
		opts = opts[0].Options
	}
	return strings.Join(path, " "), optionValues(opts)
}

// resolveMentions writes channel, role and user options as the platform
// writes their mentions (<#id>, <@&id>, <@id>), so the commands read them
// as they read typed ones.
func resolveMentions(out map[string]string, opts []*discordgo.ApplicationCommandInteractionDataOption, res *discordgo.ApplicationCommandInteractionDataResolved) {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if len(o.Options) > 0 {
			resolveMentions(out, o.Options, res)
			continue
		}
		id, _ := o.Value.(string)
		switch o.Type {
		case discordgo.ApplicationCommandOptionChannel:
			out[o.Name] = "<#" + id + ">"
		case discordgo.ApplicationCommandOptionRole:
			out[o.Name] = "<@&" + id + ">"
		case discordgo.ApplicationCommandOptionMentionable:
			if res != nil && res.Roles[id] != nil {
				out[o.Name] = "<@&" + id + ">"
			}
		}
	}
}

// managesGuild reports whether permissions let a member run the server.
func managesGuild(perms int64) bool {
	return perms&discordgo.PermissionAdministrator != 0 || perms&discordgo.PermissionManageGuild != 0
}

// guildRoles is what the adapter remembers of a guild to compute a
// member's base permissions: its owner and its roles' permissions.
type guildRoles struct {
	owner string
	perms map[string]int64 // role id → permissions; the guild id is @everyone
}

// managesByRoles computes a member's base permissions from the guild's
// roles (GET /guilds/{id}, remembered for five minutes) as Discord does:
// the owner has all; else @everyone's and the member's roles' OR-ed
// together, Administrator meaning all.
func (a *Adapter) managesByRoles(ctx context.Context, guildID, userID string, roles []string) (bool, error) {
	g, ok := a.guilds.Get(guildID)
	if !ok {
		gd, err := a.api.Guild(guildID, discordgo.WithContext(ctx))
		if err != nil {
			return false, fmt.Errorf("discord: read the server's roles: %w", a.redact(err))
		}
		g = &guildRoles{owner: gd.OwnerID, perms: map[string]int64{}}
		for _, r := range gd.Roles {
			if r != nil {
				g.perms[r.ID] = r.Permissions
			}
		}
		a.guilds.Put(guildID, g)
	}
	if userID == g.owner {
		return true, nil
	}
	p := g.perms[guildID]
	for _, r := range roles {
		p |= g.perms[r]
	}
	return managesGuild(p), nil
}

// optionValues flattens slash command options into name → text.
func optionValues(opts []*discordgo.ApplicationCommandInteractionDataOption) map[string]string {
	out := map[string]string{}
	var walk func([]*discordgo.ApplicationCommandInteractionDataOption)
	walk = func(opts []*discordgo.ApplicationCommandInteractionDataOption) {
		for _, o := range opts {
			if o == nil {
				continue
			}
			if len(o.Options) > 0 {
				walk(o.Options)
				continue
			}
			switch v := o.Value.(type) {
			case nil:
			case string:
				out[o.Name] = v
			case float64:
				out[o.Name] = strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				out[o.Name] = strconv.FormatBool(v)
			default:
				out[o.Name] = fmt.Sprint(v)
			}
			if o.Type == discordgo.ApplicationCommandOptionUser || o.Type == discordgo.ApplicationCommandOptionMentionable {
				if id, ok := o.Value.(string); ok {
					out[o.Name] = "<@" + id + ">"
				}
			}
		}
	}
	walk(opts)
	return out
}

// Vote buttons carry "vote:<compare id>:<choice>".
const votePrefix = "vote:"

func voteID(compare, choice string) string { return votePrefix + compare + ":" + choice }

func parseVoteID(s string) (compare, choice string, ok bool) {
	rest, ok := strings.CutPrefix(s, votePrefix)
	if !ok {
		return "", "", false
	}
	compare, choice, ok = strings.Cut(rest, ":")
	return compare, choice, ok && compare != "" && choice != ""
}

func community(guildID string) string {
	if guildID == "" {
		return "discord:dm"
	}
	return "discord:" + guildID
}

// displayName is what people see: the server nickname, the global display
// name, or the user name.
func displayName(u *discordgo.User, m *discordgo.Member) string {
	if m != nil && m.Nick != "" {
		return m.Nick
	}
	if u == nil {
		return ""
	}
	if u.GlobalName != "" {
		return u.GlobalName
	}
	return u.Username
}

func mentionsUser(m *discordgo.Message, id string) bool {
	for _, u := range m.Mentions {
		if u != nil && u.ID == id {
			return true
		}
	}
	return strings.Contains(m.Content, "<@"+id+">") || strings.Contains(m.Content, "<@!"+id+">")
}

func repliesTo(m *discordgo.Message, id string) bool {
	r := m.ReferencedMessage
	return r != nil && r.Author != nil && r.Author.ID == id
}

// stripMention removes the bot's mentions from a message's text.
func stripMention(text, botID string) string {
	if botID != "" {
		text = strings.ReplaceAll(text, "<@"+botID+">", "")
		text = strings.ReplaceAll(text, "<@!"+botID+">", "")
	}
	return strings.TrimSpace(text)
}

// restCode returns Discord's JSON error code of a REST failure (0 if none).
func restCode(err error) int {
	var rerr *discordgo.RESTError
	if errors.As(err, &rerr) && rerr.Message != nil {
		return rerr.Message.Code
	}
	return 0
}

// restStatus returns the HTTP status of a REST failure (0 if none).
func restStatus(err error) int {
	var rerr *discordgo.RESTError
	if errors.As(err, &rerr) && rerr.Response != nil {
		return rerr.Response.StatusCode
	}
	return 0
}

// tokenExpired reports whether a webhook call failed because the
// interaction token can no longer be used.
func tokenExpired(err error) bool {
	if err == nil {
		return false
	}
	switch restCode(err) {
	case 50027, 10015, 10062: // invalid webhook token, unknown webhook, unknown interaction
		return true
	}
	return restStatus(err) == http.StatusUnauthorized
}
