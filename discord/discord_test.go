package discord_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
)

func TestConnect(t *testing.T) {
	t.Parallel()
	t.Run("IdentifiesWithIntentsAndRegistersCommandsOnce", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		ids := w.dc.Identifies()
		if len(ids) != 1 || !ids[0].TokenOK {
			t.Fatalf("identifies=%+v, want one with the bot token", ids)
		}
		if got, want := ids[0].Intents, int(discord.Intents); got != want {
			t.Fatalf("intents=%d, want %d", got, want)
		}
		const messageContent = 1 << 15
		if ids[0].Intents&messageContent == 0 {
			t.Fatal("the message content intent is missing")
		}
		w.eventually("the commands to be registered", func() bool { _, ok := w.dc.Commands(""); return ok })
		if got := len(w.dc.RequestsTo("PUT", "/applications/")); got != 1 {
			t.Fatalf("%d bulk overwrites, want exactly 1", got)
		}
		cmds, _ := w.dc.Commands("")
		byName := map[string]discordtest.ApplicationCommand{}
		for _, c := range cmds {
			byName[c.Name] = c
		}
		for _, name := range []string{"ask", "compare", "balance", "usage", "models", "model", "leaderboard", "help", "topup", "deduct", "block", "unblock", "ledger"} {
			if _, ok := byName[name]; !ok {
				t.Fatalf("/%s is not registered; registered: %v", name, names(cmds))
			}
		}
		if p := byName["deduct"].DefaultMemberPermissions; p == nil || *p != "8" {
			t.Fatalf("/deduct default_member_permissions=%v, want administrators (8)", p)
		}
		// A server's own admins give from its pool: /topup and /settings
		// are shown to Manage Server.
		for _, name := range []string{"topup", "settings"} {
			if p := byName[name].DefaultMemberPermissions; p == nil || *p != "32" {
				t.Fatalf("/%s default_member_permissions=%v, want Manage Server (32)", name, p)
			}
		}
		// /settings is subcommands and groups, as Discord nests them.
		kinds := map[string]int{}
		for _, o := range byName["settings"].Options {
			kinds[o.Name] = o.Type
			for _, sub := range o.Options {
				kinds[o.Name+" "+sub.Name] = sub.Type
				for _, v := range sub.Options {
					kinds[o.Name+" "+sub.Name+" "+v.Name] = v.Type
				}
			}
		}
		for path, typ := range map[string]int{
			"show": discordtest.OptionSubcommand, "show channel": discordtest.OptionChannel,
			"models": discordtest.OptionGroup, "models allow": discordtest.OptionSubcommand, "models allow list": discordtest.OptionString,
			"persona set text": discordtest.OptionString, "admins add who": discordtest.OptionMentionable, "model id": discordtest.OptionString,
		} {
			if kinds[path] != typ {
				t.Errorf("/settings %s has type %d, want %d", path, kinds[path], typ)
			}
		}
		if p := byName["balance"].DefaultMemberPermissions; p != nil {
			t.Fatalf("/balance default_member_permissions=%v, want everyone", *p)
		}
		auto := map[string]bool{}
		for _, o := range byName["compare"].Options {
			auto[o.Name] = o.Autocomplete
		}
		if !auto["model1"] || !auto["model4"] || auto["prompt"] {
			t.Fatalf("compare autocomplete=%v, want it on model1..model4 only", auto)
		}
		for _, name := range []string{"imagine", "credits"} {
			if _, ok := byName[name]; !ok {
				t.Fatalf("/%s is not registered", name)
			}
		}
		choices := map[string][]string{}
		for _, o := range byName["ask"].Options {
			for _, c := range o.Choices {
				choices[o.Name] = append(choices[o.Name], fmt.Sprint(c.Value))
			}
		}
		if got := strings.Join(choices["effort"], ","); got != "none,minimal,low,medium,high,xhigh,max" {
			t.Fatalf("/ask effort choices=%q, want the chat spec's efforts", got)
		}
		if got := strings.Join(choices["web"], ","); got != "on,off" {
			t.Fatalf("/ask web choices=%q", got)
		}
	})

	t.Run("DevGuildsRegisterPerGuild", func(t *testing.T) {
		t.Parallel()
		var guild string
		w := newWorld(t, func(s *setup) { guild = "900000000000000001"; s.opts.DevGuilds = []string{guild} })
		w.eventually("the guild's commands", func() bool { _, ok := w.dc.Commands(guild); return ok })
		if _, ok := w.dc.Commands(""); ok {
			t.Fatal("commands were registered globally too")
		}
		// Integration types and contexts are for global commands only.
		cmds, _ := w.dc.Commands(guild)
		for _, c := range cmds {
			if len(c.IntegrationTypes) > 0 || len(c.Contexts) > 0 {
				t.Fatalf("guild command %s carries integration_types %v contexts %v", c.Name, c.IntegrationTypes, c.Contexts)
			}
		}
	})

	t.Run("ConnectedUntilRunEnds", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		if !w.adapter.Connected() {
			t.Fatal("Connected()=false after connecting")
		}
		w.stop()
		if w.adapter.Connected() {
			t.Fatal("Connected()=true after Run returned")
		}
	})

	t.Run("ResumesAfterADroppedConnection", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.dc.DropConnection()
		w.eventually("the session to resume", func() bool { return w.dc.Resumes() == 1 && w.dc.Connected() })
		_, replies := w.mention(w.alice, w.general, "still there?")
		if len(replies) != 1 || !strings.Contains(replies[0].Text(), "still there?") {
			t.Fatalf("replies=%v, want an answer after the resume", texts(replies))
		}
		if got := len(w.dc.Identifies()); got != 1 {
			t.Fatalf("%d identifies, want the session resumed, not a new one", got)
		}
	})

}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	t.Run("ErrMessageContentIntentOff", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, func(s *setup) { s.fake.DisallowedIntents, s.noConnect = 1<<15, true })
		err := w.adapter.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "Message Content intent") {
			t.Fatalf("Run: %v, want an error saying to enable the Message Content intent", err)
		}
	})

	t.Run("ErrRejectedToken", func(t *testing.T) {
		t.Parallel()
		const token = "MTIzNDU2Nzg5.wrong.token-value"
		w := newWorld(t, func(s *setup) { s.token, s.noConnect = token, true })
		err := w.adapter.Run(context.Background())
		if err == nil {
			t.Fatal("Run succeeded with a rejected token")
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("the error holds the token: %v", err)
		}
		if strings.Contains(w.logs.String(), token) {
			t.Fatal("the log holds the token")
		}
	})
}

