package tierset_test

import (
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/internal/tierset"
)

func TestParse(t *testing.T) {
	items, err := tierset.Parse(strings.NewReader(`# a comment before the first item
%%% en-code-1 code en
why does this fail

for i in range(3)
    print(i)
%%% de-code-2 code de balance=0 free=3
%% user
wie lese ich eine datei?
%% assistant
Mit bufio.Scanner.
%% user
und große dateien?
%%% en-vis-1 vision en images=2
%%% en-long-1 long en doc=100 docfirst=1
tl;dr
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(items), 4; got != want {
		t.Fatalf("items=%d, want %d", got, want)
	}
	if got := items[0].Text(); got != "why does this fail\n\nfor i in range(3)\n    print(i)" {
		t.Fatalf("text=%q: the prompt is kept as typed, blank lines and indents included", got)
	}
	if it := items[1]; len(it.Turns) != 3 || it.Turns[1].Role != bot.RoleAssistant || it.Text() != "und große dateien?" || it.Balance != 0 || it.FreeLeft != 3 {
		t.Fatalf("conversation item=%+v", it)
	}
	if it := items[2]; it.Images != 2 || it.Text() != "" || it.Balance != tierset.DefaultBalance {
		t.Fatalf("image-only item=%+v", it)
	}
	msgs := items[2].Messages("sys")
	if len(msgs) != 2 || msgs[0].Role != bot.RoleSystem || len(msgs[1].Images) != 2 {
		t.Fatalf("messages=%+v", msgs)
	}
	doc := items[3].Messages("")
	if len(doc) != 1 || !strings.HasSuffix(doc[0].Content, "\n\ntl;dr") || len(doc[0].Content) < 300 {
		t.Fatalf("document first: %q", doc[0].Content)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"TextBeforeHeader", "hello\n%%% a fast en\nhi\n", "1: text before the first"},
		{"ShortHeader", "%%% a fast\nhi\n", "1: a header is"},
		{"UnknownTier", "%%% a turbo en\nhi\n", `1: item a: unknown tier "turbo"`},
		{"BadLanguage", "%%% a fast english\nhi\n", `language "english"`},
		{"BadKey", "%%% a fast en colour=3\nhi\n", `unknown key "colour"`},
		{"BadNumber", "%%% a fast en balance=lots\nhi\n", `"balance=lots" is not key=number`},
		{"Duplicate", "%%% a fast en\nhi\n%%% a fast en\nho\n", "3: item a already starts at line 1"},
		{"Empty", "%%% a fast en\n\n%%% b fast en\nhi\n", "1: item a: the last turn must be the user's"},
		{"EndsWithAssistant", "%%% a fast en\n%% user\nhi\n%% assistant\nhello\n", "the last turn must be the user's"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tierset.Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want %q", err, tt.want)
			}
		})
	}
}

// The committed set: enough prompts, every tier and at least four
// languages in both parts, and no prompt in both.
func TestSet(t *testing.T) {
	train, err := tierset.LoadFile("../../testdata/tiers/train.txt")
	if err != nil {
		t.Fatal(err)
	}
	held, err := tierset.LoadFile("../../testdata/tiers/heldout.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(train) + len(held); n < 400 {
		t.Fatalf("%d prompts, want at least 400", n)
	}
	ids, texts := map[string]bool{}, map[string]string{}
	for _, it := range train {
		ids[it.ID] = true
		texts[it.Text()] = it.ID
	}
	for _, it := range held {
		if ids[it.ID] {
			t.Errorf("%s is in both parts", it.ID)
		}
		if id, ok := texts[it.Text()]; ok && it.Text() != "" {
			t.Errorf("held-out %s repeats training %s word for word", it.ID, id)
		}
	}
	for name, part := range map[string][]tierset.Item{"train": train, "heldout": held} {
		tiers, langs := map[string]int{}, map[string]int{}
		for _, it := range part {
			tiers[it.Tier]++
			langs[it.Lang]++
		}
		for _, tier := range tierset.Tiers {
			if tiers[tier] < 8 {
				t.Errorf("%s: %d %s prompts, want at least 8", name, tiers[tier], tier)
			}
		}
		if len(langs) < 4 {
			t.Errorf("%s: languages %v, want at least four", name, langs)
		}
	}
}

func TestDocument(t *testing.T) {
	for _, lang := range []string{"en", "ja", "xx"} {
		d := tierset.Document(lang, 10_000)
		if n := len(d) / 3; n < 10_000 || n > 10_400 {
			t.Errorf("%s: ~%d tokens, want about 10000", lang, n)
		}
	}
}
