package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/orchat/orchat/bot"
)

func (s *set) ask() *bot.Command {
	return &bot.Command{
		Name:    "ask",
		Usage:   "ask PROMPT [model:ID] [effort:low|medium|high…] [web:on]",
		Summary: "Ask a model. Mentioning me, a DM or a reply to me is an ask too.",
		Options: []bot.Option{
			{Name: "prompt", Description: "What you want to ask", Required: true, Rest: true},
			{Name: "model", Description: "A model id, or auto (default: your /model)", Model: true},
			{Name: "effort", Description: "How hard a reasoning model thinks: none, minimal, low, medium, high, xhigh", Choices: bot.Efforts},
			{Name: "web", Description: "Search the web first and cite the sources: on or off", Choices: []string{"on", "off"}},
			fileOption,
		},
		Run: s.runAsk,
	}
}

// fileOption is the file a platform with upload pickers (Discord) lets
// /ask and /compare take: it arrives as an attachment and is read by the
// same rules as a mention's (images to vision models, PDFs, text files).
var fileOption = bot.Option{Name: "file", Description: "An image, PDF or text file to ask about", Kind: bot.OptionFile}

// askOptions reads the effort and web options shared by ask and compare.
func askOptions(args bot.Args) (effort string, web bool, err error) {
	effort = strings.ToLower(strings.TrimSpace(args.Get("effort", -1)))
	if effort != "" && !slices.Contains(bot.Efforts, effort) {
		return "", false, bot.Errorf(bot.EINVALID, "effort:%s is not an effort: use one of %s.", bot.Clip(effort, 20), strings.Join(bot.Efforts, ", "))
	}
	switch w := strings.ToLower(strings.TrimSpace(args.Get("web", -1))); w {
	case "", "off", "no", "false":
	case "on", "yes", "true":
		web = true
	default:
		return "", false, bot.Errorf(bot.EINVALID, "web:%s is not on or off. Example: /ask What happened today? web:on", bot.Clip(w, 20))
	}
	return effort, web, nil
}

// runAsk answers a prompt: conversation from the platform, the router's
// plan, a hold for the worst case, the streamed answer (the thinking
// shown while it happens), and a settle for what it actually cost.
func (s *set) runAsk(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	prompt := strings.TrimSpace(cleanInvisible(req.Args.Get("prompt", -1)))
	if prompt == "" {
		prompt = strings.TrimSpace(cleanInvisible(req.Args.Rest(0)))
	}
	if prompt == "" && len(ev.Attachments) == 0 {
		return bot.Errorf(bot.EINVALID, "Ask me something, for example: /ask What is the tallest mountain in Europe?")
	}
	effort, web, err := askOptions(req.Args)
	if err != nil {
		return err
	}
	if err := s.creditsLeft(ctx, req); err != nil {
		return err
	}
	v := s.here(ctx, ev)
	msgs, notes, err := s.conversation(ctx, ev, prompt, v.Persona())
	if err != nil {
		return err
	}
	if len(notes) > 0 {
		_ = req.Reply.Notice(strings.Join(notes, "\n"))
	}
	model, err := s.chooseModel(ctx, req, v)
	if err != nil {
		return err
	}
	return s.answer(ctx, req, msgs, bot.PlanRequest{Model: strings.TrimSpace(model), Effort: effort, Web: web}, "ask")
}

