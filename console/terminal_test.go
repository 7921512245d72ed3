package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/console"
)

// hostile is what a model (or a pasted name) might send to take over a
// terminal: OSC 0 sets the window title, OSC 52 writes the clipboard, CSI
// clears the screen, 8-bit CSI (U+009B) and a bare CR overwrite what was
// shown, BEL and ST end OSC strings, and a bidi override reorders text.
const hostile = "title\x1b]0;pwned\x07 clip\x1b]52;c;cm0gLXJmIH4K\x1b\\ clear\x1b[2J\x1b[H" +
	" csi\u009b31m cr\rover back\b del\x7f rlo\u202eexe.txt\u202c nul\x00 ok\ttab\nline2"

// want is hostile as shown: every control but tab and newline gone, the
// printable rest kept (visible and harmless).
const want = "title]0;pwned clip]52;c;cm0gLXJmIH4K\\ clear[2J[H csi31m crover back del rloexe.txt nul ok\ttab\nline2"

// TestTerminalEscapesAreInert: nothing a model writes, nor a name inside a
// message, can act on the terminal; in every output mode the console
// prints the printable rest of it.
func TestTerminalEscapesAreInert(t *testing.T) {
	answer := func(ctx context.Context, ev bot.Event, out bot.Output) error {
		r := bot.NewReply(ctx, out, 0, false, nil)
		r.Update("streamed " + hostile)
		if err := r.Finish("streamed "+hostile, "model\x1b]0;x\x07 · charged 1", &bot.ReplyMeta{Model: "evil\x1b[31m/model", FreeLeft: -1}); err != nil {
			return err
		}
		if err := r.Notice("notice " + hostile); err != nil {
			return err
		}
		return bot.NewReply(ctx, out, 0, false, nil).FinishCompare(bot.CompareView{ID: "c1", Panels: []bot.Panel{
			{Label: "A", Model: "a/m\x1b[1m", Text: "panel " + hostile, Status: bot.StatusDone},
			{Label: "B", Model: "b/m", Error: "error " + hostile, Status: bot.StatusFailed},
		}, Footer: "compare\x1b]2;t\x07"})
	}
	for _, mode := range []struct {
		name       string
		json, live bool
	}{{"Plain", false, false}, {"Live", false, true}, {"JSON", true, false}} {
		t.Run(mode.name, func(t *testing.T) {
			var out strings.Builder
			con := console.New(console.Options{In: strings.NewReader("hello\n"), Out: &out, User: "console:alice", JSON: mode.json, Live: mode.live})
			if err := con.Run(context.Background(), handlerFunc(answer)); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if mode.live {
				// The live footer's own dim style is the only escape.
				got = strings.NewReplacer("\x1b[2m", "", "\x1b[0m", "").Replace(got)
			}
			for _, c := range got {
				if c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f && c <= 0x9f || bot.IsBidiOverride(c) {
					t.Fatalf("the console printed control character %U:\n%q", c, got)
				}
			}
			shown := got
			if mode.json {
				// JSON escapes tab and newline; compare the text itself.
				shown = strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\\`, `\`).Replace(got)
			}
			for _, w := range []string{"streamed " + want, "notice " + want, "panel " + want, "error " + want} {
				if !strings.Contains(shown, w) {
					t.Errorf("want the printable rest %q; got:\n%s", w, shown)
				}
			}
		})
	}
}
