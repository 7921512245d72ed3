package bot

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// DefaultTextLimit is the message length used when an Output does not say
// (Discord's 2,000 characters, the smallest of the platforms).
const DefaultTextLimit = 2000

// Reply is the engine's side of an answer: commands write to it, it paces and
// splits what they write into a platform's posts and edits. Update may be
// called for every token; the platform sees at most one edit per message per
// edit interval, each carrying the latest text.
type Reply struct {
	out      Output
	ctx      context.Context
	interval time.Duration
	limit    int
	private  bool
	log      *slog.Logger

	mu sync.Mutex
	// pending renders the latest state not yet flushed. Rendering (split,
	// clean) happens at flush time, at most once per interval: an answer
	// streamed in a million tiny deltas costs a million cheap Updates,
	// not a million renderings of the whole text.
	pending func() []Message
	dirty   bool
	running bool // a pacing loop is running
	done    bool
	kick    chan struct{}
	stop    chan struct{}
	last    time.Time // when the last flush ended
	wg      sync.WaitGroup
	// urgent: the pending rendering holds the answer's first text, which
	// is flushed without waiting out the interval; textShown: it was.
	urgent, textShown bool

	// posted is touched only by the single flusher: the pacing loop, or
	// Finish after the loop has stopped.
	posted []posted
	err    error
}

type posted struct {
	id  string
	msg Message
}

// NewReply returns a Reply writing to out. interval is the least time
// between two edits of one message (0: one second); private marks every
// message as visible only to the asking user.
func NewReply(ctx context.Context, out Output, interval time.Duration, private bool, log *slog.Logger) *Reply {
	limits := Limits{Text: DefaultTextLimit}
	if l, ok := out.(Limiter); ok {
		limits = l.Limits()
		if limits.Text <= 0 {
			limits.Text = DefaultTextLimit
		}
		if limits.EditInterval > 0 {
			interval = limits.EditInterval
		}
	}
	if interval <= 0 {
		interval = time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reply{
		out: out, ctx: context.WithoutCancel(ctx), interval: interval, limit: limits.Text,
		private: private, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}),
	}
}

// Private reports whether the reply is shown only to the asking user.
func (r *Reply) Private() bool { return r.private }

// Limit returns the platform's text limit per message.
func (r *Reply) Limit() int { return r.limit }

// Typing shows the platform's typing indicator, where it has one.
func (r *Reply) Typing(ctx context.Context) {
	if t, ok := r.out.(Typer); ok {
		if err := t.Typing(ctx); err != nil {
			r.log.Debug("typing indicator failed", "err", err)
		}
	}
}

// Update sets the streamed answer so far (the whole text, not a delta).
func (r *Reply) Update(text string) {
	r.mu.Lock()
	if text != "" && !r.textShown {
		// The answer's first text is shown at once, not an interval after
		// the thinking placeholder: the member waits for the model, not
		// for the pace.
		r.urgent = true
	}
	r.mu.Unlock()
	r.set(func() []Message { return r.renderText(KindReply, StatusStreaming, text, "", nil) })
}

// ThinkingText is what a reply shows while the model thinks and has
// written no answer yet.
const ThinkingText = "💭 Thinking…"

// Think shows that the model is thinking: words counts the thinking so
// far (0 when the model does not show it), so the user sees it move.
func (r *Reply) Think(words int) {
	text := ThinkingText
	if words > 0 {
		text = fmt.Sprintf("%s (%s %s so far)", ThinkingText, FormatTokens(int64(words)), Plural(words, "word", "words"))
	}
	r.set(func() []Message {
		msgs := r.renderText(KindReply, StatusStreaming, text, "", nil)
		msgs[0].Thinking = true
		return msgs
	})
}

// Answer is a finished answer with everything it may carry beside its
// text.
type Answer struct {
	Text   string
	Footer string
	Meta   *ReplyMeta
	// Reasoning is the thinking to show out of the way ("" for none).
	Reasoning string
	Citations []Citation
	Files     []File
}

// FinishAnswer ends the streamed answer: its text split over as many
// messages as the platform needs, the last one carrying the footer, the
// citations, the thinking and the files.
func (r *Reply) FinishAnswer(a Answer) error {
	msgs := r.renderText(KindReply, StatusDone, a.Text, a.Footer, a.Meta)
	last := &msgs[len(msgs)-1]
	last.Reasoning, last.Citations, last.Files = a.Reasoning, a.Citations, a.Files
	return r.finish(msgs)
}

// UpdateCompare sets the compare panels so far. The caller may change v's
// panels once it returns.
func (r *Reply) UpdateCompare(v CompareView) {
	c := v
	c.Panels = append([]Panel(nil), v.Panels...)
	r.set(func() []Message { return []Message{r.renderCompare(StatusStreaming, c)} })
}

// Finish ends the streamed answer with its final text and footer. It waits
// for pending edits and returns the first error the platform reported for
// the final rendering; an earlier edit that failed is retried by it, and
// only logged.
func (r *Reply) Finish(text, footer string, meta *ReplyMeta) error {
	return r.finish(r.renderText(KindReply, StatusDone, text, footer, meta))
}

