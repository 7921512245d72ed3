package discord_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/stack/stacktest"
)

// messageCommand runs a message command on a message and waits until it is
// answered; it returns the interaction and the messages answering it.
func (w *world) messageCommand(u discordtest.User, messageID, name string) (discordtest.Interaction, []discordtest.Message) {
	w.t.Helper()
	in := w.dc.RunMessageCommand(u, messageID, name)
	// Answered by the engine, or refused by the adapter before it.
	w.eventually("the bot to answer", func() bool {
		if w.timesHandled("discord:interaction:"+in.ID) > 0 {
			return true
		}
		msgs := w.dc.Responses(in.ID)
		return len(msgs) > 0 && strings.HasPrefix(msgs[0].Text(), "⚠️")
	})
	in, _ = w.dc.Interaction(in.ID)
	return in, w.dc.Responses(in.ID)
}

// registered waits until the adapter registered its commands (the fake
// types options by the registered commands).
func (w *world) registered() {
	w.t.Helper()
	w.eventually("the commands to be registered", func() bool { _, ok := w.dc.Commands(""); return ok })
}

// noBotCallsOn fails when the adapter called a route of the server or the
// channel (the fake refuses them with 403 where the bot is no member).
func noBotCallsOn(t *testing.T, w *world, guild, channel string) {
	t.Helper()
	for _, r := range w.dc.Requests() {
		if r.Status == 403 || (guild != "" && strings.HasPrefix(r.Path, "/guilds/"+guild)) || strings.HasPrefix(r.Path, "/channels/"+channel) {
			t.Fatalf("the adapter called %s %s (%d) where it is no member", r.Method, r.Path, r.Status)
		}
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestUserInstall: orchat registered for members' own installs answers
// where the bot is not a member (a server that never invited it, a group
// DM), ephemerally, charged to the member, without calling the server or
// the channel.
func TestUserInstall(t *testing.T) {
	t.Run("CommandsRegisteredForBothInstallsAndEveryContext", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.registered()
		cmds, _ := w.dc.Commands("")
		byName := map[string]discordtest.ApplicationCommand{}
		for _, c := range cmds {
			byName[c.Name] = c
		}
		for _, name := range []string{"ask", "compare", "balance", "Ask orchat", "Compare models"} {
			c, ok := byName[name]
			if !ok {
				t.Fatalf("%q is not registered: %v", name, cmds)
			}
			if !slices.Equal(c.IntegrationTypes, []int{0, 1}) || !slices.Equal(c.Contexts, []int{0, 1, 2}) {
				t.Errorf("%s: integration_types %v contexts %v, want [0 1] and [0 1 2]", name, c.IntegrationTypes, c.Contexts)
			}
		}
		for _, name := range []string{"Ask orchat", "Compare models"} {
			if byName[name].Type != discordtest.CommandMessage {
				t.Errorf("%s has type %d, want a message command (3)", name, byName[name].Type)
			}
		}
		// A server's settings stay with servers that installed the bot.
		if s := byName["settings"]; !slices.Equal(s.IntegrationTypes, []int{0}) || !slices.Equal(s.Contexts, []int{0}) {
			t.Errorf("settings: integration_types %v contexts %v, want [0] and [0]", s.IntegrationTypes, s.Contexts)
		}
		var file bool
		for _, o := range byName["ask"].Options {
			file = file || o.Name == "file" && o.Type == discordtest.OptionAttachment
		}
		if !file {
			t.Errorf("/ask has no attachment option: %+v", byName["ask"].Options)
		}
	})

	t.Run("AskInAServerTheBotIsNotIn", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		guild := w.dc.NewOutsideGuild()
		channel := w.dc.NewChannel(guild)
		before := w.balance(w.bob)
		in, msgs := w.command(w.bob, channel, "ask", discordtest.Option{Name: "prompt", Value: "hello from a server without the bot"})
		if in.Context != discordtest.ContextGuild || in.Owners["1"] != w.bob.ID || in.Owners["0"] != "" {
			t.Fatalf("the fake sent context %d owners %v", in.Context, in.Owners)
		}
		if in.ResponseFlags&discordtest.FlagEphemeral == 0 {
			t.Fatalf("deferred response flags %d, want ephemeral", in.ResponseFlags)
		}
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text(), "hello from a server without the bot") {
			t.Fatalf("responses %q, want the answer\n%s", texts(msgs), w.dc.Dump())
		}
		for _, m := range msgs {
			if !m.Ephemeral() {
				t.Fatalf("a public message where the bot is no member: %q", m.Text())
			}
		}
		if after := w.balance(w.bob); after >= before {
			t.Fatalf("bob's balance %d → %d, want the answer charged to him", before, after)
		}
		noBotCallsOn(t, w, guild, channel)
		if r, err := w.store.Verify(context.Background()); err != nil || !r.OK() {
			t.Fatalf("ledger verify: %+v %v", r, err)
		}
	})

	t.Run("AskInAGroupDM", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		group := w.dc.NewGroupDM(w.alice, w.bob)
		in, msgs := w.command(w.alice, group, "compare", discordtest.Option{Name: "prompt", Value: "group chat question"})
		if in.Context != discordtest.ContextPrivateChannel {
			t.Fatalf("context %d, want a private channel (2)", in.Context)
		}
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text(), compareModels[0]) || !msgs[0].Ephemeral() {
			t.Fatalf("responses %q, want an ephemeral compare of the default models\n%s", texts(msgs), w.dc.Dump())
		}
		noBotCallsOn(t, w, "", group)
	})

	t.Run("BotDMIsNotOutside", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in, msgs := w.command(w.alice, w.dc.DMChannel(w.alice.ID), "ask", discordtest.Option{Name: "prompt", Value: "in my DM with the bot"})
		if in.Context != discordtest.ContextBotDM || len(msgs) == 0 || msgs[0].Ephemeral() {
			t.Fatalf("context %d responses %q: want an ordinary answer in the bot's DM", in.Context, texts(msgs))
		}
	})

	t.Run("NoGuildNoMemberNoUser", func(t *testing.T) {
		// An interaction naming nobody is refused by the engine, not a panic.
		t.Parallel()
		w := newWorld(t)
		group := w.dc.NewGroupDM(w.alice)
		in := w.dc.RunCommand(discordtest.User{}, group, "balance")
		w.eventually("the refusal", func() bool { return len(w.dc.Responses(in.ID)) > 0 })
		msgs := w.dc.Responses(in.ID)
		if len(msgs) == 0 || !strings.Contains(texts(msgs)[0], "did not say who ran") {
			t.Fatalf("interaction %s answered %q, want a refusal naming the missing user", in.ID, texts(msgs))
		}
	})
}

