package router

import (
	"strings"

	"github.com/orchat/orchat/bot"
)

// Classification reads cheap signals only: sizes, code fences, a word scan
// of the first scanLimit bytes of the message, a handful of phrases. It
// never calls a model and never allocates more than one lower-cased copy
// of that prefix.
const (
	scanLimit = 4096
	// fastMaxBytes: a message this short with no other signal is chit-chat.
	fastMaxBytes = 160
	// fastMaxTurns: ...in a conversation this short.
	fastMaxTurns = 6
)

// Signal categories of a word: strong words count double.
const (
	sigCode = 1 + iota
	sigCodeStrong
	sigMath
	sigMathStrong
)

var signalWords = map[string]uint8{
	// code
	"code": sigCodeStrong, "coding": sigCodeStrong, "program": sigCodeStrong, "programming": sigCodeStrong,
	"python": sigCodeStrong, "golang": sigCodeStrong, "javascript": sigCodeStrong, "typescript": sigCodeStrong,
	"sql": sigCodeStrong, "bash": sigCodeStrong, "regex": sigCodeStrong, "regexp": sigCodeStrong,
	"compile": sigCodeStrong, "compiler": sigCodeStrong, "compiles": sigCodeStrong, "traceback": sigCodeStrong,
	"segfault": sigCodeStrong, "stacktrace": sigCodeStrong, "nullpointerexception": sigCodeStrong,
	"func": sigCodeStrong, "def": sigCodeStrong, "goroutine": sigCodeStrong, "dockerfile": sigCodeStrong,
	"refactor": sigCodeStrong, "debug": sigCodeStrong, "unittest": sigCodeStrong, "cpp": sigCodeStrong,
	"c++": sigCodeStrong, "c#": sigCodeStrong, "html": sigCodeStrong, "css": sigCodeStrong, "println": sigCodeStrong,
	"printf": sigCodeStrong, "kubernetes": sigCodeStrong,
	"function": sigCode, "class": sigCode, "method": sigCode, "struct": sigCode, "interface": sigCode,
	"import": sigCode, "bug": sigCode, "script": sigCode, "variable": sigCode, "array": sigCode,
	"endpoint": sigCode, "api": sigCode, "json": sigCode, "yaml": sigCode, "return": sigCode, "const": sigCode,
	"async": sigCode, "await": sigCode, "lambda": sigCode, "mutex": sigCode, "null": sigCode, "select": sigCode,
	"react": sigCode, "django": sigCode, "npm": sigCode, "pip": sigCode, "git": sigCode, "exception": sigCode,
	"shell": sigCode, "swift": sigCode, "ruby": sigCode, "php": sigCode, "java": sigCode, "rust": sigCode,
	"kotlin": sigCode,
	// maths and reasoning
	"prove": sigMathStrong, "proof": sigMathStrong, "theorem": sigMathStrong, "lemma": sigMathStrong,
	"integral": sigMathStrong, "derivative": sigMathStrong, "equation": sigMathStrong, "equations": sigMathStrong,
	"probability": sigMathStrong, "calculus": sigMathStrong, "algebra": sigMathStrong, "eigenvalue": sigMathStrong,
	"factorial": sigMathStrong, "math": sigMathStrong, "maths": sigMathStrong, "mathematics": sigMathStrong,
	"solve":     sigMathStrong,
	"calculate": sigMath, "compute": sigMath, "geometry": sigMath, "matrix": sigMath, "logic": sigMath,
	"puzzle": sigMath, "riddle": sigMath, "optimize": sigMath, "optimise": sigMath, "reasoning": sigMath,
	"deduce": sigMath, "infer": sigMath, "statistics": sigMath, "expected": sigMath, "prime": sigMath,
	"primes": sigMath, "limit": sigMath, "sum": sigMath, "percent": sigMath, "irrational": sigMath,
}

// Phrases that are strong hints on their own.
var (
	mathPhrases = []string{"step by step", "step-by-step", "show your work", "think carefully", "reason through", "how many ways", "what is the probability", "explain why", "why does", "\\frac", "\\int", "\\sum", "∫", "∑", "√"}
	codePhrases = []string{"stack trace", "syntax error", "error:", "#include", "console.log", "public static", "();", "=>", "!= nil", "==", "</", "/>", "$ "}
)

// signals are what the classifier saw, for the plan's reasons.
type signals struct {
	fences    bool
	codeWords int
	codePhr   int
	mathWords int
	mathPhr   int
	codeLines int // lines that end like code: ; { }
	equations int // digits with an operator and '='
}