// answer plans, holds, streams and settles one model call for req and
// finishes the reply with the whole answer: ask and imagine share it.
func (s *set) answer(ctx context.Context, req *bot.Request, msgs []bot.ChatMessage, pr bot.PlanRequest, kind string) error {
	ev := req.Event
	v := s.here(ctx, ev)
	bal, err := s.Ledger.Balance(ctx, ev.Identity)
	if err != nil {
		return fmt.Errorf("%s: balance: %w", kind, err)
	}
	// The community's rules and today's caps here bound the plan.
	caps := s.budgetHere(ctx, ev, v)
	pr.Identity, pr.Messages, pr.Available, pr.Held, pr.FreeRemaining = ev.Identity, msgs, caps.available(bal.Available), bal.Held, bal.Free.Remaining
	pr.Policy = v.Policy()
	// The auto router may order a tier's candidates by this community's
	// votes, unless its admins turned that off.
	pr.Community, pr.Learn = ev.Community, v.LearnRouting()
	plan, err := s.Chat.Plan(ctx, pr)
	if err != nil {
		if bot.ErrorCode(err) == bot.EINSUFFICIENT && caps.capped(bal.Available) {
			return s.overBudget(ctx, ev, caps)
		}
		return s.explainPlanError(err, bal)
	}
	if plan.FreeFallback && caps.capped(bal.Available) {
		plan.FreeFallback = false
		_ = req.Reply.Notice("Today's budget here leaves too little for a paid answer, so a free model answers.")
	}
	s.attachDetails(ev, plan.Model, plan.Messages)
	sp, err := s.spend(ctx, ev, plan, kind+":"+eventKey(req), caps.budget)
	if err != nil {
		return err
	}
	req.Reply.Typing(ctx)
	var mu sync.Mutex
	var text strings.Builder
	thought := 0
	res, err := s.Chat.Stream(ctx, bot.ChatRequest{Plan: plan, User: ev.Identity, SessionID: sessionID(ev), OnReasoning: func(d string) {
		mu.Lock()
		defer mu.Unlock()
		if text.Len() == 0 {
			if plan.ShowReasoning {
				thought += len(strings.Fields(d))
			}
			req.Reply.Think(thought)
		}
	}}, func(d string) {
		mu.Lock()
		defer mu.Unlock()
		text.WriteString(d)
		req.Reply.Update(text.String())
	})
	if res.Text == "" {
		res.Text = text.String()
	}
	out := sp.settle(ctx, res, err)
	if err != nil && res.Text == "" && out.charged == 0 && !out.pending {
		return interrupted(ctx, err)
	}
	s.keepDetails(ev, res)
	meta, footer := s.footer(ctx, ev.Identity, plan, res, out)
	a := bot.Answer{Text: res.Text, Footer: footer, Meta: meta, Citations: res.Citations, Files: imageFiles(res.Images, kind)}
	if plan.ShowReasoning {
		a.Reasoning = res.Reasoning
	}
	if err != nil {
		if a.Text == "" {
			a.Text = thinkingOnly(meta)
		}
		return undelivered(req.Reply.Fail(a.Text, failNote(ctx, res, err, out), footer, meta), out.charged)
	}
	s.lowBalance(ctx, req, out)
	s.memberLow(ctx, ev, v, out)
	a.Text = ending(a.Text, res, plan, meta)
	return undelivered(req.Reply.FinishAnswer(a), out.charged)
}

// ending says how an answer ended when it was not a plain stop: a refusal
// in the model's words, a cut at the completion cap, the content filter;
// and it never leaves a message empty (platforms refuse those).
func ending(text string, res bot.Result, plan bot.Plan, meta *bot.ReplyMeta) string {
	if res.Refusal != "" {
		refusal := fmt.Sprintf("🚫 %s declined: %s", meta.Model, strings.TrimSpace(res.Refusal))
		if strings.TrimSpace(text) == "" {
			return refusal
		}
		return text + "\n\n" + refusal
	}
	switch res.FinishReason {
	case "length":
		if strings.TrimSpace(text) == "" && len(res.Images) == 0 {
			return fmt.Sprintf("(%s used all %s tokens of its limit thinking and had none left for an answer: cut at the %s-token limit. Ask again with effort:low, or pick another model.)",
				meta.Model, bot.FormatTokens(int64(plan.MaxTokens)), bot.FormatTokens(int64(plan.MaxTokens)))
		}
		text += fmt.Sprintf("\n\n_(cut at the %s-token limit)_", bot.FormatTokens(int64(plan.MaxTokens)))
	case "content_filter":
		text += "\n\n_(the provider's content filter stopped this answer here)_"
	}
	if strings.TrimSpace(text) == "" {
		if len(res.Images) > 0 {
			return fmt.Sprintf("🖼️ %s made %d %s.", meta.Model, len(res.Images), bot.Plural(len(res.Images), "image", "images"))
		}
		// A model that only reasoned, or sent usage and no text: say so;
		// the footer shows the cost.
		return fmt.Sprintf("(%s sent back an empty answer. Ask again, or pick another model with /model.)", meta.Model)
	}
	return text
}

// thinkingOnly is the text of an answer cut off while the model was still
// thinking.
func thinkingOnly(meta *bot.ReplyMeta) string {
	if meta.ReasoningTokens > 0 {
		return fmt.Sprintf("(%s was still thinking: %s tokens of thinking, no answer yet.)", meta.Model, bot.FormatTokens(meta.ReasoningTokens))
	}
	return ""
}

// imageFiles names a call's images as files to upload.
func imageFiles(imgs []bot.Image, kind string) []bot.File {
	var out []bot.File
	for i, im := range imgs {
		ext := ".png"
		switch im.MIME {
		case "image/jpeg":
			ext = ".jpg"
		case "image/webp":
			ext = ".webp"
		case "image/gif":
			ext = ".gif"
		}
		out = append(out, bot.File{Name: fmt.Sprintf("%s-%d%s", kind, i+1, ext), MIME: im.MIME, Data: im.Data})
	}
	return out
}

