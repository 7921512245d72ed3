package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

func TestSectionsOf(t *testing.T) {
	t.Run("EscapingHeavyTextStaysWithinSlackLimits", func(t *testing.T) {
		md := strings.Repeat("a<b && c>d & ", textLimit/13)
		secs := sectionsOf(md)
		for i, s := range secs {
			if n := utf8.RuneCountInString(s); n > sectionLimit {
				t.Fatalf("section %d has %d characters, Slack takes %d", i, n, sectionLimit)
			}
		}
		if got, want := squash(strings.Join(secs, "")), squash(Mrkdwn(md)); got != want {
			t.Fatalf("the sections lost text: %d characters, want %d", len(got), len(want))
		}
	})
	t.Run("CodeFencesBalancedInEverySection", func(t *testing.T) {
		md := "Here:\n```go\n" + strings.Repeat("x := a && b // <- keep\n", 400) + "```\nDone."
		for i, s := range sectionsOf(md) {
			if strings.Count(s, "```")%2 != 0 {
				t.Fatalf("section %d leaves a code fence open", i)
			}
		}
	})
	t.Run("EmptyTextShowsAnEllipsis", func(t *testing.T) {
		if got := sectionsOf(""); len(got) != 1 || got[0] != "…" {
			t.Fatalf("sectionsOf(\"\")=%q", got)
		}
	})
}

func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, strings.ReplaceAll(s, "```", ""))
}

func TestRender(t *testing.T) {
	t.Run("StreamingShowsAnEllipsisThenTheFooter", func(t *testing.T) {
		r := render(bot.Message{Kind: bot.KindReply, Status: bot.StatusStreaming, Text: "Hel"}, "")
		if got := lastText(t, r); got != "…" {
			t.Fatalf("status line %q, want …", got)
		}
		r = render(bot.Message{Kind: bot.KindReply, Status: bot.StatusDone, Text: "Hello", Footer: "m · <x> & y"}, "")
		if got := lastText(t, r); got != "m · &lt;x&gt; &amp; y" {
			t.Fatalf("footer %q, want it escaped", got)
		}
	})
	t.Run("SourcesAreBareLinksThatPingNobody", func(t *testing.T) {
		r := render(bot.Message{Kind: bot.KindReply, Status: bot.StatusDone, Text: "x", Footer: "f", Citations: []bot.Citation{
			{URL: "https://example.com/a?b=1&c=2", Title: "<!channel> <https://evil.test|bank> & co"},
		}}, "")
		var src string
		for _, b := range r.blocks {
			if cb, ok := b.(*slackapi.ContextBlock); ok && cb.BlockID == blockSources {
				src = contextText(cb)
			}
		}
		if want := "[1] !channel https://evil.test bank &amp; co — <https://example.com/a?b=1&amp;c=2>"; src != want {
			t.Fatalf("sources %q, want %q", src, want)
		}
	})
	t.Run("IntroOnTheFirstPartOnly", func(t *testing.T) {
		if ids := blockIDs(render(bot.Message{Kind: bot.KindReply, Text: "x", Part: 0}, "intro")); ids[0] != blockIntro {
			t.Fatalf("part 0 blocks %v, want the intro first", ids)
		}
		if ids := blockIDs(render(bot.Message{Kind: bot.KindReply, Text: "x", Part: 1}, "intro")); ids[0] == blockIntro {
			t.Fatalf("part 1 blocks %v, want no intro", ids)
		}
	})
	t.Run("AtMostFiftyBlocks", func(t *testing.T) {
		r := render(bot.Message{Kind: bot.KindReply, Text: strings.Repeat("<&>", textLimit/3), Footer: "f"}, "intro")
		if len(r.blocks) > blockLimit {
			t.Fatalf("%d blocks, Slack takes %d", len(r.blocks), blockLimit)
		}
	})
	t.Run("CompareVoteButtons", func(t *testing.T) {
		v := bot.CompareView{ID: "c123", Choices: []string{"A", "B", "tie"}, Tally: bot.Tally{"B": 2},
			Panels: []bot.Panel{{Label: "A", Model: "m/a", Status: bot.StatusDone, Text: "one"}, {Label: "B", Model: "m/b", Status: bot.StatusFailed, Error: "broke <here>"}}}
		r := render(bot.Message{Kind: bot.KindCompare, Status: bot.StatusDone, Compare: &v}, "")
		var actions *slackapi.ActionBlock
		for _, b := range r.blocks {
			if a, ok := b.(*slackapi.ActionBlock); ok {
				actions = a
			}
		}
		if actions == nil || len(actions.Elements.ElementSet) != 3 {
			t.Fatalf("want an actions block with 3 buttons, got %+v", actions)
		}
		for i, e := range actions.Elements.ElementSet {
			b := e.(*slackapi.ButtonBlockElement)
			id, choice, ok := parseVoteValue(b.Value)
			if !ok || id != "c123" || choice != v.Choices[i] {
				t.Fatalf("button %d value %q", i, b.Value)
			}
		}
		js, _ := json.Marshal(r.blocks)
		if strings.Contains(string(js), "<here>") || !strings.Contains(string(js), "Votes: B 2") {
			t.Fatalf("blocks %s: want the error escaped and the tally shown", js)
		}
	})
	t.Run("TallyReplacedInPlace", func(t *testing.T) {
		v := bot.CompareView{ID: "c1", Choices: []string{"A", "B"}, Panels: []bot.Panel{{Label: "A"}, {Label: "B"}}}
		r := render(bot.Message{Kind: bot.KindCompare, Compare: &v}, "")
		blocks, ok := withTally(r.blocks, bot.Tally{"A": 1, "tie": 2})
		js, _ := json.Marshal(blocks)
		if !ok || !strings.Contains(string(js), "Votes: A 1 · tie 2") || len(blocks) != len(r.blocks) {
			t.Fatalf("withTally: ok=%v %s", ok, js)
		}
	})
}

