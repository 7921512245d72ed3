package slack

import (
	"bytes"
	"context"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// maxThinking bounds the thinking shown in a thread reply: one section.
const maxThinking = sectionLimit - 100

// extras posts what a finished answer carries beside its text, once, in
// its thread (the answer's own thread when it is top-level): the thinking
// as a reply out of the way, and the files through Slack's external upload
// flow. A failure is logged: the answer itself is already shown.
func (o *output) extras(ctx context.Context, ts string, m bot.Message) {
	if m.Status == bot.StatusStreaming || strings.TrimSpace(m.Reasoning) == "" && len(m.Files) == 0 {
		return
	}
	o.mu.Lock()
	done := o.extrasTS[ts]
	o.extrasTS[ts] = true
	o.mu.Unlock()
	if done {
		return
	}
	thread := o.thread
	if thread == "" {
		thread = ts
	}
	if r := strings.TrimSpace(m.Reasoning); r != "" {
		blocks := []slackapi.Block{
			contextBlock(blockThinking, "💭 *Thinking* (how the model got to its answer)"),
			sectionBlock(blockThinking+".0", clipMrkdwn(escape(r), maxThinking)),
		}
		err := o.a.call(ctx, o.team, false, func() error {
			_, _, err := o.a.api.PostMessageContext(ctx, o.channel, slackapi.MsgOptionText("Thinking", false), slackapi.MsgOptionBlocks(blocks...),
				slackapi.MsgOptionTS(thread), slackapi.MsgOptionDisableLinkUnfurl())
			return err
		})
		if err != nil {
			o.a.log.Warn("slack: posting an answer's thinking failed", "channel", o.channel, "err", err)
		}
	}
	for _, f := range m.Files {
		if len(f.Data) == 0 {
			continue
		}
		err := o.a.call(ctx, o.team, false, func() error {
			_, err := o.a.api.UploadFileContext(ctx, slackapi.UploadFileParameters{
				Filename: f.Name, FileSize: len(f.Data), Reader: bytes.NewReader(f.Data), Title: f.Name,
				Channel: o.channel, ThreadTimestamp: thread,
			})
			return err
		})
		if err != nil {
			o.a.log.Warn("slack: uploading a file failed (the app needs the files:write scope)", "channel", o.channel, "file", f.Name, "err", err)
		}
	}
}
