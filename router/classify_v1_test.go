package router

import (
	"strings"

	"github.com/orchat/orchat/bot"
)

// The keyword classifier of the first auto router, kept in the tests only
// as the baseline of the evaluation (eval_test.go): "today's router" in
// docs/ROUTING.md. UseKeywordClassifier swaps it in.

// Classification reads cheap signals only: sizes, code fences, a word scan
// of the first v1ScanLimit bytes of the message, a handful of phrases. It
// never calls a model and never allocates more than one lower-cased copy
// of that prefix.
const (
	v1ScanLimit = 4096
	// v1FastMaxBytes: a message this short with no other signal is chit-chat.
	v1FastMaxBytes = 160
	// v1FastMaxTurns: ...in a conversation this short.
	v1FastMaxTurns = 6
)

// Signal categories of a word: strong words count double.
const (
	v1Code = 1 + iota
	v1CodeStrong
	v1Math
	v1MathStrong
)

var v1Words = map[string]uint8{
	// code
	"code": v1CodeStrong, "coding": v1CodeStrong, "program": v1CodeStrong, "programming": v1CodeStrong,
	"python": v1CodeStrong, "golang": v1CodeStrong, "javascript": v1CodeStrong, "typescript": v1CodeStrong,
	"sql": v1CodeStrong, "bash": v1CodeStrong, "regex": v1CodeStrong, "regexp": v1CodeStrong,
	"compile": v1CodeStrong, "compiler": v1CodeStrong, "compiles": v1CodeStrong, "traceback": v1CodeStrong,
	"segfault": v1CodeStrong, "stacktrace": v1CodeStrong, "nullpointerexception": v1CodeStrong,
	"func": v1CodeStrong, "def": v1CodeStrong, "goroutine": v1CodeStrong, "dockerfile": v1CodeStrong,
	"refactor": v1CodeStrong, "debug": v1CodeStrong, "unittest": v1CodeStrong, "cpp": v1CodeStrong,
	"c++": v1CodeStrong, "c#": v1CodeStrong, "html": v1CodeStrong, "css": v1CodeStrong, "println": v1CodeStrong,
	"printf": v1CodeStrong, "kubernetes": v1CodeStrong,
	"function": v1Code, "class": v1Code, "method": v1Code, "struct": v1Code, "interface": v1Code,
	"import": v1Code, "bug": v1Code, "script": v1Code, "variable": v1Code, "array": v1Code,
	"endpoint": v1Code, "api": v1Code, "json": v1Code, "yaml": v1Code, "return": v1Code, "const": v1Code,
	"async": v1Code, "await": v1Code, "lambda": v1Code, "mutex": v1Code, "null": v1Code, "select": v1Code,
	"react": v1Code, "django": v1Code, "npm": v1Code, "pip": v1Code, "git": v1Code, "exception": v1Code,
	"shell": v1Code, "swift": v1Code, "ruby": v1Code, "php": v1Code, "java": v1Code, "rust": v1Code,
	"kotlin": v1Code,
	// maths and reasoning
	"prove": v1MathStrong, "proof": v1MathStrong, "theorem": v1MathStrong, "lemma": v1MathStrong,
	"integral": v1MathStrong, "derivative": v1MathStrong, "equation": v1MathStrong, "equations": v1MathStrong,
	"probability": v1MathStrong, "calculus": v1MathStrong, "algebra": v1MathStrong, "eigenvalue": v1MathStrong,
	"factorial": v1MathStrong, "math": v1MathStrong, "maths": v1MathStrong, "mathematics": v1MathStrong,
	"solve":     v1MathStrong,
	"calculate": v1Math, "compute": v1Math, "geometry": v1Math, "matrix": v1Math, "logic": v1Math,
	"puzzle": v1Math, "riddle": v1Math, "optimize": v1Math, "optimise": v1Math, "reasoning": v1Math,
	"deduce": v1Math, "infer": v1Math, "statistics": v1Math, "expected": v1Math, "prime": v1Math,
	"primes": v1Math, "limit": v1Math, "sum": v1Math, "percent": v1Math, "irrational": v1Math,
}

