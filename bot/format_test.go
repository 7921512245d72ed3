package bot_test

import (
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

func TestFormatTokens(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {15000, "15,000"}, {-1234567, "-1,234,567"}} {
		if got := bot.FormatTokens(tt.n); got != tt.want {
			t.Errorf("FormatTokens(%d)=%q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatWait(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "1s"}, {-time.Second, "1s"}, {300 * time.Millisecond, "1s"}, {time.Second, "1s"},
		{1500 * time.Millisecond, "2s"}, {45 * time.Second, "45s"}, {59*time.Second + 1, "1m"},
		{90 * time.Second, "2m"}, {12 * time.Minute, "12m"}, {time.Hour, "1h"},
		{3*time.Hour + 4*time.Minute + time.Second, "3h 5m"}, {26 * time.Hour, "26h"},
	} {
		if got := bot.FormatWait(tt.d); got != tt.want {
			t.Errorf("FormatWait(%v)=%q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"}, {"exactly10!", 10, "exactly10!"}, {"one too long", 11, "one too lo…"},
		{"héllo wörld", 6, "héllo…"}, {"日本語のテキスト", 4, "日本語…"}, {"abc", 0, ""}, {"", 3, ""},
	} {
		if got := bot.Clip(tt.s, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d)=%q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestPlural(t *testing.T) {
	if got := bot.Plural(1, "vote", "votes"); got != "vote" {
		t.Errorf("Plural(1)=%q", got)
	}
	for _, n := range []int{0, 2, 1000} {
		if got := bot.Plural(n, "vote", "votes"); got != "votes" {
			t.Errorf("Plural(%d)=%q", n, got)
		}
	}
}