func TestMention(t *testing.T) {
	t.Parallel()
	t.Run("StreamsReplyWithFooter", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m, replies := w.mention(w.alice, w.general, "Tell me about the sea")
		if got, want := len(replies), 1; got != want {
			t.Fatalf("%d replies, want %d\n%s", got, want, w.dc.Dump())
		}
		reply := replies[0]
		final := w.engineFinal("discord:message:" + m.ID)
		if len(final) != 1 {
			t.Fatalf("the engine wrote %d messages, want 1", len(final))
		}
		if got, want := reply.Text(), final[0].Text; got != want {
			t.Fatalf("text=%q\nwant the whole answer %q", got, want)
		}
		if reply.Footer() == "" || reply.Footer() != final[0].Footer {
			t.Fatalf("footer=%q, want %q", reply.Footer(), final[0].Footer)
		}
		if reply.Edits < 2 {
			t.Fatalf("the reply was edited %d times, want it streamed over several edits", reply.Edits)
		}
		if got, want := reply.Embeds[0].Color, discord.ColorDone; got != want {
			t.Fatalf("colour=%#x, want done %#x", got, want)
		}
		streaming := false
		for _, b := range sentBodies(w.dc) {
			embeds, _ := b["embeds"].([]any)
			for _, e := range embeds {
				if c, _ := e.(map[string]any)["color"].(float64); int(c) == discord.ColorStreaming {
					streaming = true
				}
			}
		}
		if !streaming {
			t.Fatal("no update showed the in-progress colour")
		}
		if w.dc.Typing(w.general) == 0 {
			t.Fatal("the bot never showed it was typing")
		}
	})

	t.Run("DirectMessageIsAnAsk", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m := w.dc.DM(w.alice, "hello in private")
		w.waitHandled("discord:message:" + m.ID)
		replies := w.repliesTo(m)
		if len(replies) != 1 || !strings.Contains(replies[0].Text(), "hello in private") {
			t.Fatalf("replies=%v, want one answer in the DM", texts(replies))
		}
	})

	t.Run("ReplyToTheBotContinuesTheConversation", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		_, first := w.mention(w.alice, w.general, "My name is Alice-42.")
		if len(first) != 1 {
			t.Fatalf("%d replies to the first message", len(first))
		}
		second := w.dc.Reply(w.alice, first[0], "What is my name?")
		w.waitHandled("discord:message:" + second.ID)
		reqs := w.asked("What is my name?")
		if len(reqs) != 1 {
			t.Fatalf("%d upstream requests for the reply, want 1", len(reqs))
		}
		msgs := reqs[0].Messages
		var roles []string
		for _, m := range msgs {
			roles = append(roles, m.Role)
		}
		if got, want := strings.Join(roles, ","), "system,user,assistant,user"; got != want {
			t.Fatalf("roles=%s, want %s", got, want)
		}
		if got, want := msgs[1].Content, "My name is Alice-42."; got != want {
			t.Fatalf("first turn=%q, want %q (mention removed)", got, want)
		}
		if got, want := msgs[2].Content, first[0].Text(); got != want {
			t.Fatalf("assistant turn=%q, want the bot's answer without its footer %q", got, want)
		}
		if strings.Contains(msgs[2].Content, first[0].Footer()) {
			t.Fatal("the assistant turn holds the footer")
		}
	})

	t.Run("ThreadMessagesAreTheContext", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		thread := w.dc.NewThread(w.guild, w.general)
		w.dc.Say(w.bob, thread, "The password is swordfish.")
		w.dc.Say(w.alice, thread, "Noted, thanks Bob.")
		m, _ := w.mention(w.alice, thread, "What is the password?")
		reqs := w.asked("What is the password?")
		if len(reqs) != 1 {
			t.Fatalf("%d upstream requests, want 1", len(reqs))
		}
		var turns []string
		for _, c := range reqs[0].Messages[1:] {
			turns = append(turns, c.Role+": "+c.Content)
		}
		want := []string{"user: The password is swordfish.", "user: Noted, thanks Bob.", "user: What is the password?"}
		if !reflect.DeepEqual(turns, want) {
			t.Fatalf("turns=%q, want %q", turns, want)
		}
		if len(w.repliesTo(m)) != 1 {
			t.Fatal("no answer in the thread")
		}
	})

	t.Run("IgnoresBotsItselfAndUnaddressedMessages", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		other := discordtest.User{ID: "1100000000000000001", Username: "otherbot", Discriminator: "0", Bot: true}
		fromBot := w.dc.Say(other, w.general, "<@"+w.dc.Bot.ID+"> hi from a bot")
		plain := w.dc.Say(w.bob, w.general, "just chatting, not to the bot")
		// The bot's own answers come back as MESSAGE_CREATE too (the fake
		// echoes them); events are handled in order, so once this mention
		// is answered, everything before it was seen.
		_, replies := w.mention(w.alice, w.general, "first")
		_, more := w.mention(w.alice, w.general, "second")
		if len(replies) != 1 || len(more) != 1 {
			t.Fatalf("replies=%d,%d, want one each", len(replies), len(more))
		}
		for _, id := range []string{fromBot.ID, plain.ID} {
			if n := w.timesHandled("discord:message:" + id); n != 0 {
				t.Fatalf("message %s was handled %d times, want ignored", id, n)
			}
		}
		for _, b := range w.dc.BotMessages(w.general) {
			if n := w.timesHandled("discord:message:" + b.ID); n != 0 {
				t.Fatal("the bot answered its own message")
			}
		}
	})

	t.Run("RedeliveredMessageAnsweredOnce", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m, replies := w.mention(w.alice, w.general, "count me once")
		w.dc.ReplayLast()
		w.mention(w.bob, w.general, "after the replay")
		if n := w.timesHandled("discord:message:" + m.ID); n != 1 {
			t.Fatalf("handled %d times, want once", n)
		}
		if got := len(w.repliesTo(m)); got != len(replies) {
			t.Fatalf("%d replies after the replay, want %d", got, len(replies))
		}
		if got := len(w.entries(w.alice, bot.EntryCharge)); got != 1 {
			t.Fatalf("%d charges, want 1", got)
		}
	})

	t.Run("AttachmentsReachTheEvent", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		ev := make(chan bot.Event, 1)
		w.adapterHandler(func(e bot.Event) { ev <- e })
		w.dc.Mention(w.alice, w.general, "what is this?", discordtest.WithAttachment(discordtest.Attachment{Filename: "cat.png", ContentType: "image/png", Size: 2048}))
		e := <-ev
		got := e.Attachments
		if len(got) != 1 || got[0].Name != "cat.png" || got[0].ContentType != "image/png" || got[0].Size != 2048 || !strings.HasPrefix(got[0].URL, "https://cdn.discordapp.com/") {
			t.Fatalf("attachments=%+v", got)
		}
		if got, want := e.Text, "what is this?"; got != want {
			t.Fatalf("text=%q, want %q", got, want)
		}
		if e.Community != "discord:"+w.guild || e.Identity != w.identity(w.alice) || e.UserName != "Alice" {
			t.Fatalf("event=%+v", e)
		}
	})
}

