package router

import (
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/internal/tiermodel"
)

// classification is the tier a prompt needs and why.
type classification struct {
	tier   string
	reason string
	// scored: the tier model read the text (scores and sig are set).
	scored bool
	scores tiermodel.Scores
	sig    tiermodel.Signals
}

// classify puts a conversation in a tier. Hard signals decide first: an
// image needs a vision model, a prompt of LongPromptTokens or more a long
// context. Otherwise the tier model reads the latest user message (and,
// for a short follow-up, the turns before it) with its structural
// signals: code fences, code-like lines, equations, length, turns. With
// always set it scores the text also when a hard signal decided (for
// Explain).
func (r *Router) classify(msgs []bot.ChatMessage, promptTokens int, always bool) classification {
	if r.baseline != nil {
		return r.baseline(msgs, promptTokens, r.cfg.LongPromptTokens)
	}
	var cl classification
	images := false
	for _, m := range msgs {
		images = images || len(m.Images) > 0
	}
	switch {
	case images:
		cl = classification{tier: TierVision, reason: "an image is attached → vision tier"}
	case promptTokens >= r.cfg.LongPromptTokens:
		cl = classification{tier: TierLong, reason: "a long prompt (~" + tokensWords(promptTokens) + " tokens) → long tier"}
	}
	if cl.tier != "" && !always {
		return cl
	}
	cl.scored = true
	cl.scores, cl.sig = r.model.Score(tiermodel.InputFrom(msgs))
	if cl.tier == "" {
		cl.tier = tiermodel.Classes[cl.scores.Best()]
		cl.reason = scoreWords(cl.scores, cl.sig) + " → " + cl.tier + " tier"
	}
	return cl
}

// scoreWords says what the tier model read: the two likeliest tiers and
// the structural signals it saw, e.g. "classifier: code 91 %, general 6 %;
// a code fence, 4 code-like lines".
func scoreWords(s tiermodel.Scores, sig tiermodel.Signals) string {
	first := s.Best()
	second := -1
	for c := range s {
		if c != first && (second < 0 || s[c] > s[second]) {
			second = c
		}
	}
	b := make([]byte, 0, 96)
	b = append(b, "classifier: "...)
	b = append(b, tiermodel.Classes[first]...)
	b = append(b, ' ')
	b = append(b, percent(s[first])...)
	b = append(b, ", "...)
	b = append(b, tiermodel.Classes[second]...)
	b = append(b, ' ')
	b = append(b, percent(s[second])...)
	sep := "; "
	add := func(what string) {
		b = append(b, sep...)
		b = append(b, what...)
		sep = ", "
	}
	if sig.Fences {
		add("a code fence")
	}
	if sig.CodeLines > 0 {
		add(plural(sig.CodeLines, "code-like line"))
	}
	if sig.Equations > 0 {
		add(plural(sig.Equations, "equation"))
	}
	switch {
	case sig.FollowUp && sig.CodeContext:
		add("a follow-up to code")
	case sig.FollowUp:
		add("a follow-up")
	}
	return string(b)
}

func percent(p float64) string {
	return itoa(int(p*100+0.5)) + " %"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return itoa(n) + " " + what + "s"
}

// tokensWords writes a token count the way people read it: 950, 12k, 1.2M.
func tokensWords(n int) string {
	switch {
	case n >= 1_000_000:
		tenths := n / 100_000
		if tenths >= 100 || tenths%10 == 0 {
			return itoa((n+500_000)/1_000_000) + "M"
		}
		return itoa(tenths/10) + "." + itoa(tenths%10) + "M"
	case n >= 10_000:
		return itoa((n+500)/1000) + "k"
	case n >= 1000:
		return itoa(n/1000) + "." + itoa(n/100%10) + "k"
	}
	return itoa(n)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
