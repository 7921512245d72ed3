package slack

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mrkdwn converts the Markdown models write into Slack's mrkdwn: **bold**
// becomes *bold*, *italic* and _italic_ become _italic_, ~~strike~~ becomes
// ~strike~, [text](url) becomes <url|text>, headings become bold lines,
// bullets become •, and code (inline and fenced) is kept as it is. Tables,
// which Slack cannot draw, are kept aligned in a code block.
//
// Every &, < and > of the model's text is escaped, so nothing a model writes
// (<!channel>, <!here>, <@U123>) ever pings anyone: the only <…> sequences
// in the output are the links Mrkdwn itself generates.
func Mrkdwn(md string) string {
	var b strings.Builder
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	fence := "" // the fence marker while inside a code block
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if i > 0 {
			b.WriteByte('\n')
		}
		if fence != "" {
			if isFenceClose(trimmed, fence) {
				b.WriteString("```")
				fence = ""
				continue
			}
			b.WriteString(escape(line))
			continue
		}
		if m := fenceOpen(trimmed); m != "" {
			// The language tag would show as text in Slack: drop it.
			fence = m
			b.WriteString("```")
			continue
		}
		if isTableLine(trimmed) && i+1 < len(lines) && isTableRule(strings.TrimSpace(lines[i+1])) {
			j := i
			for j < len(lines) && isTableLine(strings.TrimSpace(lines[j])) {
				j++
			}
			b.WriteString("```\n")
			for k := i; k < j; k++ {
				if k > i {
					b.WriteByte('\n')
				}
				b.WriteString(escape(strings.TrimSpace(lines[k])))
			}
			b.WriteString("\n```")
			i = j - 1
			continue
		}
		b.WriteString(convertLine(line))
	}
	if fence != "" {
		b.WriteString("\n```") // an unclosed fence would swallow the footer
	}
	return b.String()
}

var (
	headingRe = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	bulletRe  = regexp.MustCompile(`^(\s*)[-*+]\s+(.*)$`)
	orderedRe = regexp.MustCompile(`^(\s*)(\d{1,9})[.)]\s+(.*)$`)
	quoteRe   = regexp.MustCompile(`^\s{0,3}>\s?(.*)$`)
	ruleRe    = regexp.MustCompile(`^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$`)
	taskRe    = regexp.MustCompile(`^\[([ xX])\]\s+(.*)$`)
)

// convertLine converts one line outside code blocks.
func convertLine(line string) string {
	if strings.TrimSpace(line) == "" {
		return ""
	}
	if ruleRe.MatchString(line) {
		return "──────────"
	}
	if m := headingRe.FindStringSubmatch(line); m != nil {
		// The line is bold already: bold inside it would end it early.
		title := strings.TrimSpace(inline(strings.NewReplacer("**", "", "__", "").Replace(m[2])))
		if title == "" {
			return ""
		}
		return "*" + title + "*"
	}
	if m := quoteRe.FindStringSubmatch(line); m != nil {
		// Slack draws "> " at a line start as a quote; it is the only >
		// left unescaped, and it cannot form a mention.
		return "> " + convertLine(m[1])
	}
	if m := bulletRe.FindStringSubmatch(line); m != nil {
		depth := indentDepth(m[1])
		mark := "•"
		if depth%2 == 1 {
			mark = "◦"
		}
		item := m[2]
		if t := taskRe.FindStringSubmatch(item); t != nil {
			box := "☐"
			if t[1] != " " {
				box = "☑"
			}
			item = box + " " + t[2]
		}
		return strings.Repeat("    ", depth) + mark + " " + inline(item)
	}
	if m := orderedRe.FindStringSubmatch(line); m != nil {
		return strings.Repeat("    ", indentDepth(m[1])) + m[2] + ". " + inline(m[3])
	}
	return inline(line)
}

// indentDepth turns leading spaces into a list nesting level.
func indentDepth(ws string) int {
	n := 0
	for _, c := range ws {
		if c == '\t' {
			n += 4
		} else {
			n++
		}
	}
	return n / 2
}

func fenceOpen(t string) string {
	for _, m := range []string{"```", "~~~"} {
		if strings.HasPrefix(t, m) {
			return m
		}
	}
	return ""
}

