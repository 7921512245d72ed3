package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/stack/stacktest"
)

// discordWorld is one orchat on the fake Discord for the corpus's discord
// cases: the real adapter (threads on) and the test stack.
type discordWorld struct {
	dc    *discordtest.Server
	st    *stacktest.Stack
	vars  map[string]string
	guild string
}

// startDiscord connects the adapter to a fake Discord with a server the
// bot is in, one it is not in, and a member.
func startDiscord(t *testing.T) *discordWorld {
	t.Helper()
	dc := discordtest.MustStart(t, discordtest.Options{})
	st := stacktest.MustOpen(t, stacktest.Options{})
	a, err := discord.New(discord.Options{
		Token: dc.Token, APIURL: dc.APIURL, Commands: st.Commands, Catalog: st.Catalog, Rules: st.Communities,
		Handler: st.Handler, History: stacktest.History, Threads: true,
		AttachmentHosts: []string{dc.CDNHost()}, AttachmentClient: dc.CDNClient(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Go(t, a.Run)
	dc.WaitFor(t, "the adapter to connect", a.Connected)
	dc.WaitFor(t, "the commands to be registered", func() bool { _, ok := dc.Commands(""); return ok })
	guild := dc.NewGuild()
	outside := dc.NewOutsideGuild()
	ann := dc.NewUser("ann")
	w := &discordWorld{dc: dc, st: st, guild: guild, vars: map[string]string{
		"guild": guild, "channel": dc.NewChannel(guild), "outside_guild": outside, "outside_channel": dc.NewChannel(outside),
		"user": ann.ID, "bot": dc.Bot.ID, "app": dc.AppID, "cdn": "https://" + dc.CDNHost(),
	}}
	return w
}

var discordVarRE = regexp.MustCompile(`\{([a-z_0-9]+)\}`)

// expandDiscord fills a case's {names}: the world's ids, and a fresh
// snowflake for any other name (the same within the case).
func (w *discordWorld) expandDiscord(body string) string {
	local := map[string]string{}
	return discordVarRE.ReplaceAllStringFunc(body, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := w.vars[name]; ok {
			return v
		}
		if v, ok := local[name]; ok {
			return v
		}
		v := w.dc.Snowflake()
		if name == "token" {
			v = "aW50ZXJhY3Rpb24" + v
		}
		local[name] = v
		return v
	})
}

// visible is everything the bot showed: its messages' text and footers,
// and the names of the threads it started ("thread: NAME").
func (w *discordWorld) visible() string {
	var b strings.Builder
	for _, m := range w.dc.Messages() {
		if m.Author.ID == w.dc.Bot.ID {
			b.WriteString(m.Text() + "\n" + m.Footer() + "\n")
		}
	}
	for _, th := range w.dc.StartedThreads() {
		b.WriteString("thread: " + th.Name + "\n")
	}
	return b.String()
}

// runDiscordCases dispatches each discord case's event and waits for
// its message; nothing may be an internal-error apology.
func runDiscordCases(t *testing.T, cases []badCase) {
	w := startDiscord(t)
	for _, c := range cases {
		event, body, _ := strings.Cut(c.body, "\n")
		before := w.visible()
		if err := w.dc.DispatchRaw(strings.TrimSpace(event), json.RawMessage(w.expandDiscord(body))); err != nil {
			t.Errorf("%s: %v", c.id(), err)
			continue
		}
		deadline := time.Now().Add(discordtest.WaitTimeout)
		for {
			got := strings.TrimPrefix(w.visible(), before)
			missing := ""
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					missing = want
					break
				}
			}
			if missing == "" {
				if strings.Contains(got, "went wrong on our side") {
					t.Errorf("%s: an internal-error apology:\n%s", c.id(), got)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: no message contains %q; the bot showed:\n%s\n%s", c.id(), missing, got, w.dc.Dump())
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	w.st.Handler.Await(t, 0)
	if r, err := w.st.Store.Verify(context.Background()); err != nil || !r.OK() {
		t.Fatalf("ledger verify after the discord cases: %+v %v", r, err)
	}
}
