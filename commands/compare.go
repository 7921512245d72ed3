package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/orchat/orchat/bot"
)

var labels = []string{"A", "B", "C", "D"}

// hiddenModel is what a blind compare shows in place of a model's name.
const hiddenModel = "hidden model"

func (s *set) compare() *bot.Command {
	return &bot.Command{
		Name:    "compare",
		Usage:   "compare PROMPT [models:a,b,c] [effort:…] [web:on]",
		Summary: "Send one prompt to 2-4 models side by side, then vote for the best answer.",
		Options: []bot.Option{
			{Name: "prompt", Description: "What to ask every model", Required: true, Rest: true},
			{Name: "models", Description: "2-4 model ids, comma-separated (default: the configured set)"},
			{Name: "model1", Description: "First model", Model: true},
			{Name: "model2", Description: "Second model", Model: true},
			{Name: "model3", Description: "Third model", Model: true},
			{Name: "model4", Description: "Fourth model", Model: true},
			{Name: "effort", Description: "How hard reasoning models think: none, minimal, low, medium, high, xhigh", Choices: bot.Efforts},
			{Name: "web", Description: "Every model searches the web first and cites its sources: on or off", Choices: []string{"on", "off"}},
			fileOption,
		},
		Run: s.runCompare,
	}
}

// compareModels reads the models option (a comma list, or model1..model4)
// and checks there are 2-4 distinct ones.
func (s *set) compareModels(args bot.Args, v bot.CommunityView) ([]string, error) {
	ids := strings.FieldsFunc(args.Get("models", -1), func(r rune) bool { return r == ',' || r == ' ' })
	for i := 1; i <= 4; i++ {
		if v := strings.TrimSpace(args.Get(fmt.Sprintf("model%d", i), -1)); v != "" {
			ids = append(ids, v)
		}
	}
	if len(ids) == 0 {
		// The defaults (the community's, else the host's) may name models
		// that have since left the catalog, or that the rules here refuse:
		// keep the ones still there and allowed.
		for _, id := range v.CompareModels() {
			if m, err := s.Catalog.Lookup(id); err == nil {
				if ok, _ := v.Policy().Permits(m); ok {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) < 2 {
			return nil, bot.Errorf(bot.EINVALID, "The default compare models are not available right now; name 2 to 4 models: /compare Why is the sky blue? models:a,b (see /models).")
		}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return nil, bot.Errorf(bot.EINVALID, "%s is listed twice; compare different models.", bot.Clip(id, 80))
		}
		seen[id] = true
	}
	if len(ids) < 2 || len(ids) > 4 {
		return nil, bot.Errorf(bot.EINVALID, "Compare needs 2 to 4 models, and %d were given. Example: /compare Why is the sky blue? models:openai/gpt-5-mini,google/gemini-2.5-flash", len(ids))
	}
	return ids, nil
}

// runCompare plans, holds and streams every model at once, one panel each,
// then settles each model on its own and opens the vote.
func (s *set) runCompare(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	prompt := strings.TrimSpace(cleanInvisible(req.Args.Get("prompt", -1)))
	if prompt == "" && len(ev.Attachments) == 0 {
		return bot.Errorf(bot.EINVALID, "Give me a prompt to compare, for example: /compare Write a haiku about autumn")
	}
	v := s.here(ctx, ev)
	ids, err := s.compareModels(req.Args, v)
	if err != nil {
		return err
	}
	blind := v.Blind()
	effort, web, err := askOptions(req.Args)
	if err != nil {
		return err
	}
	if err := s.creditsLeft(ctx, req); err != nil {
		return err
	}
	msgs, notes, err := s.conversation(ctx, ev, prompt, v.Persona())
	if err != nil {
		return err
	}
	if len(notes) > 0 {
		_ = req.Reply.Notice(strings.Join(notes, "\n"))
	}
	bal, err := s.Ledger.Balance(ctx, ev.Identity)
	if err != nil {
		return fmt.Errorf("compare: balance: %w", err)
	}

	// Plan every model first: a typo in the third id must not cost anything.
	caps := s.budgetHere(ctx, ev, v)
	avail := caps.available(bal.Available)
	plans := make([]bot.Plan, len(ids))
	var need int64
	freeNeed := 0
	for i, id := range ids {
		p, err := s.Chat.Plan(ctx, bot.PlanRequest{
			Identity: ev.Identity, Messages: msgs, Model: id, MaxTokens: s.Config.CompareMaxTokens,
			Available: avail, Held: bal.Held, FreeRemaining: bal.Free.Remaining, Effort: effort, Web: web,
			Policy: v.Policy(),
			// The first plan classifies the prompt: its votes teach the
			// router that tier's preferences here.
			Classify: i == 0,
		})
		if err != nil {
			if bot.ErrorCode(err) == bot.EINSUFFICIENT && caps.capped(bal.Available) {
				return s.overBudget(ctx, ev, caps)
			}
			if bot.ErrorCode(err) == bot.EINSUFFICIENT {
				return s.explainPlanError(err, bal)
			}
			return err
		}
		p.Fallbacks = nil // a compare shows each model as asked: no silent substitutes
		plans[i] = p
		if p.Free {
			freeNeed++
		} else {
			need += p.Cost
		}
	}
	if need > avail && caps.capped(bal.Available) {
		return s.overBudget(ctx, ev, caps)
	}
	if need > bal.Available {
		return bot.Errorf(bot.EINSUFFICIENT, "This compare may cost up to %s tokens. %s. Pick cheaper or fewer models, or ask an admin for a /topup.",
			bot.FormatTokens(need), bot.YourBalance(bal.Available, bal.Held))
	}
	if freeNeed > bal.Free.Remaining {
		return bot.Errorf(bot.ERATELIMIT, "This compare needs %d free-model requests and you have %d left today; they come back %s.",
			freeNeed, bal.Free.Remaining, s.resetsAt(bal.Free))
	}
	spends := make([]*spent, len(plans))
	for i, p := range plans {
		sp, err := s.spend(ctx, ev, p, fmt.Sprintf("compare:%s:%d", eventKey(req), i), caps.budget)
		if err != nil {
			for _, prev := range spends[:i] {
				prev.settle(ctx, bot.Result{}, err) // release: nothing ran
			}
			return err
		}
		spends[i] = sp
	}

	view := bot.CompareView{ID: newCompareID()}
	for i, id := range ids {
		p := bot.Panel{Label: labels[i], Model: id, Status: bot.StatusStreaming}
		if blind {
			p.Model, p.Blind = hiddenModel, true
		}
		view.Panels = append(view.Panels, p)
	}
	req.Reply.UpdateCompare(view)
	req.Reply.Typing(ctx)

	reqs := make([]bot.ChatRequest, len(plans))
	var mu sync.Mutex
	texts := make([]strings.Builder, len(plans))
	start := time.Now()
	for i, p := range plans {
		reqs[i] = bot.ChatRequest{Plan: p, User: ev.Identity, SessionID: sessionID(ev), OnReasoning: func(string) {
			mu.Lock()
			defer mu.Unlock()
			if p := &view.Panels[i]; texts[i].Len() == 0 && !p.Thinking {
				p.Thinking = true
				req.Reply.UpdateCompare(view)
			}
		}}
	}
	results := s.Chat.Compare(ctx, reqs, func(i int, d string) {
		mu.Lock()
		defer mu.Unlock()
		texts[i].WriteString(d)
		p := &view.Panels[i]
		if p.TTFT == 0 {
			p.TTFT = time.Since(start)
		}
		p.Text, p.Thinking = texts[i].String(), false
		req.Reply.UpdateCompare(view)
	})

	mu.Lock()
	defer mu.Unlock()
	var charged int64
	var files []bot.File
	ok, pending := 0, 0
	for i, res := range results {
		if res.Text == "" {
			res.Text = texts[i].String()
		}
		out := spends[i].settle(ctx, res, res.Err)
		charged += out.charged
		if out.pending {
			pending++
		}
		p := &view.Panels[i]
		p.Answered, p.Text, p.Thinking = res.Model, res.Text, false
		if blind {
			p.Answered = ""
		}
		if res.Err == nil {
			meta := &bot.ReplyMeta{Model: res.Model}
			if meta.Model == "" || blind {
				meta.Model = p.Model
			}
			p.Text = ending(res.Text, res, plans[i], meta)
		}
		p.ReasoningTokens, p.Citations = res.Usage.ReasoningTokens, res.Citations
		for _, f := range imageFiles(res.Images, "compare-"+strings.ToLower(p.Label)) {
			files = append(files, f)
			p.Images++
		}
		if res.TTFT > 0 {
			p.TTFT = res.TTFT
		}
		p.Latency, p.Charged = res.Latency, out.charged
		p.PromptTokens, p.CompletionTokens = res.Usage.PromptTokens, res.Usage.CompletionTokens
		p.Status = bot.StatusDone
		if res.Err != nil {
			p.Status, p.Error = bot.StatusFailed, bot.ErrorMessage(interrupted(ctx, res.Err))
			if blind {
				p.Error = "This model failed (its name stays hidden until you vote)."
			}
		} else {
			ok++
		}
	}
	if ok >= 2 {
		rec := bot.CompareRecord{ID: view.ID, Community: ev.Community, Requester: ev.Identity, Models: ids, Blind: blind, Tier: plans[0].Needed, CreatedAt: s.Now()}
		for _, p := range view.Panels {
			if p.Status != bot.StatusDone {
				rec.Failed = append(rec.Failed, p.Label)
			}
		}
		if err := s.Votes.RecordCompare(context.WithoutCancel(ctx), rec); err != nil {
			s.Logger.Error("record compare", "compare", view.ID, "err", err)
		} else {
			// Vote for an answer, not for a failure: failed panels get no
			// button (a vote for another model still counts as a win over
			// them, which a failure is).
			for _, p := range view.Panels {
				if p.Status == bot.StatusDone {
					view.Choices = append(view.Choices, p.Label)
				}
			}
			view.Choices = append(view.Choices, "tie")
			view.Tally = bot.Tally{}
		}
	}
	view.Footer = fmt.Sprintf("compare %s · charged %s in all", view.ID, bot.FormatTokens(charged))
	if blind {
		view.Footer = fmt.Sprintf("blind compare %s · vote to see which model wrote what · charged %s in all", view.ID, bot.FormatTokens(charged))
	}
	if pending > 0 {
		view.Footer += fmt.Sprintf(" (%d %s pending)", pending, bot.Plural(pending, "charge", "charges"))
	}
	if b, err := s.Ledger.Balance(context.WithoutCancel(ctx), ev.Identity); err == nil {
		view.Footer += " · balance " + bot.FormatTokens(b.Balance)
	}

	return undelivered(req.Reply.FinishCompare(view, files...), charged)
}

// newCompareID returns a short id people can type: c + 8 hex digits.
func newCompareID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}
