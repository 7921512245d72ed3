package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/orchat/orchat/bot"
)

func (s *set) ask() *bot.Command {
	return &bot.Command{
		Name:    "ask",
		Usage:   "ask PROMPT [model:ID]",
		Summary: "Ask a model. Mentioning me, a DM or a reply to me is an ask too.",
		Options: []bot.Option{
			{Name: "prompt", Description: "What you want to ask", Required: true, Rest: true},
			{Name: "model", Description: "A model id, or auto (default: your /model)", Model: true},
		},
		Run: s.runAsk,
	}
}

// runAsk answers a prompt: conversation from the platform, the router's
// plan, a hold for the worst case, the streamed answer, and a settle for
// what it actually cost.
func (s *set) runAsk(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	prompt := strings.TrimSpace(cleanInvisible(req.Args.Get("prompt", -1)))
	if prompt == "" {
		prompt = strings.TrimSpace(cleanInvisible(req.Args.Rest(0)))
	}
	if prompt == "" && len(ev.Attachments) == 0 {
		return bot.Errorf(bot.EINVALID, "Ask me something, for example: /ask What is the tallest mountain in Europe?")
	}

	msgs, notes, err := s.conversation(ctx, ev, prompt)
	if err != nil {
		return err
	}
	if len(notes) > 0 {
		_ = req.Reply.Notice(strings.Join(notes, "\n"))
	}
	model := strings.TrimSpace(req.Args.Get("model", -1))
	if model == "" {
		if model, err = s.Prefs.DefaultModel(ctx, ev.Identity); err != nil {
			return fmt.Errorf("ask: default model: %w", err)
		}
	}
	bal, err := s.Ledger.Balance(ctx, ev.Identity)
	if err != nil {
		return fmt.Errorf("ask: balance: %w", err)
	}
	plan, err := s.Chat.Plan(ctx, bot.PlanRequest{
		Identity: ev.Identity, Messages: msgs, Model: model,
		Available: bal.Available, Held: bal.Held, FreeRemaining: bal.Free.Remaining,
	})
	if err != nil {
		return s.explainPlanError(err, bal)
	}

	sp, err := s.spend(ctx, ev.Identity, plan, "ask:"+eventKey(req))
	if err != nil {
		return err
	}
	req.Reply.Typing(ctx)
	var text strings.Builder
	res, err := s.Chat.Stream(ctx, bot.ChatRequest{Plan: plan, User: ev.Identity, SessionID: sessionID(ev)}, func(d string) {
		text.WriteString(d)
		req.Reply.Update(text.String())
	})
	if res.Text == "" {
		res.Text = text.String()
	}
	out := sp.settle(ctx, res, err)
	if err != nil && res.Text == "" {
		return interrupted(ctx, err)
	}
	meta, footer := s.footer(ctx, ev.Identity, plan, res, out)
	if err != nil {
		return undelivered(req.Reply.Fail(res.Text, failNote(ctx, res, err, out), footer, meta), out.charged)
	}
	s.lowBalance(ctx, req, out)
	if strings.TrimSpace(res.Text) == "" {
		// A model that only reasoned, or sent usage and no text: say so
		// (platforms refuse an empty message); the footer shows the cost.
		res.Text = fmt.Sprintf("(%s sent back an empty answer. Ask again, or pick another model with /model.)", meta.Model)
	}
	return undelivered(req.Reply.Finish(res.Text, footer, meta), out.charged)
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