func TestSafety(t *testing.T) {
	t.Parallel()
	t.Run("MassMentionsPingNobody", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		answer := "Hey @everyone and @here, <@&123456789012345678> and <@987654321098765432>: look!"
		w.can("PING-TEST", answer)
		_, replies := w.mention(w.alice, w.general, "PING-TEST please")
		if len(replies) != 1 || !strings.Contains(replies[0].Text(), answer) {
			t.Fatalf("replies=%q, want the answer shown as written", texts(replies))
		}
		bodies := sentBodies(w.dc)
		if len(bodies) == 0 {
			t.Fatal("no message was sent")
		}
		for _, b := range bodies {
			am, ok := b["allowed_mentions"].(map[string]any)
			if !ok {
				t.Fatalf("a message was sent without allowed_mentions: %v", b)
			}
			parse, ok := am["parse"].([]any)
			if !ok || len(parse) != 0 {
				t.Fatalf("allowed_mentions.parse=%v, want []", am["parse"])
			}
			if am["replied_user"] != false {
				t.Fatalf("allowed_mentions.replied_user=%v, want false", am["replied_user"])
			}
		}
	})

	t.Run("TokenNeverLogged", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.mention(w.alice, w.general, "hello")
		w.command(w.alice, w.general, "balance")
		w.stop()
		log := w.logs.String()
		if log == "" {
			t.Fatal("nothing was logged at debug level")
		}
		if strings.Contains(log, w.dc.Token) {
			t.Fatal("the log holds the bot token")
		}
	})
}