// TestMessageCommands: "Ask orchat" and "Compare models" in a message's
// Apps menu answer with the message (and its files) as the prompt.
func TestMessageCommands(t *testing.T) {
	t.Run("AskWithAnImage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		img := w.dc.Upload(w.general, "chart.png", "image/png", pngBytes(t))
		m := w.dc.Say(w.alice, w.general, "What does this chart show?", discordtest.WithAttachment(img))
		_, msgs := w.messageCommand(w.bob, m.ID, "Ask orchat")
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text(), "What does this chart show?") {
			t.Fatalf("responses %q, want an answer to the message\n%s", texts(msgs), w.dc.Dump())
		}
		reqs := w.asked("What does this chart show?")
		if len(reqs) != 1 {
			t.Fatalf("the model was asked %d times about the message, want 1", len(reqs))
		}
		last := reqs[0].Messages[len(reqs[0].Messages)-1]
		if len(last.Images) != 1 || !strings.HasPrefix(last.Images[0], "data:image/png;base64,") {
			t.Fatalf("the model got images %v, want the message's image", last.Images)
		}
		if e := w.entries(w.bob, bot.EntryCharge); len(e) != 1 {
			t.Fatalf("bob has %d charges, want the one answer charged to him who asked", len(e))
		}
	})

	t.Run("CompareAPDFFromAServerTheBotIsNotIn", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		guild := w.dc.NewOutsideGuild()
		channel := w.dc.NewChannel(guild)
		doc := w.dc.Upload(channel, "report.pdf", "application/pdf", stacktest.PDF("quarterly numbers"))
		m := w.dc.Say(w.alice, channel, "", discordtest.WithAttachment(doc))
		_, msgs := w.messageCommand(w.bob, m.ID, "Compare models")
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text(), compareModels[0]) || !msgs[0].Ephemeral() {
			t.Fatalf("responses %q, want an ephemeral compare of the default models\n%s", texts(msgs), w.dc.Dump())
		}
		reqs := w.asked("Summarise this document.")
		if len(reqs) != len(compareModels) || len(reqs[0].Files) != 1 {
			t.Fatalf("%d model requests with the document, want %d each with the PDF", len(reqs), len(compareModels))
		}
		noBotCallsOn(t, w, guild, channel)
	})

	t.Run("CompareOneOfTheBotsAnswers", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		_, replies := w.mention(w.alice, w.general, "Name a colour")
		if len(replies) != 1 {
			t.Fatalf("replies %q", texts(replies))
		}
		_, msgs := w.messageCommand(w.bob, replies[0].ID, "Compare models")
		if len(msgs) == 0 || !strings.Contains(msgs[0].Text(), compareModels[0]) {
			t.Fatalf("responses %q, want a compare on the bot's answer", texts(msgs))
		}
		if reqs := w.asked("You said: Name a colour"); len(reqs) != len(compareModels) {
			t.Fatalf("%d model requests carry the answer's text, want %d", len(reqs), len(compareModels))
		}
	})

	t.Run("DeletedMessage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m := w.dc.Say(w.alice, w.general, "soon gone")
		w.dc.DeleteMessage(m.ID)
		_, msgs := w.messageCommand(w.bob, m.ID, "Ask orchat")
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "may have been deleted") || !msgs[0].Ephemeral() {
			t.Fatalf("responses %q, want one ephemeral note that the message is gone", texts(msgs))
		}
		if len(w.asked("soon gone")) != 0 || len(w.entries(w.bob, bot.EntryCharge)) != 0 {
			t.Fatal("a deleted message was asked about, or charged")
		}
	})

	t.Run("NothingToRead", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m := w.dc.Say(w.alice, w.general, "   ")
		_, msgs := w.messageCommand(w.bob, m.ID, "Compare models")
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "no text or files") {
			t.Fatalf("responses %q, want a note that there is nothing to read", texts(msgs))
		}
	})
}

