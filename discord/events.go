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
	if !direct && !mentionsUser(m, botID) && !repliesTo(m, botID) {
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
	a.start(func(ctx context.Context) {
		out := newOutput(a, modeMessage, ev)
		out.source = m
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

// runCommand defers the response (ephemeral for private commands) and runs
// the command; the first post of the answer fills the deferred response.
func (a *Adapter) runCommand(ctx context.Context, i *discordgo.Interaction, received time.Time) {
	data := i.ApplicationCommandData()
	cmd := a.commands[data.Name]
	name := data.Name
	private := false
	if cmd != nil {
		name, private = cmd.Name, cmd.Private
	}
	resp := &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}
	if private {
		resp.Data = &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral}
	}
	ev := a.interactionEvent(i, received)
	ev.Command = name
	ev.Options = optionValues(data.Options)
	out := newOutput(a, modeCommand, ev)
	out.ia, out.ephemeral, out.deadline = i, private, received.Add(a.opts.TokenLife)
	if !a.ack(ctx, i, resp, out) {
		return
	}
	a.handle(ctx, ev, out)
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
	if user != nil {
		ev.Identity = bot.Identity("discord:" + user.ID)
		ev.UserName = displayName(user, member)
	}
	if i.GuildID != "" {
		ev.History = &history{a: a, channel: i.ChannelID, threadOnly: true}
	}
	return ev
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