// InteractionTokenNeverLogged is in its own test: the world's transport
// drops the first interaction callback and the first webhook call, as a
// reset connection would. net/http quotes the URL in such errors, and the
// URL holds the interaction token, which posts and edits as the bot.
func TestInteractionTokenNeverLogged(t *testing.T) {
	t.Parallel()
	drop := &dropFirst{base: http.DefaultTransport, paths: map[string]bool{"/callback": true, "/webhooks/": true}}
	w := newWorld(t, func(s *setup) { s.opts.HTTPClient = &http.Client{Transport: drop} })
	first, _ := w.command(w.alice, w.general, "help")  // its acknowledgement is dropped
	second, _ := w.command(w.alice, w.general, "help") // its first post is dropped
	w.eventually("both calls dropped", func() bool { return drop.dropped() == 2 })
	w.stop()
	log := w.logs.String()
	if !strings.Contains(log, "/callback") || !strings.Contains(log, "/messages/@original") {
		t.Fatalf("the dropped calls were not logged; the test proves nothing:\n%s", log)
	}
	for _, in := range []discordtest.Interaction{first, second} {
		if in.Token == "" {
			t.Fatal("the fake gave the interaction no token")
		}
		if strings.Contains(log, in.Token) {
			t.Fatalf("the log holds an interaction token:\n%s", log)
		}
	}
}

// dropFirst fails the first request whose path holds each of paths with a
// network error.
type dropFirst struct {
	base  http.RoundTripper
	mu    sync.Mutex
	paths map[string]bool // path part → not dropped yet
	n     int
}

func (d *dropFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	for p, left := range d.paths {
		if left && strings.Contains(r.URL.Path, p) {
			d.paths[p] = false
			d.n++
			d.mu.Unlock()
			return nil, errors.New("connection reset by peer")
		}
	}
	d.mu.Unlock()
	return d.base.RoundTrip(r)
}

func (d *dropFirst) dropped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

func TestLongAnswer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	answer := longAnswer(9000)
	w.can("LONG-ANSWER", answer)
	m, replies := w.mention(w.alice, w.general, "LONG-ANSWER please")
	if len(replies) < 3 {
		t.Fatalf("%d messages, want the 9,000 characters over at least 3\n%s", len(replies), w.dc.Dump())
	}
	var parts []string
	prev := m.ID
	for i, r := range replies {
		text := r.Text()
		if n := utf8.RuneCountInString(text); n > 4096 {
			t.Fatalf("part %d holds %d characters, over an embed's 4,096", i, n)
		}
		if fences := strings.Count(text, "```"); fences%2 != 0 {
			t.Fatalf("part %d has %d fence markers: a code block is left open\n%s", i, fences, text)
		}
		if r.MessageReference.MessageID != prev {
			t.Fatalf("part %d replies to %s, want %s (the part before)", i, r.MessageReference.MessageID, prev)
		}
		prev = r.ID
		parts = append(parts, text)
	}
	reopened := false
	for _, p := range parts[1:] {
		reopened = reopened || strings.HasPrefix(p, "```go\n")
	}
	if !reopened {
		t.Fatal("no cut fell inside a code block; the test does not prove fences survive")
	}
	if got, want := words(strings.Join(parts, "\n")), words(answer); got != want {
		t.Fatalf("the parts do not hold the whole answer:\n got %d words\nwant %d words", len(strings.Fields(got)), len(strings.Fields(want)))
	}
	if replies[len(replies)-1].Footer() == "" {
		t.Fatal("the last part has no footer")
	}
}

