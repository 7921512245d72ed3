// Package console is the terminal adapter: each line on stdin is a mention
// (or, starting with "/", a slash command) from one user, and the bot's
// replies are printed as they stream. With JSON on, it prints one object per
// finished message, for scripts and end-to-end tests.
package console

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/orchat/orchat/bot"
)

// Options configure the console.
type Options struct {
	In   io.Reader
	Out  io.Writer
	User bot.Identity
	// JSON prints one JSON object per finished message instead of text.
	JSON bool
	// Live repaints a streaming answer as it arrives (for a terminal);
	// otherwise each message is printed once, finished.
	Live bool
	// Markdown renders answers, /help, /balance and the rest for a
	// terminal (bold, lists, code blocks), in MarkdownStyle (a glamour
	// style: "dark", the default, "light", "notty"…) wrapped at Width
	// columns; Height is the terminal's rows (a streamed block taller than
	// it is rendered at a line break). Off, and always with JSON, the text
	// is printed as written.
	Markdown      bool
	MarkdownStyle string
	Width, Height int
	// Parallel is how many lines may be answered at once (default 1: each
	// line waits for the one before, like a chat).
	Parallel int
	// MultiUser lets a line start with "name> " to speak as console:name
	// (for scripts and load tests); admin rights still come from `admins`.
	MultiUser bool
	// History is how many earlier turns of this session a new ask sees.
	History int
	// FilesDir is where files the bot sends (generated images) are saved
	// (default: orchat-files in the system's temporary folder).
	FilesDir string
	Logger   *slog.Logger
}

// Adapter is the console platform.
type Adapter struct {
	opts  Options
	run   string
	mu    sync.Mutex // guards out and the per-message print state
	seq   int
	turns map[bot.Identity][]bot.Turn
	// waited: the notice that lines wait their turn has been shown.
	waited bool
	md     *markdown // nil: plain text
}

// New returns a console adapter.
func New(opts Options) *Adapter {
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "console")
	}
	if opts.History == 0 {
		opts.History = 20
	}
	if opts.FilesDir == "" {
		opts.FilesDir = filepath.Join(os.TempDir(), "orchat-files")
	}
	if opts.Height <= 0 {
		opts.Height = 24
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	a := &Adapter{opts: opts, run: hex.EncodeToString(b[:]), turns: map[bot.Identity][]bot.Turn{}}
	if opts.Markdown && !opts.JSON {
		md, err := newMarkdown(opts.MarkdownStyle, opts.Width)
		if err != nil {
			opts.Logger.Warn("Markdown is shown as written", "err", err)
		} else {
			a.md = md
		}
	}
	return a
}

