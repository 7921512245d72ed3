package commands

import (
	"strings"
	"unicode"

	"github.com/orchat/orchat/bot"
)

// NewParser returns the parser every platform shares. A native slash
// command (Event.Command) arrives with its options by name; a typed line
// starting with "/" is split into options given by name (name:value) or by
// position; any other text is a question for `ask`.
func NewParser(cmds []*bot.Command) bot.Parser {
	byName := map[string]*bot.Command{}
	for _, c := range cmds {
		byName[c.Name] = c
	}
	return func(ev bot.Event) (bot.Invocation, error) {
		if ev.Command != "" {
			name := strings.ToLower(strings.TrimPrefix(ev.Command, "/"))
			c, ok := byName[name]
			if !ok {
				return bot.Invocation{}, unknownCommand(name, cmds)
			}
			args := parseArgs(c, ev.Text)
			if err := extraArgs(c, args); err != nil {
				return bot.Invocation{}, err
			}
			for k, v := range ev.Options {
				if args.Named == nil {
					args.Named = map[string]string{}
				}
				args.Named[k] = v
			}
			return bot.Invocation{Name: name, Args: args}, nil
		}
		text := strings.TrimSpace(cleanInvisible(ev.Text))
		if !strings.HasPrefix(text, "/") {
			return bot.Invocation{Name: "ask", Args: bot.Args{Named: map[string]string{"prompt": text}}}, nil
		}
		word, rest := cutWord(text[1:])
		name := strings.ToLower(word)
		c, ok := byName[name]
		if !ok {
			return bot.Invocation{}, unknownCommand(name, cmds)
		}
		args := parseArgs(c, rest)
		if err := extraArgs(c, args); err != nil {
			return bot.Invocation{}, err
		}
		return bot.Invocation{Name: name, Args: args}, nil
	}
}

// extraArgs refuses words a command has no option for, rather than
// silently ignoring them ("/balance now please", "/vote c1 A B").
func extraArgs(c *bot.Command, args bot.Args) error {
	if restIndex(c) < len(c.Options) || len(args.Pos) <= len(c.Options) {
		return nil
	}
	extra := bot.Clip(strings.Join(args.Pos[len(c.Options):], " "), 40)
	if len(c.Options) == 0 {
		return bot.Errorf(bot.EINVALID, "/%s takes no arguments, so I can't use %q. Usage: /%s", c.Name, extra, c.Usage)
	}
	return bot.Errorf(bot.EINVALID, "Too many arguments for /%s: %q is extra. Usage: /%s", c.Name, extra, c.Usage)
}

// parseArgs splits text into c's options. Leading name:value words set
// options by name; a Rest option takes the remaining text as written (so a
// prompt keeps its line breaks); other words fill options by position.
func parseArgs(c *bot.Command, text string) bot.Args {
	args := bot.Args{Named: map[string]string{}}
	var rest *bot.Option
	for i := range c.Options {
		if c.Options[i].Rest {
			rest = &c.Options[i]
		}
	}
	text = strings.TrimLeftFunc(text, unicode.IsSpace)
	for text != "" {
		word, after := cutWord(text)
		if name, val, ok := strings.Cut(word, ":"); ok && hasOption(c, strings.ToLower(name)) && val != "" {
			args.Named[strings.ToLower(name)] = unquote(val)
			text = after
			continue
		}
		if rest != nil && len(args.Pos) >= restIndex(c) {
			args.Named[rest.Name] = trailingOptions(c, strings.TrimSpace(text), args.Named)
			return args
		}
		args.Pos = append(args.Pos, unquote(word))
		text = after
	}
	return args
}

// trailingOptions takes name:value words off the end of a Rest text
// ("/compare Why is the sky blue? models:a,b") and returns what is left.
func trailingOptions(c *bot.Command, text string, named map[string]string) string {
	for {
		i := strings.LastIndexFunc(text, unicode.IsSpace)
		if i < 0 {
			return text
		}
		word := text[i+1:]
		name, val, ok := strings.Cut(word, ":")
		name = strings.ToLower(name)
		if !ok || val == "" || !hasOption(c, name) || isRest(c, name) {
			return text
		}
		named[name] = unquote(val)
		text = strings.TrimRightFunc(text[:i], unicode.IsSpace)
	}
}

func isRest(c *bot.Command, name string) bool {
	for _, o := range c.Options {
		if o.Name == name {
			return o.Rest
		}
	}
	return false
}

// restIndex is how many positional options precede the Rest option.
func restIndex(c *bot.Command) int {
	for i, o := range c.Options {
		if o.Rest {
			return i
		}
	}
	return len(c.Options)
}

func hasOption(c *bot.Command, name string) bool {
	for _, o := range c.Options {
		if o.Name == name {
			return true
		}
	}
	return false
}

// cutWord returns the first word of s (a "quoted phrase" counts as one) and
// the text after it with leading spaces removed.
func cutWord(s string) (string, string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if strings.HasPrefix(s, `"`) {
		if end := strings.Index(s[1:], `"`); end >= 0 {
			return s[:end+2], strings.TrimLeftFunc(s[end+2:], unicode.IsSpace)
		}
	}
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// cleanInvisible removes zero-width and bidirectional control characters,
// which change nothing a person can see but can hide a command ("/\u200bbalance")
// or reorder text.
func cleanInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\u200b', r == '\u200c', r == '\u200d', r == '\u2060', r == '\ufeff':
			return -1
		case bot.IsBidiOverride(r), r == '\u200e', r == '\u200f':
			return -1
		}
		return r
	}, s)
}

// unknownCommand says the command does not exist and suggests the nearest.
func unknownCommand(name string, cmds []*bot.Command) error {
	if name == "" {
		return bot.Errorf(bot.EINVALID, "Type a command after the slash, such as /ask or /balance. /help lists them all.")
	}
	// A command the name begins (/lead: /leaderboard) beats a short
	// command a few edits away (/help); then the nearest by edits.
	best, bestD := "", 1<<30
	for _, c := range cmds {
		if strings.HasPrefix(c.Name, name) && (best == "" || len(c.Name) < len(best)) {
			best, bestD = c.Name, 0
		}
	}
	for _, c := range cmds {
		if d := bot.EditDistance(name, c.Name); bestD > 0 && d < bestD {
			best, bestD = c.Name, d
		}
	}
	if bestD <= 3 {
		return bot.Errorf(bot.EINVALID, "Unknown command /%s. Did you mean /%s? /help lists every command.", bot.Clip(name, 30), best)
	}
	return bot.Errorf(bot.EINVALID, "Unknown command /%s. /help lists every command.", bot.Clip(name, 30))
}