func lastText(t *testing.T, r rendered) string {
	t.Helper()
	cb, ok := r.blocks[len(r.blocks)-1].(*slackapi.ContextBlock)
	if !ok {
		t.Fatalf("last block is %T, want a context block", r.blocks[len(r.blocks)-1])
	}
	return contextText(cb)
}

func blockIDs(r rendered) []string {
	var ids []string
	for _, b := range r.blocks {
		ids = append(ids, b.ID())
	}
	return ids
}

func TestPlainText(t *testing.T) {
	for _, tt := range []struct {
		name, in  string
		keepUsers bool
		want      string
	}{
		{"BotMentionRemoved", "<@UBOT> what is 2 &amp; 2?", false, "what is 2 & 2?"},
		{"UserMentionAsName", "ask <@U123|bob> and <@U456>", false, "ask @bob and @U456"},
		{"UserMentionKeptForAdminCommands", "<@U123|bob> 500 thanks", true, "<@U123> 500 thanks"},
		{"Channel", "in <#C123|general>", false, "in #general"},
		{"Special", "<!here> look", false, "@here look"},
		{"Links", "see <https://x.dev/?a=1&amp;b=2|the docs> and <https://y.dev>", false, "see the docs (https://x.dev/?a=1&b=2) and https://y.dev"},
		{"TypedAngleBrackets", "if a &lt; b &amp;&amp; c &gt; d", false, "if a < b && c > d"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainText(tt.in, "UBOT", tt.keepUsers); got != tt.want {
				t.Fatalf("plainText(%q)=%q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTSLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"1712345678.000100", "1712345678.000200", true},
		{"1712345678.000200", "1712345678.000100", false},
		{"1712345678.000100", "1712345678.000100", false},
		{"999999999.900000", "1000000000.000000", true},
		{"1712345678.1", "1712345678.000200", false},
	} {
		if got := tsLess(tt.a, tt.b); got != tt.want {
			t.Errorf("tsLess(%s, %s)=%v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestPacerSlots checks the bucket's promise without waiting: however many
// callers reserve at once, the slots they get put at most burst + W×rate
// calls in any window W.
func TestPacerSlots(t *testing.T) {
	p := newPacer(600) // 10 a second, bursts of 5
	var slots []time.Time
	for range 60 {
		slots = append(slots, p.reserve("T1"))
	}
	for i := range slots {
		n := 0
		for _, s := range slots[i:] {
			if s.Sub(slots[i]) < time.Second {
				n++
			}
		}
		if n > 5+10 {
			t.Fatalf("%d calls within a second of slot %d, want at most 15", n, i)
		}
	}
	if other := p.reserve("T2"); time.Until(other) > 10*time.Millisecond {
		t.Fatalf("another workspace waits %s: buckets must be per workspace", time.Until(other))
	}
	p.block("T2", time.Hour)
	if next := p.reserve("T2"); time.Until(next) < 59*time.Minute {
		t.Fatalf("a 429 with Retry-After of an hour leaves the next slot in %s", time.Until(next))
	}
}