// Run reads lines until the input ends or ctx is cancelled, handing each to
// h. At the end of input it waits for every answer in flight. When ctx is
// cancelled (shutdown) it returns at once: answers in flight run on, on a
// context of their own, until the engine's drain lets them finish or cuts
// them off.
func (a *Adapter) Run(ctx context.Context, h bot.Handler) error {
	work := context.WithoutCancel(ctx)
	lines := make(chan inputLine)
	go func() {
		defer close(lines)
		err := readLines(a.opts.In, MaxLineBytes, func(l inputLine) bool {
			select {
			case lines <- l:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil {
			a.opts.Logger.Warn("reading input", "err", err)
		}
	}()
	sem := make(chan struct{}, a.opts.Parallel)
	var wg sync.WaitGroup
	for {
		var in inputLine
		var ok bool
		select {
		case in, ok = <-lines:
		case <-ctx.Done():
			return nil
		}
		line := in.text
		if !ok {
			// End of input: wait for the answers in flight, unless a
			// shutdown begins meanwhile (the engine's drain then decides).
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-ctx.Done():
			}
			return nil
		}
		if in.tooLong == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if in.tooLong > 0 {
				a.refuseLong(work, in.tooLong)
				return
			}
			a.handle(work, h, line)
		}()
	}
}

// MaxLineBytes bounds one line of input (4 MiB): a longer line is refused
// with a message, its bytes never held, and reading goes on.
const MaxLineBytes = 4 << 20

// inputLine is one line read: its text, or, for a line over the limit,
// its length.
type inputLine struct {
	text    string
	tooLong int64
}

// readLines reads r line by line (LF or CRLF, the last line with or
// without one) and hands each to yield until it returns false. A line over
// max bytes is handed as its length alone: the rest of it is read and
// dropped, and reading goes on with the next line.
func readLines(r io.Reader, max int, yield func(inputLine) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	var dropped int64 // >0 while skipping the rest of a line over max
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case dropped > 0:
			dropped += int64(len(chunk))
		case len(buf)+len(chunk) > max+2: // +2: the line ending
			dropped = int64(len(buf) + len(chunk))
			buf = buf[:0]
		default:
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' || err != nil {
			var l inputLine
			if dropped > 0 {
				l.tooLong = dropped
			} else {
				l.text = strings.TrimSuffix(strings.TrimSuffix(string(buf), "\n"), "\r")
			}
			if (l.tooLong > 0 || len(buf) > 0) && !yield(l) {
				return nil
			}
			buf, dropped = buf[:0], 0
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// refuseLong tells the user a line was over MaxLineBytes and not sent.
func (a *Adapter) refuseLong(ctx context.Context, n int64) {
	out := &output{a: a, user: a.opts.User}
	_, _ = out.Post(ctx, bot.Message{Kind: bot.KindError, Status: bot.StatusFailed, Text: fmt.Sprintf(
		"That line is %.1f MiB long, and a line may be up to 4 MiB, so it was not sent. Shorten it, or attach the text as a file (file://PATH).",
		float64(n)/(1<<20))})
}

// handle turns one line into an event and answers it.
func (a *Adapter) handle(ctx context.Context, h bot.Handler, line string) {
	user := a.opts.User
	if a.opts.MultiUser {
		// Only a valid name speaks as someone else: "what?> hi" is a
		// question, not a user the engine would refuse as malformed.
		if name, rest, ok := strings.Cut(line, "> "); ok && bot.Identity("console:"+name).Validate() == nil {
			user, line = bot.Identity("console:"+name), rest
		}
	}
	a.mu.Lock()
	a.seq++
	id := fmt.Sprintf("console:%s:%d", a.run, a.seq)
	history := append([]bot.Turn(nil), a.turns[user]...)
	a.mu.Unlock()

	text, atts, notes := attachments(line)
	ev := bot.Event{
		ID: id, Platform: bot.PlatformConsole, Identity: user, UserName: strings.TrimPrefix(string(user), "console:"),
		Community: "console", Channel: "terminal", Text: text, Direct: true, Attachments: atts, Time: time.Now(),
	}
	if !strings.HasPrefix(strings.TrimSpace(text), "/") && len(history) > 0 {
		ev.History = bot.HistoryFunc(func(context.Context, bot.HistoryLimit) ([]bot.Turn, error) { return history, nil })
	}
	out := &output{a: a, user: user, prompt: text}
	for _, n := range notes {
		_, _ = out.Post(ctx, bot.Message{Kind: bot.KindNotice, Status: bot.StatusDone, Private: true, Text: n})
	}
	if err := h.Handle(ctx, ev, out); err != nil {
		a.opts.Logger.Debug("event handled with an error", "event", id, "err", err)
	}
}

// remember keeps a finished ask and its answer as context for the next.
func (a *Adapter) remember(user bot.Identity, prompt, answer string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := append(a.turns[user],
		bot.Turn{Role: bot.RoleUser, Author: string(user), Text: prompt},
		bot.Turn{Role: bot.RoleAssistant, Text: answer})
	if len(t) > a.opts.History {
		t = t[len(t)-a.opts.History:]
	}
	a.turns[user] = t
}

// attachments takes words of the form file://PATH naming a readable file
// out of a line and returns them as attachments. A file:// word that names
// no file stays in the text, and a note says why it was not attached.
func attachments(line string) (string, []bot.Attachment, []string) {
	var atts []bot.Attachment
	var words, notes []string
	for _, w := range strings.Fields(line) {
		path, ok := strings.CutPrefix(w, "file://")
		if !ok {
			words = append(words, w)
			continue
		}
		st, err := os.Stat(path)
		if err != nil || st.IsDir() {
			switch {
			case err == nil:
				notes = append(notes, fmt.Sprintf("%s is a folder, not a file, so I sent %s as text. Attach files one by one.", path, w))
			case errors.Is(err, fs.ErrNotExist):
				notes = append(notes, fmt.Sprintf("There is no file at %s, so I sent %s as text.", path, w))
			default:
				notes = append(notes, fmt.Sprintf("I can't read %s (%v), so I sent %s as text.", path, errors.Unwrap(err), w))
			}
			words = append(words, w)
			continue
		}
		atts = append(atts, bot.Attachment{
			Name: st.Name(), Size: st.Size(), URL: w,
			Fetch: func(_ context.Context, max int64) ([]byte, error) {
				f, err := os.Open(path)
				if err != nil {
					return nil, fmt.Errorf("%s can't be read.", path)
				}
				defer f.Close()
				return io.ReadAll(io.LimitReader(f, max))
			},
		})
	}
	if len(atts) == 0 {
		return line, nil, notes
	}
	return strings.Join(words, " "), atts, notes
}

// output is the bot.Output of one event: it prints the bot's messages.
type output struct {
	a      *Adapter
	user   bot.Identity
	prompt string
	mu     sync.Mutex
	n      int
	shown  map[string]int // message id → runes of its text already printed
	// thinking: message id → "thinking" was printed.
	thinking map[string]bool
	live     map[string]*live // message id → what of it is on the terminal (Markdown)
}

var (
	_ bot.Limiter = (*output)(nil)
	_ bot.Patient = (*output)(nil)
)

// Waiting: in the console a line over the rate limit waits its turn (a
// script's lines come faster than anyone types, and none is dropped). A
// terminal is told once; a script's output stays its answers.
func (o *output) Waiting(wait time.Duration) {
	a := o.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waited || !a.opts.Live {
		return
	}
	a.waited = true
	fmt.Fprintf(a.opts.Out, "\x1b[2m(Lines are coming faster than the rate limit allows: each waits its turn, about %s now, and none is dropped.)\x1b[0m\n", bot.FormatWait(wait))
}

// Limits: a terminal takes any length, and repaints cheaply.
func (o *output) Limits() bot.Limits {
	return bot.Limits{Text: 1 << 30, EditInterval: 50 * time.Millisecond}
}

func (o *output) Post(_ context.Context, m bot.Message) (string, error) {
	o.mu.Lock()
	o.n++
	id := fmt.Sprint(o.n)
	o.mu.Unlock()
	o.show(id, m)
	return id, nil
}

func (o *output) Edit(_ context.Context, id string, m bot.Message) error {
	o.show(id, m)
	return nil
}

// show prints a message: live text as it grows, or the finished message.
// What a model or a user wrote is made inert first: it reaches a terminal.
func (o *output) show(id string, m bot.Message) {
	a := o.a
	if m.Status != bot.StatusStreaming && m.Kind == bot.KindReply && m.Status == bot.StatusDone {
		a.remember(o.user, o.prompt, m.Text)
	}
	m = inertMessage(m)
	var paths []string
	if m.Status != bot.StatusStreaming && len(m.Files) > 0 {
		paths = a.save(m.Files)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.opts.JSON {
		if m.Status != bot.StatusStreaming {
			writeJSON(a.opts.Out, m, paths)
		}
		return
	}
	if a.opts.Live && m.Kind == bot.KindReply && m.Thinking {
		// The thinking placeholder is said once, dimmed; the answer
		// streams in below it.
		o.mu.Lock()
		if o.thinking == nil {
			o.thinking = map[string]bool{}
		}
		if !o.thinking[id] {
			o.thinking[id] = true
			fmt.Fprintln(a.opts.Out, dim(bot.ThinkingText))
		}
		o.mu.Unlock()
		return
	}
	if a.opts.Live && m.Kind == bot.KindReply && a.md != nil {
		o.mu.Lock()
		if o.live == nil {
			o.live = map[string]*live{}
		}
		st := o.live[id]
		if st == nil {
			st = &live{}
			o.live[id] = st
		}
		o.mu.Unlock()
		final := m.Status != bot.StatusStreaming
		st.update(a.opts.Out, a.md, a.opts.Height, m.Text, final)
		if final {
			fmt.Fprint(a.opts.Out, extras(m, paths))
		}
		if final && m.Footer != "" {
			fmt.Fprintf(a.opts.Out, "\x1b[2m── %s\x1b[0m\n", m.Footer)
		}
		return
	}
	if a.opts.Live && m.Kind == bot.KindReply {
		o.mu.Lock()
		if o.shown == nil {
			o.shown = map[string]int{}
		}
		r := []rune(m.Text)
		done := o.shown[id]
		if done <= len(r) {
			fmt.Fprint(a.opts.Out, string(r[done:]))
			o.shown[id] = len(r)
		}
		o.mu.Unlock()
		if m.Status != bot.StatusStreaming {
			fmt.Fprintln(a.opts.Out)
			fmt.Fprint(a.opts.Out, extras(m, paths))
			if m.Footer != "" {
				fmt.Fprintf(a.opts.Out, "\x1b[2m── %s\x1b[0m\n", m.Footer)
			}
		}
		return
	}
	if m.Status == bot.StatusStreaming {
		return
	}
	fmt.Fprint(a.opts.Out, render(m, a.md, paths))
}

// dim writes s dimmed, the way a terminal shows what is out of the way.
func dim(s string) string { return "\x1b[2m" + s + "\x1b[0m" }

// extras writes a finished answer's thinking (dimmed), its sources and the
// files saved for it.
func extras(m bot.Message, paths []string) string {
	var b strings.Builder
	if m.Reasoning != "" {
		b.WriteString(dim("💭 "+strings.TrimSpace(m.Reasoning)) + "\n")
	}
	if fn := bot.Footnotes(m.Citations); len(fn) > 0 {
		b.WriteString("Sources:\n")
		for _, f := range fn {
			fmt.Fprintf(&b, "[%d] %s — %s\n", f.N, f.Title, f.URL)
		}
	}
	for _, p := range paths {
		b.WriteString("🖼️ saved " + p + "\n")
	}
	return b.String()
}

// save writes files the bot sent into FilesDir and returns their paths;
// one that cannot be written is logged and left out.
func (a *Adapter) save(files []bot.File) []string {
	if err := os.MkdirAll(a.opts.FilesDir, 0o755); err != nil {
		a.opts.Logger.Warn("cannot make the files folder", "dir", a.opts.FilesDir, "err", err)
		return nil
	}
	var out []string
	for _, f := range files {
		name := filepath.Base(f.Name)
		if name == "." || name == string(filepath.Separator) || name == "" {
			name = "file"
		}
		fh, err := os.CreateTemp(a.opts.FilesDir, "*-"+name)
		if err == nil {
			_, err = fh.Write(f.Data)
			if cerr := fh.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			a.opts.Logger.Warn("cannot save a file", "name", name, "err", err)
			continue
		}
		out = append(out, fh.Name())
	}
	return out
}

// render writes a finished message: as plain text, or with its Markdown
// rendered when md is set; paths are the files saved for it.
func render(m bot.Message, md *markdown, paths []string) string {
	body := func(s string) string { return s + "\n" }
	if md != nil {
		body = md.render
	}
	var b strings.Builder
	switch {
	case m.Kind == bot.KindCompare && m.Compare != nil:
		for _, p := range m.Compare.Panels {
			model := p.Model
			if p.Answered != "" && p.Answered != p.Model {
				model += " → " + p.Answered
			}
			fmt.Fprintf(&b, "── %s · %s · %s\n", p.Label, model, p.Summary())
			if p.Text != "" {
				b.WriteString(body(p.Text))
			}
			for _, f := range bot.Footnotes(p.Citations) {
				fmt.Fprintf(&b, "[%d] %s — %s\n", f.N, f.Title, f.URL)
			}
			if p.Error != "" {
				b.WriteString("⚠️ " + p.Error + "\n")
			}
		}
		for _, p := range paths {
			b.WriteString("🖼️ saved " + p + "\n")
		}
		if m.Compare.Footer != "" {
			b.WriteString("── " + m.Compare.Footer + "\n")
		}
		if len(m.Compare.Choices) > 0 {
			fmt.Fprintf(&b, "── vote for the best answer: /vote %s %s\n", m.Compare.ID, strings.Join(m.Compare.Choices, "|"))
		}
	case m.Kind == bot.KindError:
		b.WriteString("⚠️ " + m.Text + "\n")
	default:
		b.WriteString(body(m.Text))
		b.WriteString(extras(m, paths))
		if m.Footer != "" {
			b.WriteString("── " + m.Footer + "\n")
		}
	}
	return b.String()
}

// jsonMessage is the --json shape of one finished message.
type jsonMessage struct {
	Kind      string         `json:"kind"`
	Status    string         `json:"status"`
	Text      string         `json:"text"`
	Footer    string         `json:"footer,omitempty"`
	Private   bool           `json:"private,omitempty"`
	Model     string         `json:"model,omitempty"`
	Usage     *jsonUsage     `json:"usage,omitempty"`
	Charged   *int64         `json:"charged,omitempty"`
	Balance   *int64         `json:"balance,omitempty"`
	FreeLeft  *int           `json:"free_left,omitempty"`
	CompareID string         `json:"compare_id,omitempty"`
	Panels    []jsonPanel    `json:"panels,omitempty"`
	Choices   []string       `json:"choices,omitempty"`
	Tally     map[string]int `json:"tally,omitempty"`
	// The whole answer: its thinking, sources, saved images and how it
	// ended.
	Reasoning    string         `json:"reasoning,omitempty"`
	Citations    []jsonCitation `json:"citations,omitempty"`
	Images       []string       `json:"images,omitempty"`
	FinishReason string         `json:"finish_reason,omitempty"`

	// ChargePending: charged is not yet on the ledger (it is retried).
	ChargePending bool `json:"charge_pending,omitempty"`
}

type jsonCitation struct {
	URL   string `json:"url"`
	Title string `json:"title"`
}

type jsonUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	ReasoningTokens  int64 `json:"reasoning_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
}

type jsonPanel struct {
	Label            string  `json:"label"`
	Model            string  `json:"model"`
	Answered         string  `json:"answered,omitempty"`
	Status           string  `json:"status"`
	Text             string  `json:"text"`
	Error            string  `json:"error,omitempty"`
	TTFTMs           float64 `json:"ttft_ms"`
	LatencyMs        float64 `json:"latency_ms"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Charged          int64   `json:"charged"`
}

func writeJSON(w io.Writer, m bot.Message, images []string) {
	j := jsonMessage{Kind: string(m.Kind), Status: string(m.Status), Text: m.Text, Footer: m.Footer, Private: m.Private,
		Reasoning: m.Reasoning, Images: images}
	for _, f := range bot.Footnotes(m.Citations) {
		j.Citations = append(j.Citations, jsonCitation{URL: f.URL, Title: f.Title})
	}
	if mt := m.Meta; mt != nil {
		j.Model = mt.Model
		j.FinishReason = mt.FinishReason
		if mt.Model != "" {
			j.Usage = &jsonUsage{mt.PromptTokens, mt.CompletionTokens, mt.ReasoningTokens, mt.CachedTokens}
			j.Charged = &mt.Charged
			j.ChargePending = mt.ChargePending
		}
		j.Balance = &mt.Balance
		if mt.FreeLeft >= 0 {
			j.FreeLeft = &mt.FreeLeft
		}
	}
	if v := m.Vote; v != nil {
		j.CompareID, j.Tally = v.CompareID, v.Tally
	}
	if c := m.Compare; c != nil {
		j.CompareID, j.Choices, j.Tally, j.Footer = c.ID, c.Choices, c.Tally, c.Footer
		var charged int64
		for _, p := range c.Panels {
			charged += p.Charged
			j.Panels = append(j.Panels, jsonPanel{
				Label: p.Label, Model: p.Model, Answered: p.Answered, Status: string(p.Status), Text: p.Text, Error: p.Error,
				TTFTMs: ms(p.TTFT), LatencyMs: ms(p.Latency), PromptTokens: p.PromptTokens, CompletionTokens: p.CompletionTokens, Charged: p.Charged,
			})
		}
		j.Charged = &charged
	}
	b, err := json.Marshal(j)
	if err != nil {
		return
	}
	w.Write(append(b, '\n'))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
