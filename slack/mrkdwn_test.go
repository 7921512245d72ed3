package slack_test

import (
	"testing"

	"github.com/orchat/orchat/slack"
)

func TestMrkdwn(t *testing.T) {
	for _, tt := range []struct {
		name, md, want string
	}{
		{"Bold", "a **bold** word", "a *bold* word"},
		{"BoldUnderscores", "__bold__", "*bold*"},
		{"ItalicStar", "an *italic* word", "an _italic_ word"},
		{"ItalicUnderscore", "an _italic_ word", "an _italic_ word"},
		{"BoldItalic", "***both***", "*_both_*"},
		{"ItalicInsideBold", "**very *much* so**", "*very _much_ so*"},
		{"Strike", "~~gone~~", "~gone~"},
		{"SnakeCaseStaysPlain", "call my_var_name now", "call my_var_name now"},
		{"LoneStars", "2 * 3 * 4", "2 * 3 * 4"},
		{"UnclosedEmphasis", "*not closed", "*not closed"},
		{"Link", "see [OpenRouter](https://openrouter.ai) now", "see <https://openrouter.ai|OpenRouter> now"},
		{"LinkWithParens", "[Go](https://en.wikipedia.org/wiki/Go_(programming_language))", "<https://en.wikipedia.org/wiki/Go_(programming_language)|Go>"},
		{"LinkWithTitle", `[docs](https://x.dev/a "The docs")`, "<https://x.dev/a|docs>"},
		{"LinkTextEscaped", "[a|b & <c>](https://x.dev/?q=1&r=2)", "<https://x.dev/?q=1&amp;r=2|a¦b &amp; &lt;c&gt;>"},
		{"LinkSameAsURL", "[https://x.dev](https://x.dev)", "<https://x.dev>"},
		{"Image", "![a cat](https://x.dev/cat.png)", "<https://x.dev/cat.png|a cat>"},
		// A link whose text names another site shows where it really goes.
		{"DeceptiveURLText", "[https://bank.example](https://evil.example)", "<https://evil.example>"},
		{"DeceptiveDomainText", "log in at [bank.example](https://evil.example/login) now", "log in at <https://evil.example/login> now"},
		{"DeceptiveWWWText", "[www.bank.example/login](http://evil.example)", "<http://evil.example>"},
		{"DeceptiveWordInText", "[Your bank.example account](https://evil.example)", "<https://evil.example>"},
		{"DeceptiveLookalikeHost", "[bank.example](https://bank.example.evil.example)", "<https://bank.example.evil.example>"},
		{"DeceptiveUserinfo", "[https://bank.example](https://bank.example@evil.example)", "<https://bank.example@evil.example>"},
		{"DeceptiveMailto", "[support@bank.example](mailto:phish@evil.example)", "<mailto:phish@evil.example>"},
		{"DeceptiveImageText", "![bank.example](https://evil.example/x.png)", "<https://evil.example/x.png>"},
		{"URLTextSameHost", "[https://go.dev](https://go.dev/doc/)", "<https://go.dev/doc/|https://go.dev>"},
		{"DomainTextSameHost", "[WWW.Go.dev](https://go.dev/doc)", "<https://go.dev/doc|WWW.Go.dev>"},
		{"DomainTextSubdomain", "[python.org](https://docs.python.org/3/)", "<https://docs.python.org/3/|python.org>"},
		{"MailtoSameDomain", "[help@x.dev](mailto:help@x.dev)", "<mailto:help@x.dev|help@x.dev>"},
		{"PlainTextWithVersion", "[Go 1.26 release notes](https://go.dev/doc/go1.26)", "<https://go.dev/doc/go1.26|Go 1.26 release notes>"},
		{"NotAWebLink", "[x](javascript:alert(1))", "[x](javascript:alert(1))"},
		{"Autolink", "<https://example.com/a?b=1>", "<https://example.com/a?b=1>"},
		{"Heading", "# Title", "*Title*"},
		{"HeadingBoldInside", "## **Bold** title ##", "*Bold title*"},
		{"HeadingItalicInside", "### An *italic* word", "*An _italic_ word*"},
		{"Bullets", "- one\n* two\n+ three", "• one\n• two\n• three"},
		{"NestedBullets", "- one\n  - sub\n    - subsub", "• one\n    ◦ sub\n        • subsub"},
		{"TaskList", "- [ ] todo\n- [x] done", "• ☐ todo\n• ☑ done"},
		{"Numbered", "1. first\n2) second", "1. first\n2. second"},
		{"Quote", "> quoted **x**", "> quoted *x*"},
		{"Rule", "---", "──────────"},
		{"InlineCodeKeptAndEscaped", "use `a<b && **c**`", "use `a&lt;b &amp;&amp; **c**`"},
		{"FenceKeptLanguageDropped", "```go\nif a && b < c {\n\t**x**\n}\n```", "```\nif a &amp;&amp; b &lt; c {\n\t**x**\n}\n```"},
		{"UnclosedFenceClosed", "```\ncode", "```\ncode\n```"},
		{"Table", "| a | b |\n|---|:-:|\n| 1 | <2> |", "```\n| a | b |\n|---|:-:|\n| 1 | &lt;2&gt; |\n```"},
		{"MassMentionsEscaped", "<!channel> <!here> <!everyone> <@U123> <#C1|x> & more", "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; &lt;@U123&gt; &lt;#C1|x&gt; &amp; more"},
		{"EntitiesNotDoubleDecoded", "&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;"},
		{"LinkCannotSmuggleAMention", "[<!here>](https://x.dev)", "<https://x.dev|&lt;!here&gt;>"},
		{"CRLF", "a\r\nb", "a\nb"},
		{"Empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := slack.Mrkdwn(tt.md); got != tt.want {
				t.Fatalf("Mrkdwn(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
		})
	}
}
