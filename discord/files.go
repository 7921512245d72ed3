package discord

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// maxUpload is the largest file a bot may upload without boosts.
const maxUpload = 10 << 20

// uploads returns the files a finished message carries: its images, and
// its thinking as thinking.md (out of the way: a click opens it).
func uploads(m bot.Message) []*discordgo.File {
	var out []*discordgo.File
	if r := strings.TrimSpace(m.Reasoning); r != "" {
		out = append(out, &discordgo.File{Name: "thinking.md", ContentType: "text/markdown; charset=utf-8", Reader: strings.NewReader("# Thinking\n\n" + r + "\n")})
	}
	for _, f := range m.Files {
		if len(f.Data) == 0 || len(f.Data) > maxUpload {
			continue
		}
		out = append(out, &discordgo.File{Name: f.Name, ContentType: f.MIME, Reader: bytes.NewReader(f.Data)})
	}
	return out
}

// upload posts a finished message's files as a message of their own, a
// reply to it (or a follow-up of the interaction), once. A failure is
// logged: the answer itself is already shown.
func (o *output) upload(ctx context.Context, t *target, m bot.Message) {
	if m.Status == bot.StatusStreaming || t.filesSent || t.kind == targetDropped || t.kind == targetPending {
		return
	}
	files := uploads(m)
	if len(files) == 0 {
		return
	}
	t.filesSent = true
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	content := "-# " + strings.Join(names, " · ")
	var err error
	if (t.kind == targetOriginal || t.kind == targetFollowup) && o.usable() {
		p := &discordgo.WebhookParams{Content: content, AllowedMentions: noMentions()}
		if t.private {
			p.Flags = discordgo.MessageFlagsEphemeral
		}
		var ct string
		var body []byte
		if ct, body, err = discordgo.MultipartBodyWithJSON(p, files); err == nil {
			uri := discordgo.EndpointWebhookToken(o.ia.AppID, o.ia.Token) + "?wait=true"
			_, err = o.a.hookRequest(ctx, o.hooks, http.MethodPost, uri, ct, body)
		}
	} else {
		send := &discordgo.MessageSend{Content: content, Files: files, AllowedMentions: noMentions()}
		if t.id != "" {
			no := false
			send.Reference = &discordgo.MessageReference{MessageID: t.id, ChannelID: t.channel, FailIfNotExists: &no}
		}
		_, err = o.a.api.ChannelMessageSendComplex(t.channel, send, discordgo.WithContext(ctx))
	}
	if err != nil {
		o.a.log.Warn("could not upload an answer's files", "event", o.ev.ID, "files", len(files), "err", fmt.Errorf("%w", o.a.redact(err)))
	}
}
