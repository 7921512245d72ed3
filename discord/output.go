package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// TextLimit is the most characters one message's text may hold: an embed
// description.
const TextLimit = 4096

// mode is how an event's messages reach Discord.
type mode int

const (
	// modeMessage: a mention, DM or reply. Messages are channel messages
	// replying to the user's; private ones go to the user's DMs.
	modeMessage mode = iota
	// modeCommand: a slash command deferred with a "thinking…" response.
	// The first post fills it, later posts are follow-ups.
	modeCommand
	// modeComponent: a button deferred without a visible response; posts
	// are follow-ups (ephemeral when private).
	modeComponent
)

// output is the bot.Output of one event.
type output struct {
	a      *Adapter
	mode   mode
	ev     bot.Event
	user   string             // the asking user's id
	source *discordgo.Message // modeMessage: the user's message
	// inThread: the answer goes to a thread started from the user's
	// message (ev.Channel), where that message is not: no reply to it.
	inThread bool

	ia        *discordgo.Interaction
	ephemeral bool // modeCommand: the deferred response is ephemeral
	// private: every message is shown to the user only (an interaction
	// through a member's own install, where the bot is no member).
	private  bool
	deadline time.Time // when the interaction token stops working

	mu         sync.Mutex // one post or edit at a time, in order
	targets    map[string]*target
	n          int
	resolved   bool      // modeCommand: the deferred response holds a message
	expired    bool      // the interaction token failed: use channel messages
	pending    []*target // private posts waiting for the deferred response to resolve
	lastPublic string    // modeMessage: the last public message (parts reply to it)
	// welcome is a first-time member's note in a channel (modeMessage):
	// not a post of its own but a line in the footer of the answer's first
	// message (welcomeOn), so the channel sees one post per question.
	welcome   string
	welcomeOn string

	typingOnce sync.Once
	stopOnce   sync.Once
	stop       chan struct{} // closed when typing should stop
}

// targetKind is where a posted message lives.
type targetKind int

const (
	targetOriginal targetKind = iota // the interaction's original response
	targetFollowup                   // an interaction follow-up
	targetChannel                    // a channel (or DM) message
	targetPending                    // not sent yet (see output.pending)
	targetDropped                    // could not be delivered privately: edits are ignored
)

type target struct {
	kind    targetKind
	channel string
	id      string
	private bool
	msg     bot.Message // targetPending: the latest content
	// filesSent: the message's files (and thinking) were uploaded.
	filesSent bool
}

var (
	_ bot.Output  = (*output)(nil)
	_ bot.Limiter = (*output)(nil)
	_ bot.Typer   = (*output)(nil)
)

func newOutput(a *Adapter, m mode, ev bot.Event) *output {
	o := &output{a: a, mode: m, ev: ev, targets: map[string]*target{}, stop: make(chan struct{})}
	if id, ok := strings.CutPrefix(string(ev.Identity), "discord:"); ok {
		o.user = id
	}
	return o
}

// Limits: an embed description per message; the engine's edit pace (one
// edit per message per second) suits Discord.
func (o *output) Limits() bot.Limits { return bot.Limits{Text: TextLimit} }

// Typing shows "orchat is typing…" in the channel of a message event until
// the first message is posted (Discord shows it for 10 s; it is renewed).
// An interaction already shows "thinking…".
func (o *output) Typing(ctx context.Context) error {
	if o.mode != modeMessage {
		return nil
	}
	select {
	case <-o.stop:
		return nil
	default:
	}
	if err := o.a.api.ChannelTyping(o.ev.Channel, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("discord: typing: %w", o.a.redact(err))
	}
	o.typingOnce.Do(func() { go o.keepTyping() })
	return nil
}

// keepTyping renews the typing indicator until the first post.
func (o *output) keepTyping() {
	t := time.NewTicker(8 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-o.a.work.Done():
			return
		case <-t.C:
			_ = o.a.api.ChannelTyping(o.ev.Channel)
		}
	}
}

func (o *output) stopTyping() { o.stopOnce.Do(func() { close(o.stop) }) }

