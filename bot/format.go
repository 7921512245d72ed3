package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatTokens writes n with thousands separators: 15,000.
func FormatTokens(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatDuration writes d the way people read latencies: 850ms, 1.2s, 2m5s.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// FormatWait writes how long until something comes back (a rate limit, a
// free allowance, an upstream's Retry-After), rounded up so that it never
// promises too early: "1s", "45s", "12m", "3h", "3h 5m". Every such wait a
// user reads is written by it.
func FormatWait(d time.Duration) string {
	if secs := (d + time.Second - 1) / time.Second; secs < 60 {
		return fmt.Sprintf("%ds", max(secs, 1))
	}
	mins := int((d + time.Minute - 1) / time.Minute)
	switch h, m := mins/60, mins%60; {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dh %dm", h, m)
	}
}

// Clip cuts s to at most n runes, the last of them "…" when anything was
// cut: a quoted input stays short in a reply, and a platform field (an
// embed footer, a section block) never outgrows its limit.
func Clip(s string, n int) string {
	if len(s) <= n || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Plural returns one when n is 1, else many: "1 request", "3 requests".
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
