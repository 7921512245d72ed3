package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

func TestMention(t *testing.T) {
	w := newWorld(t)
	d, answer := w.mention(slacktest.Post{User: alice, Channel: general, Text: "Why is the sky blue?"})

	t.Run("AnsweredInAThreadUnderTheMention", func(t *testing.T) {
		if got, want := answer.ThreadTS, d.TS; got != want {
			t.Fatalf("answer thread_ts=%q, want the mention's ts %q", got, want)
		}
	})
	t.Run("StreamedWithSeveralUpdates", func(t *testing.T) {
		n := 0
		for _, c := range w.slack.Calls("chat.update") {
			if c.Params.Get("ts") == answer.TS && c.Status == http.StatusOK {
				n++
			}
		}
		if n < 2 {
			t.Fatalf("the answer was updated %d times, want several", n)
		}
	})
	t.Run("FinalTextWhole", func(t *testing.T) {
		final := w.final(answer.TS)
		if final.Status != bot.StatusDone || !strings.HasPrefix(final.Text, "[simulated ") {
			t.Fatalf("engine's last message: status=%s text=%q", final.Status, final.Text)
		}
		if got, want := answer.Visible(), slack.Mrkdwn(final.Text)+"\n"+final.Footer; got != want {
			t.Fatalf("Slack shows\n%s\nwant\n%s", got, want)
		}
		if !strings.Contains(final.Text, "You said: Why is the sky blue?") {
			t.Fatalf("the answer does not answer the question: %q", final.Text)
		}
	})
	t.Run("FooterUnderTheAnswer", func(t *testing.T) {
		ids := answer.BlockIDs()
		if ids[len(ids)-1] != "orchat.footer" || !strings.Contains(answer.Visible(), "charged") {
			t.Fatalf("blocks %v, shown %q: want a footer context block last", ids, answer.Visible())
		}
	})
	t.Run("ChargedOnce", func(t *testing.T) {
		if got := len(w.charges(alice)); got != 1 {
			t.Fatalf("charges=%d, want 1", got)
		}
	})
	t.Run("AckedAndConnectedThroughTheAPIURL", func(t *testing.T) {
		if len(w.slack.Calls("apps.connections.open")) == 0 || w.slack.Connections() == 0 {
			t.Fatal("the adapter did not open Socket Mode through the configured API URL")
		}
	})
}

