package stacktest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
)

// Seen is one bot message as a user sees it in the end (its last edit).
type Seen struct {
	// Text is everything visible in the message: body, compare panels,
	// error notes, in the platform's own formatting.
	Text   string
	Footer string
	// Private: only the user sees it (ephemeral, or a DM).
	Private bool
	// Buttons are the labels of the message's buttons (vote buttons).
	Buttons []string
	// Files are the files uploaded with the message (images, thinking).
	Files []File
}

// File is a file a user sends or the bot uploads.
type File struct {
	Name string
	Data []byte
}

// Harness drives one platform adapter through its fake platform. Every
// action returns the messages the bot sent in answer, once the answer is
// complete (Stack.Handler.Await tells when).
type Harness interface {
	// Start connects the adapter to its fake platform, handing every event
	// to st.Handler. It is called once, before any action.
	Start(t *testing.T, st *Stack)
	// Identity is the identity the platform gives a named person: "alice",
	// "bob", "admin".
	Identity(user string) bot.Identity
	// Mention sends text from user as a message to the bot (a mention in a
	// channel, a line in the console).
	Mention(t *testing.T, user, text string) []Seen
	// Command runs a slash command with options by name.
	Command(t *testing.T, user, name string, options map[string]string) []Seen
	// Vote clicks a compare's vote button (choice "A".."D" or "tie").
	Vote(t *testing.T, user, compareID, choice string) []Seen
	// Community is the community the harness's people talk in
	// ("discord:<guild id>", "slack:<team id>", "console").
	Community() string
	// CommunityAdmin is a person the platform itself makes an admin of
	// that community (Discord: a member whose role has Manage Server;
	// Slack: a workspace admin); on the console, whose community admins
	// are the host's, it is "admin".
	CommunityAdmin() string
	// Attach sends text from user with files attached, as Mention does.
	Attach(t *testing.T, user, text string, files ...File) []Seen
}

// PDF is a small real PDF whose one page says text.
func PDF(text string) []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
		"3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n4 0 obj << >> stream\nBT /F1 12 Tf (" + text + ") Tj ET\nendstream endobj\n%%EOF\n")
}

// Patient is a Harness whose platform lets a request over the rate limit
// wait its turn (bot.Patient: the console) instead of refusing it.
type Patient interface {
	Harness
	WaitsItsTurn()
}

