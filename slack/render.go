package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// Slack's limits for one message (https://docs.slack.dev/reference/block-kit/blocks).
const (
	sectionLimit = 3000 // characters of one section block's text
	blockLimit   = 50   // blocks in one message
	contextLimit = 2000 // characters of one context element
	// textLimit is the Markdown one message holds (bot.Limits.Text). After
	// conversion and escaping it takes several section blocks; the engine
	// splits longer answers over several messages in the thread.
	textLimit = 12000
	// fallbackLimit bounds the notification text sent with the blocks.
	fallbackLimit = 300
)

// Block ids: the kind of a message is written into its blocks, so reading a
// thread back can tell answers from notices, and a vote can find the tally.
const (
	blockIntro   = "orchat.intro"
	blockReply   = "orchat.reply"
	blockNotice  = "orchat.notice"
	blockError   = "orchat.error"
	blockFooter  = "orchat.footer"
	blockPanel   = "orchat.panel"
	blockTally   = "orchat.tally"
	blockVote    = "orchat.vote"
	blockSources = "orchat.sources"
	// blockThinking marks the thread reply holding an answer's thinking.
	blockThinking = "orchat.thinking"
	voteActionID  = "orchat_vote"
)

// rendered is a message as Slack takes it: blocks and the notification text.
type rendered struct {
	blocks []slackapi.Block
	text   string
}

func (r rendered) options() []slackapi.MsgOption {
	return []slackapi.MsgOption{
		slackapi.MsgOptionText(r.text, false),
		slackapi.MsgOptionBlocks(r.blocks...),
	}
}

// render turns a bot message into Slack blocks. intro, when set, is a
// context line shown above the first part (who asked what, for slash
// commands whose question Slack does not show).
func render(m bot.Message, intro string) rendered {
	var blocks []slackapi.Block
	if intro != "" && m.Part == 0 {
		blocks = append(blocks, contextBlock(blockIntro, intro))
	}
	switch {
	case m.Kind == bot.KindCompare && m.Compare != nil:
		blocks = append(blocks, compareBlocks(*m.Compare)...)
		return rendered{blocks: blocks, text: escape(bot.Clip(compareFallback(*m.Compare), fallbackLimit))}
	case m.Kind == bot.KindError:
		blocks = append(blocks, sectionBlock(blockError, "⚠️ "+sectionsOf(m.Text)[0]))
	default:
		id := blockReply
		if m.Kind == bot.KindNotice {
			id = blockNotice
		}
		texts := sectionsOf(m.Text)
		room := blockLimit - len(blocks) - 1
		if len(texts) > room {
			texts = texts[:room]
			texts[room-1] += "\n_… (cut: too long for one Slack message)_"
		}
		for i, t := range texts {
			blocks = append(blocks, sectionBlock(fmt.Sprintf("%s.%d", id, i), t))
		}
		if src := sources(bot.Footnotes(m.Citations)); src != "" {
			blocks = append(blocks, contextBlock(blockSources, src))
		}
	}
	switch {
	case m.Footer != "":
		blocks = append(blocks, contextBlock(blockFooter, escape(m.Footer)))
	case m.Status == bot.StatusStreaming:
		blocks = append(blocks, contextBlock(blockFooter, "…"))
	}
	text := strings.TrimSpace(m.Text)
	if text == "" {
		text = "…"
	}
	return rendered{blocks: blocks, text: escape(bot.Clip(text, fallbackLimit))}
}

// sources renders footnotes as a context line each: the number, the title
// as plain text and the bare link (Slack shows where it goes; no masked
// link that could say one site and open another).
func sources(fn []bot.Footnote) string {
	var b strings.Builder
	for _, f := range fn {
		line := fmt.Sprintf("[%d] %s — <%s>\n", f.N, escape(f.Title), escape(f.URL))
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line) > contextLimit {
			break
		}
		b.WriteString(line)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// sectionsOf converts Markdown into section texts of at most sectionLimit
// characters each. It splits the Markdown (on paragraph and line breaks,
// keeping code fences balanced) before converting, halving the piece size
// where escaping made a piece too long.
func sectionsOf(md string) []string {
	if strings.TrimSpace(md) == "" {
		return []string{"…"}
	}
	return splitConverted(md, sectionLimit-100)
}

func splitConverted(md string, max int) []string {
	var out []string
	for _, part := range bot.Split(md, max) {
		c := Mrkdwn(part)
		if strings.TrimSpace(c) == "" {
			continue
		}
		if utf8.RuneCountInString(c) <= sectionLimit {
			out = append(out, c)
			continue
		}
		if max < 200 {
			out = append(out, clipMrkdwn(c, sectionLimit))
			continue
		}
		out = append(out, splitConverted(part, max/2)...)
	}
	if len(out) == 0 {
		out = []string{"…"}
	}
	return out
}

// clipMrkdwn cuts mrkdwn to at most n runes without leaving half an entity
// or half a link.
func clipMrkdwn(s string, n int) string {
	clipped := bot.Clip(s, n)
	if clipped == s {
		return s
	}
	cut := strings.TrimSuffix(clipped, "…")
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	return cut + "…"
}

func sectionBlock(id, text string) *slackapi.SectionBlock {
	s := slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false), nil, nil)
	s.BlockID = id
	return s
}