func TestThreadFollowUp(t *testing.T) {
	w := newWorld(t)
	d, first := w.mention(slacktest.Post{User: alice, Channel: general, Text: "Why is the sky blue?"})
	w.say(slacktest.Post{User: bob, Channel: general, Thread: d.TS, Text: "And why are sunsets red?"})

	t.Run("EarlierTurnsAreContext", func(t *testing.T) {
		reqs := w.simRequests()
		last := reqs[len(reqs)-1]
		var got []string
		for _, m := range last.Messages[1:] {
			got = append(got, m.Role+": "+m.Content)
		}
		want := []string{
			"user: Why is the sky blue?",
			"assistant: " + w.final(first.TS).Text,
			"user: And why are sunsets red?",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("the model received\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("OtherThreadsAndTopLevelMessagesIgnored", func(t *testing.T) {
		before := len(w.simRequests())
		parent := w.slack.Say(slacktest.Post{User: bob, Channel: general, Text: "lunch anyone?"})
		w.slack.Say(slacktest.Post{User: alice, Channel: general, Thread: parent.TS, Text: "sure"})
		w.slack.Say(slacktest.Post{User: "UOTHERBOT", BotID: "BOTHER", Channel: general, Thread: d.TS, Text: "a bot speaks"})
		// A later mention is answered: the messages before it were seen.
		w.mention(slacktest.Post{User: bob, Channel: random, Text: "ping"})
		if got := len(w.simRequests()) - before; got != 1 {
			t.Fatalf("the model was asked %d times, want 1 (only the mention)", got)
		}
		if got := len(w.slack.Thread(general, parent.TS)); got != 2 {
			t.Fatalf("the lunch thread has %d messages, want the 2 users wrote", got)
		}
	})
}

func TestDirectMessages(t *testing.T) {
	w := newWorld(t)
	dm := slacktest.DMChannel(alice)
	first := w.say(slacktest.Post{User: alice, Channel: dm, Text: "Hello there"})
	if first.ThreadTS != "" {
		t.Fatalf("a DM is answered in a thread (%s), want at the top", first.ThreadTS)
	}
	w.say(slacktest.Post{User: alice, Channel: dm, Text: "What did I just say?"})
	reqs := w.simRequests()
	msgs := reqs[len(reqs)-1].Messages
	if len(msgs) < 4 || msgs[1].Content != "Hello there" || msgs[2].Role != bot.RoleAssistant {
		t.Fatalf("the second DM's context is %+v, want the first exchange", msgs)
	}
}

func TestCompareAndVote(t *testing.T) {
	w := newWorld(t)
	w.slack.Slash(alice, general, "compare", "Name a colour")
	var cmp slacktest.Message
	w.eventually("the compare shows its vote buttons", func() bool {
		for _, m := range w.slack.BotMessages(general) {
			if strings.Contains(m.Visible(), "[A] [B] [Tie]") {
				cmp = m
				return true
			}
		}
		return false
	})
	shown := cmp.Visible()
	for _, want := range []string{"Alice used */compare*: Name a colour", "*A · google/gemini-2.5-flash*", "*B · openai/gpt-5-mini*", "first token", "Votes: none yet"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the compare does not show %q:\n%s", want, shown)
		}
	}

	w.slack.Click(bob, general, cmp.TS, "A")
	w.eventually("bob is told his vote counted", func() bool { return seenEphemeral(w, bob, "Your vote for A is in") })
	w.eventually("the tally shows the vote", func() bool {
		m, _ := w.slack.Find(general, cmp.TS)
		return strings.Contains(m.Visible(), "Votes: A 1")
	})

	t.Run("SecondVoteRefused", func(t *testing.T) {
		w.slack.Click(bob, general, cmp.TS, "B")
		w.eventually("bob is told he already voted", func() bool { return seenEphemeral(w, bob, "You already voted on this compare") })
		m, _ := w.slack.Find(general, cmp.TS)
		if v := m.Visible(); !strings.Contains(v, "Votes: A 1") || strings.Contains(v, "B 1") {
			t.Fatalf("tally after a refused vote:\n%s", v)
		}
	})
	t.Run("VotesArePrivate", func(t *testing.T) {
		for _, s := range w.slack.Seen(alice) {
			if strings.Contains(s, "Your vote") {
				t.Fatalf("alice sees bob's vote confirmation: %q", s)
			}
		}
	})
}

func TestRedeliveredEventAnsweredOnce(t *testing.T) {
	w := newWorld(t)
	d := w.slack.Mention(slacktest.Post{User: alice, Channel: general, Text: "Count to three"})
	w.slack.Redeliver(d) // while the first is being answered
	w.answerAfter(general, d.TS, d.TS)
	w.slack.Redeliver(d) // after it was answered
	w.mention(slacktest.Post{User: bob, Channel: random, Text: "ping"})

	answers := 0
	for _, m := range w.slack.Thread(general, d.TS) {
		if isAnswer(m) {
			answers++
		}
	}
	if answers != 1 {
		t.Fatalf("answers=%d, want 1", answers)
	}
	if got := len(w.charges(alice)); got != 1 {
		t.Fatalf("charges=%d, want 1", got)
	}
}

func TestHTTPMode(t *testing.T) {
	w := newWorld(t, func(s *setup) { s.http = true })
	endpoint := w.endpoint

	t.Run("URLVerification", func(t *testing.T) {
		status, body := w.slack.PostHTTP(endpoint, slacktest.Secret, slacktest.URLVerification("c4ll3ng3"), 0, time.Now())
		if status != http.StatusOK || body != "c4ll3ng3" {
			t.Fatalf("status=%d body=%q, want 200 and the challenge", status, body)
		}
	})

	message, mention := w.slack.MentionEvents(slacktest.Post{User: alice, Channel: general, Text: "Hello over HTTP"})
	t.Run("BadSignatureRefused", func(t *testing.T) {
		if status, _ := w.slack.PostHTTP(endpoint, "not-the-secret", mention, 0, time.Now()); status != http.StatusUnauthorized {
			t.Fatalf("status=%d, want 401", status)
		}
	})
	t.Run("StaleTimestampRefused", func(t *testing.T) {
		if status, _ := w.slack.PostHTTP(endpoint, slacktest.Secret, mention, 0, time.Now().Add(-6*time.Minute)); status != http.StatusUnauthorized {
			t.Fatalf("status=%d, want 401", status)
		}
	})
	t.Run("RefusedRequestsChangedNothing", func(t *testing.T) {
		if n := len(w.simRequests()); n != 0 {
			t.Fatalf("the model was asked %d times", n)
		}
		if _, err := w.store.Balance(context.Background(), w.identity(alice)); bot.ErrorCode(err) != bot.ENOTFOUND {
			t.Fatalf("alice has an account after refused requests only (err=%v)", err)
		}
	})
	t.Run("SignedRequestAnswered", func(t *testing.T) {
		for _, d := range []*slacktest.Delivery{message, mention} {
			if status, _ := w.slack.PostHTTP(endpoint, slacktest.Secret, d, 0, time.Now()); status != http.StatusOK {
				t.Fatalf("status=%d, want 200", status)
			}
		}
		w.answerAfter(general, mention.TS, mention.TS)
	})
	t.Run("RetryAnsweredOnce", func(t *testing.T) {
		if status, _ := w.slack.PostHTTP(endpoint, slacktest.Secret, mention, 1, time.Now()); status != http.StatusOK {
			t.Fatalf("status=%d, want 200", status)
		}
		w.mention(slacktest.Post{User: bob, Channel: random, Text: "ping"})
		if got := len(w.charges(alice)); got != 1 {
			t.Fatalf("charges=%d, want 1", got)
		}
	})
	t.Run("SlashCommand", func(t *testing.T) {
		w.slack.Slash(alice, general, "balance", "")
		w.eventually("alice sees her balance", func() bool { return seenEphemeral(w, alice, "*Balance:*") })
	})
}

// TestNoEventHandledAfterWait: in http mode the endpoint can outlive Run
// (Slack posts the bot's own messages back to it whenever it likes), so an
// event may arrive while or after the adapter is waited for. Once Wait has
// returned, nothing reaches the handler any more: what the caller closes
// next (the engine, the ledger) is never used again, and Wait never races
// a dispatch (the CI flake of TestHTTPMode under -race).
func TestNoEventHandledAfterWait(t *testing.T) {
	var mu sync.Mutex
	handled := 0
	w := newWorld(t, func(s *setup) {
		s.http = true
		s.handler = func(w *world) bot.Handler {
			return handlerFunc(func(ctx context.Context, ev bot.Event, out bot.Output) error {
				mu.Lock()
				handled++
				mu.Unlock()
				return nil
			})
		}
	})
	w.adapter.Wait()
	_, mention := w.slack.MentionEvents(slacktest.Post{User: alice, Channel: general, Text: "too late"})
	if status, _ := w.slack.PostHTTP(w.endpoint, slacktest.Secret, mention, 0, time.Now()); status != http.StatusOK {
		t.Fatalf("status=%d, want 200 (Slack is still acknowledged)", status)
	}
	w.adapter.Wait() // counts whatever the post dispatched
	mu.Lock()
	defer mu.Unlock()
	if handled != 0 {
		t.Fatalf("the handler ran %d times for an event that arrived after Wait", handled)
	}
}

func TestModelTextNeverPings(t *testing.T) {
	w := newWorld(t)
	// What a user types as <!channel> reaches the app escaped, like this.
	_, answer := w.mention(slacktest.Post{User: alice, Channel: general, Text: "Repeat after me: &lt;!channel&gt; &lt;!here&gt; &lt;@UBOB&gt; &amp; done"})
	if final := w.final(answer.TS); !strings.Contains(final.Text, "<!channel> <!here> <@UBOB> & done") {
		t.Fatalf("the model did not echo the mass mention, the test proves nothing: %q", final.Text)
	}
	raw := string(answer.Blocks) + answer.Text
	for _, ping := range []string{"<!channel>", "<!here>", "<@UBOB>"} {
		if strings.Contains(raw, ping) {
			t.Errorf("the answer contains %s unescaped", ping)
		}
	}
	if !strings.Contains(answer.Visible(), "&lt;!channel&gt; &lt;!here&gt; &lt;@UBOB&gt; &amp; done") {
		t.Fatalf("the answer does not show the escaped text:\n%s", answer.Visible())
	}
}

func TestPrivateCommands(t *testing.T) {
	w := newWorld(t)

	t.Run("BalanceIsEphemeral", func(t *testing.T) {
		w.slack.Slash(alice, general, "balance", "")
		w.eventually("alice sees her balance", func() bool { return seenEphemeral(w, alice, "*Balance:* 15,000 tokens") })
		if n := len(w.slack.BotMessages(general)); n != 0 {
			t.Fatalf("the channel got %d public messages", n)
		}
		for _, s := range w.slack.Seen(bob) {
			if strings.Contains(s, "Balance") {
				t.Fatalf("bob sees alice's balance: %q", s)
			}
		}
	})
	t.Run("NonAdminTopUpRefused", func(t *testing.T) {
		w.slack.Slash(bob, general, "balance", "")
		w.eventually("bob has an account", func() bool { return seenEphemeral(w, bob, "*Balance:*") })
		w.slack.Slash(alice, general, "topup", "<@UBOB|bob> 500 a gift")
		w.eventually("alice is refused", func() bool { return seenEphemeral(w, alice, "can use /topup") })
		if got := w.balance(bob).Balance; got != 15000 {
			t.Fatalf("bob's balance=%d, want 15000", got)
		}
	})
	t.Run("AdminTopUpOnceEvenIfRedelivered", func(t *testing.T) {
		d := w.slack.Slash(admin, general, "topup", "<@UBOB|bob> 500 a gift")
		w.eventually("the admin sees the top-up", func() bool { return seenEphemeral(w, admin, "Added 500 tokens to slack:T0FAKE:UBOB") })
		w.slack.Redeliver(d)
		w.slack.Slash(admin, general, "balance", "")
		w.eventually("the admin's next command is answered", func() bool { return seenEphemeral(w, admin, "*Balance:*") })
		if got := w.balance(bob).Balance; got != 15500 {
			t.Fatalf("bob's balance=%d, want 15500", got)
		}
	})
	t.Run("ChannelTheBotIsNotInUsesTheResponseURL", func(t *testing.T) {
		w.slack.Outside("GSECRET")
		w.slack.Slash(alice, "GSECRET", "models", "gemini")
		w.eventually("the models list arrives through the response_url", func() bool {
			for _, r := range w.slack.Responses() {
				b, _ := json.Marshal(r.Body)
				if r.Body["response_type"] == "in_channel" && strings.Contains(string(b), "gemini") {
					return true
				}
			}
			return false
		})
	})
}

func TestWorkspacePacing(t *testing.T) {
	const perMinute = 600 // 10 a second, bursts of 5: fast enough for a test
	w := newWorld(t, func(s *setup) {
		s.opts.UpdatesPerMinute = perMinute
		s.sim.TokensPerSecond = 300
	})
	w.slack.Echo(false)
	users := []string{alice, bob, admin, "UCAROL"}
	var wg sync.WaitGroup
	answers := make([]slacktest.Message, len(users))
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, answers[i] = w.mention(slacktest.Post{User: u, Channel: general, Text: "Tell me about pacing, part " + u})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	var at []time.Time
	for _, c := range w.slack.Calls("chat.update") {
		at = append(at, c.At)
	}
	if len(at) < 8 {
		t.Fatalf("only %d updates: the answers did not stream", len(at))
	}
	// A token bucket of rate r and burst b allows at most b + r×W calls in
	// any window W (one more for the gap between deciding and arriving).
	const window = time.Second
	limit := 5 + perMinute/60 + 1
	for i := range at {
		n := 0
		for _, t2 := range at[i:] {
			if t2.Sub(at[i]) < window {
				n++
			}
		}
		if n > limit {
			t.Fatalf("%d chat.update calls in the second after update %d, want at most %d", n, i, limit)
		}
	}
	for i, a := range answers {
		if final := w.final(a.TS); a.Visible() != slack.Mrkdwn(final.Text)+"\n"+final.Footer {
			t.Errorf("answer %d is not shown whole after pacing", i)
		}
	}
}

func TestRateLimitedUpdateWaitsRetryAfter(t *testing.T) {
	w := newWorld(t)
	w.slack.RateLimit("chat.update", 1, 1)
	_, answer := w.mention(slacktest.Post{User: alice, Channel: general, Text: "Say something long"})

	var limited time.Time
	for _, c := range w.slack.Calls("chat.update") {
		if c.Status == http.StatusTooManyRequests {
			limited = c.At
			continue
		}
		if !limited.IsZero() && c.At.Before(limited.Add(time.Second)) {
			t.Fatalf("chat.update at +%s after a 429 with Retry-After: 1", c.At.Sub(limited))
		}
	}
	if limited.IsZero() {
		t.Fatal("no update was rate limited")
	}
	if got := w.metrics.RateLimited.Load(); got != 1 {
		t.Fatalf("PlatformRateLimited counted %d, want 1", got)
	}
	if final := w.final(answer.TS); answer.Visible() != slack.Mrkdwn(final.Text)+"\n"+final.Footer {
		t.Fatalf("the answer is not shown whole after the 429")
	}
}

func TestAttachmentsDownloadedWithTheToken(t *testing.T) {
	w := newWorld(t)
	f := w.slack.AddFile("notes.txt", "text/plain", []byte("The secret word is pelican."))
	w.mention(slacktest.Post{User: alice, Channel: general, Text: "What is the secret word?", Files: []slackapi.File{f}})
	reqs := w.simRequests()
	last := reqs[len(reqs)-1].Messages
	if got := last[len(last)-1].Content; !strings.Contains(got, "The secret word is pelican.") {
		t.Fatalf("the model did not get the file: %q", got)
	}
}

// TestAttachmentRedirectOffSlackRefused: a file whose download redirects
// off Slack (here to a server on 127.0.0.1) is not fetched: the model gets
// a note instead of what the other server holds.
func TestAttachmentRedirectOffSlackRefused(t *testing.T) {
	var hits atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "internal secret: swordfish")
	}))
	t.Cleanup(inside.Close)
	w := newWorld(t)
	f := w.slack.AddFileRedirect("notes.txt", "text/plain", inside.URL+"/secret.txt")
	w.mention(slacktest.Post{User: alice, Channel: general, Text: "What does the file say?", Files: []slackapi.File{f}})
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect off Slack was followed (%d requests to the other server)", n)
	}
	reqs := w.simRequests()
	last := reqs[len(reqs)-1].Messages
	if got := last[len(last)-1].Content; strings.Contains(got, "swordfish") {
		t.Fatalf("the model got the other server's file: %q", got)
	}
	var shown []string
	for _, m := range append(w.slack.BotMessages(general), w.slack.Ephemerals(alice)...) {
		shown = append(shown, m.Visible())
	}
	if all := strings.Join(shown, "\n"); !strings.Contains(all, "Slack sent it from somewhere else, which I do not follow.") {
		t.Fatalf("nothing says why the file was left out:\n%s", all)
	}
}