// Post sends a new message and returns a handle for edits.
func (o *output) Post(ctx context.Context, m bot.Message) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m.Private = m.Private || o.private
	if m.Welcome && o.mode == modeMessage && !o.ev.Direct {
		// Kept for the answer's footer; the typing indicator goes on.
		o.welcome = m.Text
		o.n++
		id := strconv.Itoa(o.n)
		o.targets[id] = &target{kind: targetDropped}
		return id, nil
	}
	o.stopTyping()
	if m.Vote != nil {
		o.showVote(ctx, m.Vote)
	}
	// The first message after it carries it, public or private (a DM).
	carries := o.welcome != "" && o.welcomeOn == ""
	if carries {
		m = withWelcome(m, o.welcome)
	}
	t, err := o.send(ctx, m)
	if err != nil {
		return "", fmt.Errorf("discord: post: %w", o.a.redact(err))
	}
	o.n++
	id := strconv.Itoa(o.n)
	o.targets[id] = t
	if carries {
		o.welcomeOn = id
	}
	o.remember(t, m)
	o.upload(ctx, t, m)
	return id, nil
}

// Edit replaces a posted message.
func (o *output) Edit(ctx context.Context, id string, m bot.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.targets[id]
	if t == nil {
		return fmt.Errorf("discord: edit: no message %q in this answer", id)
	}
	m.Private = m.Private || o.private
	if id == o.welcomeOn {
		m = withWelcome(m, o.welcome)
	}
	if err := o.edit(ctx, t, m); err != nil {
		return fmt.Errorf("discord: edit: %w", o.a.redact(err))
	}
	o.remember(t, m)
	o.upload(ctx, t, m)
	return nil
}

// withWelcome adds a first-time member's note to the footer of m (of a
// compare, its totals' footer).
func withWelcome(m bot.Message, welcome string) bot.Message {
	line := "👋 " + welcome
	if m.Compare != nil {
		c := *m.Compare
		c.Footer = strings.TrimSpace(c.Footer + "\n" + line)
		m.Compare = &c
		return m
	}
	m.Footer = strings.TrimSpace(m.Footer + "\n" + line)
	return m
}

// close runs when the handler is done: a deferred response that nothing
// public filled is removed, and private messages still waiting for it go to
// the user's DMs (a first follow-up would have taken the deferred
// response's visibility, public).
func (o *output) close(ctx context.Context) {
	o.stopTyping()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mode != modeCommand || o.resolved {
		return
	}
	if o.usable() {
		if err := o.a.api.InteractionResponseDelete(o.ia, discordgo.WithContext(ctx)); err != nil {
			o.a.log.Debug("could not remove an unused deferred response", "event", o.ev.ID, "err", o.a.redactInteraction(err, o.ia))
		}
	}
	pending := o.pending
	o.pending = nil
	for _, t := range pending {
		nt, err := o.sendElsewhere(ctx, t.msg)
		if err != nil {
			o.a.log.Warn("could not deliver a private message", "event", o.ev.ID, "err", o.a.redact(err))
			t.kind = targetDropped
			continue
		}
		*t = *nt
	}
}

// usable reports whether the interaction token may still be used.
func (o *output) usable() bool {
	return o.ia != nil && !o.expired && time.Now().Before(o.deadline)
}

func (o *output) send(ctx context.Context, m bot.Message) (*target, error) {
	if o.mode == modeMessage {
		return o.sendMessage(ctx, m)
	}
	if o.usable() {
		t, err := o.sendInteraction(ctx, m)
		if !tokenExpired(err) {
			return t, err
		}
		o.a.log.Info("interaction token no longer valid; answering in the channel", "event", o.ev.ID)
		o.expired = true
	}
	return o.sendElsewhere(ctx, m)
}

// sendInteraction posts through the interaction's webhook.
func (o *output) sendInteraction(ctx context.Context, m bot.Message) (*target, error) {
	if o.mode == modeCommand && !o.resolved {
		if m.Private && !o.ephemeral {
			t := &target{kind: targetPending, private: true, msg: m}
			o.pending = append(o.pending, t)
			return t, nil
		}
		msg, err := o.a.webhook(ctx, http.MethodPatch, o.ia, "@original", webhookEdit(m))
		if err != nil {
			return nil, err
		}
		o.resolved = true
		t := &target{kind: targetOriginal, channel: o.ev.Channel, private: o.ephemeral}
		if msg != nil {
			t.id = msg.ID
			if msg.ChannelID != "" {
				t.channel = msg.ChannelID
			}
		}
		o.flushPending(ctx)
		return t, nil
	}
	return o.followup(ctx, m)
}

func (o *output) followup(ctx context.Context, m bot.Message) (*target, error) {
	msg, err := o.a.webhook(ctx, http.MethodPost, o.ia, "", webhookParams(m))
	if err != nil {
		return nil, err
	}
	t := &target{kind: targetFollowup, channel: o.ev.Channel, private: m.Private}
	if msg != nil {
		t.id = msg.ID
		if msg.ChannelID != "" {
			t.channel = msg.ChannelID
		}
	}
	return t, nil
}

