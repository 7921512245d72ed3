package bot

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into parts of at most max runes each, for platforms that
// limit message length. It cuts on rune boundaries, prefers a paragraph or
// line break, then a space, and never leaves a code fence open across a cut:
// a part that ends inside a fence closes it, and the next part reopens it
// with the same opener (```go stays ```go).
func Split(text string, max int) []string {
	if max <= 0 || utf8.RuneCountInString(text) <= max {
		return []string{text}
	}
	const closer = "\n```"
	var parts []string
	rest := text
	opener := "" // the fence line the next part must reopen, "" when outside
	for rest != "" {
		prefix := ""
		if opener != "" {
			prefix = opener + "\n"
		}
		budget := max - utf8.RuneCountInString(prefix)
		if utf8.RuneCountInString(rest) <= budget {
			parts = append(parts, prefix+rest)
			break
		}
		budget -= utf8.RuneCountInString(closer)
		if budget < 1 {
			// The fence opener alone fills the part: give up on fences.
			prefix, opener = "", ""
			budget = max
		}
		cut := cutPoint(rest, budget)
		chunk := rest[:cut]
		rest = rest[cut:]
		opener = fenceState(chunk, opener)
		if opener != "" {
			chunk = strings.TrimRight(chunk, "\n") + closer
		}
		parts = append(parts, prefix+chunk)
	}
	return parts
}

// cutPoint returns a byte offset of at most budget runes into s, at a
// paragraph break, a line break or a space when one lies in the last third
// of the budget, else at the rune boundary itself.
func cutPoint(s string, budget int) int {
	end := 0
	for i := 0; i < budget && end < len(s); i++ {
		_, size := utf8.DecodeRuneInString(s[end:])
		end += size
	}
	window := s[:end]
	floor := len(window) * 2 / 3
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(window, sep); i >= floor && i > 0 {
			return i + len(sep)
		}
	}
	return end
}

// fenceState returns the fence opener still open after chunk, given the one
// open before it ("" for none).
func fenceState(chunk, open string) string {
	for _, line := range strings.Split(chunk, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "```") && !strings.HasPrefix(t, "~~~") {
			continue
		}
		if open == "" {
			open = t
		} else if strings.Trim(t, "`~") == "" {
			open = ""
		}
	}
	return open
}
