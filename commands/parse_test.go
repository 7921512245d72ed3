package commands_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
)

func TestParse(t *testing.T) {
	parse := commands.NewParser(commands.New(commands.Deps{}))
	for _, tt := range []struct {
		name  string
		ev    bot.Event
		want  string
		named map[string]string
		pos   []string
	}{
		{"MentionIsAsk", bot.Event{Text: "  what is 2+2?\nthanks "}, "ask", map[string]string{"prompt": "what is 2+2?\nthanks"}, nil},
		{"SlashAskKeepsLineBreaks", bot.Event{Text: "/ask line one\nline two"}, "ask", map[string]string{"prompt": "line one\nline two"}, nil},
		{"AskWithModelOption", bot.Event{Text: "/ask model:openai/gpt-5 explain monads"}, "ask", map[string]string{"model": "openai/gpt-5", "prompt": "explain monads"}, nil},
		{"CompareTrailingModels", bot.Event{Text: "/compare Why is the sky blue? models:a/b,c/d"}, "compare", map[string]string{"prompt": "Why is the sky blue?", "models": "a/b,c/d"}, nil},
		{"TopupPositional", bot.Event{Text: "/topup console:bob 500 for the hackathon"}, "topup", map[string]string{"note": "for the hackathon"}, []string{"console:bob", "500"}},
		{"TopupByName", bot.Event{Text: "/topup amount:500 user:console:bob"}, "topup", map[string]string{"amount": "500", "user": "console:bob"}, nil},
		{"CaseInsensitiveName", bot.Event{Text: "/BALANCE"}, "balance", map[string]string{}, nil},
		{"ZeroWidthIgnored", bot.Event{Text: "/\u200bbalance"}, "balance", map[string]string{}, nil},
		{"NativeSlashOptions", bot.Event{Command: "vote", Options: map[string]string{"compare": "c1", "choice": "A"}}, "vote", map[string]string{"compare": "c1", "choice": "A"}, nil},
		{"QuotedWord", bot.Event{Text: `/vote "c1" tie`}, "vote", map[string]string{}, []string{"c1", "tie"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parse(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if inv.Name != tt.want {
				t.Fatalf("name=%q, want %q", inv.Name, tt.want)
			}
			if !reflect.DeepEqual(inv.Args.Named, tt.named) {
				t.Fatalf("named=%q, want %q", inv.Args.Named, tt.named)
			}
			if !reflect.DeepEqual(inv.Args.Pos, tt.pos) {
				t.Fatalf("pos=%q, want %q", inv.Args.Pos, tt.pos)
			}
		})
	}

	t.Run("ErrUnknownCommandSuggestsNearest", func(t *testing.T) {
		_, err := parse(bot.Event{Text: "/blance"})
		if got, want := bot.ErrorMessage(err), "Unknown command /blance. Did you mean /balance? /help lists every command."; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("ErrUnknownCommandPrefersPrefix", func(t *testing.T) {
		_, err := parse(bot.Event{Text: "/lead"})
		if got, want := bot.ErrorMessage(err), "Unknown command /lead. Did you mean /leaderboard? /help lists every command."; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("ErrExtraArguments", func(t *testing.T) {
		for text, want := range map[string]string{
			"/balance now please": `/balance takes no arguments, so I can't use "now please". Usage: /balance`,
			"/vote c1 A B":        `Too many arguments for /vote: "B" is extra. Usage: /vote COMPARE_ID A|B|C|D|tie`,
		} {
			if _, err := parse(bot.Event{Text: text}); bot.ErrorMessage(err) != want || bot.ErrorCode(err) != bot.EINVALID {
				t.Errorf("%s: got %v, want EINVALID %q", text, err, want)
			}
		}
	})
	t.Run("ErrBareSlash", func(t *testing.T) {
		_, err := parse(bot.Event{Text: "/"})
		if bot.ErrorCode(err) != bot.EINVALID {
			t.Fatalf("err=%v, want EINVALID", err)
		}
	})
}

func TestParseAmount(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"500", 500, true}, {"15,000", 15000, true}, {"1_000", 1000, true}, {"1000000000000", 1_000_000_000_000, true},
		{"0", 0, false}, {"-5", 0, false}, {"abc", 0, false}, {"1e30", 0, false}, {"2.5", 0, false},
		{"1000000000001", 0, false}, {"99999999999999999999999", 0, false}, {"", 0, false},
		// Separators only in their places.
		{"1,000,000", 1_000_000, true}, {"999,999", 999_999, true}, {"1_000_000", 1_000_000, true},
		{"1,0,0", 0, false}, {"10,00", 0, false}, {"1000,000", 0, false}, {",100", 0, false}, {"100,", 0, false},
		{"1,,000", 0, false}, {"1,000_000", 0, false}, {"1__000", 0, false}, {"-1,000", 0, false}, {"2,500.5", 0, false},
	} {
		got, err := commands.ParseAmount(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAmount(%q)=%d,%v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && bot.ErrorCode(err) != bot.EINVALID {
			t.Errorf("ParseAmount(%q) error code %s, want EINVALID", tt.in, bot.ErrorCode(err))
		}
	}
}

func TestRank(t *testing.T) {
	t.Run("MoreWinsRankHigher", func(t *testing.T) {
		rs := commands.Rank([]bot.PairRecord{
			{A: "a", B: "b", AWins: 8, BWins: 2},
			{A: "b", B: "c", AWins: 6, BWins: 4},
			{A: "a", B: "c", AWins: 9, BWins: 1},
		})
		if got := []string{rs[0].Model, rs[1].Model, rs[2].Model}; !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
			t.Fatalf("order=%v, want a b c", got)
		}
		if rs[0].Votes != 20 || rs[0].Wins != 17 || rs[0].Losses != 3 {
			t.Fatalf("a: %+v", rs[0])
		}
	})
	t.Run("OneLuckyVoteDoesNotTopTheBoard", func(t *testing.T) {
		rs := commands.Rank([]bot.PairRecord{
			{A: "lucky", B: "x", AWins: 1},
			{A: "steady", B: "x", AWins: 30, BWins: 5},
		})
		if rs[0].Model != "steady" {
			t.Fatalf("top=%s, want steady: %+v", rs[0].Model, rs)
		}
	})
	t.Run("ThumbsAreGamesAgainstTheAverage", func(t *testing.T) {
		rs := commands.RankWithFeedback(nil, []bot.ModelFeedback{
			{Model: "b", Up: 9, Down: 1}, {Model: "a", Up: 1, Down: 9}, {Model: "solo", Up: 2},
		})
		if got := []string{rs[0].Model, rs[1].Model, rs[2].Model}; !reflect.DeepEqual(got, []string{"b", "solo", "a"}) {
			t.Fatalf("order=%v, want b (mostly up) solo (few ups) a (mostly down): %+v", got, rs)
		}
		if rs[2].Rating >= 1000 || rs[0].Up != 9 || rs[0].Down != 1 {
			t.Fatalf("a mostly-down model rates %d (want below the average 1000); b: %+v", rs[2].Rating, rs[0])
		}
	})
	t.Run("TiesAreEven", func(t *testing.T) {
		rs := commands.Rank([]bot.PairRecord{{A: "a", B: "b", Ties: 10}})
		if rs[0].Rating != rs[1].Rating {
			t.Fatalf("ratings %d and %d after only ties", rs[0].Rating, rs[1].Rating)
		}
	})
}

func TestParseSubcommands(t *testing.T) {
	parse := commands.NewParser(commands.New(commands.Deps{}))
	for _, tt := range []struct {
		name  string
		ev    bot.Event
		sub   string
		named map[string]string
		pos   []string
	}{
		{"AloneIsShow", bot.Event{Text: "/settings"}, "show", map[string]string{}, nil},
		{"Subcommand", bot.Event{Text: "/settings model openai/gpt-5-mini"}, "model", map[string]string{}, []string{"openai/gpt-5-mini"}},
		{"GroupAndSubcommand", bot.Event{Text: "/settings models allow anthropic/* :free"}, "models allow", map[string]string{"list": "anthropic/* :free"}, nil},
		{"TrailingChannel", bot.Event{Text: "/settings models deny openai/* channel:<#123>"}, "models deny", map[string]string{"list": "openai/*", "channel": "<#123>"}, nil},
		{"GroupDefault", bot.Event{Text: "/settings persona You are {user}'s pirate.\nBe brief."}, "persona set", map[string]string{"text": "You are {user}'s pirate.\nBe brief."}, nil},
		{"GroupNamedSubcommand", bot.Event{Text: "/settings persona clear"}, "persona clear", map[string]string{}, nil},
		{"Positional", bot.Event{Text: "/settings budget member-daily 5,000"}, "budget member-daily", map[string]string{}, []string{"5,000"}},
		{"AllowanceRest", bot.Event{Text: "/settings allowance 1000 every 7d"}, "allowance", map[string]string{"rule": "1000 every 7d"}, nil},
		{"SlackText", bot.Event{Command: "settings", Text: "compare blind on"}, "compare blind", map[string]string{}, []string{"on"}},
		{"DiscordNative", bot.Event{Command: "settings", Subcommand: "channels only", Options: map[string]string{"list": "<#1> <#2>"}}, "channels only", map[string]string{"list": "<#1> <#2>"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parse(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if inv.Name != "settings" || inv.Args.Sub != tt.sub {
				t.Fatalf("%s %q, want settings %q", inv.Name, inv.Args.Sub, tt.sub)
			}
			if !reflect.DeepEqual(inv.Args.Named, tt.named) {
				t.Fatalf("named=%q, want %q", inv.Args.Named, tt.named)
			}
			if !reflect.DeepEqual(inv.Args.Pos, tt.pos) {
				t.Fatalf("pos=%q, want %q", inv.Args.Pos, tt.pos)
			}
		})
	}
	for _, tt := range []struct{ text, want string }{
		{"/settings colour blue", `/settings has no subcommand "colour". Use /settings show`},
		{"/settings models", "Say what to do with /settings models: Use /settings models allow, /settings models deny, /settings models max-price."},
		{"/settings models permit x", "Say what to do with /settings models"},
		{"/settings budget daily 5 6", "Too many arguments for /settings budget daily"},
	} {
		_, err := parse(bot.Event{Text: tt.text})
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(bot.ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want %q", tt.text, err, tt.want)
		}
	}
}