func TestSlashCommands(t *testing.T) {
	t.Parallel()
	t.Run("AskAnswersInTheDeferredResponse", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in, msgs := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "What is a haiku?"})
		if in.ResponseType != discordtest.CallbackDeferredMessage || in.ResponseFlags != 0 {
			t.Fatalf("response type=%d flags=%d, want a public deferral (5, 0)", in.ResponseType, in.ResponseFlags)
		}
		if len(msgs) != 1 || msgs[0].ID != in.Original {
			t.Fatalf("responses=%q, want the answer in the original response", texts(msgs))
		}
		if !strings.Contains(msgs[0].Text(), "What is a haiku?") || msgs[0].Footer() == "" || msgs[0].Ephemeral() {
			t.Fatalf("answer=%q footer=%q ephemeral=%v", msgs[0].Text(), msgs[0].Footer(), msgs[0].Ephemeral())
		}
	})

	t.Run("BalanceIsEphemeral", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in, msgs := w.command(w.alice, w.general, "balance")
		callbacks := w.dc.RequestsTo("POST", "/interactions/"+in.ID+"/")
		if len(callbacks) != 1 {
			t.Fatalf("%d callbacks, want 1", len(callbacks))
		}
		var cb struct {
			Type int `json:"type"`
			Data struct {
				Flags int `json:"flags"`
			} `json:"data"`
		}
		if err := callbacks[0].Decode(&cb); err != nil {
			t.Fatal(err)
		}
		if cb.Type != 5 || cb.Data.Flags != 64 {
			t.Fatalf("deferred response type=%d flags=%d, want 5 with flag 64", cb.Type, cb.Data.Flags)
		}
		if len(msgs) != 1 || !msgs[0].Ephemeral() || !strings.Contains(msgs[0].Text(), "Balance") {
			t.Fatalf("responses=%q, want one ephemeral balance", texts(msgs))
		}
		if seen := w.dc.Seen(w.bob.ID); containsText(seen, "Balance") {
			t.Fatal("bob sees alice's balance")
		}
	})

	t.Run("TypedPrivateCommandGoesToDMs", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		m := w.dc.Mention(w.alice, w.general, "/balance")
		w.waitHandled("discord:message:" + m.ID)
		if got := w.repliesTo(m); len(got) != 0 {
			t.Fatalf("the balance was posted in the channel: %q", texts(got))
		}
		dm := w.dc.BotMessages(w.dc.DMChannel(w.alice.ID))
		if !containsText(dm, "Balance") {
			t.Fatalf("DM=%q, want the balance", texts(dm))
		}
	})

	t.Run("PrivateReplyWithDMsClosedIsNotShownInTheChannel", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.dc.CloseDMs(w.alice.ID)
		m := w.dc.Mention(w.alice, w.general, "/balance")
		w.waitHandled("discord:message:" + m.ID)
		replies := w.repliesTo(m)
		if containsText(replies, "Balance") {
			t.Fatalf("the balance was posted in the channel: %q", texts(replies))
		}
		if !containsText(replies, "DMs") {
			t.Fatalf("replies=%q, want a note that DMs are closed", texts(replies))
		}
	})

	t.Run("TopUpByNonAdminRefused", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		before := w.balance(w.alice)
		_, msgs := w.command(w.bob, w.general, "topup",
			discordtest.Option{Name: "user", Value: "<@" + w.alice.ID + ">"}, discordtest.Option{Name: "amount", Value: "5000"})
		if len(msgs) != 1 || !msgs[0].Ephemeral() || !strings.Contains(msgs[0].Text(), "can use /topup") {
			t.Fatalf("responses=%q, want an ephemeral refusal", texts(msgs))
		}
		if msgs[0].Embeds[0].Color != discord.ColorFailed {
			t.Fatalf("colour=%#x, want red", msgs[0].Embeds[0].Color)
		}
		if got := w.balance(w.alice); got != before {
			t.Fatalf("balance=%d, want it unchanged at %d", got, before)
		}
	})

	t.Run("ReplayedTopUpAppliedOnce", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		before := w.balance(w.alice)
		in, msgs := w.command(w.admin, w.general, "topup",
			discordtest.Option{Name: "user", Value: "<@" + w.alice.ID + ">"}, discordtest.Option{Name: "amount", Value: "5000"})
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "Added 5,000 tokens") {
			t.Fatalf("responses=%q", texts(msgs))
		}
		w.dc.ReplayLast()
		w.command(w.bob, w.general, "help") // handled after the replay: events arrive in order
		in, _ = w.dc.Interaction(in.ID)
		if in.Callbacks != 1 || w.timesHandled("discord:interaction:"+in.ID) != 1 {
			t.Fatalf("callbacks=%d handled=%d, want the replay ignored", in.Callbacks, w.timesHandled("discord:interaction:"+in.ID))
		}
		if got, want := w.balance(w.alice), before+5000; got != want {
			t.Fatalf("balance=%d, want %d", got, want)
		}
	})

	t.Run("ReplayedAskChargedOnce", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in, _ := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "charge me once"})
		w.dc.ReplayLast()
		w.command(w.bob, w.general, "help")
		if got := len(w.asked("charge me once")); got != 1 {
			t.Fatalf("%d upstream calls, want 1", got)
		}
		if got := len(w.entries(w.alice, bot.EntryCharge)); got != 1 {
			t.Fatalf("%d charges, want 1", got)
		}
		if got := len(w.dc.RequestsTo("POST", "/interactions/"+in.ID+"/")); got != 1 {
			t.Fatalf("%d callbacks, want 1", got)
		}
	})

	t.Run("AfterTheTokenExpiresTheAnswerIsEditedInTheChannel", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in := w.dc.RunCommand(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "slow answer"})
		w.eventually("the answer to begin", func() bool { return len(w.dc.Responses(in.ID)) == 1 })
		w.dc.ExpireInteraction(in.ID)
		w.waitHandled("discord:interaction:" + in.ID)
		msgs := w.dc.Responses(in.ID)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "slow answer") || msgs[0].Footer() == "" {
			t.Fatalf("responses=%q, want the finished answer in the original response\n%s", texts(msgs), w.dc.Dump())
		}
		if len(w.dc.RequestsTo("PATCH", "/channels/"+w.general+"/messages/"+msgs[0].ID)) == 0 {
			t.Fatal("no edit went through the channel once the token had expired")
		}
	})

	t.Run("ShortTokenLifeFallsBackToChannelAndDM", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, func(s *setup) { s.opts.TokenLife = time.Nanosecond })
		_, msgs := w.command(w.alice, w.general, "balance")
		if containsText(msgs, "Balance") {
			t.Fatal("the balance went through the expired interaction")
		}
		if containsText(w.dc.BotMessages(w.general), "Balance") {
			t.Fatal("the balance was posted in the channel")
		}
		if !containsText(w.dc.BotMessages(w.dc.DMChannel(w.alice.ID)), "Balance") {
			t.Fatalf("the balance did not reach alice's DMs\n%s", w.dc.Dump())
		}
	})

	t.Run("NewUserWelcomeThenAnswer", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		carol := w.dc.NewUser("carol")
		_, msgs := w.command(carol, w.general, "ask", discordtest.Option{Name: "prompt", Value: "first time here"})
		// The answer fills the public response; the welcome is an
		// ephemeral follow-up only carol sees.
		if len(msgs) != 2 || !strings.Contains(msgs[0].Text(), "first time here") || msgs[0].Ephemeral() ||
			!strings.Contains(msgs[1].Text(), "Welcome") || !msgs[1].Ephemeral() {
			t.Fatalf("responses=%q, want the public answer then an ephemeral welcome\n%s", texts(msgs), w.dc.Dump())
		}
	})

	t.Run("NewUserMentionWelcomedInTheAnswersFooter", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		dave := w.dc.NewUser("dave")
		_, replies := w.mention(dave, w.general, "hello, first time")
		if len(replies) != 1 {
			t.Fatalf("the channel got %d posts for a new member's mention, want 1 (the answer): %q", len(replies), texts(replies))
		}
		if !strings.Contains(replies[0].Text(), "hello, first time") || !strings.Contains(replies[0].Footer(), "Welcome to orchat") {
			t.Fatalf("answer %q footer %q, want the answer with the welcome in its footer", replies[0].Text(), replies[0].Footer())
		}
		if n := len(w.dc.BotMessages(w.general)); n != 1 {
			t.Fatalf("%d bot messages in the channel, want 1", n)
		}
		// A second question is an ordinary answer.
		_, again := w.mention(dave, w.general, "and again")
		if len(again) != 1 || strings.Contains(again[0].Footer(), "Welcome") {
			t.Fatalf("second answer footer %q, want no welcome", again[0].Footer())
		}
	})

	t.Run("NewUserPrivateFirstMentionWelcomedInTheDM", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		fay := w.dc.NewUser("fay")
		m := w.dc.Mention(fay, w.general, "/balance")
		w.waitHandled("discord:message:" + m.ID)
		if n := len(w.dc.BotMessages(w.general)); n != 0 {
			t.Fatalf("%d bot messages in the channel for a private answer", n)
		}
		dms := w.dc.BotMessages(w.dc.DMChannel(fay.ID))
		if len(dms) != 1 || !strings.Contains(dms[0].Text(), "Balance") || !strings.Contains(dms[0].Footer(), "Welcome to orchat") {
			t.Fatalf("DMs %q, want the balance with the welcome in its footer", texts(dms))
		}
	})

	t.Run("NewUserDMWelcomeStaysAMessage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		erin := w.dc.NewUser("erin")
		m := w.dc.DM(erin, "hi in private")
		w.waitHandled("discord:message:" + m.ID)
		msgs := w.dc.BotMessages(m.ChannelID)
		if len(msgs) != 2 || !strings.Contains(msgs[0].Text(), "Welcome") {
			t.Fatalf("DM got %q, want the welcome then the answer", texts(msgs))
		}
	})

	t.Run("BlockedUserOnPublicCommandToldPrivately", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		if err := w.store.SetBlocked(context.Background(), w.identity(w.bob), true, w.identity(w.admin)); err != nil {
			t.Fatal(err)
		}
		in, _ := w.command(w.bob, w.general, "ask", discordtest.Option{Name: "prompt", Value: "let me in"})
		// Once the handler is done, the adapter removes the unused public
		// deferred response and delivers the private notice.
		w.eventually("bob to be told privately", func() bool {
			return containsText(w.dc.BotMessages(w.dc.DMChannel(w.bob.ID)), "blocked")
		})
		if m, _ := w.dc.Message(in.Original); !m.Deleted {
			t.Fatal("the public deferred response was left thinking")
		}
		if msgs := w.dc.Responses(in.ID); len(msgs) != 0 {
			t.Fatalf("responses=%q, want none in the channel", texts(msgs))
		}
	})
}