func TestPrivateStreamedMessagePostedOnceFinished(t *testing.T) {
	w := newWorld(t, func(s *setup) {
		s.handler = func(w *world) bot.Handler {
			return handlerFunc(func(ctx context.Context, ev bot.Event, out bot.Output) error {
				id, err := out.Post(ctx, bot.Message{Kind: bot.KindReply, Status: bot.StatusStreaming, Private: true, Text: "thinking"})
				if err != nil {
					return err
				}
				if err := out.Edit(ctx, id, bot.Message{Kind: bot.KindReply, Status: bot.StatusStreaming, Private: true, Text: "thinking harder"}); err != nil {
					return err
				}
				return out.Edit(ctx, id, bot.Message{Kind: bot.KindReply, Status: bot.StatusDone, Private: true, Text: "the answer", Footer: "model · charged 1"})
			})
		}
	})
	w.slack.Mention(slacktest.Post{User: alice, Channel: general, Text: "psst"})
	w.eventually("alice sees the finished private answer", func() bool { return seenEphemeral(w, alice, "the answer") })
	if got := len(w.slack.Ephemerals(alice)); got != 1 {
		t.Fatalf("alice got %d ephemeral messages, want 1 (the finished one)", got)
	}
	if got := len(w.slack.BotMessages(general)); got != 0 {
		t.Fatalf("%d public messages for a private answer", got)
	}
}

