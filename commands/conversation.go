package commands

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
)

// conversation builds the messages for a model: the system prompt, the
// earlier turns read back from the platform, then the new message with its
// attachments. notes say which attachments were left out and why.
func (s *set) conversation(ctx context.Context, ev bot.Event, prompt, persona string) ([]bot.ChatMessage, []string, error) {
	system := s.systemPrompt(ev, persona)
	if c := strings.TrimSpace(ev.Context); c != "" {
		system += "\n\n" + c
	}
	msgs := []bot.ChatMessage{{Role: bot.RoleSystem, Content: system}}
	if ev.History != nil && s.Config.History.Messages > 0 {
		turns, err := ev.History.Turns(ctx, s.Config.History)
		if err != nil {
			// The answer is still useful without context; say so in the log.
			s.Logger.Warn("read conversation history", "platform", ev.Platform, "err", err)
		}
		hist, kept := historyMessages(turns, s.Config.History)
		s.historyImages(ctx, hist, kept)
		msgs = append(msgs, hist...)
	}
	images, files, docs, notes := s.attachments(ctx, ev.Attachments)
	content := prompt
	for _, f := range files {
		content += f
	}
	if content == "" && len(images) > 0 {
		content = "What is in this image?"
	}
	if content == "" && len(docs) > 0 {
		content = "Summarise this document."
	}
	if strings.TrimSpace(content) == "" {
		return nil, notes, bot.Errorf(bot.EINVALID, "I could not read anything from your message. %s", strings.Join(notes, " "))
	}
	msgs = append(msgs, bot.ChatMessage{Role: bot.RoleUser, Content: content, Images: images, Files: docs})
	return msgs, notes, nil
}

// historyImages adds the images of earlier turns (a reply chain, a
// thread) to their messages, newest first within the configured count
// and bytes; the router drops them again, with a note, for a model that
// cannot read images. An image that cannot be fetched is skipped.
func (s *set) historyImages(ctx context.Context, msgs []bot.ChatMessage, turns []bot.Turn) {
	left, bytes := s.Config.HistoryImages, s.Config.HistoryImageBytes
	if left <= 0 {
		return
	}
	for i := len(turns) - 1; i >= 0 && left > 0; i-- {
		for _, a := range turns[i].Attachments {
			if left == 0 {
				break
			}
			name := a.Name
			ext := strings.ToLower(path.Ext(name))
			ctype := strings.ToLower(strings.TrimSpace(strings.Split(a.ContentType, ";")[0]))
			if !strings.HasPrefix(ctype, "image/") && imageTypes[ext] == "" {
				continue
			}
			if a.Size > s.Config.AttachmentImageBytes || bytes > 0 && a.Size > bytes {
				continue
			}
			img, note := s.image(ctx, a, name, ext, ctype)
			if note != "" {
				continue
			}
			left--
			bytes -= max(a.Size, int64(len(img)*3/4))
			msgs[i].Images = append(msgs[i].Images, img)
		}
	}
}

// historyMessages keeps the newest turns within the limits, oldest first,
// and returns the turn of each message.
func historyMessages(turns []bot.Turn, limit bot.HistoryLimit) ([]bot.ChatMessage, []bot.Turn) {
	if limit.Messages > 0 && len(turns) > limit.Messages {
		turns = turns[len(turns)-limit.Messages:]
	}
	var out []bot.ChatMessage
	var kept []bot.Turn
	chars := 0
	for i := len(turns) - 1; i >= 0; i-- {
		t := turns[i]
		text := strings.TrimSpace(t.Text)
		if text == "" {
			continue
		}
		n := utf8.RuneCountInString(text)
		if limit.Chars > 0 && chars+n > limit.Chars {
			break
		}
		chars += n
		role := bot.RoleUser
		if t.Role == bot.RoleAssistant {
			role = bot.RoleAssistant
		}
		out = append(out, bot.ChatMessage{Role: role, Content: text})
		kept = append(kept, t)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
		kept[i], kept[j] = kept[j], kept[i]
	}
	return out, kept
}

// systemPrompt fills in the placeholders of the persona in force (a
// channel's or community's, else the configured system prompt).
func (s *set) systemPrompt(ev bot.Event, persona string) string {
	if persona == "" {
		persona = s.Config.SystemPrompt
	}
	now := s.Now().In(s.Config.Location)
	user := ev.UserName
	if user == "" {
		user = string(ev.Identity)
	}
	community := ev.Community
	if community == "" {
		community = ev.Platform
	}
	return strings.NewReplacer(
		"{date}", now.Format("Monday, 2 January 2006"),
		"{time}", now.Format("15:04 MST"),
		"{platform}", platformName(ev.Platform),
		"{community}", community,
		"{user}", user,
	).Replace(persona)
}

func platformName(p string) string {
	switch p {
	case bot.PlatformDiscord:
		return "Discord"
	case bot.PlatformSlack:
		return "Slack"
	case bot.PlatformConsole:
		return "terminal"
	}
	return p
}

var imageTypes = map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}

var textExts = map[string]bool{
	".txt": true, ".md": true, ".markdown": true, ".csv": true, ".tsv": true, ".json": true, ".yaml": true, ".yml": true,
	".toml": true, ".ini": true, ".log": true, ".xml": true, ".html": true, ".css": true, ".sql": true, ".sh": true,
	".go": true, ".py": true, ".js": true, ".ts": true, ".tsx": true, ".jsx": true, ".rs": true, ".java": true,
	".kt": true, ".c": true, ".h": true, ".cpp": true, ".hpp": true, ".cs": true, ".rb": true, ".php": true,
	".swift": true, ".lua": true, ".r": true, ".diff": true, ".patch": true,
}

