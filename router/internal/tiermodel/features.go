package tiermodel

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// Input is what the model reads of a conversation: the new message and,
// for a short follow-up, the turns before it.
type Input struct {
	// Text is the latest user message.
	Text string
	// Context is up to two earlier non-system turns, newest first.
	Context []string
	// Turns counts the non-system messages, the new one included.
	Turns int
}

// InputFrom reads the model's input from a request's messages (system
// prompt, history oldest first, the new message).
func InputFrom(msgs []bot.ChatMessage) Input {
	var in Input
	last := -1
	for i, m := range msgs {
		if m.Role != bot.RoleSystem {
			in.Turns++
		}
		if m.Role == bot.RoleUser {
			last = i
		}
	}
	if last < 0 {
		return in
	}
	in.Text = msgs[last].Content
	for i := last - 1; i >= 0 && len(in.Context) < 2; i-- {
		if msgs[i].Role != bot.RoleSystem {
			in.Context = append(in.Context, msgs[i].Content)
		}
	}
	return in
}

// Signals are the cheap structural facts of the new message that the
// router's keyword scan used to decide alone; the model weighs them with
// the words.
type Signals struct {
	Bytes     int  // length of the new message
	Fences    bool // a ``` code fence
	CodeLines int  // lines that end like code (; { } ) or start indented
	Equations int  // lines with digits, an operator and '='
	FollowUp  bool // a short message after earlier turns
	Turns     int
	// CodeContext: a fence, code lines or `inline code` in the turns the
	// follow-up follows.
	CodeContext bool
}

// Feature groups: n-grams of the message and of the context are scaled by
// one over the square root of their count (so a long paste does not
// shout), signals count one each.
const (
	groupText = iota
	groupContext
	groupSignal
	numGroups
)

// Hash seeds keep the kinds of features apart in the hashed table.
const (
	seedChar   uint32 = 0x811c9dc5
	seedWord   uint32 = 0x9e3779b9
	seedBigram uint32 = 0x85ebca6b
	seedCtx    uint32 = 0xc2b2ae35
	seedSignal uint32 = 0x27d4eb2f
	prime32    uint32 = 0x01000193
)

// followUpBytes: a message shorter than this after earlier turns is read
// with its context.
const followUpBytes = 200

// Scan reads the signals of an input: of the part of the message the
// model reads, but Bytes is the whole message's length.
func (p *Params) Scan(in Input) Signals {
	head, tail := clip(in.Text, p.HeadBytes, p.TailBytes)
	s := scanText(head)
	if tail != "" {
		t := scanText(tail)
		s.Fences = s.Fences || t.Fences
		s.CodeLines += t.CodeLines
		s.Equations += t.Equations
	}
	s.Bytes = len(in.Text)
	s.Turns = in.Turns
	s.FollowUp = in.Turns > 1 && len(in.Text) < followUpBytes
	if s.FollowUp {
		for _, c := range in.Context {
			c, _ = clip(c, 2048, 0)
			cs := scanText(c)
			s.CodeContext = s.CodeContext || cs.Fences || cs.CodeLines >= 2 || strings.Count(c, "`") >= 2
		}
	}
	return s
}

func scanText(text string) Signals {
	s := Signals{Bytes: len(text), Fences: strings.Contains(text, "```")}
	digits, ops := 0, 0
	lineStart, indented := true, false
	var last byte
	endLine := func() {
		if last == ';' || last == '{' || last == '}' || last == ')' || indented {
			s.CodeLines++
		}
		digits, ops, lineStart, indented, last = 0, 0, true, false, 0
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\n':
			endLine()
			continue
		case lineStart && (c == '\t' || c == ' ' && i+3 < len(text) && text[i:i+4] == "    "):
			// An indented line that goes on with something is code-like.
			indented = i+4 < len(text) && text[i+4] != ' ' && text[i+4] != '\n' || c == '\t'
		case c >= '0' && c <= '9':
			digits++
		case c == '+' || c == '-' || c == '*' || c == '/' || c == '^':
			ops++
		case c == '=':
			if digits > 0 && ops > 0 {
				s.Equations++
			}
		}
		if c != ' ' && c != '\t' && c != '\r' {
			last = c
			lineStart = false
		}
	}
	endLine()
	return s
}

