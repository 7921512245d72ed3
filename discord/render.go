package discord

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// Embed colours by status.
const (
	ColorStreaming = 0xF0B232 // amber: still writing
	ColorDone      = 0x57F287 // green: a finished answer
	ColorNotice    = 0x5865F2 // blurple: command output
	ColorFailed    = 0xED4245 // red: failed, or an error
)

// Discord's embed limits.
const (
	maxTitle       = 256
	maxDescription = 4096
	maxFooter      = 2048
	maxEmbedsTotal = 6000 // characters across every embed of one message
	maxEmbeds      = 10
	maxButtonsRow  = 5
)

// Truncated ends a compare panel cut to fit the message.
const Truncated = "\n… (truncated)"

// noMentions lets a message ping nobody: not @everyone, roles or users a
// model happened to write, nor the user replied to.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// render returns a message's embeds and components.
func render(m bot.Message) ([]*discordgo.MessageEmbed, []discordgo.MessageComponent) {
	if m.Kind == bot.KindCompare && m.Compare != nil {
		return compareEmbeds(m.Compare), compareComponents(m.Compare)
	}
	e := &discordgo.MessageEmbed{Type: discordgo.EmbedTypeRich, Description: description(m), Color: color(m)}
	if src := sources(bot.Footnotes(m.Citations)); src != "" {
		e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: "Sources", Value: src})
	}
	if m.Footer != "" {
		e.Footer = &discordgo.MessageEmbedFooter{Text: bot.Clip(m.Footer, maxFooter)}
	}
	return []*discordgo.MessageEmbed{e}, []discordgo.MessageComponent{}
}

func description(m bot.Message) string {
	text := m.Text
	if strings.TrimSpace(text) == "" {
		text = "…" // an embed needs a body
	}
	if m.Kind == bot.KindError && m.Part == 0 {
		text = "⚠️ " + text
	}
	return fit(text, maxDescription)
}

func color(m bot.Message) int {
	switch {
	case m.Kind == bot.KindError || m.Status == bot.StatusFailed:
		return ColorFailed
	case m.Status == bot.StatusStreaming:
		return ColorStreaming
	case m.Kind == bot.KindReply:
		return ColorDone
	}
	return ColorNotice
}

func statusColor(s bot.Status) int {
	switch s {
	case bot.StatusStreaming:
		return ColorStreaming
	case bot.StatusFailed:
		return ColorFailed
	}
	return ColorDone
}

// compareEmbeds renders one embed per panel: "A · model", the answer so
// far, and the panel's facts in the footer (the last footer also carries
// the compare's totals). Panel texts share what Discord allows in one
// message; a longer one is cut, fences closed, and says so.
func compareEmbeds(v *bot.CompareView) []*discordgo.MessageEmbed {
	panels := v.Panels
	if len(panels) > maxEmbeds {
		panels = panels[:maxEmbeds]
	}
	embeds := make([]*discordgo.MessageEmbed, len(panels))
	texts := make([]string, len(panels))
	overhead := 0
	for i, p := range panels {
		title := p.Label + " · " + p.Model
		if p.Answered != "" && p.Answered != p.Model {
			title += " → " + p.Answered
		}
		footer := p.Summary()
		if i == len(panels)-1 && v.Footer != "" {
			footer += "\n" + v.Footer
		}
		e := &discordgo.MessageEmbed{
			Type: discordgo.EmbedTypeRich, Title: bot.Clip(title, maxTitle), Color: statusColor(p.Status),
			Footer: &discordgo.MessageEmbedFooter{Text: bot.Clip(footer, maxFooter)},
		}
		embeds[i] = e
		overhead += utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Footer.Text)
		text := p.Text
		if p.Error != "" {
			if text != "" {
				text += "\n\n"
			}
			text += "⚠️ " + p.Error
		}
		for _, f := range bot.Footnotes(p.Citations) {
			text += fmt.Sprintf("\n[%d] %s — <%s>", f.N, f.Title, f.URL)
		}
		if strings.TrimSpace(text) == "" {
			text = "…"
		}
		texts[i] = text
	}
	budgets := share(texts, maxEmbedsTotal-overhead-16)
	for i, e := range embeds {
		e.Description = fit(texts[i], budgets[i])
	}
	return embeds
}

