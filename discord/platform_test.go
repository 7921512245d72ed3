package discord_test

import (
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestPlatformBehaviour runs the behaviour suite every adapter passes,
// against the Discord adapter connected to the fake Discord.
func TestPlatformBehaviour(t *testing.T) {
	t.Parallel()
	stacktest.Run(t, newPlatformHarness)
}

// platformHarness drives the Discord adapter through the fake: mentions
// in a guild channel, slash commands and vote buttons, each answered once
// the stack's handler has finished the event.
type platformHarness struct {
	dc             *discordtest.Server
	guild, general string
	users          map[string]discordtest.User
	st             *stacktest.Stack
	sent           int // events sent so far (each mention, command or click)
}

// newPlatformHarness makes the fake Discord now, so identities exist
// before the stack (which lists the admin) is built.
func newPlatformHarness(t *testing.T) stacktest.Harness {
	h := &platformHarness{dc: discordtest.MustStart(t, discordtest.Options{}), users: map[string]discordtest.User{}}
	h.guild = h.dc.NewGuild()
	h.general = h.dc.NewChannel(h.guild)
	return h
}

func (h *platformHarness) Start(t *testing.T, st *stacktest.Stack) {
	t.Helper()
	h.st = st
	a, err := discord.New(discord.Options{
		Token: h.dc.Token, APIURL: h.dc.APIURL,
		Handler: st.Handler, Commands: st.Commands, Catalog: st.Catalog,
		AttachmentHosts: []string{h.dc.CDNHost()}, AttachmentClient: h.dc.CDNClient(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Go(t, a.Run)
	h.dc.WaitFor(t, "the adapter to connect", a.Connected)
	h.dc.WaitFor(t, "the slash commands to be registered", func() bool { _, ok := h.dc.Commands(""); return ok })
}

// user returns the fake's user for a name, adding it the first time.
func (h *platformHarness) user(name string) discordtest.User {
	u, ok := h.users[name]
	if !ok {
		u = h.dc.NewUser(name)
		h.users[name] = u
	}
	return u
}

func (h *platformHarness) Identity(name string) bot.Identity {
	return bot.Identity("discord:" + h.user(name).ID)
}

func (h *platformHarness) Mention(t *testing.T, user, text string) []stacktest.Seen {
	t.Helper()
	u := h.user(user)
	return h.act(t, u, func() string {
		h.dc.Mention(u, h.general, text)
		return ""
	})
}

// Attach mentions the bot with files uploaded to the fake's CDN.
func (h *platformHarness) Attach(t *testing.T, user, text string, files ...stacktest.File) []stacktest.Seen {
	t.Helper()
	u := h.user(user)
	var opts []discordtest.MessageOption
	for _, f := range files {
		opts = append(opts, discordtest.WithAttachment(h.dc.Upload(h.general, f.Name, http.DetectContentType(f.Data), f.Data)))
	}
	return h.act(t, u, func() string {
		h.dc.Mention(u, h.general, text, opts...)
		return ""
	})
}

func (h *platformHarness) Command(t *testing.T, user, name string, options map[string]string) []stacktest.Seen {
	t.Helper()
	u := h.user(user)
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	opts := make([]discordtest.Option, 0, len(keys))
	for _, k := range keys {
		opts = append(opts, discordtest.Option{Name: k, Value: options[k]})
	}
	return h.act(t, u, func() string { return h.dc.RunCommand(u, h.general, name, opts...).ID })
}

// Vote clicks the choice's button on the compare's message; without one
// (the compare is gone, or has no such choice) it types /vote instead.
func (h *platformHarness) Vote(t *testing.T, user, compareID, choice string) []stacktest.Seen {
	t.Helper()
	u := h.user(user)
	for _, m := range h.dc.Messages() {
		if m.Author.ID != h.dc.Bot.ID || m.Deleted {
			continue
		}
		for _, b := range m.Buttons() {
			if strings.EqualFold(b.CustomID, "vote:"+compareID+":"+choice) {
				return h.act(t, u, func() string { return h.dc.ClickButton(u, m.ID, b.CustomID).ID })
			}
		}
	}
	return h.Mention(t, user, "/vote "+compareID+" "+choice)
}

// act sends one event (send returns its interaction id, "" for a message),
// waits until it is answered, and returns the bot's messages the user sees
// that were created or edited meanwhile, in their final versions.
func (h *platformHarness) act(t *testing.T, u discordtest.User, send func() string) []stacktest.Seen {
	t.Helper()
	before := map[string]int{}
	for _, m := range h.dc.Messages() {
		before[m.ID] = m.Edits
	}
	interaction := send()
	h.sent++
	h.st.Handler.Await(t, h.sent)
	if interaction != "" {
		h.settle(t, interaction)
	}
	dm := h.dc.DMChannel(u.ID)
	var seen []stacktest.Seen
	for _, m := range h.dc.Seen(u.ID) {
		if edits, ok := before[m.ID]; ok && edits == m.Edits {
			continue
		}
		s := seenOf(m, dm)
		for _, a := range m.Attachments {
			if b, ok := h.dc.File(a.ID); ok {
				s.Files = append(s.Files, stacktest.File{Name: a.Filename, Data: b})
			}
		}
		seen = append(seen, s)
	}
	return seen
}

// settle waits for what the adapter does after the handler returns: a
// deferred response that nothing filled is deleted, then the private
// messages that waited for it go to the user's DMs.
func (h *platformHarness) settle(t *testing.T, interaction string) {
	t.Helper()
	in, _ := h.dc.Interaction(interaction)
	if in.Original == "" {
		return
	}
	deleted := false
	h.dc.WaitFor(t, "the deferred response to be filled or removed", func() bool {
		m, ok := h.dc.Message(in.Original)
		deleted = ok && m.Deleted
		return !ok || m.Deleted || !m.Loading()
	})
	if !deleted {
		return // filled by the answer: nothing happens after the handler
	}
	// The DMs follow the deletion at once: wait until the requests stop.
	n, quiet := len(h.dc.Requests()), time.Now()
	h.dc.WaitFor(t, "the adapter to deliver the private messages", func() bool {
		if k := len(h.dc.Requests()); k != n {
			n, quiet = k, time.Now()
		}
		return time.Since(quiet) > 150*time.Millisecond
	})
}

// seenOf is a message as the suite reads it: the content and every embed's
// title, description and fields as the text, the embed footers, whether
// only the user sees it, and its button labels.
func seenOf(m discordtest.Message, dm string) stacktest.Seen {
	var text, footer []string
	add := func(list *[]string, s string) {
		if s != "" {
			*list = append(*list, s)
		}
	}
	add(&text, m.Content)
	for _, e := range m.Embeds {
		add(&text, e.Title)
		add(&text, e.Description)
		for _, f := range e.Fields {
			add(&text, f.Name)
			add(&text, f.Value)
		}
		if e.Footer != nil {
			add(&footer, e.Footer.Text)
		}
	}
	s := stacktest.Seen{
		Text: strings.Join(text, "\n"), Footer: strings.Join(footer, "\n"),
		Private: m.Ephemeral() || m.ChannelID == dm,
	}
	for _, b := range m.Buttons() {
		s.Buttons = append(s.Buttons, b.Label)
	}
	return s
}