// clip returns the first head bytes of text and its last tail bytes (""
// when the text is short), cut at rune boundaries: the question after a
// long paste is at the end.
func clip(text string, head, tail int) (string, string) {
	if len(text) <= head+tail {
		return text, ""
	}
	h := head
	for h > 0 && !utf8.RuneStart(text[h]) {
		h--
	}
	if tail == 0 {
		return text[:h], ""
	}
	t := len(text) - tail
	for t < len(text) && !utf8.RuneStart(text[t]) {
		t++
	}
	return text[:h], text[t:]
}

// isCJK: scripts written without spaces (CJK radicals to Hangul, the
// compatibility ideographs, half-width katakana, the supplementary
// ideographs); each rune is a word.
func isCJK(r rune) bool {
	return r >= 0x2E80 && (r <= 0xD7AF && (r < 0xA000 || r >= 0xAC00) || r >= 0xF900 && r <= 0xFAFF || r >= 0xFF66 && r <= 0xFF9F || r >= 0x20000 && r <= 0x3FFFF)
}

// normRune lower-cases r, maps every digit to '0' (numbers matter, their
// values do not) and every space to ' '.
func normRune(r rune) rune {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r >= '0' && r <= '9':
			return '0'
		case r == '\t' || r == '\r':
			return ' '
		}
		return r
	case unicode.IsDigit(r):
		return '0'
	case unicode.IsSpace(r):
		return ' '
	}
	return unicode.ToLower(r)
}

func isWordRune(r rune) bool {
	return r == '_' || r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r == '0') || r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r))
}

// maxRunes bounds the runes read of one message (after clipping).
const maxRunes = 1024

// extract feeds the features of in to s.
func (p *Params) extract(in Input, sig Signals, s *sink) {
	var buf [maxRunes]rune
	head, tail := clip(in.Text, p.HeadBytes, p.TailBytes)
	n := normalize(head, buf[:])
	if tail != "" && n < len(buf)-1 {
		buf[n] = '\n'
		n++
		n += normalize(tail, buf[n:])
	}
	p.ngrams(buf[:n], s)
	s.lexTo = lexMessage
	cjk := words(buf[:n], seedWord, groupText, true, s)
	s.lexTo = lexNone
	if cjk {
		for cat, subs := range lexSubstrings {
			for _, sub := range subs {
				if strings.Contains(head, sub) || strings.Contains(tail, sub) {
					s.lex[lexMessage][cat]++
				}
			}
		}
	}
	if sig.FollowUp {
		for _, c := range in.Context {
			c, _ = clip(c, 512, 0)
			m := normalize(c, buf[:])
			// Context words are hashed with their own seed, so look the
			// lexicon up by a second pass with the word seed.
			s.lexTo = lexContext
			words(buf[:m], seedWord, -1, false, s)
			s.lexTo = lexNone
			words(buf[:m], seedCtx, groupContext, false, s)
		}
		for cat, n := range s.lex[lexContext] {
			if n > 0 {
				s.add(groupSignal, (seedSignal^0x100^uint32(cat)<<8^uint32(min(n, 3)))*prime32)
			}
		}
	}
	signals(sig, s)
	for cat, n := range s.lex[lexMessage] {
		if n > 0 {
			s.add(groupSignal, (seedSignal^uint32(cat)<<8^uint32(min(n, 3)))*prime32)
		}
	}
}

// normalize writes the normalized runes of text into buf: lower case,
// digits as '0', runs of spaces as one space and runs with a line break as
// one '\n'. It returns how many it wrote.
func normalize(text string, buf []rune) int {
	n := 0
	space := rune(0) // pending separator
	for _, r := range text {
		r = normRune(r)
		if r == ' ' || r == '\n' {
			if space != '\n' {
				space = r
			}
			continue
		}
		if space != 0 && n > 0 && n < len(buf) {
			buf[n] = space
			n++
		}
		space = 0
		if n == len(buf) {
			break
		}
		buf[n] = r
		n++
	}
	return n
}