// creditsLeft refuses a call before it is made when the host's OpenRouter
// key is out of credits, and tells an admin once an hour when they run
// low.
func (s *set) creditsLeft(ctx context.Context, req *bot.Request) error {
	if s.Credits == nil {
		return nil
	}
	c := s.Credits.Credits()
	if c.Out() {
		s.Metrics.Refusal("host_credits")
		return bot.Errorf(bot.EUNAVAILABLE, "The bot's OpenRouter credits are used up, so no model can answer right now; tell the host. Nothing was charged to you.")
	}
	if req.Admin && s.Config.LowCreditsUSD > 0 && c.Below(s.Config.LowCreditsUSD) && s.lowNotice.Add(string(req.Event.Identity), struct{}{}) {
		_ = req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: fmt.Sprintf(
			"Heads up, admin: the bot's OpenRouter key has $%.2f of credit left (limit $%.2f). Add credits on OpenRouter; /credits shows the figures.", *c.RemainingUSD, deref(c.LimitUSD))})
	}
	return nil
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// detailsKey names the reasoning_details kept for a conversation with a
// model: who asked where (the channel's ids are opaque).
func detailsKey(ev bot.Event, model string) string {
	return string(ev.Identity) + "\x00" + sessionID(ev) + "\x00" + model
}

// keepDetails remembers a reasoning model's reasoning_details for the next
// turn of the conversation (in memory, for an hour: never stored).
func (s *set) keepDetails(ev bot.Event, res bot.Result) {
	if len(res.ReasoningDetails) > 0 && ev.Channel != "" {
		s.details.Put(detailsKey(ev, res.Model), res.ReasoningDetails)
	}
}

// attachDetails sends the reasoning_details kept from the model's last
// answer with that answer's turn, when the conversation continues it.
func (s *set) attachDetails(ev bot.Event, model string, msgs []bot.ChatMessage) {
	if ev.History == nil {
		return
	}
	d, ok := s.details.Get(detailsKey(ev, model))
	if !ok {
		return
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == bot.RoleAssistant {
			msgs[i].ReasoningDetails = d
			return
		}
	}
}

// undelivered explains a platform refusing an answer that was already
// settled: the generic apology says nothing was charged, which is then
// untrue (and invites paying again). The platform's error is in the log.
func undelivered(err error, charged int64) error {
	if err == nil || charged == 0 {
		return err
	}
	return bot.Errorf(bot.EUNAVAILABLE, "I could not show this whole answer here (the platform refused the message). It was charged %s tokens; /balance shows what is left.", bot.FormatTokens(charged))
}

// explainPlanError adds what the user can do to the router's refusal: when
// the balance is short, when free requests come back and how to get tokens.
func (s *set) explainPlanError(err error, bal bot.Balance) error {
	if bot.ErrorCode(err) != bot.EINSUFFICIENT {
		return err
	}
	s.Metrics.Refusal("free_tier")
	msg := bot.ErrorMessage(err)
	if bal.Free.Limit > 0 && bal.Free.Remaining == 0 {
		msg += fmt.Sprintf(" Today's %d free-model requests are used too; they come back %s.", bal.Free.Limit, s.resetsAt(bal.Free))
	}
	if !strings.Contains(msg, "top-up") && !strings.Contains(msg, "/topup") {
		msg += " An admin can add tokens with /topup."
	}
	return bot.Errorf(bot.EINSUFFICIENT, "%s", msg)
}

// interrupted turns a failure before any output into the user's message;
// a cancelled context (shutdown, deadline) says so plainly.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil && bot.ErrorCode(err) == bot.EINTERNAL {
		return bot.Errorf(bot.EUNAVAILABLE, "The answer was cut short before it began (the bot is restarting or the request took too long). Nothing was charged; please ask again.")
	}
	return err
}

// failNote is the note under a partial answer that broke off.
func failNote(ctx context.Context, res bot.Result, err error, out outcome) string {
	charged := "Charged " + bot.FormatTokens(out.charged) + " tokens for the part you got."
	if out.pending {
		charged = "The charge for the part you got is pending (the ledger could not be written; it is retried)."
	}
	if res.FinishReason == bot.FinishLength && ctx.Err() == nil {
		// Cut at the longest answer allowed: asking again would be cut too.
		return fmt.Sprintf("%s %s", bot.ErrorMessage(err), charged)
	}
	what := "The answer broke off"
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		what = "The answer took too long and was cut off"
	case ctx.Err() != nil:
		what = "The answer was cut off because the bot is restarting"
	}
	msg := bot.ErrorMessage(err)
	if bot.ErrorCode(err) == bot.EINTERNAL {
		msg = "The connection to the model was lost."
	}
	return fmt.Sprintf("%s: %s. %s Ask again to retry.", what, strings.TrimSuffix(msg, "."), charged)
}

// sessionID groups the calls of one conversation upstream, without naming
// anyone: the community and channel ids are opaque numbers.
func sessionID(ev bot.Event) string {
	if ev.Channel == "" {
		return ""
	}
	return ev.Community + "/" + ev.Channel
}

// eventKey is the idempotency key of this request: the platform's event id
// (a redelivered event reuses its hold) or the request id.
func eventKey(req *bot.Request) string {
	if req.Event.ID != "" {
		return req.Event.ID
	}
	return req.ID
}