func isFenceClose(t, fence string) bool {
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

func isTableLine(t string) bool {
	return strings.HasPrefix(t, "|") && strings.Count(t, "|") >= 2
}

func isTableRule(t string) bool {
	if !isTableLine(t) {
		return false
	}
	return strings.Trim(t, "|-: ") == "" && strings.Contains(t, "-")
}

// inline converts the inline Markdown of one line.
func inline(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '`':
			run := countRun(s[i:], '`')
			closer := strings.Index(s[i+run:], strings.Repeat("`", run))
			if closer < 0 {
				b.WriteString(s[i : i+run])
				i += run
				continue
			}
			code := s[i+run : i+run+closer]
			b.WriteString("`" + escape(code) + "`")
			i += run + closer + run
			continue
		case c == '!' && strings.HasPrefix(s[i:], "!["):
			if text, url, n, ok := parseLink(s[i+1:]); ok {
				b.WriteString(link(url, text))
				i += 1 + n
				continue
			}
		case c == '[':
			if text, url, n, ok := parseLink(s[i:]); ok {
				b.WriteString(link(url, text))
				i += n
				continue
			}
		case c == '<':
			if end := strings.IndexByte(s[i:], '>'); end > 0 {
				if u := s[i+1 : i+end]; isURL(u) && !strings.ContainsAny(u, " <|") {
					b.WriteString("<" + escapeURL(u) + ">")
					i += end + 1
					continue
				}
			}
		case c == '*' || c == '_':
			if n, out, ok := emphasis(s, i); ok {
				b.WriteString(out)
				i += n
				continue
			}
		case c == '~' && strings.HasPrefix(s[i:], "~~"):
			if end := strings.Index(s[i+2:], "~~"); end > 0 {
				b.WriteString("~" + inline(s[i+2:i+2+end]) + "~")
				i += 2 + end + 2
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteString(escape(string(r)))
		i += size
	}
	return b.String()
}

// emphasis handles *, **, ***, _ and __ at s[i]. It returns the bytes
// consumed and the mrkdwn written for them.
func emphasis(s string, i int) (int, string, bool) {
	c := s[i]
	run := countRun(s[i:], c)
	if run > 3 {
		return 0, "", false
	}
	rest := s[i+run:]
	if rest == "" || unicode.IsSpace(firstRune(rest)) {
		return 0, "", false
	}
	// _ inside a word (snake_case) is not emphasis.
	if c == '_' && i > 0 && isWordRune(lastRune(s[:i])) {
		return 0, "", false
	}
	marker := strings.Repeat(string(c), run)
	end := findCloser(rest, marker, c)
	if end < 0 {
		return 0, "", false
	}
	inner := inline(rest[:end])
	var out string
	switch run {
	case 1:
		out = "_" + inner + "_"
	case 2:
		out = "*" + inner + "*"
	default:
		out = "*_" + inner + "_*"
	}
	return run + end + run, out, true
}

// findCloser finds the marker that closes an emphasis opened just before s:
// preceded by a non-space, not part of a longer run, and for _ not followed
// by a word character.
func findCloser(s, marker string, c byte) int {
	for from := 0; from < len(s); {
		j := strings.Index(s[from:], marker)
		if j < 0 {
			return -1
		}
		j += from
		after := j + len(marker)
		longer := after < len(s) && s[after] == c
		if j > 0 && !unicode.IsSpace(lastRune(s[:j])) && !longer &&
			!(c == '_' && after < len(s) && isWordRune(firstRune(s[after:]))) {
			return j
		}
		if longer {
			from = after + countRun(s[after:], c)
		} else {
			from = after
		}
	}
	return -1
}

// parseLink parses [text](url) at the start of s.
func parseLink(s string) (text, url string, n int, ok bool) {
	if !strings.HasPrefix(s, "[") {
		return "", "", 0, false
	}
	depth := 0
	closeText := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				closeText = i
			}
		}
		if closeText >= 0 {
			break
		}
	}
	if closeText < 0 || closeText+1 >= len(s) || s[closeText+1] != '(' {
		return "", "", 0, false
	}
	// The target ends at the ) that balances the ( (URLs such as
	// https://en.wikipedia.org/wiki/Go_(programming_language) hold some).
	end, depth := -1, 0
	for i := closeText + 2; i < len(s) && end < 0; i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				end = i - (closeText + 2)
			}
			depth--
		}
	}
	if end < 0 {
		return "", "", 0, false
	}
	target := strings.TrimSpace(s[closeText+2 : closeText+2+end])
	if sp := strings.IndexAny(target, " \t"); sp > 0 { // [t](url "title")
		target = target[:sp]
	}
	target = strings.Trim(target, "<>")
	if !isURL(target) {
		return "", "", 0, false
	}
	return s[1:closeText], target, closeText + 2 + end + 1, true
}