func TestAutocomplete(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	t.Run("MatchingModels", func(t *testing.T) {
		in := w.dc.Autocomplete(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "hi"},
			discordtest.Option{Name: "model", Value: "gemini", Focused: true})
		w.eventually("the autocomplete answer", func() bool { i, _ := w.dc.Interaction(in.ID); return i.ResponseType != 0 })
		in, _ = w.dc.Interaction(in.ID)
		if in.ResponseType != discordtest.CallbackAutocompleteResult {
			t.Fatalf("response type=%d, want 8", in.ResponseType)
		}
		if len(in.Choices) == 0 || len(in.Choices) > discord.MaxChoices {
			t.Fatalf("%d choices, want 1-25", len(in.Choices))
		}
		for _, c := range in.Choices {
			if v, _ := c.Value.(string); !strings.Contains(strings.ToLower(v+c.Name), "gemini") {
				t.Fatalf("choice %+v does not match gemini", c)
			}
		}
		if w.timesHandled("discord:interaction:"+in.ID) != 0 {
			t.Fatal("autocomplete went to the engine")
		}
	})
	t.Run("FreeModelsMarked", func(t *testing.T) {
		in := w.dc.Autocomplete(w.alice, w.general, "compare", discordtest.Option{Name: "model2", Value: ":free", Focused: true})
		w.eventually("the autocomplete answer", func() bool { i, _ := w.dc.Interaction(in.ID); return i.ResponseType != 0 })
		in, _ = w.dc.Interaction(in.ID)
		if len(in.Choices) == 0 {
			t.Fatal("no choices for :free")
		}
		for _, c := range in.Choices {
			if v, _ := c.Value.(string); strings.HasSuffix(v, ":free") != strings.HasSuffix(c.Name, " (free)") {
				t.Fatalf("choice %+v: free models must be marked (free), others not", c)
			}
		}
	})
}

