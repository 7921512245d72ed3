package bot

import "strings"

// IsBidiOverride reports whether r is one of the Unicode bidirectional
// embedding, override or isolate controls (U+202A–U+202E, U+2066–U+2069).
// They reorder the text after them, so "evil\u202Etxt.exe" reads as
// "evilexe.txt": input drops them before parsing, and every reply drops
// them before a platform shows it. The marks U+200E and U+200F only nudge
// one neutral character and stay, as right-to-left writing needs them.
func IsBidiOverride(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// StripBidi returns s without bidi overrides (see IsBidiOverride); s
// itself when it holds none.
func StripBidi(s string) string {
	if !strings.ContainsFunc(s, IsBidiOverride) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if IsBidiOverride(r) {
			return -1
		}
		return r
	}, s)
}
