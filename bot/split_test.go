package bot_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

func TestSplit(t *testing.T) {
	t.Run("ShortTextIsOnePart", func(t *testing.T) {
		if got := bot.Split("hello", 2000); len(got) != 1 || got[0] != "hello" {
			t.Fatalf("Split=%q, want [hello]", got)
		}
	})

	t.Run("PartsRespectTheLimitAndKeepEveryWord", func(t *testing.T) {
		text := strings.Repeat("word ", 2000) // 10,000 characters
		parts := bot.Split(text, 2000)
		if len(parts) < 5 {
			t.Fatalf("got %d parts, want at least 5", len(parts))
		}
		for i, p := range parts {
			if n := utf8.RuneCountInString(p); n > 2000 {
				t.Fatalf("part %d has %d runes, limit 2000", i, n)
			}
		}
		if got, want := strings.Join(parts, ""), text; got != want {
			t.Fatalf("joined parts differ from the text: %d vs %d bytes", len(got), len(want))
		}
	})

	t.Run("CutsOnRuneBoundaries", func(t *testing.T) {
		text := strings.Repeat("日本語のテキスト🙂", 500)
		for i, p := range bot.Split(text, 333) {
			if !utf8.ValidString(p) {
				t.Fatalf("part %d is not valid UTF-8", i)
			}
			if n := utf8.RuneCountInString(p); n > 333 {
				t.Fatalf("part %d has %d runes", i, n)
			}
		}
	})

	t.Run("CodeFencesClosedAndReopened", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Here is the code:\n\n```go\n")
		for i := 0; i < 300; i++ {
			b.WriteString("fmt.Println(\"line of a long program\")\n")
		}
		b.WriteString("```\n\nThat is all.")
		parts := bot.Split(b.String(), 2000)
		if len(parts) < 4 {
			t.Fatalf("got %d parts, want several", len(parts))
		}
		for i, p := range parts {
			if n := utf8.RuneCountInString(p); n > 2000 {
				t.Fatalf("part %d has %d runes", i, n)
			}
			if c := strings.Count(p, "```"); c%2 != 0 {
				t.Fatalf("part %d has %d fence markers (unbalanced):\n%s", i, c, p)
			}
			if i > 0 && i < len(parts)-1 && !strings.HasPrefix(p, "```go\n") {
				t.Fatalf("part %d does not reopen the go fence: %q", i, p[:20])
			}
		}
		if !strings.HasSuffix(parts[len(parts)-1], "That is all.") {
			t.Fatalf("last part lost the ending")
		}
	})

	t.Run("OneUnbrokenLineIsStillCut", func(t *testing.T) {
		text := strings.Repeat("x", 4500)
		parts := bot.Split(text, 2000)
		if got, want := len(parts), 3; got != want {
			t.Fatalf("parts=%d, want %d", got, want)
		}
		if strings.Join(parts, "") != text {
			t.Fatal("text changed")
		}
	})
}