// flushPending sends the private messages that waited for the deferred
// response, now as ephemeral follow-ups.
func (o *output) flushPending(ctx context.Context) {
	pending := o.pending
	o.pending = nil
	for _, t := range pending {
		nt, err := o.followup(ctx, t.msg)
		if err != nil {
			o.a.log.Warn("could not send a private follow-up", "event", o.ev.ID, "err", o.a.redact(err))
			t.kind = targetDropped
			continue
		}
		*t = *nt
	}
}

// sendMessage posts a message event's answer: in the channel, replying to
// the user's message (a later part replies to the part before it, so the
// reply chain holds the whole answer), or in a DM when private.
func (o *output) sendMessage(ctx context.Context, m bot.Message) (*target, error) {
	if m.Private && !o.ev.Direct {
		return o.sendDM(ctx, m)
	}
	ref := o.source.ID
	if o.inThread {
		ref = ""
	}
	if m.Part > 0 && o.lastPublic != "" {
		ref = o.lastPublic
	}
	t, err := o.sendChannel(ctx, o.ev.Channel, m, ref)
	if err == nil {
		o.lastPublic = t.id
	}
	return t, err
}

// sendElsewhere posts without the interaction token: in the channel, or in
// a DM when private.
func (o *output) sendElsewhere(ctx context.Context, m bot.Message) (*target, error) {
	if m.Private && !o.ev.Direct {
		return o.sendDM(ctx, m)
	}
	return o.sendChannel(ctx, o.ev.Channel, m, "")
}

