// Package tierset reads the auto router's labelled prompts
// (router/testdata/tiers/*.txt): the training part the tier model is
// learned from and the held-out part the evaluation measures it on.
//
// The format is plain text so that prompts, code and pasted logs are
// written as people type them, with no escaping:
//
//	%%% en-code-014 code en
//	Write a Go function that reverses a UTF-8 string
//	%%% de-code-031 code de
//	%% user
//	Wie lese ich in Go eine Datei zeilenweise?
//	%% assistant
//	Mit bufio.Scanner …
//	%% user
//	und wenn die zeilen länger als 64k sind?
//	%%% en-long-003 long en doc=60000 balance=12000
//	summarise the attached contract, esp. the termination clauses
//
// A header line is "%%% ID TIER LANG [key=value …]"; everything up to the
// next header is the prompt. Without "%% user" / "%% assistant" lines the
// prompt is one user message; with them, the last user turn is the new
// message and the turns before it are the conversation. The keys carry the
// hard signals the router sees besides the text: images=N attached images,
// doc=N an attached document of about N tokens (docfirst=1 puts it before
// the question, as a paste followed by a question), balance=N the tokens
// the member can spend (default 1,000,000: any tier is affordable) and
// free=N the free requests left today (default 50).
package tierset

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/orchat/orchat/bot"
)

// Tiers are the labels an item may carry, as router.Tiers.
var Tiers = []string{"fast", "general", "code", "reasoning", "long", "vision", "free"}

// DefaultBalance is the balance of an item that does not set one: enough
// for any tier, so the label is about the prompt, not the purse.
const DefaultBalance = 1_000_000

// Item is one labelled prompt.
type Item struct {
	ID   string
	Tier string // the tier a careful person would route it to
	Lang string // ISO 639-1 code of the prompt's language
	// Turns are the conversation, oldest first; the last is the user's new
	// message.
	Turns []Turn
	// Images attached to the new message.
	Images int
	// DocTokens is the size of an attached document; DocFirst puts it
	// before the question.
	DocTokens int
	DocFirst  bool
	Balance   int64
	FreeLeft  int
	// Line is where the item starts in its file, for error messages.
	Line int
}

// Turn is one message of an item's conversation.
type Turn struct {
	Role string // bot.RoleUser or bot.RoleAssistant
	Text string
}

// Text is the new message as typed, without the attached document.
func (it Item) Text() string { return it.Turns[len(it.Turns)-1].Text }

// LoadFile reads a set from a file.
func LoadFile(path string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	items, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return items, nil
}

// Parse reads a set. Errors name the line.
func Parse(r io.Reader) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var (
		items []Item
		cur   *Item
		role  string
		body  []string
		seen  = map[string]int{}
		line  int
	)
	endTurn := func() {
		if cur == nil {
			return
		}
		text := strings.TrimSpace(strings.Join(body, "\n"))
		if text != "" || role != "" {
			if role == "" {
				role = bot.RoleUser
			}
			cur.Turns = append(cur.Turns, Turn{Role: role, Text: text})
		}
		body = body[:0]
	}
	endItem := func() error {
		if cur == nil {
			return nil
		}
		endTurn()
		it := cur
		if len(it.Turns) == 0 && it.Images > 0 {
			it.Turns = []Turn{{Role: bot.RoleUser}} // an image alone
		}
		switch {
		case len(it.Turns) == 0 || it.Turns[len(it.Turns)-1].Role != bot.RoleUser:
			return fmt.Errorf("%d: item %s: the last turn must be the user's", it.Line, it.ID)
		case it.Text() == "" && it.Images == 0:
			return fmt.Errorf("%d: item %s: the new message is empty", it.Line, it.ID)
		}
		items = append(items, *it)
		cur = nil
		return nil
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "%%% "):
			if err := endItem(); err != nil {
				return nil, err
			}
			it, err := parseHeader(strings.Fields(text[4:]), line)
			if err != nil {
				return nil, err
			}
			if prev, dup := seen[it.ID]; dup {
				return nil, fmt.Errorf("%d: item %s already starts at line %d", line, it.ID, prev)
			}
			seen[it.ID] = line
			cur, role = &it, ""
		case cur == nil:
			if strings.TrimSpace(text) != "" && !strings.HasPrefix(text, "#") {
				return nil, fmt.Errorf("%d: text before the first %%%%%% header", line)
			}
		case text == "%% user" || text == "%% assistant":
			if role != "" || strings.TrimSpace(strings.Join(body, "")) != "" {
				endTurn()
			}
			role = strings.TrimPrefix(text, "%% ")
		default:
			body = append(body, text)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%d: %w", line, err)
	}
	if err := endItem(); err != nil {
		return nil, err
	}
	return items, nil
}

func parseHeader(f []string, line int) (Item, error) {
	if len(f) < 3 {
		return Item{}, fmt.Errorf("%d: a header is %%%%%% ID TIER LANG [key=value …], not %q", line, strings.Join(f, " "))
	}
	it := Item{ID: f[0], Tier: f[1], Lang: f[2], Balance: DefaultBalance, FreeLeft: 50, Line: line}
	if !slices.Contains(Tiers, it.Tier) {
		return it, fmt.Errorf("%d: item %s: unknown tier %q (tiers: %s)", line, it.ID, it.Tier, strings.Join(Tiers, ", "))
	}
	if len(it.Lang) != 2 {
		return it, fmt.Errorf("%d: item %s: language %q is not a two-letter code", line, it.ID, it.Lang)
	}
	for _, kv := range f[3:] {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 {
			return it, fmt.Errorf("%d: item %s: %q is not key=number", line, it.ID, kv)
		}
		switch k {
		case "images":
			it.Images = int(n)
		case "doc":
			it.DocTokens = int(n)
		case "docfirst":
			it.DocFirst = n != 0
		case "balance":
			it.Balance = n
		case "free":
			it.FreeLeft = int(n)
		default:
			return it, fmt.Errorf("%d: item %s: unknown key %q (keys: images, doc, docfirst, balance, free)", line, it.ID, k)
		}
	}
	return it, nil
}

// Messages is the conversation as the router receives it: a system
// prompt, the turns, the attached document and images on the new message.
func (it Item) Messages(systemPrompt string) []bot.ChatMessage {
	var msgs []bot.ChatMessage
	if systemPrompt != "" {
		msgs = append(msgs, bot.ChatMessage{Role: bot.RoleSystem, Content: systemPrompt})
	}
	for i, t := range it.Turns {
		m := bot.ChatMessage{Role: t.Role, Content: t.Text}
		if i == len(it.Turns)-1 {
			if it.DocTokens > 0 {
				doc := Document(it.Lang, it.DocTokens)
				if it.DocFirst {
					m.Content = doc + "\n\n" + m.Content
				} else {
					m.Content = m.Content + "\n\n" + doc
				}
			}
			for range it.Images {
				m.Images = append(m.Images, "https://example.org/upload/"+it.ID+".png")
			}
		}
		msgs = append(msgs, m)
	}
	return msgs
}
