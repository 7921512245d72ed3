package discord

import (
	"context"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// memThreads is the default bot.ThreadStore: this process's threads, for 30
// days (Discord archives an idle thread within a week).
type memThreads struct{ c *bot.Cache[struct{}] }

func newMemThreads() *memThreads {
	return &memThreads{c: bot.NewCache[struct{}](100_000, 30*24*time.Hour, nil)}
}

func (m *memThreads) StartedThread(_ context.Context, thread string) error {
	m.c.Put(thread, struct{}{})
	return nil
}

func (m *memThreads) BotThread(_ context.Context, thread string) (bool, error) {
	_, ok := m.c.Get(thread)
	return ok, nil
}

// communityViewer is an optional power of Options.Rules (bot.Communities
// has it): the settings in force in a channel, for /settings threads.
type communityViewer interface {
	View(ctx context.Context, community, channel string) (bot.CommunityView, error)
}

// threadsHere reports whether a mention in a server channel starts a
// thread: the channel's or community's /settings threads, else
// Options.Threads (discord.threads).
func (a *Adapter) threadsHere(ctx context.Context, guild, channel string) bool {
	on := a.opts.Threads
	if v, ok := a.opts.Rules.(communityViewer); ok {
		view, err := v.View(ctx, community(guild), channel)
		if err != nil {
			a.log.Warn("could not read the community's thread setting; using discord.threads", "err", err)
			return on
		}
		if t, set := view.Threads(); set {
			on = t
		}
	}
	return on
}

// threadKey names a thread in a bot.ThreadStore.
func threadKey(id string) string { return "discord:" + id }

// threadArchiveMinutes is how long an idle thread the bot started stays
// open: Discord archives it then (the bot archives nothing itself).
const threadArchiveMinutes = 1440

// botThread reports whether the bot started a thread (a failure to tell
// counts as no: the message is not answered).
func (a *Adapter) botThread(ctx context.Context, channel string) bool {
	ok, err := a.threads.BotThread(ctx, threadKey(channel))
	if err != nil {
		a.log.Warn("could not tell whether the bot started a thread; not answering in it", "channel", channel, "err", err)
		return false
	}
	return ok
}

// startThread starts a thread from a member's message, named from the
// question, and records it. It returns the thread's id, or "" when the
// thread could not be started (no permission, a channel type that has no
// threads): the answer then goes to the channel as a reply.
func (a *Adapter) startThread(ctx context.Context, m *discordgo.Message, question, asker string) string {
	th, err := a.api.MessageThreadStartComplex(m.ChannelID, m.ID, &discordgo.ThreadStart{
		Name: ThreadName(question, asker), AutoArchiveDuration: threadArchiveMinutes,
	}, discordgo.WithContext(ctx))
	if err != nil {
		a.log.Info("could not start a thread for a mention; answering in the channel", "channel", m.ChannelID, "err", a.redact(err))
		return ""
	}
	a.mu.Lock()
	a.chans[th.ID] = channelMeta{kind: th.Type, parent: m.ChannelID}
	a.mu.Unlock()
	if err := a.threads.StartedThread(ctx, threadKey(th.ID)); err != nil {
		a.log.Warn("could not record a thread the bot started; later messages there need a mention", "thread", th.ID, "err", err)
	}
	return th.ID
}

var (
	// Mentions of users, roles and channels, timestamps and custom
	// emoji say nothing in a name.
	nameMentionRE = regexp.MustCompile(`<(?:@[!&]?|#)\d+>|<t:\d+(?::[a-zA-Z])?>`)
	nameEmojiRE   = regexp.MustCompile(`<a?:(\w+):\d+>`)
	nameLinkRE    = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// ThreadName is a thread's name from the question that started it: its
// first line without markup, mentions and links' addresses, at most 100
// characters (Discord's limit). A question with nothing to read in it
// (only emoji, markup or mentions) gets "Question from <asker>".
func ThreadName(question, asker string) string {
	text := question
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		if first := strings.TrimSpace(text[:i]); first != "" {
			text = first
		}
	}
	text = nameMentionRE.ReplaceAllString(text, "")
	text = nameEmojiRE.ReplaceAllString(text, "")
	text = nameLinkRE.ReplaceAllString(text, "$1")
	text = strings.Map(func(r rune) rune {
		switch {
		case strings.ContainsRune("*_~`|>#", r):
			return -1
		case r == '\u200b' || r == '\u200d' || r == '\ufe0f':
			return -1
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return ' '
		}
		return r
	}, text)
	text = strings.Join(strings.Fields(bot.StripBidi(text)), " ")
	readable := strings.IndexFunc(text, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
	if !readable {
		asker = strings.TrimSpace(asker)
		if asker == "" {
			return "Question for orchat"
		}
		return bot.Clip("Question from "+asker, 100)
	}
	return bot.Clip(text, 100)
}