// Run runs every behaviour on fresh harnesses from newHarness, each on its
// own stack.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	start := func(t *testing.T, opts Options) (Harness, *Stack) {
		h := newHarness(t)
		opts.Admins = append(opts.Admins, h.Identity("admin"))
		opts.Sim.TokensPerSecond = 2000
		st := MustOpen(t, opts)
		h.Start(t, st)
		return h, st
	}

	runCommunities(t, start)

	t.Run("AskStreamsAnAnswerWithFooter", func(t *testing.T) {
		h, st := start(t, Options{})
		seen := h.Mention(t, "alice", "hello there")
		if !anyText(seen, "15,000 free tokens") {
			t.Errorf("a first-time user was not told about the free tokens: %+v", seen)
		}
		answer := find(t, seen, "simulated")
		bal := st.Balance(t, h.Identity("alice"))
		if bal >= 15000 {
			t.Fatalf("balance %d after a paid answer", bal)
		}
		for _, want := range []string{"charged " + bot.FormatTokens(15000-bal), "balance " + bot.FormatTokens(bal), " in / "} {
			if !strings.Contains(answer.Footer+answer.Text, want) {
				t.Errorf("footer %q lacks %q", answer.Footer, want)
			}
		}
	})

	t.Run("WelcomeIsQuiet", func(t *testing.T) {
		// 60 new members each ask once in the shared channel: the channel
		// gets 60 posts (the answers), not 120; each member is told about
		// the free tokens where only they see it (privately, or in their
		// answer's footer).
		h, _ := start(t, Options{})
		const members = 60
		public := 0
		for i := 0; i < members; i++ {
			seen := h.Mention(t, fmt.Sprintf("newcomer%02d", i), "hello there")
			welcomed := false
			for _, s := range seen {
				switch {
				case !s.Private && strings.Contains(s.Text, "Welcome to orchat"):
					t.Fatalf("member %d was welcomed in public:\n%s", i, dump(seen))
				case strings.Contains(s.Text+"\n"+s.Footer, "15,000 free tokens"):
					welcomed = true
				}
				if !s.Private {
					public++
				}
			}
			if !welcomed {
				t.Fatalf("member %d was not told about the free tokens:\n%s", i, dump(seen))
			}
		}
		if public != members {
			t.Fatalf("%d new members' mentions made %d public posts, want %d", members, public, members)
		}
	})

	t.Run("BalanceIsPrivate", func(t *testing.T) {
		h, st := start(t, Options{})
		h.Mention(t, "alice", "hi")
		seen := h.Command(t, "alice", "balance", nil)
		m := find(t, seen, "Balance")
		if !m.Private {
			t.Fatalf("/balance was shown publicly: %+v", m)
		}
		if want := bot.FormatTokens(st.Balance(t, h.Identity("alice"))); !strings.Contains(m.Text, want) {
			t.Fatalf("/balance says %q, want the ledger's %s", m.Text, want)
		}
	})

	t.Run("CompareWithOneFailingModel", func(t *testing.T) {
		h, st := start(t, Options{Sim: openroutertest.Options{Faults: map[string]openroutertest.Fault{"openai/gpt-5-mini": {Status: 502}}}})
		seen := h.Command(t, "bob", "compare", map[string]string{
			"prompt": "Write a haiku about the sea", "models": "google/gemini-2.5-flash,openai/gpt-5-mini,deepseek/deepseek-v3.2"})
		cmp := find(t, seen, "A · google/gemini-2.5-flash")
		for _, want := range []string{"openai/gpt-5-mini", "deepseek/deepseek-v3.2", "simulated"} {
			if !strings.Contains(cmp.Text, want) {
				t.Errorf("compare lacks %q:\n%s", want, cmp.Text)
			}
		}
		if !strings.Contains(strings.ToLower(cmp.Text+cmp.Footer), "fail") && !strings.Contains(strings.ToLower(cmp.Text), "unavailable") {
			t.Errorf("the failing model's panel does not say it failed:\n%s", cmp.Text)
		}
		if len(cmp.Buttons) < 3 {
			t.Fatalf("vote buttons %v, want the two answers and a tie", cmp.Buttons)
		}
		id := regexp.MustCompile(`\bc[0-9a-f]{8}\b`).FindString(cmp.Text + " " + cmp.Footer)
		if id == "" {
			t.Fatalf("no compare id shown: %q %q", cmp.Text, cmp.Footer)
		}
		ok := h.Vote(t, "alice", id, "A")
		if m := find(t, ok, "Your vote for A"); !m.Private {
			t.Errorf("the vote confirmation was public: %+v", m)
		}
		again := h.Vote(t, "alice", id, "C")
		if !anyText(again, "already") {
			t.Fatalf("a second vote was not refused: %+v", again)
		}
		// The failed panel has no button, and a typed vote for it is
		// refused with the reason.
		failed := h.Vote(t, "carol", id, "B")
		if !anyText(failed, "Answer B (openai/gpt-5-mini) failed") {
			t.Fatalf("a vote for the failed panel was not refused with the reason: %+v", failed)
		}
		pairs, err := st.Store.Pairs(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if n := countVotes(pairs); n == 0 {
			t.Fatal("the vote was not recorded")
		}
		for _, e := range history(t, st, h.Identity("bob")) {
			if e.Kind == bot.EntryCharge && strings.HasPrefix(e.Model, "openai/gpt-5-mini") && e.Amount != 0 {
				t.Fatalf("the failed model was charged: %+v", e)
			}
		}
	})

	t.Run("FreeModelWhenBalanceIsEmpty", func(t *testing.T) {
		h, st := start(t, Options{})
		h.Mention(t, "alice", "hi")
		bal := st.Balance(t, h.Identity("alice"))
		h.Command(t, "admin", "deduct", map[string]string{"user": string(h.Identity("alice")), "amount": fmt.Sprint(bal)})
		if got := st.Balance(t, h.Identity("alice")); got != 0 {
			t.Fatalf("balance %d after deducting everything", got)
		}
		answer := find(t, h.Mention(t, "alice", "tell me a joke"), "simulated")
		if all := answer.Footer + answer.Text; !strings.Contains(all, ":free") || !strings.Contains(all, "left today") || !strings.Contains(all, "balance can't cover") {
			t.Fatalf("an empty balance did not fall back to a free model, or did not say so: %q", answer.Footer)
		}
	})

	t.Run("AdminTopUpAndNonAdminRefused", func(t *testing.T) {
		h, st := start(t, Options{})
		h.Mention(t, "bob", "hi")
		before := st.Balance(t, h.Identity("bob"))
		refused := h.Command(t, "alice", "topup", map[string]string{"user": string(h.Identity("bob")), "amount": "500"})
		if !anyText(refused, "can use /topup") {
			t.Fatalf("a non-admin top-up was not refused: %+v", refused)
		}
		done := h.Command(t, "admin", "topup", map[string]string{"user": string(h.Identity("bob")), "amount": "500"})
		if m := find(t, done, "Added 500"); !m.Private {
			t.Errorf("the admin's confirmation was public: %+v", m)
		}
		if got, want := st.Balance(t, h.Identity("bob")), before+500; got != want {
			t.Fatalf("bob's balance=%d, want %d", got, want)
		}
	})

	t.Run("RateLimitSaysWhenToRetry", func(t *testing.T) {
		if _, ok := newHarness(t).(Patient); ok {
			// The console waits instead: the third request is answered.
			h, _ := start(t, Options{Limit: bot.RateLimit{PerMinute: 600, Burst: 2}})
			h.Command(t, "alice", "help", nil)
			h.Command(t, "alice", "help", nil)
			seen := h.Command(t, "alice", "help", nil)
			if anyText(seen, "Try again in") || !anyText(seen, "/balance") {
				t.Fatalf("the third request in a burst of 2 did not wait its turn: %+v", seen)
			}
			return
		}
		h, _ := start(t, Options{Limit: bot.RateLimit{PerMinute: 1, Burst: 2}})
		h.Command(t, "alice", "help", nil)
		h.Command(t, "alice", "help", nil)
		seen := h.Command(t, "alice", "help", nil)
		if !anyText(seen, "Try again in") {
			t.Fatalf("the third request in a burst of 2 was not refused with a wait: %+v", seen)
		}
	})

	t.Run("ReasoningShownOutOfTheWay", func(t *testing.T) {
		h, st := start(t, Options{})
		seen := h.Command(t, "alice", "ask", map[string]string{"prompt": "Why is the sky blue?", "model": "openai/o4-mini", "effort": "high"})
		answer := find(t, seen, "simulated openai/o4-mini")
		if !strings.Contains(answer.Footer+answer.Text, "thinking") {
			t.Errorf("the footer does not count the thinking tokens: %q", answer.Footer)
		}
		if !anyText(seen, "First, work out what is really being asked") && !anyFile(seen, "thinking", "work out what is really being asked") {
			t.Fatalf("the thinking is not available after the answer:\n%s", dump(seen))
		}
		if strings.HasPrefix(answer.Text, "The user asks") {
			t.Errorf("the thinking is in the way, before the answer: %q", answer.Text)
		}
		if bal := st.Balance(t, h.Identity("alice")); bal >= 15000 {
			t.Errorf("a reasoning answer was not charged: balance %d", bal)
		}
	})

	t.Run("ThinkingStarvedCapSaidOutLoud", func(t *testing.T) {
		h, st := start(t, Options{})
		h.Mention(t, "alice", "hi")
		before := st.Balance(t, h.Identity("alice"))
		// xhigh thinks for more than the reasoning cap: no answer is left,
		// which is said, and the thinking billed is charged.
		seen := h.Command(t, "alice", "ask", map[string]string{"prompt": "Prove Fermat's last theorem", "model": "openai/o4-mini", "effort": "max"})
		if !anyText(seen, "token limit") {
			t.Fatalf("a cap used up by thinking was not said out loud:\n%s", dump(seen))
		}
		if st.Balance(t, h.Identity("alice")) >= before {
			t.Errorf("thinking that was billed upstream was not charged")
		}
	})

	t.Run("WebCitationsRendered", func(t *testing.T) {
		// A newcomer's tokens cover a search (three results, 12,000 tokens).
		h, _ := start(t, Options{})
		seen := h.Command(t, "alice", "ask", map[string]string{"prompt": "What happened in Lisbon today?", "model": "google/gemini-2.5-flash", "web": "on"})
		answer := find(t, seen, "simulated google/gemini-2.5-flash")
		all := answer.Text + "\n" + answer.Footer
		for _, want := range []string{"example.org/simulated/what-happened-in-lisbon-today-1", "Simulated source 1", "web search"} {
			if !strings.Contains(all, want) {
				t.Errorf("the answer lacks %q:\n%s", want, all)
			}
		}
	})

	t.Run("ImagineUploadsAnImage", func(t *testing.T) {
		h, st := start(t, Options{})
		seen := h.Command(t, "bob", "imagine", map[string]string{"prompt": "a lighthouse at dusk"})
		var png []byte
		for _, s := range seen {
			for _, f := range s.Files {
				if strings.HasSuffix(f.Name, ".png") {
					png = f.Data
				}
			}
		}
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatalf("no PNG was uploaded:\n%s", dump(seen))
		}
		if bal := st.Balance(t, h.Identity("bob")); bal >= 15000 {
			t.Errorf("the image was not charged: balance %d", bal)
		}
	})

	t.Run("PDFRead", func(t *testing.T) {
		h, _ := start(t, Options{})
		seen := h.Attach(t, "alice", "summarise this", File{Name: "report.pdf", Data: PDF("Revenue rose 12 percent")})
		answer := find(t, seen, "I read report.pdf")
		if !strings.Contains(answer.Text, "Revenue rose 12 percent") {
			t.Fatalf("the PDF's text did not reach the model: %q", answer.Text)
		}
	})

	t.Run("RefusalSaidOutLoud", func(t *testing.T) {
		h, _ := start(t, Options{})
		seen := h.Mention(t, "alice", "please [refuse] this")
		if !anyText(seen, "declined: I can't help with that") {
			t.Fatalf("the refusal was not shown as the model's:\n%s", dump(seen))
		}
	})

	t.Run("BadInputGetsClearMessages", func(t *testing.T) {
		h, st := start(t, Options{})
		for _, tt := range []struct {
			name string
			do   func() []Seen
			want string
		}{
			{"UnknownCommand", func() []Seen { return h.Mention(t, "alice", "/blance") }, "Did you mean /balance"},
			{"UnknownModel", func() []Seen { return h.Command(t, "alice", "model", map[string]string{"id": "nope/not-a-model"}) }, "Unknown model"},
			{"CompareOneModel", func() []Seen {
				return h.Command(t, "alice", "compare", map[string]string{"prompt": "hi", "models": "google/gemini-2.5-flash"})
			}, "2 to 4 models"},
			{"CompareDuplicates", func() []Seen {
				return h.Command(t, "alice", "compare", map[string]string{"prompt": "hi", "models": "openai/gpt-5-mini,openai/gpt-5-mini"})
			}, "listed twice"},
			{"VoteUnknownCompare", func() []Seen { return h.Mention(t, "alice", "/vote cdeadbeef A") }, "compare"},
			{"NegativeTopUp", func() []Seen {
				return h.Command(t, "admin", "topup", map[string]string{"user": string(h.Identity("alice")), "amount": "-5"})
			}, "positive"},
			{"TopUpMalformedUser", func() []Seen {
				return h.Command(t, "admin", "topup", map[string]string{"user": "discord:", "amount": "5"})
			}, "not a Discord user"},
			{"UsageDays", func() []Seen { return h.Command(t, "alice", "usage", map[string]string{"days": "abc"}) }, "Days must be"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if seen := tt.do(); !anyText(seen, tt.want) {
					t.Fatalf("got %+v, want a message with %q", seen, tt.want)
				}
			})
		}
		if got := st.Balance(t, h.Identity("alice")); got != 15000 {
			t.Fatalf("bad input changed the balance to %d", got)
		}
	})
}