func (o *output) sendChannel(ctx context.Context, channel string, m bot.Message, replyTo string) (*target, error) {
	send := messageSend(m)
	if replyTo != "" {
		no := false
		send.Reference = &discordgo.MessageReference{MessageID: replyTo, ChannelID: channel, FailIfNotExists: &no}
	}
	msg, err := o.a.api.ChannelMessageSendComplex(channel, send, discordgo.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	return &target{kind: targetChannel, channel: channel, id: msg.ID, private: m.Private}, nil
}

// sendDM sends a private message to the user's DMs. When the user does not
// accept DMs, the channel is told so (without the message).
func (o *output) sendDM(ctx context.Context, m bot.Message) (*target, error) {
	ch, err := o.a.dmChannel(ctx, o.user)
	if err == nil {
		var t *target
		if t, err = o.sendChannel(ctx, ch, m, ""); err == nil {
			return t, nil
		}
	}
	o.a.log.Info("could not DM a private reply", "event", o.ev.ID, "err", o.a.redact(err))
	note := bot.Message{Kind: bot.KindError, Status: bot.StatusFailed,
		Text: "I couldn't send you that privately: your DMs are closed to me. Use the slash command instead; its answer is shown only to you."}
	ref := ""
	if o.source != nil {
		ref = o.source.ID
	}
	if _, nerr := o.sendChannel(ctx, o.ev.Channel, note, ref); nerr != nil {
		return nil, errors.Join(err, nerr)
	}
	return &target{kind: targetDropped}, nil
}

func (o *output) edit(ctx context.Context, t *target, m bot.Message) error {
	switch t.kind {
	case targetPending:
		t.msg = m
		return nil
	case targetDropped:
		return nil
	case targetOriginal, targetFollowup:
		if o.usable() {
			var err error
			if t.kind == targetOriginal {
				_, err = o.a.webhook(ctx, http.MethodPatch, o.ia, "@original", webhookEdit(m))
			} else {
				_, err = o.a.webhook(ctx, http.MethodPatch, o.ia, t.id, webhookEdit(m))
			}
			if !tokenExpired(err) {
				return err
			}
			o.expired = true
		}
		if t.private || t.id == "" {
			// An ephemeral message cannot be edited without the token:
			// deliver its final state privately instead.
			if m.Status == bot.StatusStreaming {
				return nil
			}
			nt, err := o.sendElsewhere(ctx, m)
			if err != nil {
				return err
			}
			*t = *nt
			return nil
		}
	}
	_, err := o.a.api.ChannelMessageEditComplex(messageEdit(t.channel, t.id, m), discordgo.WithContext(ctx))
	return err
}

// remember records where a compare with vote buttons lives, so a vote
// typed as /vote can update its tally.
func (o *output) remember(t *target, m bot.Message) {
	c := m.Compare
	if c == nil || len(c.Choices) == 0 || t.id == "" || t.kind == targetDropped || t.kind == targetPending {
		return
	}
	ref := &compareRef{channel: t.channel, id: t.id, choices: append([]string(nil), c.Choices...)}
	if t.kind == targetOriginal || t.kind == targetFollowup {
		ref.ia, ref.original, ref.deadline = o.ia, t.kind == targetOriginal, o.deadline
	}
	o.a.votes.Put(c.ID, ref)
}

// showVote updates the tally on a compare's buttons after a vote.
func (o *output) showVote(ctx context.Context, v *bot.VoteResult) {
	if o.mode == modeComponent && o.ia != nil && o.ia.Message != nil {
		choices := voteChoices(o.ia.Message.Components, v.CompareID)
		if len(choices) > 0 {
			rows := voteRows(v.CompareID, choices, v.Tally)
			edit := &discordgo.WebhookEdit{Components: &rows, AllowedMentions: noMentions()}
			if o.usable() {
				// After a deferred update, the original response is the
				// message the button belongs to.
				_, err := o.a.webhook(ctx, http.MethodPatch, o.ia, "@original", edit)
				if err == nil {
					return
				}
				o.a.log.Debug("could not update a tally through the interaction", "err", o.a.redact(err))
			}
			me := &discordgo.MessageEdit{ID: o.ia.Message.ID, Channel: o.ia.ChannelID, Components: &rows, AllowedMentions: noMentions()}
			if _, err := o.a.api.ChannelMessageEditComplex(me, discordgo.WithContext(ctx)); err != nil {
				o.a.log.Warn("could not update a compare's tally", "compare", v.CompareID, "err", o.a.redact(err))
			}
			return
		}
	}
	ref, _ := o.a.votes.Get(v.CompareID)
	if ref == nil {
		return // shown by another process, or too long ago
	}
	rows := voteRows(v.CompareID, ref.choices, v.Tally)
	if err := o.a.editCompare(ctx, ref, rows); err != nil {
		o.a.log.Warn("could not update a compare's tally", "compare", v.CompareID, "err", o.a.redact(err))
	}
}

// dmChannel returns the id of the DM channel with a user.
func (a *Adapter) dmChannel(ctx context.Context, user string) (string, error) {
	if user == "" {
		return "", errors.New("no user to DM")
	}
	a.mu.Lock()
	ch, ok := a.dms[user]
	a.mu.Unlock()
	if ok {
		return ch, nil
	}
	c, err := a.api.UserChannelCreate(user, discordgo.WithContext(ctx))
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	a.dms[user] = c.ID
	a.mu.Unlock()
	return c.ID, nil
}

// compareRef is where a compare with vote buttons was posted.
type compareRef struct {
	channel, id string
	choices     []string
	ia          *discordgo.Interaction // set when posted through an interaction
	original    bool
	deadline    time.Time
}

func (a *Adapter) editCompare(ctx context.Context, ref *compareRef, rows []discordgo.MessageComponent) error {
	if ref.ia != nil && time.Now().Before(ref.deadline) {
		edit := &discordgo.WebhookEdit{Components: &rows, AllowedMentions: noMentions()}
		var err error
		if ref.original {
			_, err = a.webhook(ctx, http.MethodPatch, ref.ia, "@original", edit)
		} else {
			_, err = a.webhook(ctx, http.MethodPatch, ref.ia, ref.id, edit)
		}
		if err == nil || !tokenExpired(err) {
			return err
		}
	}
	_, err := a.api.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: ref.id, Channel: ref.channel, Components: &rows, AllowedMentions: noMentions()},
		discordgo.WithContext(ctx))
	return err
}

// webhook calls the interaction's webhook: POST a follow-up (messageID
// ""), or PATCH the original response ("@original") or a follow-up. It is
// what discordgo's InteractionResponseEdit and FollowupMessage* do, but
// with one rate-limit bucket per channel: discordgo files every webhook
// edit of the process under a single bucket, so one slow or limited answer
// would hold up every other.
func (a *Adapter) webhook(ctx context.Context, method string, i *discordgo.Interaction, messageID string, data any) (*discordgo.Message, error) {
	uri := discordgo.EndpointWebhookToken(i.AppID, i.Token) + "?wait=true"
	if messageID != "" {
		uri = discordgo.EndpointWebhookMessage(i.AppID, i.Token, messageID)
	}
	body, err := a.api.RequestWithBucketID(method, uri, data, "webhooks/"+i.ChannelID, discordgo.WithContext(ctx))
	if err != nil {
		return nil, a.redactInteraction(err, i)
	}
	var m discordgo.Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("webhook answer: %w", err)
	}
	return &m, nil
}
