package commands_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack"
	"github.com/orchat/orchat/stack/stacktest"
)

// finals keeps the last version of every message an answer posts.
type finals struct {
	mu   sync.Mutex
	msgs map[string]bot.Message
	n    int
}

func (o *finals) Post(_ context.Context, m bot.Message) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	id := string(rune('a' + o.n))
	if o.msgs == nil {
		o.msgs = map[string]bot.Message{}
	}
	o.msgs[id] = m
	return id, nil
}

func (o *finals) Edit(_ context.Context, id string, m bot.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs[id] = m
	return nil
}

// answer returns the finished answer (a reply with a footer).
func (o *finals) answer(t *testing.T) bot.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.msgs {
		if m.Kind == bot.KindReply && m.Footer != "" {
			return m
		}
	}
	t.Fatalf("no finished answer among %d messages", len(o.msgs))
	return bot.Message{}
}

// fullDisk fails the commit of every settle while it is full, as a disk
// with no space left does, and counts the settles it failed.
type fullDisk struct {
	full   atomic.Bool
	failed atomic.Int32
}

func (d *fullDisk) hook(op string) error {
	if op == "settle" && d.full.Load() {
		d.failed.Add(1)
		return bot.Errorf(bot.EUNAVAILABLE, "The ledger's disk is full; nothing was charged.")
	}
	return nil
}

// settleWorld is a stack whose disk fills up for settles, and the
// upstream's bill for each answer, in balance tokens.
func settleWorld(t *testing.T) (*stacktest.Stack, *fullDisk, func() int64) {
	t.Helper()
	disk := &fullDisk{}
	var mu sync.Mutex
	var billedUSD float64
	st := stacktest.MustOpen(t, stacktest.Options{
		Hooks: stack.Hooks{FailCommit: disk.hook},
		Sim: openroutertest.Options{OnServed: func(s openroutertest.Served) {
			mu.Lock()
			billedUSD += s.BilledUSD
			mu.Unlock()
		}},
	})
	billed := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return bot.Billing{Mode: bot.BillingCost, USDPerToken: 0.000001}.FromUSD(billedUSD)
	}
	return st, disk, billed
}

// charges returns the user's charge rows, their sum, and the open holds.
func charges(t *testing.T, st *stacktest.Stack, id bot.Identity) (rows int, sum int64, held int64) {
	t.Helper()
	entries, err := st.Store.History(context.Background(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == bot.EntryCharge {
			rows++
			sum += -e.Amount
		}
	}
	b, err := st.Store.Balance(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rows, sum, b.Held
}

const ann bot.Identity = "console:ann"

// askAnn has ann ask a paid model one question and returns what she saw.
func askAnn(t *testing.T, st *stacktest.Stack) *finals {
	t.Helper()
	out := &finals{}
	if err := st.Engine.Handle(context.Background(), bot.Event{ID: "e1", Platform: bot.PlatformConsole, Identity: ann, Community: "console",
		Text: "/ask model:openai/gpt-5-mini What is a monad?"}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFailedSettleIsRetried: the disk is full when an answer's charge is
// written. The answer says its charge is pending (not "charged 0"), and
// once space is back the charge lands by itself: exactly what the upstream
// billed, once, with the hold closed and the ledger sound.
func TestFailedSettleIsRetried(t *testing.T) {
	st, disk, billed := settleWorld(t)
	st.Settler.First, st.Settler.Max = 10*time.Millisecond, 20*time.Millisecond
	disk.full.Store(true)
	out := askAnn(t, st)
	ans := out.answer(t)
	if !strings.Contains(ans.Footer, "charge pending") || strings.Contains(ans.Footer, "charged 0") || ans.Meta == nil || !ans.Meta.ChargePending {
		t.Fatalf("footer %q (meta %+v), want it to say the charge is pending", ans.Footer, ans.Meta)
	}
	for disk.failed.Load() < 3 {
		time.Sleep(5 * time.Millisecond) // the settle is retried while the disk stays full
	}
	disk.full.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for st.Settler.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pending settle never landed after space came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rows, sum, held := charges(t, st, ann)
	if want := billed(); rows != 1 || sum != want || want == 0 || held != 0 {
		t.Fatalf("charge rows=%d sum=%d held=%d, want one charge of the %d tokens billed and nothing held", rows, sum, held, want)
	}
	st.Verify(t)
}

// TestPendingSettleLandsAtShutdown: a settle still pending when the bot
// stops (its next retry far off) gets one more try in the drain.
func TestPendingSettleLandsAtShutdown(t *testing.T) {
	st, disk, billed := settleWorld(t)
	st.Settler.First = time.Hour
	disk.full.Store(true)
	askAnn(t, st)
	if rows, _, held := charges(t, st, ann); rows != 0 || held == 0 {
		t.Fatalf("charge rows=%d held=%d while the disk is full, want none and the hold open", rows, held)
	}
	disk.full.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Drain(ctx)
	rows, sum, held := charges(t, st, ann)
	if want := billed(); rows != 1 || sum != want || held != 0 {
		t.Fatalf("after the drain: charge rows=%d sum=%d held=%d, want one charge of the %d tokens billed and nothing held", rows, sum, held, want)
	}
}