// ngrams feeds the character n-grams of runes, MinN to MaxN long. It is
// the hot loop of scoring, so it sums the weights in an acc instead of
// calling add.
func (p *Params) ngrams(runes []rune, s *sink) {
	var a acc
	w, mask, record := s.w, s.mask, s.rows != nil
	for i := range runes {
		h := seedChar
		end := min(len(runes), i+p.MaxN)
		for j := i; j < end; j++ {
			h = (h ^ uint32(runes[j])) * prime32
			if j-i+1 < p.MinN {
				continue
			}
			if record {
				s.add(groupText, h)
				continue
			}
			a.row(w, h&mask)
		}
	}
	a.into(s, groupText)
}

// words feeds word unigrams (and, with bigrams, pairs of neighbours),
// counting lexicon hits into s.lex[s.lexTo] unless lexTo is lexNone; a
// negative group feeds nothing (a lexicon-only pass). It reports whether
// it met a script written without spaces, where each rune is a word.
// Like ngrams, it sums weights in an acc.
func words(runes []rune, seed uint32, group int, bigrams bool, s *sink) (cjk bool) {
	var a acc
	w, mask, record := s.w, s.mask, s.rows != nil
	var prev uint32
	have := false
	h, in := seed, false
	var feats [2]uint32
	for i := 0; i <= len(runes); i++ {
		r := ' ' // the end of the text ends the last word
		if i < len(runes) {
			r = runes[i]
		}
		single := r >= 0x2E80 && isCJK(r)
		if !single && isWordRune(r) {
			h = (h ^ uint32(r)) * prime32
			in = true
			continue
		}
		cjk = cjk || single
		// r ends the current word, if any; a CJK rune is a word itself.
		for k := range 2 {
			var word uint32
			switch {
			case k == 0 && in:
				word = h
				h, in = seed, false
			case k == 1 && single:
				word = (seed ^ uint32(r)) * prime32
			default:
				continue
			}
			if s.lexTo != lexNone {
				if cats := lexicon.lookup(word); cats != 0 {
					for c := range numLex {
						if cats&(1<<c) != 0 {
							s.lex[s.lexTo][c]++
						}
					}
				}
			}
			if group >= 0 {
				nf := 0
				feats[nf], nf = word, nf+1
				if bigrams && have {
					feats[nf], nf = (prev*31^word)*prime32^seedBigram, nf+1
				}
				for _, f := range feats[:nf] {
					if record {
						s.add(group, f)
						continue
					}
					a.row(w, f&mask)
				}
			}
			prev, have = word, true
		}
	}
	if group >= 0 {
		a.into(s, group)
	}
	return cjk
}

// acc sums weight rows in locals: ngrams and words run it for every
// feature, and sums kept in the sink instead (behind a pointer) made a
// 544-byte message about 60 % slower to score (BenchmarkScore/Essay).
type acc struct {
	c0, c1, c2, c3 int64 // one per class (NumClasses is 4)
	n              int
}

func (a *acc) row(w []int16, row uint32) {
	k := int(row) * NumClasses
	r := w[k : k+4 : k+4]
	a.c0 += int64(r[0])
	a.c1 += int64(r[1])
	a.c2 += int64(r[2])
	a.c3 += int64(r[3])
	a.n++
}

func (a *acc) into(s *sink, group int) {
	s.n[group] += a.n
	sum := &s.sums[group]
	sum[0], sum[1], sum[2], sum[3] = sum[0]+a.c0, sum[1]+a.c1, sum[2]+a.c2, sum[3]+a.c3
}

// signals feeds the structural signals as features that count one each.
func signals(sig Signals, s *sink) {
	f := func(name string, v int) {
		h := seedSignal
		for i := 0; i < len(name); i++ {
			h = (h ^ uint32(name[i])) * prime32
		}
		s.add(groupSignal, (h^uint32(v))*prime32)
	}
	f("bias", 0)
	f("len", bucket(sig.Bytes, 24, 64, 160, 400, 1000))
	f("turns", bucket(sig.Turns, 2, 4, 7))
	f("codelines", bucket(sig.CodeLines, 1, 3, 8))
	f("equations", bucket(sig.Equations, 1, 2))
	if sig.Fences {
		f("fence", 1)
	}
	if sig.FollowUp {
		f("followup", 1)
		if sig.CodeContext {
			f("codecontext", 1)
		}
	}
}

// bucket returns how many of the ascending bounds v reaches.
func bucket(v int, bounds ...int) int {
	n := 0
	for _, b := range bounds {
		if v >= b {
			n++
		}
	}
	return n
}
