package console

import (
	"strings"

	"github.com/orchat/orchat/bot"
)

// inert removes from s every character a terminal would act on instead of
// show: the C0 controls except newline and tab (ESC, BEL, CR, backspace,
// …), DEL and the C1 controls U+0080–U+009F (8-bit CSI, OSC and ST among
// them), and the bidi overrides that reorder what follows them. Without
// ESC, BEL and ST an escape sequence is plain text: a model cannot set the
// window title, write the clipboard (OSC 52), move the cursor or hide a
// line. Invalid UTF-8 becomes U+FFFD, so a lone 0x9b byte cannot act as
// CSI either. The mapping is per character, so the clean form of a prefix
// is a prefix of the clean form: a streamed answer stays consistent.
func inert(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return -1
		case bot.IsBidiOverride(r):
			return -1
		}
		return r
	}, s)
}

// inertMessage is m with every text that came from a model or a user made
// inert (a copy: the engine's message is not changed).
func inertMessage(m bot.Message) bot.Message {
	m.Text, m.Footer, m.Reasoning = inert(m.Text), inert(m.Footer), inert(m.Reasoning)
	if c := m.Compare; c != nil {
		cv := *c
		cv.Footer = inert(cv.Footer)
		cv.Panels = make([]bot.Panel, len(c.Panels))
		for i, p := range c.Panels {
			p.Label, p.Model, p.Answered = inert(p.Label), inert(p.Model), inert(p.Answered)
			p.Text, p.Error = inert(p.Text), inert(p.Error)
			cv.Panels[i] = p
		}
		m.Compare = &cv
	}
	if mt := m.Meta; mt != nil {
		meta := *mt
		meta.Model = inert(meta.Model)
		m.Meta = &meta
	}
	return m
}
