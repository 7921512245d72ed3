package bot

import (
	"net/url"
	"strings"
	"unicode"
)

// Footnote is one citation as every adapter shows it: numbered, with a
// title that cannot format, ping or pretend to be another link, and the
// site it points to spelled out.
type Footnote struct {
	N     int
	Title string // plain text, at most 100 runes
	URL   string // an http or https URL
	Host  string // the URL's host, shown beside the title
}

// MaxFootnotes bounds the sources shown under one answer.
const MaxFootnotes = 10

// Footnotes turns an answer's citations into numbered footnotes: only http
// and https URLs, each once (in order of first citation), at most
// MaxFootnotes. A title is stripped of markup and of anything that could
// mention someone; a missing title becomes the host.
func Footnotes(cits []Citation) []Footnote {
	var out []Footnote
	seen := map[string]bool{}
	for _, c := range cits {
		u, err := url.Parse(strings.TrimSpace(c.URL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			continue
		}
		link := u.String()
		if seen[link] {
			continue
		}
		seen[link] = true
		host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
		title := plainTitle(c.Title)
		if title == "" {
			title = host
		}
		out = append(out, Footnote{N: len(out) + 1, Title: title, URL: link, Host: host})
		if len(out) == MaxFootnotes {
			break
		}
	}
	return out
}

// plainTitle keeps a title's words and drops what platforms read as markup
// or mentions: * _ ~ ` | [ ] < > # @ and control characters.
func plainTitle(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return ' '
		case strings.ContainsRune("*_~`|[]<>#@\\", r):
			return ' '
		}
		return r
	}, s)
	return Clip(strings.Join(strings.Fields(s), " "), 100)
}