// TestFileOption: /ask and /compare take a file (an attachment option),
// read by the same host checks and size caps as a mention's files.
func TestFileOption(t *testing.T) {
	t.Run("AskAboutAPDF", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.registered()
		doc := w.dc.Upload(w.general, "minutes.pdf", "application/pdf", stacktest.PDF("the minutes"))
		_, msgs := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "what was decided?"}, w.dc.FileOption("file", doc))
		reqs := w.asked("what was decided?")
		if len(reqs) != 1 || len(reqs[0].Files) != 1 {
			t.Fatalf("the model got %d requests, want one with the PDF; responses %q", len(reqs), texts(msgs))
		}
	})

	t.Run("CompareAnImage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.registered()
		img := w.dc.Upload(w.general, "cat.png", "image/png", pngBytes(t))
		in, _ := w.command(w.alice, w.general, "compare", discordtest.Option{Name: "prompt", Value: "which animal?"}, w.dc.FileOption("file", img))
		reqs := w.asked("which animal?")
		if len(reqs) != len(compareModels) {
			t.Fatalf("%d model requests, want %d", len(reqs), len(compareModels))
		}
		// The image goes to the vision models (the router drops it, with
		// a note, for one that cannot see).
		seen := 0
		for _, r := range reqs {
			seen += len(r.Messages[len(r.Messages)-1].Images)
		}
		if seen == 0 {
			t.Fatalf("no model got the image: %q", texts(w.dc.Responses(in.ID)))
		}
	})

	t.Run("NotOnTheCDN", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.registered()
		bad := discordtest.Attachment{Filename: "notes.txt", ContentType: "text/plain", Size: 10, URL: "https://example.com/attachments/1/2/notes.txt"}
		_, msgs := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "read the notes"}, w.dc.FileOption("file", bad))
		if !strings.Contains(strings.Join(texts(msgs), "\n"), "it is not stored on Discord.") {
			t.Fatalf("responses %q, want the note that the file is not on Discord", texts(msgs))
		}
		if w.dc.CDNRequests() != 0 {
			t.Fatal("something was downloaded")
		}
	})

	t.Run("TooLarge", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.registered()
		big := w.dc.Upload(w.general, "huge.txt", "text/plain", []byte("tiny"))
		big.Size = 200 << 20
		_, msgs := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "read the big file"}, w.dc.FileOption("file", big))
		if !strings.Contains(strings.Join(texts(msgs), "\n"), "I left out huge.txt") {
			t.Fatalf("responses %q, want the note that the file is too large", texts(msgs))
		}
		if w.dc.CDNRequests() != 0 {
			t.Fatal("a file over the cap was downloaded")
		}
	})
}
