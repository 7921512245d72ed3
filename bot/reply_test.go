package bot_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// recorder is an Output that keeps every post and edit with its time.
type recorder struct {
	mu     sync.Mutex
	limit  int
	pace   time.Duration
	msgs   map[string]bot.Message
	order  []string
	edits  map[string][]time.Time
	posts  int
	failOn int // fail the n-th edit (1-based); 0 never
	nEdits int
}

func newRecorder(limit int, pace time.Duration) *recorder {
	return &recorder{limit: limit, pace: pace, msgs: map[string]bot.Message{}, edits: map[string][]time.Time{}}
}

func (r *recorder) Limits() bot.Limits { return bot.Limits{Text: r.limit, EditInterval: r.pace} }

func (r *recorder) Post(_ context.Context, m bot.Message) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	id := fmt.Sprintf("m%d", r.posts)
	r.msgs[id] = m
	r.order = append(r.order, id)
	r.edits[id] = append(r.edits[id], time.Now())
	return id, nil
}

func (r *recorder) Edit(_ context.Context, id string, m bot.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nEdits++
	if r.nEdits == r.failOn {
		return bot.Errorf(bot.EUNAVAILABLE, "edit refused")
	}
	r.msgs[id] = m
	r.edits[id] = append(r.edits[id], time.Now())
	return nil
}

// await polls cond (under the recorder's lock) until it holds.
func (r *recorder) await(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("gave up waiting for the platform writes")
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, id := range r.order {
		b.WriteString(r.msgs[id].Text)
	}
	return b.String()
}

func TestReply(t *testing.T) {
	t.Run("UpdatesAreCoalescedAndPaced", func(t *testing.T) {
		out := newRecorder(2000, 20*time.Millisecond)
		r := bot.NewReply(context.Background(), out, 0, false, nil)
		text := ""
		for i := 0; i < 500; i++ {
			text += "token "
			r.Update(text)
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if err := r.Finish(text, "footer", nil); err != nil {
			t.Fatal(err)
		}
		writes := 0
		for id, times := range out.edits {
			writes += len(times)
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap < 20*time.Millisecond {
					t.Fatalf("message %s edited twice within %v (limit one per 20ms)", id, gap)
				}
			}
		}
		if writes >= 100 {
			t.Fatalf("%d platform writes for 500 updates: updates were not coalesced", writes)
		}
		if got := out.text(); got != text {
			t.Fatalf("final text differs: %d bytes, want %d", len(got), len(text))
		}
		last := out.msgs[out.order[len(out.order)-1]]
		if last.Status != bot.StatusDone || last.Footer != "footer" {
			t.Fatalf("last message status=%s footer=%q, want done with footer", last.Status, last.Footer)
		}
	})

	t.Run("FirstTextAfterThinkingShownAtOnce", func(t *testing.T) {
		// A minute's pace: the old loop showed the answer's first text a
		// minute after the thinking placeholder.
		out := newRecorder(2000, time.Minute)
		r := bot.NewReply(context.Background(), out, 0, false, nil)
		r.Think(0)
		out.await(t, func() bool { return out.posts == 1 })
		r.Update("The first words")
		out.await(t, func() bool { return out.msgs["m1"].Text == "The first words" })
		r.Update("The first words and more")
		time.Sleep(20 * time.Millisecond)
		out.mu.Lock()
		later := out.msgs["m1"].Text
		out.mu.Unlock()
		if later != "The first words" {
			t.Fatalf("a later update went out at once too (%q): only the first text skips the pace", later)
		}
		// The reply is left paced a minute out; its loop ends with the test binary.
	})

	t.Run("LongAnswerSpreadsOverMessages", func(t *testing.T) {
		out := newRecorder(2000, time.Millisecond)
		r := bot.NewReply(context.Background(), out, 0, false, nil)
		text := strings.Repeat("a long answer ", 650) // 9,100 characters
		for i := 100; i < len(text); i += 700 {
			r.Update(text[:i])
		}
		if err := r.Finish(text, "f", nil); err != nil {
			t.Fatal(err)
		}
		if len(out.order) < 5 {
			t.Fatalf("%d messages for 9,100 characters at 2,000 each", len(out.order))
		}
		if got := out.text(); got != text {
			t.Fatalf("text was not delivered whole")
		}
		for i, id := range out.order {
			m := out.msgs[id]
			if m.Part != i {
				t.Fatalf("message %d has part %d", i, m.Part)
			}
			if m.Status != bot.StatusDone {
				t.Fatalf("message %d status %s after finish", i, m.Status)
			}
			if i < len(out.order)-1 && m.Footer != "" {
				t.Fatalf("footer on a message that is not the last")
			}
		}
	})

	t.Run("FailKeepsPartialTextWithNote", func(t *testing.T) {
		out := newRecorder(2000, time.Millisecond)
		r := bot.NewReply(context.Background(), out, 0, true, nil)
		r.Update("The first part")
		if err := r.Fail("The first part", "The model stopped answering.", "", nil); err != nil {
			t.Fatal(err)
		}
		m := out.msgs[out.order[len(out.order)-1]]
		if m.Status != bot.StatusFailed || !strings.Contains(m.Text, "The first part") || !strings.Contains(m.Text, "stopped answering") {
			t.Fatalf("got %+v", m)
		}
		if !m.Private {
			t.Fatal("private reply posted publicly")
		}
	})

	t.Run("RecoveredEditErrorIsNotReported", func(t *testing.T) {
		// One edit refused mid-stream (a transient 500): the final edit
		// still lands, so the answer is whole and Finish has nothing to
		// report (the engine would otherwise apologise under it).
		out := newRecorder(2000, time.Millisecond)
		out.failOn = 1
		r := bot.NewReply(context.Background(), out, 0, false, nil)
		r.Update("a")
		out.await(t, func() bool { return out.posts == 1 })
		r.Update("ab")
		out.await(t, func() bool { return out.nEdits == 1 })
		if err := r.Finish("abc", "", nil); err != nil {
			t.Fatalf("Finish err=%v, want nil: the final edit landed", err)
		}
		if got := out.text(); got != "abc" {
			t.Fatalf("final text %q, want abc", got)
		}
	})

	t.Run("FinalEditErrorIsReported", func(t *testing.T) {
		out := newRecorder(2000, time.Millisecond)
		out.failOn = 1
		r := bot.NewReply(context.Background(), out, 0, false, nil)
		r.Update("a")
		out.await(t, func() bool { return out.posts == 1 })
		err := r.Finish("abc", "", nil)
		if bot.ErrorCode(err) != bot.EUNAVAILABLE {
			t.Fatalf("Finish err=%v, want the platform's error", err)
		}
	})
}