func TestCommandNamesConfigurable(t *testing.T) {
	w := newWorld(t, func(s *setup) { s.opts.CommandNames = map[string]string{"balance": "/orchat-balance"} })
	w.slack.Slash(alice, general, "orchat-balance", "")
	w.eventually("alice sees her balance", func() bool { return seenEphemeral(w, alice, "*Balance:*") })
}

func TestSecretsStayOutOfErrors(t *testing.T) {
	h := handlerFunc(func(context.Context, bot.Event, bot.Output) error { return nil })
	t.Run("New", func(t *testing.T) {
		_, err := slack.New(slack.Options{BotToken: "xoxp-user-token-SECRET1", AppToken: "xapp-SECRET2", Handler: h})
		if err == nil || strings.Contains(err.Error(), "SECRET1") {
			t.Fatalf("err=%v: want a refusal that does not quote the token", err)
		}
	})
	t.Run("RefusedToken", func(t *testing.T) {
		fake := slacktest.MustStart(t, slacktest.Options{})
		logs := &stacktest.SyncBuffer{}
		a, err := slack.New(slack.Options{
			BotToken: "xoxb-wrong-SECRET3", AppToken: fake.AppToken, APIURL: fake.APIURL(), Handler: h,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		err = a.Run(context.Background())
		if err == nil || strings.Contains(err.Error(), "SECRET3") || strings.Contains(logs.String(), "SECRET3") {
			t.Fatalf("Run: err=%v; want a refusal that quotes no token", err)
		}
	})
	t.Run("RefusedAppToken", func(t *testing.T) {
		fake := slacktest.MustStart(t, slacktest.Options{})
		logs := &stacktest.SyncBuffer{}
		a, err := slack.New(slack.Options{
			BotToken: fake.BotToken, AppToken: "xapp-wrong-SECRET4", APIURL: fake.APIURL(), Handler: h,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		err = a.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") || strings.Contains(err.Error()+logs.String(), "SECRET4") {
			t.Fatalf("Run: err=%v; want a refusal naming SLACK_APP_TOKEN and quoting no token", err)
		}
	})
}

// A response_url lets anyone holding it post into the channel for 30
// minutes; net/http quotes the URL in its errors, so a post to it that
// fails (here: a reset connection) must not put it in the log.
func TestResponseURLNeverLogged(t *testing.T) {
	drop := &dropFirst{base: http.DefaultTransport, path: "/response/"}
	w := newWorld(t, func(s *setup) { s.opts.HTTPClient = &http.Client{Transport: drop} })
	w.slack.Outside("GSECRET")
	w.slack.Slash(alice, "GSECRET", "balance", "") // welcomes alice
	w.eventually("alice is welcomed", func() bool { return len(w.slack.Responses()) >= 2 })
	drop.arm()
	d := w.slack.Slash(alice, "GSECRET", "ask", "Why is the sky blue?")
	responseURL := d.Form.Get("response_url")
	w.eventually("the post of the answer to the response_url failed and was logged", func() bool {
		return drop.dropped() && strings.Contains(w.logs.String(), "connection reset by peer")
	})
	if responseURL == "" || strings.Contains(w.logs.String(), responseURL) {
		t.Fatalf("the log holds the response_url %q:\n%s", responseURL, w.logs.String())
	}
}

// dropFirst, once armed, fails the first request whose path holds path
// with a network error.
type dropFirst struct {
	base        http.RoundTripper
	path        string
	mu          sync.Mutex
	armed, done bool
}

func (d *dropFirst) arm() {
	d.mu.Lock()
	d.armed = true
	d.mu.Unlock()
}

func (d *dropFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	drop := d.armed && !d.done && strings.Contains(r.URL.Path, d.path)
	d.done = d.done || drop
	d.mu.Unlock()
	if drop {
		return nil, errors.New("connection reset by peer")
	}
	return d.base.RoundTrip(r)
}

func (d *dropFirst) dropped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// seenEphemeral reports whether user was shown an ephemeral message
// containing text.
func seenEphemeral(w *world, user, text string) bool {
	for _, m := range w.slack.Ephemerals(user) {
		if strings.Contains(m.Visible(), text) {
			return true
		}
	}
	return false
}

type handlerFunc func(ctx context.Context, ev bot.Event, out bot.Output) error

func (f handlerFunc) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	return f(ctx, ev, out)
}

func TestReconnectsWhenSlackAsks(t *testing.T) {
	w := newWorld(t)
	w.slack.Disconnect()
	w.eventually("the app opens a new connection", func() bool { return w.slack.Connections() == 2 })
	w.mention(slacktest.Post{User: alice, Channel: general, Text: "Still there?"})
	if !w.adapter.Connected() {
		t.Fatal("Connected()=false after the reconnection")
	}
}
