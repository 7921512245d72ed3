package console_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
)

// screen is a small terminal: it applies what the console prints (text
// wrapped at its width, CR, LF, cursor up, clear to the end of the screen;
// colours ignored) and shows what a person would see.
type screen struct {
	width    int
	lines    [][]rune
	row, col int
}

var escRe = regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)

func (s *screen) Write(p []byte) (int, error) {
	in := string(p)
	for len(in) > 0 {
		if m := escRe.FindStringSubmatch(in); m != nil {
			in = in[len(m[0]):]
			switch m[2] {
			case "A":
				n, _ := strconv.Atoi(m[1])
				s.row = max(s.row-max(n, 1), 0)
			case "J":
				s.line()
				s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
				s.lines = s.lines[:s.row+1]
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(in)
		in = in[size:]
		switch r {
		case '\r':
			s.col = 0
		case '\n':
			s.row, s.col = s.row+1, 0
			s.line()
		default:
			w := runewidth.RuneWidth(r)
			if s.col+w > s.width {
				s.row, s.col = s.row+1, 0
			}
			s.line()
			for len(s.lines[s.row]) < s.col {
				s.lines[s.row] = append(s.lines[s.row], ' ')
			}
			s.lines[s.row] = append(s.lines[s.row][:s.col], r)
			s.col += max(w, 1)
		}
	}
	return len(p), nil
}

func (s *screen) line() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

func (s *screen) String() string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	return strings.Join(out, "\n")
}

// streamed is a handler that streams answer in pieces of n bytes, as a
// model does, through the output's posts and edits.
func streamed(answer string, n int) handlerFunc {
	return func(ctx context.Context, ev bot.Event, out bot.Output) error {
		id, err := out.Post(ctx, bot.Message{Kind: bot.KindReply, Status: bot.StatusStreaming, Text: answer[:min(n, len(answer))]})
		if err != nil {
			return err
		}
		for i := 2 * n; i < len(answer)+n; i += n {
			if err := out.Edit(ctx, id, bot.Message{Kind: bot.KindReply, Status: bot.StatusStreaming, Text: answer[:min(i, len(answer))]}); err != nil {
				return err
			}
		}
		return out.Edit(ctx, id, bot.Message{Kind: bot.KindReply, Status: bot.StatusDone, Text: answer, Footer: "some/model · charged 1"})
	}
}

const mdAnswer = "Here is **bold** and `code`.\n\n" +
	"## A heading\n\n" +
	"- one\n- two\n\n" +
	"```go\nfunc main() {\n\n\tprintln(\"hi\")\n}\n```\n\n" +
	"Done."

// TestMarkdownInATerminal: on a terminal an answer shows as Markdown
// rendered, while it streams and at the end, with nothing of the raw text
// left over; each piece of it appears once.
func TestMarkdownInATerminal(t *testing.T) {
	for _, piece := range []int{1, 7, 64, len(mdAnswer)} {
		t.Run(strconv.Itoa(piece), func(t *testing.T) {
			scr := &screen{width: 60}
			con := console.New(console.Options{In: strings.NewReader("hi\n"), Out: scr, User: "console:ann", Live: true, Markdown: true, Width: 60, Height: 40})
			if err := con.Run(context.Background(), streamed(mdAnswer, piece)); err != nil {
				t.Fatal(err)
			}
			got := scr.String()
			for _, raw := range []string{"**", "`code`", "```", "- one"} {
				if strings.Contains(got, raw) {
					t.Fatalf("the raw Markdown %q is on the screen:\n%s", raw, got)
				}
			}
			for _, want := range []string{"bold", " code ", "A heading", "• one", "• two", "func main() {", `println("hi")`, "Done.", "── some/model · charged 1"} {
				if c := strings.Count(got, want); c != 1 {
					t.Fatalf("%q is on the screen %d times, want once:\n%s", want, c, got)
				}
			}
		})
	}
}

// TestTallBlockInATerminal: a code block taller than the terminal is
// rendered as it streams (its raw part could not be erased once it had
// scrolled off), each line of it once, the fence never shown.
func TestTallBlockInATerminal(t *testing.T) {
	var b strings.Builder
	b.WriteString("Counting:\n\n```\n")
	for i := range 30 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	b.WriteString("```\n\nEnd.")
	scr := &screen{width: 60}
	con := console.New(console.Options{In: strings.NewReader("hi\n"), Out: scr, User: "console:ann", Live: true, Markdown: true, Width: 60, Height: 8})
	if err := con.Run(context.Background(), streamed(b.String(), 5)); err != nil {
		t.Fatal(err)
	}
	got := scr.String()
	if strings.Contains(got, "```") {
		t.Fatalf("a fence is on the screen:\n%s", got)
	}
	for i := range 30 {
		if c := len(regexp.MustCompile(`\bline `+strconv.Itoa(i)+`\b`).FindAllString(got, -1)); c != 1 {
			t.Fatalf("line %d is on the screen %d times:\n%s", i, c, got)
		}
	}
	if !strings.Contains(got, "End.") {
		t.Fatalf("the end is missing:\n%s", got)
	}
}

// TestMarkdownOnlyWhereAsked: without Markdown (a pipe, NO_COLOR) and
// with JSON the text is printed as written; notices (/help, /balance) are
// rendered too when it is on.
func TestMarkdownOnlyWhereAsked(t *testing.T) {
	notice := func(ctx context.Context, ev bot.Event, out bot.Output) error {
		return bot.NewReply(ctx, out, 0, false, nil).Notice("**Commands**\n\n- `/ask PROMPT` ask")
	}
	run := func(opts console.Options, h handlerFunc) string {
		var out strings.Builder
		opts.In, opts.Out, opts.User = strings.NewReader("hi\n"), &out, "console:ann"
		if err := console.New(opts).Run(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got := run(console.Options{Live: true}, streamed(mdAnswer, 7)); !strings.Contains(got, "**bold**") {
		t.Fatalf("without Markdown the text was changed:\n%s", got)
	}
	if got := run(console.Options{JSON: true, Markdown: true}, streamed(mdAnswer, 7)); !strings.Contains(got, `**bold**`) || strings.Contains(got, "\x1b[") {
		t.Fatalf("JSON was rendered:\n%s", got)
	}
	if got := run(console.Options{Markdown: true, Width: 60}, handlerFunc(notice)); strings.Contains(got, "**") || strings.Contains(got, "`") || !strings.Contains(got, "Commands") {
		t.Fatalf("a notice was not rendered:\n%s", got)
	}
}