// TestReplyDropsBidiOverrides: a right-to-left override in a model's
// answer would show "invoice\u202Efdp.exe" as "invoiceexe.pdf" on any
// platform; every message a reply writes (answers, notices, compares) is
// free of them, while right-to-left text and its marks stay.
func TestReplyDropsBidiOverrides(t *testing.T) {
	const in = "open invoice\u202efdp.exe\u202c, \u2067isolated\u2069 and \u05e9\u05dc\u05d5\u05dd\u200f"
	const want = "open invoicefdp.exe, isolated and \u05e9\u05dc\u05d5\u05dd\u200f"
	rec := newRecorder(2000, time.Millisecond)
	ctx := context.Background()
	r := bot.NewReply(ctx, rec, 0, false, nil)
	r.Update(in)
	if err := r.Finish(in, "footer \u202e1", nil); err != nil {
		t.Fatal(err)
	}
	if err := bot.NewReply(ctx, rec, 0, false, nil).Notice(in); err != nil {
		t.Fatal(err)
	}
	if err := bot.NewReply(ctx, rec, 0, false, nil).FinishCompare(bot.CompareView{ID: "c1",
		Panels: []bot.Panel{{Label: "A", Text: in, Status: bot.StatusDone}, {Label: "B", Error: in, Status: bot.StatusFailed}},
		Footer: "compare \u202d1"}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var texts []string
	for _, id := range rec.order {
		m := rec.msgs[id]
		texts = append(texts, m.Text, m.Footer)
		if c := m.Compare; c != nil {
			texts = append(texts, c.Footer)
			for _, p := range c.Panels {
				texts = append(texts, p.Text, p.Error)
			}
		}
	}
	found := 0
	for _, s := range texts {
		if strings.ContainsFunc(s, bot.IsBidiOverride) {
			t.Errorf("a message holds a bidi override: %q", s)
		}
		if s == want {
			found++
		}
	}
	if found != 4 {
		t.Errorf("want the answer, the notice and both panels as %q, found %d of them in %q", want, found, texts)
	}
}

// BenchmarkReplyUpdate streams a 512 KiB answer (the longest the router
// lets through) in 64-byte deltas into a Discord-sized output. Rendering
// (splitting into 2,000-character messages, cleaning) happens once per
// edit interval, not once per delta, so a delta costs the same at the end
// of a long answer as at its start.
func BenchmarkReplyUpdate(b *testing.B) {
	const size, delta = 512 << 10, 64
	piece := strings.Repeat("word ", delta/5) + "\n"
	for b.Loop() {
		rec := newRecorder(2000, 20*time.Millisecond)
		r := bot.NewReply(context.Background(), rec, 0, false, nil)
		var text strings.Builder
		for text.Len() < size {
			text.WriteString(piece)
			r.Update(text.String())
		}
		if err := r.Finish(text.String(), "", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size/len(piece)), "ns/delta")
}
