package console

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/charmbracelet/glamour"
	"github.com/mattn/go-runewidth"
	"github.com/muesli/termenv"
)

// markdown renders the Markdown models write (and /help, /balance) for a
// terminal with glamour: bold, lists, headings, code blocks with their
// syntax colours, tables.
type markdown struct {
	mu    sync.Mutex // a TermRenderer is not safe for concurrent use
	r     *glamour.TermRenderer
	width int
}

// newMarkdown returns a renderer wrapping at width columns in style (a
// glamour style name such as "dark", "light" or "notty", or a style file;
// "" is "dark"). The style is never asked of the terminal: that query
// would read the answer from stdin, where the user's lines are.
func newMarkdown(style string, width int) (*markdown, error) {
	if style == "" {
		style = "dark"
	}
	if width <= 0 {
		width = 80
	}
	r, err := glamour.NewTermRenderer(
		glamour.WithStylePath(style),
		glamour.WithWordWrap(max(width-4, 20)), // glamour's own margin of two on each side
		glamour.WithColorProfile(termenv.ANSI256),
		// A line break shows as one, as on Discord and Slack (and in /help).
		glamour.WithPreservedNewLines(),
	)
	if err != nil {
		return nil, fmt.Errorf("console: markdown style %q: %w", style, err)
	}
	return &markdown{r: r, width: width}, nil
}

// render returns md rendered for the terminal without the blank lines
// glamour puts around it, ending in a newline; the text as written if
// glamour fails on it.
func (m *markdown) render(md string) string {
	m.mu.Lock()
	out, err := m.r.Render(md)
	m.mu.Unlock()
	if err != nil {
		out = md
	}
	lines := strings.Split(out, "\n")
	for len(lines) > 0 && blank(lines[0]) {
		lines = lines[1:]
	}
	for len(lines) > 0 && blank(lines[len(lines)-1]) {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n") + "\n"
}

var sgrRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

// blank reports whether a rendered line shows nothing but spaces.
func blank(line string) bool { return strings.TrimSpace(sgrRe.ReplaceAllString(line, "")) == "" }

// live is one answer streaming on a terminal with Markdown. Finished
// blocks (paragraphs, lists, code blocks: what ends at a blank line
// outside a code fence) are printed rendered as soon as they are complete;
// the block still arriving is shown raw below them and replaced by its
// rendering when it completes. Only the raw block is ever erased, so
// erasing stays on screen: a raw block taller than the screen is
// rendered at its last line break (a code fence is closed there and
// opened again after).
type live struct {
	done  int    // bytes of the text printed rendered
	shown int    // bytes after done printed raw
	rows  int    // terminal rows the raw part takes, the cursor on the last
	fence string // the fence line open at done, opened again for the rest
}

// update brings the terminal from what st showed to text; final renders
// the rest. The text only grows between calls (a streamed answer).
func (st *live) update(w io.Writer, md *markdown, height int, text string, final bool) {
	if len(text) < st.done+st.shown {
		st.erase(w)
		st.shown = 0
		if len(text) < st.done {
			st.done = len(text)
		}
	}
	if final {
		st.commit(w, md, text, len(text), "")
		return
	}
	if b, ok := lastBlockEnd(text, st.done, st.fence); ok {
		st.commit(w, md, text, b, "")
		io.WriteString(w, "\n") // the blank line between two blocks
	}
	io.WriteString(w, text[st.done+st.shown:])
	st.shown = len(text) - st.done
	st.rows = rows(text[st.done:], md.width)
	if maxRows := max(height-2, 3); st.rows > maxRows {
		// Taller than the screen: render up to the last line break.
		if i := strings.LastIndexByte(text[st.done:], '\n'); i >= 0 {
			cut := st.done + i + 1
			st.commit(w, md, text, cut, fenceAt(text[st.done:cut], st.fence))
			io.WriteString(w, text[st.done:])
			st.shown = len(text) - st.done
			st.rows = rows(text[st.done:], md.width)
		}
	}
}

// commit erases the raw part and prints text[st.done:end] rendered; open
// is the code fence still open at end ("" for none), closed for this
// rendering and opened again for the next.
func (st *live) commit(w io.Writer, md *markdown, text string, end int, open string) {
	st.erase(w)
	chunk := text[st.done:end]
	if st.fence != "" {
		chunk = st.fence + "\n" + chunk
	}
	if open != "" {
		chunk += "\n" + strings.Repeat(open[:1], 3) + "\n"
	}
	if strings.TrimSpace(chunk) != "" {
		io.WriteString(w, md.render(chunk))
	}
	st.done, st.shown, st.rows, st.fence = end, 0, 0, open
}

// erase removes the raw part from the terminal: back to its first row,
// then clear to the end of the screen.
func (st *live) erase(w io.Writer) {
	if st.shown == 0 {
		return
	}
	io.WriteString(w, "\r")
	if st.rows > 1 {
		fmt.Fprintf(w, "\x1b[%dA", st.rows-1)
	}
	io.WriteString(w, "\x1b[J")
	st.shown, st.rows = 0, 0
}

// lastBlockEnd returns the end of the last complete block of text after
// from: just past a blank line outside a code fence (fence is the one open
// at from).
func lastBlockEnd(text string, from int, fence string) (int, bool) {
	end, found := 0, false
	pos := from
	for {
		i := strings.IndexByte(text[pos:], '\n')
		if i < 0 {
			return end, found
		}
		line := text[pos : pos+i]
		pos += i + 1
		fence = nextFence(line, fence)
		if fence == "" && strings.TrimSpace(line) == "" && pos-from > 1 {
			end, found = pos, true
		}
	}
}

// fenceAt returns the code fence line still open at the end of s, given
// the one open at its start.
func fenceAt(s, fence string) string {
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasSuffix(line, "\n") {
			fence = nextFence(strings.TrimSuffix(line, "\n"), fence)
		}
	}
	return fence
}

// nextFence is the fence open after line: line opens one (``` or ~~~,
// with an info string), closes the one open, or leaves it as it was.
func nextFence(line, open string) string {
	t := strings.TrimSpace(line)
	if open == "" {
		for _, m := range []string{"```", "~~~"} {
			if strings.HasPrefix(t, m) {
				return t
			}
		}
		return ""
	}
	if m := open[:3]; strings.HasPrefix(t, m) && strings.Trim(t, m[:1]) == "" {
		return ""
	}
	return open
}

// rows counts the terminal rows s takes from the start of a row at width
// columns, wide characters and tab stops included, the cursor on the last.
func rows(s string, width int) int {
	if width <= 0 {
		width = 80
	}
	n, col := 1, 0
	for _, r := range s {
		switch {
		case r == '\n':
			n, col = n+1, 0
		case r == '\t':
			col = min((col/8+1)*8, width)
		default:
			w := runewidth.RuneWidth(r)
			if col+w > width {
				n, col = n+1, 0
			}
			col += w
		}
	}
	return n
}