// Phrases that are strong hints on their own.
var (
	v1MathPhrases = []string{"step by step", "step-by-step", "show your work", "think carefully", "reason through", "how many ways", "what is the probability", "explain why", "why does", "\\frac", "\\int", "\\sum", "∫", "∑", "√"}
	v1CodePhrases = []string{"stack trace", "syntax error", "error:", "#include", "console.log", "public static", "();", "=>", "!= nil", "==", "</", "/>", "$ "}
)

// v1Signals are what the classifier saw, for the plan's reasons.
type v1Signals struct {
	fences    bool
	codeWords int
	codePhr   int
	mathWords int
	mathPhr   int
	codeLines int // lines that end like code: ; { }
	equations int // digits with an operator and '='
}

func (s v1Signals) code() bool {
	return s.fences || s.codeWords+2*s.codePhr+s.codeLines >= 2
}

func (s v1Signals) math() bool {
	return s.mathWords+2*s.mathPhr+2*s.equations >= 2
}

// scan reads the v1Signals of text.
func v1Scan(text string) v1Signals {
	var s v1Signals
	s.fences = strings.Contains(text, "```")
	if len(text) > v1ScanLimit {
		text = text[:v1ScanLimit]
	}
	lower := strings.ToLower(text)
	for _, p := range v1CodePhrases {
		if strings.Contains(lower, p) {
			s.codePhr++
		}
	}
	for _, p := range v1MathPhrases {
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
			switch v1Words[lower[start:end]] {
			case v1Code:
				s.codeWords++
			case v1CodeStrong:
				s.codeWords += 2
			case v1Math:
				s.mathWords++
			case v1MathStrong:
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

// classifyV1 puts a conversation in a tier from cheap signals: images, size,
// code, maths and step-by-step cues in the latest user message (and, for a
// short follow-up, in the turns before it), and the conversation's length.
func classifyV1(msgs []bot.ChatMessage, promptTokens, longTokens int) classification {
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
		return classification{tier: TierVision, reason: "an image is attached → vision tier"}
	}
	if promptTokens >= longTokens {
		return classification{tier: TierLong, reason: "a long prompt (~" + tokensWords(promptTokens) + " tokens) → long tier"}
	}
	var text string
	if lastUser >= 0 {
		text = msgs[lastUser].Content
	}
	s := v1Scan(text)
	switch {
	case s.code() && s.fences && s.codeWords+s.codePhr > 0:
		return classification{tier: TierCode, reason: "code fences and code words → code tier"}
	case s.code() && s.fences:
		return classification{tier: TierCode, reason: "a code block → code tier"}
	case s.code():
		return classification{tier: TierCode, reason: "code words → code tier"}
	case s.math():
		if s.mathPhr > 0 && s.mathWords+s.equations == 0 {
			return classification{tier: TierReasoning, reason: "step-by-step cues → reasoning tier"}
		}
		return classification{tier: TierReasoning, reason: "maths and step-by-step cues → reasoning tier"}
	}
	// A short follow-up keeps the topic of the conversation.
	if len(text) < v1FastMaxBytes && lastUser > 0 {
		var prev v1Signals
		seen := 0
		for i := lastUser - 1; i >= 0 && seen < 2; i-- {
			if msgs[i].Role == bot.RoleSystem {
				continue
			}
			seen++
			p := v1Scan(msgs[i].Content)
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
			return classification{tier: TierCode, reason: "a follow-up in a conversation about code → code tier"}
		case prev.math():
			return classification{tier: TierReasoning, reason: "a follow-up in a conversation about maths → reasoning tier"}
		}
	}
	if len(text) < v1FastMaxBytes && turns <= v1FastMaxTurns {
		return classification{tier: TierFast, reason: "a short message → fast tier"}
	}
	if turns > v1FastMaxTurns {
		return classification{tier: TierGeneral, reason: "a longer conversation → general tier"}
	}
	return classification{tier: TierGeneral, reason: "no special v1Signals → general tier"}
}
