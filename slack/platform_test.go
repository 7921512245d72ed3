package slack_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

// TestPlatformBehaviour runs the behaviour suite every adapter passes on
// Slack: Socket Mode against the fake, mentions in a channel, native slash
// commands and vote buttons.
func TestPlatformBehaviour(t *testing.T) {
	stacktest.Run(t, func(t *testing.T) stacktest.Harness { return &platformHarness{} })
}

// platformHarness drives the Slack adapter through the fake Slack for the
// behaviour suite. Everything happens in one channel the bot is in; what
// the bot answered to an action is every bot message there that is new, or
// was changed, since the action began.
type platformHarness struct {
	st    *stacktest.Stack
	slack *slacktest.Server
	// sent counts the events handed to the handler so far: one a mention
	// (its message event is not for the handler), command or click. The
	// fake's echoes of the bot's own messages are ignored by the adapter.
	sent int
}

// platformChannel is where the suite's conversations happen.
const platformChannel = general

func (h *platformHarness) Start(t *testing.T, st *stacktest.Stack) {
	h.st = st
	h.slack = slacktest.MustStart(t, slacktest.Options{})
	for _, u := range []string{"alice", "bob", "admin"} {
		h.slack.SetUser(h.userID(u), strings.ToUpper(u[:1])+u[1:])
	}
	a, err := slack.New(slack.Options{
		BotToken: h.slack.BotToken, AppToken: h.slack.AppToken, APIURL: h.slack.APIURL(),
		Commands: st.Commands, Handler: st.Handler,
		History:          bot.HistoryLimit{Messages: 20, Chars: 24000},
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		UpdatesPerMinute: 6000,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := stacktest.Go(t, a.Run)
	t.Cleanup(func() {
		stop()
		a.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for !a.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the adapter did not connect to the fake Slack")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// userID is the Slack user id of a named person: alice is UALICE.
func (h *platformHarness) userID(user string) string { return "U" + strings.ToUpper(user) }

func (h *platformHarness) Identity(user string) bot.Identity {
	return bot.Identity("slack:" + slacktest.TeamID + ":" + h.userID(user))
}

func (h *platformHarness) Mention(t *testing.T, user, text string) []stacktest.Seen {
	t.Helper()
	return h.act(t, func() {
		h.slack.Mention(slacktest.Post{User: h.userID(user), Channel: platformChannel, Text: text})
	})
}

// Attach mentions the bot with files uploaded to the fake (downloading
// them needs the bot token, as url_private does).
func (h *platformHarness) Attach(t *testing.T, user, text string, files ...stacktest.File) []stacktest.Seen {
	t.Helper()
	var fs []slackapi.File
	for _, f := range files {
		fs = append(fs, h.slack.AddFile(f.Name, http.DetectContentType(f.Data), f.Data))
	}
	return h.act(t, func() {
		h.slack.Mention(slacktest.Post{User: h.userID(user), Channel: platformChannel, Text: text, Files: fs})
	})
}

// Command runs the Slack slash command of an engine command, its options
// written as name:value words (the prompt last) the way the engine's
// parser reads a command's text.
func (h *platformHarness) Command(t *testing.T, user, name string, options map[string]string) []stacktest.Seen {
	t.Helper()
	slash, ok := slack.DefaultCommandNames()[name]
	if !ok {
		slash = name
	}
	keys := make([]string, 0, len(options))
	for k := range options {
		if k != "prompt" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var words []string
	for _, k := range keys {
		words = append(words, k+":"+options[k])
	}
	if p, ok := options["prompt"]; ok {
		words = append(words, p)
	}
	return h.act(t, func() {
		h.slack.Slash(h.userID(user), platformChannel, slash, strings.Join(words, " "))
	})
}

// Vote clicks the button for choice on the compare's message; a compare
// without that button (a failed panel has none) or not found is voted on
// by typing /vote in a mention, as a user would.
func (h *platformHarness) Vote(t *testing.T, user, compareID, choice string) []stacktest.Seen {
	t.Helper()
	if ts, ok := h.voteButton(compareID, choice); ok {
		return h.act(t, func() { h.slack.Click(h.userID(user), platformChannel, ts, choice) })
	}
	return h.Mention(t, user, "/vote "+compareID+" "+choice)
}

// voteButton finds the message holding the vote button for compareID and
// choice.
func (h *platformHarness) voteButton(compareID, choice string) (string, bool) {
	want := compareID + ":" + choice
	for _, m := range h.slack.BotMessages(platformChannel) {
		for _, b := range decodeBlocks(m) {
			for _, e := range b.Elements {
				if e.Type == "button" && e.Value == want {
					return m.TS, true
				}
			}
		}
	}
	return "", false
}

// act does one thing that hands the handler one event, waits until its
// answer is complete and returns the bot's messages posted or changed in
// answer: new messages first, oldest first, then the older messages it
// changed (a compare's tally).
func (h *platformHarness) act(t *testing.T, do func()) []stacktest.Seen {
	t.Helper()
	before := map[string]int{} // ts → edits
	for _, m := range h.slack.Messages(platformChannel) {
		before[m.TS] = m.Edits
	}
	do()
	h.sent++
	h.st.Handler.Await(t, h.sent)
	var fresh, changed []stacktest.Seen
	for _, m := range h.slack.Messages(platformChannel) {
		if m.BotID == "" {
			continue // a user's message
		}
		edits, old := before[m.TS]
		s := seenOf(m)
		for _, f := range m.Files {
			if b, ok := h.slack.FileData(f.ID); ok {
				s.Files = append(s.Files, stacktest.File{Name: f.Name, Data: b})
			}
		}
		switch {
		case !old:
			fresh = append(fresh, s)
		case m.Edits != edits:
			changed = append(changed, s)
		}
	}
	return append(fresh, changed...)
}

// seenOf is a message as the user sees it: Text is every block but the
// footer and the slash command's intro line (sections, compare panels and
// their facts, the tally, button labels), Footer the footer's context line.
func seenOf(m slacktest.Message) stacktest.Seen {
	s := stacktest.Seen{Private: m.Ephemeral || strings.HasPrefix(m.Channel, "D")}
	blocks := decodeBlocks(m)
	var body []json.RawMessage
	var raw []json.RawMessage
	_ = json.Unmarshal(m.Blocks, &raw)
	for i, b := range blocks {
		for _, e := range b.Elements {
			if e.Type == "button" {
				var label struct {
					Text string `json:"text"`
				}
				_ = json.Unmarshal(e.Text, &label)
				s.Buttons = append(s.Buttons, label.Text)
			}
		}
		if b.ID == "orchat.footer" {
			var parts []string
			for _, e := range b.Elements {
				var text string
				if json.Unmarshal(e.Text, &text) == nil {
					parts = append(parts, text)
				}
			}
			s.Footer = strings.Join(parts, " ")
			continue
		}
		if b.ID == "orchat.intro" {
			// "Bob used /compare: …" echoes the user's own command, which
			// Slack does not show; it is not the bot's answer (other
			// platforms show the invocation outside the message).
			continue
		}
		if i < len(raw) {
			body = append(body, raw[i])
		}
	}
	if len(blocks) == 0 {
		s.Text = m.Text
		return s
	}
	m.Blocks, _ = json.Marshal(body)
	s.Text = m.Visible()
	return s
}

// block is the part of a Block Kit block the harness reads.
type block struct {
	Type     string `json:"type"`
	ID       string `json:"block_id"`
	Elements []struct {
		Type  string          `json:"type"`
		Value string          `json:"value"`
		Text  json.RawMessage `json:"text"` // a string (a context's text element) or a text object (a button)
	} `json:"elements"`
}

func decodeBlocks(m slacktest.Message) []block {
	var blocks []block
	if len(m.Blocks) > 0 {
		_ = json.Unmarshal(m.Blocks, &blocks)
	}
	return blocks
}
