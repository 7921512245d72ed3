package slack

import (
	"context"
	"errors"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// Native streaming: an answer in a thread is one streaming message
// (chat.startStream, chat.appendStream with each new piece of text,
// chat.stopStream with the footer and the feedback buttons under it),
// rather than a message rewritten with chat.update. chat.update is Tier 3
// for the whole workspace (about 50 a minute shared by every answer);
// each stream has limits of its own, so 300 answers at once no longer
// queue behind one another. Where the workspace or the method refuses
// (streaming not enabled for the app, an older Enterprise Grid, a missing
// scope), the adapter falls back to chat.update for that workspace.

// Block ids and actions of a streamed answer's footer.
const (
	blockFeedback  = "orchat.feedback"
	feedbackAction = "orchat_feedback"
)

// stream is one answer being streamed natively.
type stream struct {
	sent   string // the markdown_text shown so far
	broken bool   // a call failed after the start: continue with chat.update
	done   bool
}

// streamRefusals are chat.startStream errors that say the workspace (or
// the app's install there) cannot stream: every later answer there uses
// chat.update. Other errors fall back for the one answer.
var streamRefusals = map[string]bool{
	"unknown_method": true, "method_not_supported": true, "not_allowed": true, "not_allowed_token_type": true,
	"missing_scope": true, "feature_not_enabled": true, "team_not_allowed": true, "enterprise_is_restricted": true,
	"method_deprecated": true, "deprecated_endpoint": true,
}

// canStream reports whether m starts a natively streamed answer: an
// answer still streaming, in a thread, seen by everyone, in a workspace
// that has not refused streams.
func (o *output) canStream(m bot.Message) bool {
	if !o.a.opts.NativeStreaming || o.thread == "" || m.Private || m.Kind != bot.KindReply || m.Status != bot.StatusStreaming || m.Compare != nil {
		return false
	}
	_, refused := o.a.noStream.Get(o.team)
	return !refused
}

// streamText is what a stream shows of m: the answer's Markdown with
// Slack's control characters escaped, so a model's <!channel> never pings.
// While the model thinks the text is empty (the thread's status says so).
func streamText(m bot.Message) string {
	if m.Thinking {
		return ""
	}
	return escape(m.Text)
}

// startStream opens the stream of m; ok is false when Slack refused and
// the caller should post the message the usual way.
func (o *output) startStream(ctx context.Context, m bot.Message) (ts string, ok bool, err error) {
	text := bot.Clip(streamText(m), textLimit)
	opts := []slackapi.MsgOption{slackapi.MsgOptionTS(o.thread), slackapi.MsgOptionRecipientTeamID(o.team), slackapi.MsgOptionRecipientUserID(o.user)}
	if text != "" {
		opts = append(opts, slackapi.MsgOptionMarkdownText(text))
	}
	err = o.a.call(ctx, o.team, false, func() error {
		var err error
		_, ts, err = o.a.agent.StartStreamContext(ctx, o.channel, opts...)
		return err
	})
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		if streamRefusals[se.Err] {
			o.a.noStream.Put(o.team, struct{}{})
			o.a.log.Info("slack refused native streaming for the workspace; answers there use chat.update", "team", o.team, "error", se.Err)
		} else {
			o.a.log.Debug("slack chat.startStream refused; this answer uses chat.update", "error", se.Err)
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	o.mu.Lock()
	o.streams[ts] = &stream{sent: text}
	o.mu.Unlock()
	o.a.threads.Put(threadKey(o.channel, o.thread), struct{}{})
	return ts, true, nil
}

// editStream shows m in the stream ts: the new text is appended; a
// finished m stops the stream with its footer and feedback buttons. A
// text that is no continuation of what was shown (the engine rewrote it)
// ends the stream and rewrites the message with chat.update.
func (o *output) editStream(ctx context.Context, ts string, st *stream, m bot.Message) error {
	o.mu.Lock()
	sent, broken, done := st.sent, st.broken, st.done
	o.mu.Unlock()
	if broken || done {
		return o.update(ctx, ts, m)
	}
	text := bot.Clip(streamText(m), textLimit)
	finished := m.Status != bot.StatusStreaming
	if !strings.HasPrefix(text, sent) && !m.Thinking {
		return o.breakStream(ctx, ts, st, m)
	}
	delta := ""
	if len(text) > len(sent) {
		delta = text[len(sent):]
	}
	if !finished {
		if delta == "" {
			return nil
		}
		if ok, err := o.streamCall(ctx, ts, st, m, func() error {
			_, _, err := o.a.agent.AppendStreamContext(ctx, o.channel, ts, slackapi.MsgOptionMarkdownText(delta))
			return err
		}); !ok {
			return err
		}
		o.mu.Lock()
		st.sent = text
		o.mu.Unlock()
		return nil
	}
	opts := []slackapi.MsgOption{slackapi.MsgOptionBlocks(o.streamFooter(ts, m)...)}
	if delta != "" {
		opts = append(opts, slackapi.MsgOptionMarkdownText(delta))
	}
	if ok, err := o.streamCall(ctx, ts, st, m, func() error {
		_, _, err := o.a.agent.StopStreamContext(ctx, o.channel, ts, opts...)
		return err
	}); !ok {
		return err
	}
	o.mu.Lock()
	st.sent, st.done = text, true
	o.mu.Unlock()
	o.extras(ctx, ts, m)
	o.clearStatus(ctx)
	return nil
}

// streamCall makes one call on the stream ts (paced and retried as every
// Web API call); ok says it landed. When Slack refuses it, the stream is
// broken off and the message rewritten with chat.update (the error is
// breakStream's); any other error is returned as it is.
func (o *output) streamCall(ctx context.Context, ts string, st *stream, m bot.Message, call func() error) (ok bool, err error) {
	if err := o.a.call(ctx, o.team, false, call); err != nil {
		if isSlackError(err) {
			return false, o.breakStream(ctx, ts, st, m)
		}
		return false, err
	}
	return true, nil
}

// breakStream ends a stream that cannot go on and shows m with chat.update.
func (o *output) breakStream(ctx context.Context, ts string, st *stream, m bot.Message) error {
	o.mu.Lock()
	st.broken = true
	o.mu.Unlock()
	_ = o.a.call(ctx, o.team, false, func() error {
		_, _, err := o.a.agent.StopStreamContext(ctx, o.channel, ts)
		return err
	})
	return o.update(ctx, ts, m)
}

// update rewrites a message with chat.update, paced per workspace.
func (o *output) update(ctx context.Context, ts string, m bot.Message) error {
	r := render(m, o.introFor(ts))
	err := o.a.call(ctx, o.team, true, func() error {
		_, _, _, err := o.a.api.UpdateMessageContext(ctx, o.channel, ts, r.options()...)
		return err
	})
	if err == nil {
		o.extras(ctx, ts, m)
		if m.Status != bot.StatusStreaming {
			o.clearStatus(ctx)
		}
	}
	return err
}

// streamFooter is what stopStream renders under a streamed answer: its
// sources, its footer and, for a finished answer, thumbs up and down.
func (o *output) streamFooter(ts string, m bot.Message) []slackapi.Block {
	var blocks []slackapi.Block
	if src := sources(bot.Footnotes(m.Citations)); src != "" {
		blocks = append(blocks, contextBlock(blockSources, src))
	}
	if m.Footer != "" {
		blocks = append(blocks, contextBlock(blockFooter, escape(m.Footer)))
	}
	if m.Status == bot.StatusDone && m.Meta != nil && m.Meta.Model != "" {
		blocks = append(blocks, feedbackBlock(o.channel+":"+ts, m.Meta.Model))
	}
	return blocks
}

// feedbackBlock is a thumbs up and a thumbs down under an answer; each
// button's value names the answer and the model that wrote it.
func feedbackBlock(answer, model string) slackapi.Block {
	value := answer + " " + model
	up := slackapi.NewButtonBlockElement(feedbackAction+"_up", value, slackapi.NewTextBlockObject(slackapi.PlainTextType, "👍", true, false))
	down := slackapi.NewButtonBlockElement(feedbackAction+"_down", value, slackapi.NewTextBlockObject(slackapi.PlainTextType, "👎", true, false))
	return slackapi.NewActionBlock(blockFeedback, up, down)
}

// parseFeedback reads a feedback button: the answer, the model and the
// vote ("up" or "down").
func parseFeedback(actionID, value string) (answer, model, vote string, ok bool) {
	vote, found := strings.CutPrefix(actionID, feedbackAction+"_")
	if !found || (vote != "up" && vote != "down") {
		return "", "", "", false
	}
	answer, model, found = strings.Cut(value, " ")
	if !found || answer == "" || model == "" {
		return "", "", "", false
	}
	return answer, model, vote, true
}

// isSlackError reports whether Slack answered the call with an error of
// its own (ok:false), not a transport failure.
func isSlackError(err error) bool {
	var se slackapi.SlackErrorResponse
	return errors.As(err, &se)
}

// Typing shows, while the model has written nothing yet, the agent
// thread's status ("is thinking…", assistant.threads.setStatus); it is
// cleared when the answer is finished. Only threads of the app's DM (the
// agent experience) have one.
func (o *output) Typing(ctx context.Context) error {
	if !o.a.opts.AgentView || !o.dm || o.thread == "" {
		return nil
	}
	o.mu.Lock()
	if o.status {
		o.mu.Unlock()
		return nil
	}
	o.status = true
	o.mu.Unlock()
	return o.setStatus(ctx, "is thinking…")
}

// clearStatus clears the thread's status once, after the answer.
func (o *output) clearStatus(ctx context.Context) {
	o.mu.Lock()
	set := o.status
	o.status = false
	o.mu.Unlock()
	if set {
		if err := o.setStatus(ctx, ""); err != nil {
			o.a.log.Debug("slack: clearing a thread's status failed", "err", err)
		}
	}
}

func (o *output) setStatus(ctx context.Context, status string) error {
	return o.a.call(ctx, o.team, false, func() error {
		return o.a.agent.SetAssistantThreadsStatusContext(ctx, slackapi.AssistantThreadsSetStatusParameters{
			ChannelID: o.channel, ThreadTS: o.thread, Status: status,
		})
	})
}

var _ bot.Typer = (*output)(nil)
