package stack_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack/stacktest"
)

// event is one console event from ann in the "test" channel, continuing
// turns when given.
func event(id, text string, turns ...bot.Turn) bot.Event {
	ev := bot.Event{ID: id, Platform: bot.PlatformConsole, Identity: "console:ann", Community: "console", Channel: "test", Text: text, Direct: true}
	if len(turns) > 0 {
		ev.History = bot.HistoryFunc(func(context.Context, bot.HistoryLimit) ([]bot.Turn, error) { return turns, nil })
	}
	return ev
}

func handle(t *testing.T, st *stacktest.Stack, ev bot.Event) *messages {
	t.Helper()
	out := &messages{}
	if err := st.Engine.Handle(context.Background(), ev, out); err != nil {
		t.Logf("Handle: %v", err)
	}
	return out
}

func charges(t *testing.T, st *stacktest.Stack, id bot.Identity) (n int, tokens int64) {
	t.Helper()
	rows, err := st.Store.History(context.Background(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rows {
		if e.Kind == bot.EntryCharge {
			n++
			tokens += -e.Amount
		}
	}
	return n, tokens
}

// requests records what the simulator was asked.
type requests struct {
	mu   sync.Mutex
	list []*openroutertest.Request
}

func (r *requests) record(f *openroutertest.Fault) func(*openroutertest.Request) *openroutertest.Fault {
	return func(req *openroutertest.Request) *openroutertest.Fault {
		r.mu.Lock()
		r.list = append(r.list, req)
		r.mu.Unlock()
		return f
	}
}

func (r *requests) last() *openroutertest.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.list[len(r.list)-1]
}

// A stream cut while the model was still thinking has billed its thinking
// upstream: the user is charged exactly that (from /generation), not
// nothing, and never above the hold.
func TestCutWhileThinkingIsCharged(t *testing.T) {
	st := stacktest.MustOpen(t, stacktest.Options{Sim: openroutertest.Options{Faults: map[string]openroutertest.Fault{
		"openai/o4-mini": {Truncate: true, AfterChunks: 3},
	}}})
	out := handle(t, st, event("e1", "/ask model:openai/o4-mini effort:high Prove that there are infinitely many primes."))
	n, got := charges(t, st, "console:ann")
	want := st.Router.Config().Billing.FromUSD(st.Sim.Stats().PartialUSD)
	if n != 1 || got != want || got <= 0 {
		t.Fatalf("%d charges of %d tokens, want one of %d (what the cut thinking cost)\n%s", n, got, want, out.text())
	}
	if !strings.Contains(out.text(), "still thinking") {
		t.Errorf("the reply does not say the model was cut off while thinking:\n%s", out.text())
	}
}

// When the host's OpenRouter key has no credit left, a user is told before
// any call, and nothing is held or charged; an admin's /credits shows it.
func TestHostCreditsOut(t *testing.T) {
	zero := 0.0
	st := stacktest.MustOpen(t, stacktest.Options{Sim: openroutertest.Options{KeyLimit: &zero}, Admins: []bot.Identity{"console:ann"}})
	if _, err := st.Router.RefreshCredits(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := handle(t, st, event("e1", "hello"))
	if !strings.Contains(out.text(), "credits are used up") {
		t.Fatalf("the user was not told the host's credits are out:\n%s", out.text())
	}
	if st.Sim.Requests() != 0 {
		t.Fatalf("%d calls upstream with no credit left", st.Sim.Requests())
	}
	if n, _ := charges(t, st, "console:ann"); n != 0 {
		t.Fatalf("%d charges", n)
	}
	if c := handle(t, st, event("e2", "/credits")).text(); !strings.Contains(c, "$0.0000 left of a $0.00 limit") || !strings.Contains(c, "out") {
		t.Fatalf("/credits says:\n%s", c)
	}
}

func pngBytes() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2)))
	return b.Bytes()
}

// Images of earlier turns go to a vision model, and are left out, with a
// note, for a text-only one.
func TestHistoryImages(t *testing.T) {
	var seen requests
	st := stacktest.MustOpen(t, stacktest.Options{Sim: openroutertest.Options{FaultFunc: seen.record(nil)}})
	img := bot.Attachment{Name: "cat.png", ContentType: "image/png", Size: 100,
		Fetch: func(context.Context, int64) ([]byte, error) { return pngBytes(), nil }}
	turns := []bot.Turn{{Role: bot.RoleUser, Text: "look at my cat", Attachments: []bot.Attachment{img}}, {Role: bot.RoleAssistant, Text: "A fine cat."}}

	handle(t, st, event("e1", "/ask model:google/gemini-2.5-flash what colour was it?", turns...))
	if r := seen.last(); len(r.Messages) < 2 || len(r.Messages[1].Images) != 1 || !strings.HasPrefix(r.Messages[1].Images[0], "data:image/png;base64,") {
		t.Fatalf("the vision model did not get the earlier image: %+v", r.Messages)
	}
	out := handle(t, st, event("e2", "/ask model:mistralai/mistral-nemo what colour was it?", turns...))
	for _, m := range seen.last().Messages {
		if len(m.Images) > 0 {
			t.Fatal("a text-only model was sent an image")
		}
	}
	if !strings.Contains(out.text(), "1 image of earlier messages left out") {
		t.Fatalf("the reply does not say the image was left out:\n%s", out.text())
	}
}

// A reasoning model's reasoning_details go back with its answer's turn
// when the conversation continues.
func TestReasoningDetailsKept(t *testing.T) {
	var seen requests
	st := stacktest.MustOpen(t, stacktest.Options{Sim: openroutertest.Options{FaultFunc: seen.record(nil)}})
	first := handle(t, st, event("e1", "/ask model:openai/o4-mini effort:low what is 2+2?"))
	if !strings.Contains(first.text(), "simulated openai/o4-mini") {
		t.Fatalf("no answer:\n%s", first.text())
	}
	turns := []bot.Turn{{Role: bot.RoleUser, Text: "what is 2+2?"}, {Role: bot.RoleAssistant, Text: "4"}}
	handle(t, st, event("e2", "/ask model:openai/o4-mini effort:low and times 3?", turns...))
	if body := string(seen.last().Body); !strings.Contains(body, `"reasoning_details":[{`) {
		t.Fatalf("the second request did not carry the first answer's reasoning_details:\n%s", body)
	}
}

// A model that caches only at breakpoints gets them on a long prefix; the
// second time the prefix is read from the cache, which the footer shows
// and the (discounted) charge reflects.
func TestPromptCaching(t *testing.T) {
	st := stacktest.MustOpen(t, stacktest.Options{})
	long := strings.Repeat("The ledger is append-only and every balance is the sum of its rows. ", 80)
	turns := []bot.Turn{{Role: bot.RoleUser, Text: long}, {Role: bot.RoleAssistant, Text: "Understood."}}
	handle(t, st, event("e1", "/ask model:anthropic/claude-haiku-4.5 summarise", turns...))
	_, first := charges(t, st, "console:ann")
	out := handle(t, st, event("e2", "/ask model:anthropic/claude-haiku-4.5 summarise", turns...))
	_, both := charges(t, st, "console:ann")
	if !strings.Contains(out.text(), "cached") {
		t.Fatalf("the footer does not show cached tokens:\n%s", out.text())
	}
	if second := both - first; second >= first {
		t.Fatalf("the cached call cost %d, the first %d: the cache discount was not charged", second, first)
	}
}