func (s signals) code() bool {
	return s.fences || s.codeWords+2*s.codePhr+s.codeLines >= 2
}

func (s signals) math() bool {
	return s.mathWords+2*s.mathPhr+2*s.equations >= 2
}

// scan reads the signals of text.
func scan(text string) signals {
	var s signals
	s.fences = strings.Contains(text, "```")
	if len(text) > scanLimit {
		text = text[:scanLimit]
	}
	lower := strings.ToLower(text)
	for _, p := range codePhrases {
		if strings.Contains(lower, p) {
			s.codePhr++
		}
	}
	for _, p := range mathPhrases {
		if strings.Contains(lower, p) {
			s.mathPhr++
		}
	}
	// One pass over words and lines.
	start := -1
	lineEnd := byte(0)
	digits, ops := 0, 0
	flush := func(end int) {
		if start >= 0 {
			switch signalWords[lower[start:end]] {
			case sigCode:
				s.codeWords++
			case sigCodeStrong:
				s.codeWords += 2
			case sigMath:
				s.mathWords++
			case sigMathStrong:
				s.mathWords += 2
			}
			start = -1
		}
	}
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		isWord := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '#' || c >= 0x80
		if isWord && (c != '+' && c != '#' || start >= 0) {
			if start < 0 {
				start = i
			}
		} else {
			flush(i)
		}
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' || c == '-' || c == '*' || c == '/' || c == '^':
			ops++
		case c == '=':
			if digits > 0 && ops > 0 {
				s.equations++
			}
		case c == '\n':
			if lineEnd == ';' || lineEnd == '{' || lineEnd == '}' {
				s.codeLines++
			}
			digits, ops = 0, 0
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			lineEnd = c
		}
	}
	flush(len(lower))
	if lineEnd == ';' || lineEnd == '{' || lineEnd == '}' {
		s.codeLines++
	}
	return s
}

// classification is the tier a prompt falls in and why.
type classification struct {
	tier   string
	reason string
}

// classify puts a conversation in a tier from cheap signals: images, size,
// code, maths and step-by-step cues in the latest user message (and, for a
// short follow-up, in the turns before it), and the conversation's length.
func classify(msgs []bot.ChatMessage, promptTokens, longTokens int) classification {
	lastUser := -1
	images, turns := false, 0
	for i, m := range msgs {
		if len(m.Images) > 0 {
			images = true
		}
		if m.Role != bot.RoleSystem {
			turns++
		}
		if m.Role == bot.RoleUser {
			lastUser = i
		}
	}
	if images {
		return classification{TierVision, "an image is attached → vision tier"}
	}
	if promptTokens >= longTokens {
		return classification{TierLong, "a long prompt (~" + tokensWords(promptTokens) + " tokens) → long tier"}
	}
	var text string
	if lastUser >= 0 {
		text = msgs[lastUser].Content
	}
	s := scan(text)
	switch {
	case s.code() && s.fences && s.codeWords+s.codePhr > 0:
		return classification{TierCode, "code fences and code words → code tier"}
	case s.code() && s.fences:
		return classification{TierCode, "a code block → code tier"}
	case s.code():
		return classification{TierCode, "code words → code tier"}
	case s.math():
		if s.mathPhr > 0 && s.mathWords+s.equations == 0 {
			return classification{TierReasoning, "step-by-step cues → reasoning tier"}
		}
		return classification{TierReasoning, "maths and step-by-step cues → reasoning tier"}
	}
	// A short follow-up keeps the topic of the conversation.
	if len(text) < fastMaxBytes && lastUser > 0 {
		var prev signals
		seen := 0
		for i := lastUser - 1; i >= 0 && seen < 2; i-- {
			if msgs[i].Role == bot.RoleSystem {
				continue
			}
			seen++
			p := scan(msgs[i].Content)
			prev.fences = prev.fences || p.fences
			prev.codeWords += p.codeWords
			prev.codePhr += p.codePhr
			prev.codeLines += p.codeLines
			prev.mathWords += p.mathWords
			prev.mathPhr += p.mathPhr
			prev.equations += p.equations
		}
		switch {
		case prev.code():
			return classification{TierCode, "a follow-up in a conversation about code → code tier"}
		case prev.math():
			return classification{TierReasoning, "a follow-up in a conversation about maths → reasoning tier"}
		}
	}
	if len(text) < fastMaxBytes && turns <= fastMaxTurns {
		return classification{TierFast, "a short message → fast tier"}
	}
	if turns > fastMaxTurns {
		return classification{TierGeneral, "a longer conversation → general tier"}
	}
	return classification{TierGeneral, "no special signals → general tier"}
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