// attachments sorts a message's files: images become image parts, PDFs
// file parts (read by the file-parser plugin), text files are inlined (up
// to a size limit), anything else is left out with a note that says why.
func (s *set) attachments(ctx context.Context, atts []bot.Attachment) (images, files []string, docs []bot.FilePart, notes []string) {
	for _, a := range atts {
		name := a.Name
		if name == "" {
			name = "attachment"
		}
		ext := strings.ToLower(path.Ext(name))
		ctype := strings.ToLower(strings.TrimSpace(strings.Split(a.ContentType, ";")[0]))
		switch {
		case strings.HasPrefix(ctype, "image/") || imageTypes[ext] != "":
			img, note := s.image(ctx, a, name, ext, ctype)
			if note != "" {
				notes = append(notes, note)
			} else {
				images = append(images, img)
			}
		case ctype == "application/pdf" || ext == ".pdf":
			doc, note := s.pdf(ctx, a, name)
			if note != "" {
				notes = append(notes, note)
			} else {
				docs = append(docs, doc)
			}
		case strings.HasPrefix(ctype, "text/") || ctype == "application/json" || textExts[ext]:
			text, note := s.textFile(ctx, a, name)
			if note != "" {
				notes = append(notes, note)
			} else {
				files = append(files, text)
			}
		default:
			what := ctype
			if what == "" {
				what = "unknown type"
			}
			notes = append(notes, fmt.Sprintf("I left out %s (%s): I can read images, PDFs and text files only.", bot.Clip(name, 60), what))
		}
	}
	return images, files, docs, notes
}

// pdf reads a PDF attachment into a file part, its tokens estimated from
// its pages.
func (s *set) pdf(ctx context.Context, a bot.Attachment, name string) (bot.FilePart, string) {
	limit := s.Config.AttachmentFileBytes
	if a.Size > limit {
		return bot.FilePart{}, fmt.Sprintf("I left out %s: it is %s, and documents may be up to %s.", bot.Clip(name, 60), byteSize(a.Size), byteSize(limit))
	}
	data, err := s.fetch(ctx, a, limit)
	if err != nil {
		return bot.FilePart{}, fmt.Sprintf("I could not download %s: %s", bot.Clip(name, 60), err)
	}
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return bot.FilePart{}, fmt.Sprintf("I left out %s: it is named like a PDF but is not one.", bot.Clip(name, 60))
	}
	if !bytes.Contains(data, []byte("/Type /Page")) && !bytes.Contains(data, []byte("/Type/Page")) {
		return bot.FilePart{}, fmt.Sprintf("I left out %s: it is not a readable PDF (it has no pages; it may be cut off).", bot.Clip(name, 60))
	}
	url := "data:application/pdf;base64," + base64.StdEncoding.EncodeToString(data)
	return bot.FilePart{Name: name, Data: url, Size: int64(len(data)), Tokens: bot.FileTokens(data)}, ""
}

func (s *set) image(ctx context.Context, a bot.Attachment, name, ext, ctype string) (string, string) {
	limit := s.Config.AttachmentImageBytes
	if a.Size > limit {
		return "", fmt.Sprintf("I left out %s: it is %s, and images may be up to %s.", bot.Clip(name, 60), byteSize(a.Size), byteSize(limit))
	}
	data, err := s.fetch(ctx, a, limit)
	if err != nil {
		return "", fmt.Sprintf("I could not download %s: %s", bot.Clip(name, 60), err)
	}
	sniffed := http.DetectContentType(data)
	if !strings.HasPrefix(sniffed, "image/") {
		return "", fmt.Sprintf("I left out %s: it does not look like an image (it looks like %s).", bot.Clip(name, 60), sniffed)
	}
	return "data:" + sniffed + ";base64," + base64.StdEncoding.EncodeToString(data), ""
}

func (s *set) textFile(ctx context.Context, a bot.Attachment, name string) (string, string) {
	limit := s.Config.AttachmentTextBytes
	if a.Size > limit {
		return "", fmt.Sprintf("I left out %s: it is %s, and text files may be up to %s.", bot.Clip(name, 60), byteSize(a.Size), byteSize(limit))
	}
	data, err := s.fetch(ctx, a, limit)
	if err != nil {
		return "", fmt.Sprintf("I could not download %s: %s", bot.Clip(name, 60), err)
	}
	if !utf8.Valid(data) {
		return "", fmt.Sprintf("I left out %s: it is not UTF-8 text.", bot.Clip(name, 60))
	}
	if bytes.IndexByte(data, 0) >= 0 {
		// Valid UTF-8, but no text file holds NUL bytes: UTF-16 (as
		// Windows saves "Unicode" text) or a binary with a text name.
		return "", fmt.Sprintf("I left out %s: it is not UTF-8 text (it holds NUL bytes, as UTF-16 or binary files do).", bot.Clip(name, 60))
	}
	return fmt.Sprintf("\n\n--- %s ---\n%s\n--- end of %s ---", name, data, name), ""
}

// errTooLarge is returned by fetch when a file is over its limit.
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string { return "it is larger than " + byteSize(e.limit) + "." }

// fetch downloads at most limit bytes of an attachment through its
// adapter's Fetch. The commands never download an address an event names
// themselves: only the adapter knows which hosts are its platform's (and
// which credentials they take), so an attachment without Fetch is left out.
func (s *set) fetch(ctx context.Context, a bot.Attachment, limit int64) ([]byte, error) {
	if a.Fetch == nil {
		return nil, fmt.Errorf("it has no address I can download.")
	}
	data, err := a.Fetch(ctx, limit+1)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge{limit}
	}
	return data, nil
}

// byteSize writes n bytes for people: 512 B, 98 KB, 10 MB.
func byteSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}