func TestCompare(t *testing.T) {
	t.Parallel()
	t.Run("PanelsButtonsAndOneVotePerUser", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		_, msgs := w.command(w.alice, w.general, "compare", discordtest.Option{Name: "prompt", Value: "Why is the sky blue?"})
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want one compare\n%s", len(msgs), w.dc.Dump())
		}
		c := msgs[0]
		if len(c.Embeds) != 2 {
			t.Fatalf("%d embeds, want one panel per model", len(c.Embeds))
		}
		for i, model := range compareModels {
			e := c.Embeds[i]
			if want := string(rune('A'+i)) + " · " + model; !strings.HasPrefix(e.Title, want) {
				t.Fatalf("panel %d title=%q, want %q", i, e.Title, want)
			}
			if !strings.Contains(e.Description, "Why is the sky blue?") || e.Footer == nil || !strings.Contains(e.Footer.Text, "first token") {
				t.Fatalf("panel %d: %q / %+v", i, e.Description, e.Footer)
			}
		}
		if !strings.Contains(c.Embeds[1].Footer.Text, "charged") {
			t.Fatalf("last footer=%q, want the compare's totals", c.Embeds[1].Footer.Text)
		}
		if got, want := labels(c), []string{"A is better", "B is better", "Tie"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("buttons=%q, want %q", got, want)
		}

		_, answer := w.click(w.bob, c.ID, c.Buttons()[0].CustomID)
		if len(answer) != 1 || !answer[0].Ephemeral() || !strings.Contains(answer[0].Text(), "vote for A is in") {
			t.Fatalf("answer=%q, want an ephemeral confirmation", texts(answer))
		}
		c, _ = w.dc.Message(c.ID)
		if got, want := labels(c), []string{"A is better · 1", "B is better", "Tie"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("buttons=%q, want the tally %q", got, want)
		}
		if len(c.Embeds) != 2 {
			t.Fatal("the vote changed the panels")
		}

		_, again := w.click(w.bob, c.ID, c.Buttons()[1].CustomID)
		if len(again) != 1 || !again[0].Ephemeral() || again[0].Embeds[0].Color != discord.ColorFailed {
			t.Fatalf("second vote=%q, want an ephemeral refusal", texts(again))
		}
		c, _ = w.dc.Message(c.ID)
		if got, want := labels(c), []string{"A is better · 1", "B is better", "Tie"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("buttons=%q after a refused vote, want %q", got, want)
		}
		pairs, err := w.store.Pairs(context.Background(), "discord:"+w.guild)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, p := range pairs {
			total += p.AWins + p.BWins + p.Ties
		}
		if total != 1 {
			t.Fatalf("%d votes recorded, want 1", total)
		}
	})

	t.Run("TypedVoteUpdatesTheTally", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		_, msgs := w.mention(w.alice, w.general, "/compare Name a color")
		if len(msgs) != 1 || len(msgs[0].Buttons()) != 3 {
			t.Fatalf("messages=%q, want one compare with buttons", texts(msgs))
		}
		id := strings.Split(msgs[0].Buttons()[0].CustomID, ":")[1]
		in, answer := w.command(w.bob, w.general, "vote", discordtest.Option{Name: "compare", Value: id}, discordtest.Option{Name: "choice", Value: "tie"})
		if len(answer) != 1 || !answer[0].Ephemeral() || in.ResponseFlags != 64 {
			t.Fatalf("answer=%q flags=%d, want ephemeral", texts(answer), in.ResponseFlags)
		}
		c, _ := w.dc.Message(msgs[0].ID)
		if got, want := labels(c), []string{"A is better", "B is better", "Tie · 1"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("buttons=%q, want %q", got, want)
		}
	})

	t.Run("LongPanelsTruncatedToFitOneMessage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.can("HUGE-COMPARE", longAnswer(5000))
		_, msgs := w.command(w.alice, w.general, "compare", discordtest.Option{Name: "prompt", Value: "HUGE-COMPARE"},
			discordtest.Option{Name: "models", Value: "google/gemini-2.5-flash,openai/gpt-5-mini,deepseek/deepseek-v3.2"})
		if len(msgs) != 1 || len(msgs[0].Embeds) != 3 {
			t.Fatalf("messages=%d, want one compare with 3 panels\n%s", len(msgs), w.dc.Dump())
		}
		total := 0
		for i, e := range msgs[0].Embeds {
			if !strings.HasSuffix(e.Description, discord.Truncated) {
				t.Fatalf("panel %d does not say it was truncated", i)
			}
			if strings.Count(e.Description, "```")%2 != 0 {
				t.Fatalf("panel %d leaves a code block open", i)
			}
			total += utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description) + utf8.RuneCountInString(e.Footer.Text)
		}
		if total > 6000 {
			t.Fatalf("the embeds hold %d characters, over 6,000", total)
		}
		if len(msgs[0].Buttons()) != 4 {
			t.Fatalf("%d buttons, want A, B, C and Tie", len(msgs[0].Buttons()))
		}
	})
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("EditAnswered429IsWaitedOut", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.dc.RateLimit(discordtest.RateLimit{Method: "PATCH", Path: "/channels/" + w.general + "/messages/", Count: 2, RetryAfter: 150 * time.Millisecond})
		m, replies := w.mention(w.alice, w.general, "rate limit me")
		if len(replies) != 1 {
			t.Fatalf("%d replies", len(replies))
		}
		final := w.engineFinal("discord:message:" + m.ID)
		if got, want := replies[0].Text(), final[0].Text; got != want || replies[0].Footer() == "" {
			t.Fatalf("text=%q footer=%q, want the whole answer %q with its footer", got, replies[0].Footer(), want)
		}
		if got := w.dc.RateLimited(); got != 2 {
			t.Fatalf("%d requests answered 429, want 2", got)
		}
		if got := w.metrics.RateLimited.Load(); got != 2 {
			t.Fatalf("PlatformRateLimited reported %d times, want 2", got)
		}
		reqs := w.dc.Requests()
		for i, r := range reqs {
			if r.Status == http.StatusTooManyRequests {
				retried := false
				for _, later := range reqs[i+1:] {
					retried = retried || (later.Method == r.Method && later.Path == r.Path && later.Status == http.StatusOK)
				}
				if !retried {
					t.Fatalf("the edit answered 429 at %s was never retried", r.Path)
				}
			}
		}
	})

	t.Run("GlobalLimitOnWebhookEditIsWaitedOut", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.dc.RateLimit(discordtest.RateLimit{Method: "PATCH", Path: "/webhooks/", Count: 1, Global: true})
		_, msgs := w.command(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "global limit"})
		if len(msgs) != 1 || msgs[0].Footer() == "" || !strings.Contains(msgs[0].Text(), "global limit") {
			t.Fatalf("responses=%q, want the finished answer", texts(msgs))
		}
		if w.dc.RateLimited() != 1 {
			t.Fatalf("%d requests answered 429, want 1", w.dc.RateLimited())
		}
	})

	t.Run("AcknowledgedWithinThreeSecondsDuringAGlobalLimit", func(t *testing.T) {
		// Streamed edits met a global limit of 5 s. Interaction callbacks
		// are exempt from it on Discord: a command in the meantime is still
		// acknowledged within its 3 seconds (the fake refuses a later one).
		t.Parallel()
		w := newWorld(t)
		w.dc.RateLimit(discordtest.RateLimit{Method: "PATCH", Path: "/webhooks/", Count: 1, Global: true, RetryAfter: 5 * time.Second})
		first := w.dc.RunCommand(w.alice, w.general, "ask", discordtest.Option{Name: "prompt", Value: "global limit"})
		w.eventually("the global limit is hit", func() bool { return w.dc.RateLimited() == 1 })
		second, msgs := w.command(w.bob, w.general, "balance")
		if second.Callbacks != 1 || second.ResponseType != discordtest.CallbackDeferredMessage {
			t.Fatalf("callbacks=%d type=%d: the command was not acknowledged in time", second.Callbacks, second.ResponseType)
		}
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text(), "tokens") {
			t.Fatalf("responses=%q, want the balance", texts(msgs))
		}
		w.waitHandled("discord:interaction:" + first.ID)
	})
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	var h nopHandler
	for _, tt := range []struct {
		name string
		opts discord.Options
	}{
		{"ErrNoToken", discord.Options{Handler: h}},
		{"ErrNoHandler", discord.Options{Token: "x"}},
		{"ErrBadAPIURL", discord.Options{Token: "x", Handler: h, APIURL: "discord.com"}},
		{"ErrBadShard", discord.Options{Token: "x", Handler: h, Shards: []int{2}, ShardCount: 2}},
		{"ErrShardTwice", discord.Options{Token: "x", Handler: h, Shards: []int{1, 1}, ShardCount: 2}},
		{"ErrLocksWithoutHolders", discord.Options{Token: "x", Handler: h, OpenLocks: func(context.Context) (discord.Locks, error) { return nil, nil }}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := discord.New(tt.opts); err == nil {
				t.Fatal("New accepted bad options")
			}
		})
	}
}