// link writes a Slack link; the text is escaped and may not contain | or >.
// A link whose text names another site than its target
// ([https://bank.example](https://evil.example)) is written as its target
// alone: Slack would show the text and hide where the link goes.
func link(target, text string) string {
	text = strings.TrimSpace(strings.NewReplacer("**", "", "__", "", "`", "").Replace(text))
	if text == "" || text == target || deceptive(text, target) {
		return "<" + escapeURL(target) + ">"
	}
	return "<" + escapeURL(target) + "|" + escape(strings.ReplaceAll(text, "|", "¦")) + ">"
}

// addressRe matches a word that reads as an address: a URL, or a domain
// (bank.example, www.bank.example/login, support@bank.example).
var addressRe = regexp.MustCompile(`(?i)^(?:[a-z][a-z0-9+.-]*:(?://)?)?(?:[^\s@/]+@)?((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}\.?)(?::\d+)?(?:[/?#]\S*)?$`)

// deceptive reports whether a link's text names a site that is not the
// link's target: some word of it reads as an address whose host is
// neither the target's host nor a parent domain of it.
func deceptive(text, target string) bool {
	host := targetHost(target)
	for _, w := range strings.Fields(text) {
		m := addressRe.FindStringSubmatch(strings.Trim(w, "()[]<>\"'.,;:!?"))
		if m == nil {
			continue
		}
		named := normHost(m[1])
		if host == "" || (host != named && !strings.HasSuffix(host, "."+named)) {
			return true
		}
	}
	return false
}

// targetHost returns the host a link goes to (for mailto:, the domain of
// the address), lower case, without "www.".
func targetHost(target string) string {
	if addr, ok := strings.CutPrefix(strings.ToLower(target), "mailto:"); ok {
		_, domain, _ := strings.Cut(addr, "@")
		domain, _, _ = strings.Cut(domain, "?")
		return normHost(domain)
	}
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return normHost(u.Hostname())
}

func normHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	return strings.TrimPrefix(h, "www.")
}

func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "mailto:")
}

// escapeURL keeps a URL from breaking out of its <…|…> wrapper.
func escapeURL(u string) string {
	return strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C", " ", "%20").Replace(u)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape makes text safe for mrkdwn: Slack reads only these three
// characters as control characters.
func escape(s string) string { return escaper.Replace(s) }

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// unescape reverses escape.
func unescape(s string) string { return unescaper.Replace(s) }

func countRun(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

func lastRune(s string) rune {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

var (
	slackUserRe    = regexp.MustCompile(`<@([UW][A-Z0-9]+)(?:\|([^>]*))?>`)
	slackChannelRe = regexp.MustCompile(`<#([CG][A-Z0-9]+)(?:\|([^>]*))?>`)
	slackSpecialRe = regexp.MustCompile(`<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>`)
	slackLinkRe    = regexp.MustCompile(`<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>`)
)

// plainText turns a user's Slack message into what a model should read:
// the bot's mention removed, links and mentions as text, entities decoded.
// With keepUsers, user mentions stay as <@U…> tokens (admin commands resolve
// them to identities).
func plainText(s, botUser string, keepUsers bool) string {
	if botUser != "" {
		s = regexp.MustCompile(`<@`+regexp.QuoteMeta(botUser)+`(?:\|[^>]*)?>`).ReplaceAllString(s, "")
	}
	s = slackUserRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := slackUserRe.FindStringSubmatch(m)
		if keepUsers {
			return "<@" + sub[1] + ">"
		}
		if sub[2] != "" {
			return "@" + sub[2]
		}
		return "@" + sub[1]
	})
	s = slackChannelRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := slackChannelRe.FindStringSubmatch(m)
		if sub[2] != "" {
			return "#" + sub[2]
		}
		return "#" + sub[1]
	})
	s = slackSpecialRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := slackSpecialRe.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[2]
		}
		return "@" + sub[1]
	})
	s = slackLinkRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := slackLinkRe.FindStringSubmatch(m)
		u := unescape(sub[1])
		if sub[2] == "" || sub[2] == sub[1] || strings.TrimPrefix(u, "mailto:") == sub[2] {
			return u
		}
		return sub[2] + " (" + u + ")"
	})
	return strings.TrimSpace(unescape(s))
}