func contextBlock(id, text string) *slackapi.ContextBlock {
	return slackapi.NewContextBlock(id, slackapi.NewTextBlockObject(slackapi.MarkdownType, clipMrkdwn(text, contextLimit), false, false))
}

// compareBlocks shows one section per model (its label, model and answer),
// a context line of facts under each, the totals, and once voting is open
// the tally and one button per choice.
func compareBlocks(v bot.CompareView) []slackapi.Block {
	var blocks []slackapi.Block
	for i, p := range v.Panels {
		if i > 0 {
			blocks = append(blocks, slackapi.NewDividerBlock())
		}
		model := p.Model
		if p.Answered != "" && p.Answered != p.Model {
			model += " → " + p.Answered
		}
		head := "*" + escape(p.Label+" · "+model) + "*\n"
		body := Mrkdwn(p.Text)
		switch {
		case strings.TrimSpace(p.Text) == "" && p.Status == bot.StatusStreaming:
			body = "_…_"
		case strings.TrimSpace(p.Text) == "":
			body = "_(no answer)_"
		}
		if p.Error != "" {
			body += "\n⚠️ " + escape(p.Error)
		}
		text := head + body
		if utf8.RuneCountInString(text) > sectionLimit {
			text = clipMrkdwn(head+Mrkdwn(bot.Clip(p.Text, sectionLimit-200)), sectionLimit-40) + "\n_(cut to fit)_"
		}
		blocks = append(blocks,
			sectionBlock(fmt.Sprintf("%s.%d", blockPanel, i), text),
			contextBlock(fmt.Sprintf("%s.%d.facts", blockPanel, i), escape(p.Summary())))
		if src := sources(bot.Footnotes(p.Citations)); src != "" {
			blocks = append(blocks, contextBlock(fmt.Sprintf("%s.%d.sources", blockPanel, i), src))
		}
	}
	if v.Footer != "" {
		blocks = append(blocks, contextBlock(blockFooter, escape(v.Footer)))
	}
	if len(v.Choices) > 0 {
		blocks = append(blocks, tallyBlock(v.Tally))
		var buttons []slackapi.BlockElement
		for _, c := range v.Choices {
			label := c
			if c == "tie" {
				label = "Tie"
			}
			buttons = append(buttons, slackapi.NewButtonBlockElement(
				voteActionID+"_"+c, voteValue(v.ID, c),
				slackapi.NewTextBlockObject(slackapi.PlainTextType, label, false, false)))
		}
		blocks = append(blocks, slackapi.NewActionBlock(blockVote, buttons...))
	}
	return blocks
}

func tallyBlock(t bot.Tally) *slackapi.ContextBlock {
	return contextBlock(blockTally, "Votes: "+escape(t.String()))
}

// voteValue encodes a compare id and a choice in a button's value.
func voteValue(compareID, choice string) string { return compareID + ":" + choice }

// parseVoteValue reverses voteValue.
func parseVoteValue(v string) (compareID, choice string, ok bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 || i == len(v)-1 {
		return "", "", false
	}
	return v[:i], v[i+1:], true
}

func compareFallback(v bot.CompareView) string {
	var models []string
	for _, p := range v.Panels {
		models = append(models, p.Label+" · "+p.Model)
	}
	return "Compare: " + strings.Join(models, ", ")
}

// withTally returns the blocks of a compare message with its tally line
// replaced: a vote updates the message as Slack has it, so it needs no
// memory of the compare.
func withTally(blocks []slackapi.Block, t bot.Tally) ([]slackapi.Block, bool) {
	out := make([]slackapi.Block, 0, len(blocks))
	found := false
	for _, b := range blocks {
		if b.ID() == blockTally {
			out = append(out, tallyBlock(t))
			found = true
			continue
		}
		out = append(out, b)
	}
	return out, found
}