// share splits budget characters among texts: short texts keep all they
// need, the rest is divided evenly among the longer ones, each at most an
// embed description.
func share(texts []string, budget int) []int {
	out := make([]int, len(texts))
	idx := make([]int, len(texts))
	need := make([]int, len(texts))
	for i, t := range texts {
		idx[i], need[i] = i, min(utf8.RuneCountInString(t), maxDescription)
	}
	sort.Slice(idx, func(a, b int) bool { return need[idx[a]] < need[idx[b]] })
	left := max(budget, 0)
	for k, i := range idx {
		fair := left / (len(idx) - k)
		out[i] = min(need[i], fair)
		left -= out[i]
	}
	return out
}

// fit returns text cut to at most max characters: on a line or word break,
// with an open code fence closed, ending with Truncated.
func fit(text string, max int) string {
	if utf8.RuneCountInString(text) <= max {
		return text
	}
	room := max - utf8.RuneCountInString(Truncated)
	if room < 8 {
		return "…"
	}
	return bot.Split(text, room)[0] + Truncated
}

// maxField is an embed field value's limit.
const maxField = 1024

// sources renders footnotes for an embed field: "[1] Title (host)" with the
// bare URL in angle brackets, so Discord shows where it goes (no masked
// link to misread) and adds no preview; it stays within a field.
func sources(fn []bot.Footnote) string {
	var b strings.Builder
	for _, f := range fn {
		line := fmt.Sprintf("[%d] %s — <%s>\n", f.N, f.Title, f.URL)
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line) > maxField {
			break
		}
		b.WriteString(line)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// compareComponents are the vote buttons, once voting is open.
func compareComponents(v *bot.CompareView) []discordgo.MessageComponent {
	if len(v.Choices) == 0 {
		return []discordgo.MessageComponent{}
	}
	return voteRows(v.ID, v.Choices, v.Tally)
}

// voteRows renders "A is better", …, "Tie" buttons with the tally so far.
func voteRows(compare string, choices []string, tally bot.Tally) []discordgo.MessageComponent {
	var rows []discordgo.MessageComponent
	var row discordgo.ActionsRow
	for _, c := range choices {
		label, style := c+" is better", discordgo.PrimaryButton
		if strings.EqualFold(c, "tie") {
			label, style = "Tie", discordgo.SecondaryButton
		}
		if n := tally[c]; n > 0 {
			label += fmt.Sprintf(" · %d", n)
		}
		row.Components = append(row.Components, discordgo.Button{Label: label, Style: style, CustomID: voteID(compare, c)})
		if len(row.Components) == maxButtonsRow {
			rows = append(rows, row)
			row = discordgo.ActionsRow{}
		}
	}
	if len(row.Components) > 0 {
		rows = append(rows, row)
	}
	return rows
}

// voteChoices reads the choices of a compare back from its buttons.
func voteChoices(components []discordgo.MessageComponent, compare string) []string {
	var out []string
	var walk func([]discordgo.MessageComponent)
	walk = func(cs []discordgo.MessageComponent) {
		for _, c := range cs {
			switch c := c.(type) {
			case *discordgo.ActionsRow:
				walk(c.Components)
			case discordgo.ActionsRow:
				walk(c.Components)
			case *discordgo.Button:
				if id, choice, ok := parseVoteID(c.CustomID); ok && id == compare {
					out = append(out, choice)
				}
			case discordgo.Button:
				if id, choice, ok := parseVoteID(c.CustomID); ok && id == compare {
					out = append(out, choice)
				}
			}
		}
	}
	walk(components)
	return out
}

func messageSend(m bot.Message) *discordgo.MessageSend {
	embeds, comps := render(m)
	return &discordgo.MessageSend{Embeds: embeds, Components: comps, AllowedMentions: noMentions()}
}

func messageEdit(channel, id string, m bot.Message) *discordgo.MessageEdit {
	embeds, comps := render(m)
	return &discordgo.MessageEdit{ID: id, Channel: channel, Embeds: &embeds, Components: &comps, AllowedMentions: noMentions()}
}

func webhookEdit(m bot.Message) *discordgo.WebhookEdit {
	embeds, comps := render(m)
	empty := ""
	return &discordgo.WebhookEdit{Content: &empty, Embeds: &embeds, Components: &comps, AllowedMentions: noMentions()}
}

func webhookParams(m bot.Message) *discordgo.WebhookParams {
	embeds, comps := render(m)
	p := &discordgo.WebhookParams{Embeds: embeds, Components: comps, AllowedMentions: noMentions()}
	if m.Private {
		p.Flags = discordgo.MessageFlagsEphemeral
	}
	return p
}