// anyFile reports whether a file whose name contains name holds sub.
func anyFile(seen []Seen, name, sub string) bool {
	for _, s := range seen {
		for _, f := range s.Files {
			if strings.Contains(f.Name, name) && strings.Contains(string(f.Data), sub) {
				return true
			}
		}
	}
	return false
}

func anyText(seen []Seen, sub string) bool {
	for _, s := range seen {
		if strings.Contains(s.Text+"\n"+s.Footer, sub) {
			return true
		}
	}
	return false
}

// find returns the first message containing sub, failing the test if none.
func find(t *testing.T, seen []Seen, sub string) Seen {
	t.Helper()
	for _, s := range seen {
		if strings.Contains(s.Text+"\n"+s.Footer, sub) {
			return s
		}
	}
	t.Fatalf("no message contains %q; the bot sent %d:\n%s", sub, len(seen), dump(seen))
	return Seen{}
}

func dump(seen []Seen) string {
	var b strings.Builder
	for i, s := range seen {
		var files []string
		for _, f := range s.Files {
			files = append(files, fmt.Sprintf("%s (%d bytes)", f.Name, len(f.Data)))
		}
		fmt.Fprintf(&b, "#%d private=%v buttons=%v files=%v\n%s\n-- %s\n", i, s.Private, s.Buttons, files, s.Text, s.Footer)
	}
	return b.String()
}

func history(t *testing.T, st *Stack, id bot.Identity) []bot.Entry {
	t.Helper()
	rows, err := st.Store.History(context.Background(), id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func countVotes(pairs []bot.PairRecord) int {
	n := 0
	for _, p := range pairs {
		n += p.AWins + p.BWins + p.Ties
	}
	return n
}