type nopHandler struct{}

func (nopHandler) Handle(context.Context, bot.Event, bot.Output) error { return nil }

// adapterHandler replaces what the engine sees with f, answering nothing.
func (w *world) adapterHandler(f func(bot.Event)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.intercept = f
}

func names(cmds []discordtest.ApplicationCommand) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.Name)
	}
	return out
}

func texts(msgs []discordtest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Text())
	}
	return out
}

func containsText(msgs []discordtest.Message, s string) bool {
	for _, m := range msgs {
		if strings.Contains(m.Text(), s) {
			return true
		}
	}
	return false
}

func labels(m discordtest.Message) []string {
	var out []string
	for _, b := range m.Buttons() {
		out = append(out, b.Label)
	}
	return out
}

// words is text without fence lines, as one space-separated string: what
// must survive splitting, however the cuts fell.
func words(text string) string {
	var keep []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(strings.Fields(strings.Join(keep, "\n")), " ")
}

// longAnswer is about n characters of prose and Go code blocks.
func longAnswer(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Step %d explains the next part of the program in plain words, so a reader can follow along.\n\n", i)
		b.WriteString("```go\n")
		for j := 0; j < 40; j++ {
			fmt.Fprintf(&b, "\tx%d := compute(%d, %d) // line %d of block %d\n", j, i, j, j, i)
		}
		b.WriteString("```\n\n")
	}
	return b.String()
}
