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
			args, err := commandArgs(c, ev.Subcommand, ev.Text)
			if err != nil {
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
		args, err := commandArgs(c, "", rest)
		if err != nil {
			return bot.Invocation{}, err
		}
		return bot.Invocation{Name: name, Args: args}, nil
	}
}

// commandArgs reads a command's arguments from text. For a command with
// subcommands, sub is the path a platform named ("models allow"), or ""
// to read it from the first words of text; the rest are the
// subcommand's options.
func commandArgs(c *bot.Command, sub, text string) (bot.Args, error) {
	if len(c.Subcommands) == 0 {
		args := parseArgs(c, text)
		return args, extraArgs(c, args)
	}
	if sub == "" {
		var err error
		if sub, text, err = subcommandPath(c, text); err != nil {
			return bot.Args{}, err
		}
	}
	sc, ok := c.Find(sub)
	if !ok {
		return bot.Args{}, bot.Errorf(bot.EINVALID, "/%s has no subcommand %q. %s", c.Name, bot.Clip(sub, 40), subcommandList(c.Name, c.Subcommands))
	}
	leaf := &bot.Command{Name: c.Name + " " + sub, Usage: subUsage(c.Name, sub, sc), Options: sc.Options}
	args := parseArgs(leaf, text)
	args.Sub = sub
	return args, extraArgs(leaf, args)
}

// subcommandPath takes the subcommand's words off the start of text: a
// subcommand, or a group and one of its subcommands (its Default when
// the next word names none). No word at all is the first subcommand.
func subcommandPath(c *bot.Command, text string) (path, rest string, err error) {
	word, rest := cutWord(text)
	if word == "" {
		return c.Subcommands[0].Name, "", nil
	}
	sc := findSub(c.Subcommands, word)
	if sc == nil {
		return "", "", bot.Errorf(bot.EINVALID, "/%s has no subcommand %q. %s", c.Name, bot.Clip(word, 30), subcommandList(c.Name, c.Subcommands))
	}
	if len(sc.Subcommands) == 0 {
		return sc.Name, rest, nil
	}
	next, after := cutWord(rest)
	if leaf := findSub(sc.Subcommands, next); leaf != nil {
		return sc.Name + " " + leaf.Name, after, nil
	}
	if sc.Default != "" && next != "" {
		return sc.Name + " " + sc.Default, rest, nil
	}
	return "", "", bot.Errorf(bot.EINVALID, "Say what to do with /%s %s: %s", c.Name, sc.Name, subcommandList(c.Name+" "+sc.Name, sc.Subcommands))
}

func findSub(subs []bot.Subcommand, name string) *bot.Subcommand {
	for i := range subs {
		if strings.EqualFold(subs[i].Name, name) {
			return &subs[i]
		}
	}
	return nil
}

// subcommandList names the subcommands, for a refusal: "Use /settings
// show, /settings persona …".
func subcommandList(prefix string, subs []bot.Subcommand) string {
	names := make([]string, 0, len(subs))
	for _, s := range subs {
		names = append(names, "/"+prefix+" "+s.Name)
	}
	return "Use " + strings.Join(names, ", ") + "."
}

// subUsage is a subcommand's usage line: /settings models allow LIST
// [channel:#c].
func subUsage(command, path string, sc *bot.Subcommand) string {
	u := command + " " + path
	for _, o := range sc.Options {
		switch {
		case o.Required || o.Rest:
			u += " " + strings.ToUpper(o.Name)
		default:
			u += " [" + o.Name + ":…]"
		}
	}
	return u
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