// Fail ends the streamed answer as failed: the partial text (if any) stays,
// followed by the note explaining what happened.
func (r *Reply) Fail(partial, note, footer string, meta *ReplyMeta) error {
	text := note
	if partial != "" {
		text = partial + "\n\n⚠️ " + note
	}
	return r.finish(r.renderText(KindReply, StatusFailed, text, footer, meta))
}

// FinishCompare ends a compare with its final panels and vote choices;
// files (the images the models made) are uploaded with it.
func (r *Reply) FinishCompare(v CompareView, files ...File) error {
	m := r.renderCompare(StatusDone, v)
	m.Files = files
	return r.finish([]Message{m})
}

// Send posts a complete message (command output, a notice, an error) apart
// from the streamed answer, split over several messages when it is long.
func (r *Reply) Send(m Message) error {
	if m.Kind == "" {
		m.Kind = KindNotice
	}
	if m.Status == "" {
		m.Status = StatusDone
	}
	m.Private = m.Private || r.private
	m.Footer = StripBidi(m.Footer)
	var first error
	for i, part := range Split(StripBidi(m.Text), r.limit) {
		p := m
		p.Text, p.Part = part, i
		if i > 0 {
			p.Compare = nil
		}
		if _, err := r.out.Post(r.ctx, p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Notice posts a short notice.
func (r *Reply) Notice(text string) error {
	return r.Send(Message{Kind: KindNotice, Text: text})
}

// renderText and renderCompare drop bidi overrides from everything shown:
// whatever a model wrote, no platform shows text reordered by them.
func (r *Reply) renderText(kind Kind, status Status, text, footer string, meta *ReplyMeta) []Message {
	parts := Split(StripBidi(text), r.limit)
	msgs := make([]Message, len(parts))
	for i, p := range parts {
		msgs[i] = Message{Kind: kind, Status: StatusDone, Text: p, Part: i, Private: r.private}
	}
	last := &msgs[len(msgs)-1]
	last.Status, last.Footer, last.Meta = status, StripBidi(footer), meta
	return msgs
}

func (r *Reply) renderCompare(status Status, v CompareView) Message {
	c := v
	c.Panels = append([]Panel(nil), v.Panels...)
	for i := range c.Panels {
		p := &c.Panels[i]
		p.Text, p.Error = StripBidi(p.Text), StripBidi(p.Error)
	}
	c.Footer = StripBidi(c.Footer)
	c.Choices = append([]string(nil), v.Choices...)
	if v.Tally != nil {
		c.Tally = Tally{}
		for k, n := range v.Tally {
			c.Tally[k] = n
		}
	}
	return Message{Kind: KindCompare, Status: status, Compare: &c, Private: r.private}
}

// set records how to render the latest state and makes sure a pacing loop
// will flush it.
func (r *Reply) set(render func() []Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.pending, r.dirty = render, true
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.loop()
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop flushes the latest rendering at most once per interval, and exits
// when there is nothing left to flush.
func (r *Reply) loop() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if r.done || !r.dirty {
			r.running = false
			r.mu.Unlock()
			return
		}
		wait := time.Until(r.last.Add(r.interval))
		if r.urgent {
			wait = 0
		}
		r.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.kick:
				// New text came: look again (the first text goes out at once).
				t.Stop()
				continue
			case <-r.stop:
				t.Stop()
				r.mu.Lock()
				r.running = false
				r.mu.Unlock()
				return
			}
		}
		r.mu.Lock()
		if r.done {
			r.running = false
			r.mu.Unlock()
			return
		}
		render := r.pending
		r.dirty = false
		if r.urgent {
			r.urgent, r.textShown = false, true
		}
		r.mu.Unlock()

		r.flush(render())

		r.mu.Lock()
		r.last = time.Now()
		r.mu.Unlock()
	}
}

// finish stops the pacing loop and flushes the final rendering. The final
// edit of a message waits out the rest of its interval, so the platform's
// pace holds to the end.
func (r *Reply) finish(msgs []Message) error {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return r.err
	}
	r.done = true
	close(r.stop)
	r.mu.Unlock()
	r.wg.Wait()

	if len(r.posted) > 0 {
		if wait := time.Until(r.last.Add(r.interval)); wait > 0 {
			time.Sleep(wait)
		}
	}
	// The final flush re-sends whatever an earlier failure left stale, so
	// only its errors say what the user ends up seeing.
	r.err = nil
	r.flush(msgs)
	return r.err
}

// flush brings the platform in line with msgs: edits the messages whose
// content changed and posts the new ones.
func (r *Reply) flush(msgs []Message) {
	for i, m := range msgs {
		if i < len(r.posted) {
			if reflect.DeepEqual(r.posted[i].msg, m) {
				continue
			}
			if err := r.out.Edit(r.ctx, r.posted[i].id, m); err != nil {
				r.fail(err)
				continue
			}
			r.posted[i].msg = m
			continue
		}
		id, err := r.out.Post(r.ctx, m)
		if err != nil {
			r.fail(err)
			return
		}
		r.posted = append(r.posted, posted{id: id, msg: m})
	}
}

func (r *Reply) fail(err error) {
	r.log.Warn("platform rejected a reply update", "err", err)
	if r.err == nil {
		r.err = err
	}
}
