package discord

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// maxChain bounds how many messages a reply chain walk fetches.
const maxChain = 50

// history reads a conversation back from Discord: the thread's recent
// messages inside a thread, else the reply chain the message continues.
type history struct {
	a       *Adapter
	channel string
	before  string // the event's own message, never part of its history
	// The message the event replies to, as the gateway delivered it.
	parent    *discordgo.MessageReference
	parentMsg *discordgo.Message
	// threadOnly: an interaction has no reply chain, only a thread.
	threadOnly bool
	// starter, for a thread the bot started from a message, is the
	// channel holding that message (the thread's id is the message's): the
	// question that opened the thread is its first turn.
	starter string
}

var _ bot.History = (*history)(nil)

// Turns returns the earlier turns, oldest first, within limit (and the
// adapter's own cap).
func (h *history) Turns(ctx context.Context, limit bot.HistoryLimit) ([]bot.Turn, error) {
	limit = h.a.capHistory(limit)
	if limit.Messages <= 0 {
		return nil, nil
	}
	if h.a.isThread(ctx, h.channel) {
		return h.thread(ctx, limit)
	}
	if h.threadOnly || (h.parent == nil && h.parentMsg == nil) {
		return nil, nil
	}
	return h.chain(ctx, limit)
}

// chain walks the reply chain up from the event's message.
func (h *history) chain(ctx context.Context, limit bot.HistoryLimit) ([]bot.Turn, error) {
	var turns []bot.Turn // newest first
	chars := 0
	msg, ref := h.parentMsg, h.parent
	var err error
	for depth := 0; len(turns) < limit.Messages && depth < maxChain; depth++ {
		if msg == nil {
			if ref == nil || ref.MessageID == "" || ref.Type == discordgo.MessageReferenceTypeForward {
				break
			}
			ch := ref.ChannelID
			if ch == "" {
				ch = h.channel
			}
			if msg, err = h.a.api.ChannelMessage(ch, ref.MessageID, discordgo.WithContext(ctx)); err != nil {
				err = fmt.Errorf("discord: read reply chain: %w", h.a.redact(err))
				break
			}
		}
		if t, ok := h.a.turn(msg); ok {
			n := utf8.RuneCountInString(t.Text)
			if limit.Chars > 0 && chars+n > limit.Chars {
				break
			}
			chars += n
			turns = append(turns, t)
		}
		ref, msg = msg.MessageReference, msg.ReferencedMessage
	}
	slices.Reverse(turns)
	return turns, err
}

// thread reads the thread's latest messages before the event's.
func (h *history) thread(ctx context.Context, limit bot.HistoryLimit) ([]bot.Turn, error) {
	msgs, err := h.a.api.ChannelMessages(h.channel, min(limit.Messages+5, 100), h.before, "", "", discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("discord: read thread: %w", h.a.redact(err))
	}
	var turns []bot.Turn // newest first, as Discord lists them
	chars := 0
	for _, m := range msgs {
		if len(turns) == limit.Messages {
			break
		}
		t, ok := h.a.turn(m)
		if !ok {
			continue
		}
		n := utf8.RuneCountInString(t.Text)
		if limit.Chars > 0 && chars+n > limit.Chars {
			break
		}
		chars += n
		turns = append(turns, t)
	}
	if h.starter != "" && len(turns) < limit.Messages && len(msgs) < min(limit.Messages+5, 100) {
		// The whole thread was read: the message it started from comes first.
		if m, err := h.a.api.ChannelMessage(h.starter, h.channel, discordgo.WithContext(ctx)); err == nil {
			if t, ok := h.a.turn(m); ok && (limit.Chars <= 0 || chars+utf8.RuneCountInString(t.Text) <= limit.Chars) {
				turns = append(turns, t)
			}
		} else {
			h.a.log.Debug("could not read the message a thread started from", "thread", h.channel, "err", h.a.redact(err))
		}
	}
	slices.Reverse(turns)
	return turns, nil
}

