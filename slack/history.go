package slack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// maxThreadPages bounds how much of a very long thread is read back.
const maxThreadPages = 5

// history returns the conversation a message continues: its thread, or
// for a top-level DM the DM itself. A new mention in a channel starts a
// thread and has none.
func (a *Adapter) history(in incoming, root string, me *self) bot.History {
	switch {
	case root != "" && root != in.ts:
		return &conversation{a: a, me: me, channel: in.channel, thread: root, current: in.ts}
	case root == "" && in.channelType == "im":
		return &conversation{a: a, me: me, channel: in.channel, current: in.ts}
	}
	return nil
}

// conversation reads earlier turns back from Slack: Slack keeps the text,
// the bot does not.
type conversation struct {
	a       *Adapter
	me      *self
	channel string
	thread  string // "" for a DM's top level
	current string // the message being answered: only earlier ones count
}

var _ bot.History = (*conversation)(nil)

// Turns reads the thread (conversations.replies) or DM
// (conversations.history) oldest first, without the current message, the
// bot's own answers as assistant turns, notices and errors left out, and
// keeps the newest turns within limit.
func (c *conversation) Turns(ctx context.Context, limit bot.HistoryLimit) ([]bot.Turn, error) {
	if limit.Messages <= 0 {
		return nil, nil
	}
	msgs, err := c.read(ctx, limit)
	if err != nil {
		return nil, err
	}
	var turns []bot.Turn
	for _, m := range msgs {
		if m.Timestamp == "" || !tsLess(m.Timestamp, c.current) {
			continue
		}
		turns = append(turns, c.turns(m.Msg)...)
	}
	if len(turns) > limit.Messages {
		turns = turns[len(turns)-limit.Messages:]
	}
	if limit.Chars > 0 {
		total, keep := 0, len(turns)
		for i := len(turns) - 1; i >= 0; i-- {
			n := utf8.RuneCountInString(turns[i].Text)
			if total+n > limit.Chars {
				break
			}
			total, keep = total+n, i
		}
		turns = turns[keep:]
	}
	return turns, nil
}

func (c *conversation) read(ctx context.Context, limit bot.HistoryLimit) ([]slackapi.Message, error) {
	api := c.a.api
	if c.thread == "" {
		res, err := api.GetConversationHistoryContext(ctx, &slackapi.GetConversationHistoryParameters{
			ChannelID: c.channel, Latest: c.current, Limit: min(limit.Messages*2+2, 200),
		})
		if err != nil {
			return nil, fmt.Errorf("slack: conversations.history: %w", err)
		}
		msgs := slices.Clone(res.Messages)
		slices.Reverse(msgs) // newest first → oldest first
		return msgs, nil
	}
	var all []slackapi.Message
	cursor := ""
	for page := 0; page < maxThreadPages; page++ {
		msgs, more, next, err := api.GetConversationRepliesContext(ctx, &slackapi.GetConversationRepliesParameters{
			ChannelID: c.channel, Timestamp: c.thread, Limit: 200, Cursor: cursor,
		})
		if err != nil {
			return nil, fmt.Errorf("slack: conversations.replies: %w", err)
		}
		all = append(all, msgs...)
		if !more || next == "" {
			break
		}
		cursor = next
	}
	return all, nil
}

// turns converts one Slack message into turns: a user's message is one
// user turn; an answer of the bot is an assistant turn, preceded by the
// question when the answer shows it (a slash command's intro line).
func (c *conversation) turns(m slackapi.Msg) []bot.Turn {
	if isMine(m, c.me) {
		return mine(m)
	}
	if m.BotID != "" {
		return nil // other bots
	}
	switch m.SubType {
	case "", "file_share", "thread_broadcast":
	default:
		return nil
	}
	text := plainText(m.Text, c.me.UserID, false)
	atts := c.a.attachments(m.Files)
	if text == "" && len(atts) == 0 {
		return nil
	}
	return []bot.Turn{{Role: bot.RoleUser, Author: m.User, Text: text, Attachments: atts}}
}

// mine reads back one of the bot's own messages from its blocks: the
// answer's sections, without the footer or the status line.
func mine(m slackapi.Msg) []bot.Turn {
	var question string
	var parts []string
	for _, b := range m.Blocks.BlockSet {
		id := b.ID()
		switch {
		case id == blockIntro:
			if cb, ok := b.(*slackapi.ContextBlock); ok {
				if _, q, ok := strings.Cut(contextText(cb), "*: "); ok {
					question = plainText(q, "", false)
				}
			}
		case strings.HasPrefix(id, blockReply):
			if sb, ok := b.(*slackapi.SectionBlock); ok && sb.Text != nil {
				parts = append(parts, sb.Text.Text)
			}
		case strings.HasPrefix(id, blockNotice), strings.HasPrefix(id, blockError), strings.HasPrefix(id, blockPanel), strings.HasPrefix(id, blockThinking):
			return nil // not part of the conversation
		}
	}
	var turns []bot.Turn
	if question != "" {
		turns = append(turns, bot.Turn{Role: bot.RoleUser, Text: question})
	}
	text := strings.Join(parts, "\n")
	if len(parts) == 0 && question == "" {
		text = m.Text // a message without orchat's blocks
	}
	if text = plainText(text, "", false); text != "" && text != "…" {
		turns = append(turns, bot.Turn{Role: bot.RoleAssistant, Text: text})
	}
	return turns
}

func contextText(cb *slackapi.ContextBlock) string {
	var b strings.Builder
	for _, e := range cb.ContextElements.Elements {
		if t, ok := e.(*slackapi.TextBlockObject); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
