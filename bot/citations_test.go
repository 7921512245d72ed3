package bot_test

import (
	"testing"

	"github.com/orchat/orchat/bot"
)

func TestFootnotes(t *testing.T) {
	got := bot.Footnotes([]bot.Citation{
		{URL: "https://www.example.com/a", Title: "**Bold** @everyone <!channel> [x](https://evil.test)"},
		{URL: "https://www.example.com/a", Title: "duplicate"},
		{URL: "javascript:alert(1)", Title: "script"},
		{URL: "https://user:pw@example.org/", Title: "credentials"},
		{URL: "http://news.test/b"},
	})
	if len(got) != 2 {
		t.Fatalf("footnotes=%+v, want 2 (one per safe URL)", got)
	}
	if g, w := got[0].Title, "Bold everyone !channel x (https://evil.test)"; g != w {
		t.Errorf("title=%q, want %q", g, w)
	}
	if got[0].Host != "example.com" || got[0].N != 1 {
		t.Errorf("first footnote=%+v", got[0])
	}
	if got[1].Title != "news.test" || got[1].N != 2 {
		t.Errorf("an untitled source should be named by its host: %+v", got[1])
	}
}