// turn reads one message as a turn: the bot's own as the assistant (embed
// bodies, footers left out), a person's as the user (mention removed).
// Other bots, notices and errors are not part of the conversation.
func (a *Adapter) turn(m *discordgo.Message) (bot.Turn, bool) {
	if m == nil || m.Author == nil || m.Flags&(discordgo.MessageFlagsEphemeral|discordgo.MessageFlagsLoading) != 0 {
		return bot.Turn{}, false
	}
	botID, _ := a.ids()
	if m.Author.ID == botID {
		text := botText(m)
		if text == "" {
			return bot.Turn{}, false
		}
		return bot.Turn{Role: bot.RoleAssistant, Author: displayName(m.Author, nil), Text: text}, true
	}
	if m.Author.Bot {
		return bot.Turn{}, false
	}
	t := bot.Turn{Role: bot.RoleUser, Author: displayName(m.Author, m.Member), Text: stripMention(m.Content, botID), Attachments: a.attachments(m.Attachments)}
	if t.Text == "" && len(t.Attachments) == 0 {
		return bot.Turn{}, false
	}
	return t, true
}

// botText is what the bot said in a message: its embeds' bodies (a
// compare's panels under their titles), without footers or notices.
func botText(m *discordgo.Message) string {
	var parts []string
	for _, e := range m.Embeds {
		if e == nil {
			continue
		}
		d := strings.TrimSpace(e.Description)
		if d == "" || d == "…" || strings.HasPrefix(d, "⚠️ ") || e.Color == ColorNotice {
			continue
		}
		if e.Title != "" {
			d = e.Title + "\n" + d
		}
		parts = append(parts, d)
	}
	if len(parts) == 0 {
		return strings.TrimSpace(m.Content)
	}
	return strings.Join(parts, "\n\n")
}

// capHistory bounds limit by the adapter's own cap.
func (a *Adapter) capHistory(l bot.HistoryLimit) bot.HistoryLimit {
	c := a.opts.History
	if l.Messages <= 0 || (c.Messages > 0 && c.Messages < l.Messages) {
		l.Messages = c.Messages
	}
	if c.Chars > 0 && (l.Chars <= 0 || c.Chars < l.Chars) {
		l.Chars = c.Chars
	}
	return l
}

// isThread reports whether a channel is a thread, from the gateway's state
// or, once per channel, the API.
func (a *Adapter) isThread(ctx context.Context, channel string) bool {
	t, _, ok := a.channelInfo(ctx, channel)
	return ok && isThreadType(t)
}

// parentChannel is the channel a thread belongs to ("" for a channel that
// is no thread, or that cannot be read): the channel whose settings apply.
func (a *Adapter) parentChannel(ctx context.Context, channel string) string {
	t, parent, ok := a.channelInfo(ctx, channel)
	if !ok || !isThreadType(t) {
		return ""
	}
	return parent
}

func isThreadType(t discordgo.ChannelType) bool {
	return t == discordgo.ChannelTypeGuildPublicThread || t == discordgo.ChannelTypeGuildPrivateThread || t == discordgo.ChannelTypeGuildNewsThread
}

// channelInfo returns a channel's type and parent, from the gateway's
// state or, once per channel, the API.
func (a *Adapter) channelInfo(ctx context.Context, channel string) (discordgo.ChannelType, string, bool) {
	a.mu.Lock()
	info, ok := a.chans[channel]
	a.mu.Unlock()
	if ok {
		return info.kind, info.parent, true
	}
	if c, err := a.session.State.Channel(channel); err == nil {
		info = channelMeta{c.Type, c.ParentID}
	} else if c, err := a.api.Channel(channel, discordgo.WithContext(ctx)); err == nil {
		info = channelMeta{c.Type, c.ParentID}
	} else {
		a.log.Debug("could not read a channel's type", "channel", channel, "err", a.redact(err))
		return 0, "", false
	}
	a.mu.Lock()
	a.chans[channel] = info
	a.mu.Unlock()
	return info.kind, info.parent, true
}

// channelMeta is what the adapter remembers of a channel.
type channelMeta struct {
	kind   discordgo.ChannelType
	parent string
}
