package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
)

func (s *set) models() *bot.Command {
	return &bot.Command{
		Name:    "models",
		Usage:   "models [search] [free] [vision] [tools] [image]",
		Summary: "Search the models with their prices per million tokens and context size.",
		Options: []bot.Option{{Name: "search", Description: "Words to look for; add free, vision, tools or image to filter", Rest: true}},
		Run: func(ctx context.Context, req *bot.Request) error {
			q := bot.ModelQuery{Limit: 15}
			var words []string
			for _, w := range strings.Fields(req.Args.Get("search", -1) + " " + req.Args.Rest(0)) {
				switch strings.ToLower(w) {
				case "free":
					q.Free = true
				case "vision":
					q.Vision = true
				case "image", "images", "imagine":
					q.ImageOutput = true
				case "tools":
					q.Tools = true
				default:
					words = append(words, w)
				}
			}
			q.Text = strings.Join(words, " ")
			found := s.Catalog.Search(q)
			if len(found) == 0 {
				return bot.Errorf(bot.ENOTFOUND, "No model matches %q. Try /models with one word, such as /models claude or /models free.", bot.Clip(q.Text, 60))
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "**Models** (%d shown; prices per million tokens, in → out)\n", len(found))
			if q.ImageOutput {
				sb.WriteString("These make images (an image is billed as output tokens, about 1,300 each). Draw with /imagine PROMPT model:ID.\n")
			}
			for _, m := range found {
				sb.WriteString("• " + ModelLine(m) + "\n")
			}
			sb.WriteString("Use one with /ask model:ID, or make it yours with /model ID.")
			return req.Reply.Notice(sb.String())
		},
	}
}

// ModelLine is one model as listed: id, prices per million, context and
// what it can do.
func ModelLine(m bot.Model) string {
	var price string
	switch {
	case m.Free():
		price = "free"
	case m.Router():
		price = "price varies"
	default:
		price = fmt.Sprintf("$%s → $%s", perMillion(m.PromptPrice), perMillion(m.CompletionPrice))
	}
	line := fmt.Sprintf("`%s` — %s · %s · %s context", m.ID, m.Name, price, contextSize(m.ContextLength))
	var caps []string
	if m.Vision() {
		caps = append(caps, "vision")
	}
	if m.Tools() {
		caps = append(caps, "tools")
	}
	if m.Reasons() {
		caps = append(caps, "reasoning")
	}
	if m.Files() {
		caps = append(caps, "PDFs")
	}
	if m.ImageOutput() {
		caps = append(caps, "makes images")
	}
	if len(caps) > 0 {
		line += " · " + strings.Join(caps, ", ")
	}
	return line
}

func perMillion(usdPerToken float64) string {
	v := usdPerToken * 1e6
	switch {
	case v == 0:
		return "0"
	case v < 0.1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func contextSize(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%gM", float64(n/100_000)/10)
	case n >= 1000:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func (s *set) model() *bot.Command {
	return &bot.Command{
		Name:    "model",
		Usage:   "model [ID|auto]",
		Summary: "Show or set the model that answers you (auto picks one per prompt).",
		Private: true,
		Options: []bot.Option{{Name: "id", Description: "A model id, or auto", Model: true}},
		Run: func(ctx context.Context, req *bot.Request) error {
			id := strings.TrimSpace(req.Args.Get("id", 0))
			if id == "" {
				cur, err := s.Prefs.DefaultModel(ctx, req.Event.Identity)
				if err != nil {
					return fmt.Errorf("model: %w", err)
				}
				if cur == "" {
					return req.Reply.Notice("Your model is **auto**: I pick a model per prompt (fast, code, reasoning, long documents, images). Set one with /model ID.")
				}
				return req.Reply.Notice(fmt.Sprintf("Your model is `%s`. /model auto goes back to picking per prompt.", cur))
			}
			if strings.EqualFold(id, "auto") {
				if err := s.Prefs.SetDefaultModel(ctx, req.Event.Identity, ""); err != nil {
					return fmt.Errorf("model: %w", err)
				}
				return req.Reply.Notice("Done: I'll pick a model per prompt (auto).")
			}
			m, err := s.Catalog.Lookup(id)
			if err != nil {
				return err
			}
			if err := s.Prefs.SetDefaultModel(ctx, req.Event.Identity, m.ID); err != nil {
				return fmt.Errorf("model: %w", err)
			}
			return req.Reply.Notice(fmt.Sprintf("Done: `%s` answers you from now on.\n%s", m.ID, ModelLine(m)))
		},
	}
}
