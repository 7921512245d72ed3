package slacktest

import (
	"encoding/json"
	"strings"
)

// Messages returns every message in channel (ephemeral ones included),
// oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

// Thread returns a thread's parent and replies the bot posted or users
// wrote (not ephemeral messages), oldest first.
func (s *Server) Thread(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel && !m.Ephemeral && (m.TS == ts || m.ThreadTS == ts) {
			out = append(out, *m)
		}
	}
	return out
}

// BotMessages returns the bot's messages in channel that everyone sees.
func (s *Server) BotMessages(channel string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.BotID != "" && !m.Ephemeral {
			out = append(out, m)
		}
	}
	return out
}

// Ephemerals returns the ephemeral messages shown to user, oldest first.
func (s *Server) Ephemerals(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Ephemeral && m.To == user {
			out = append(out, *m)
		}
	}
	return out
}

// Find returns the message channel/ts.
func (s *Server) Find(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.find(channel, ts); m != nil {
		return *m, true
	}
	return Message{}, false
}

// Seen returns what user sees in Slack, in order: every message everyone
// sees and the ephemeral messages shown to user, each as Visible text.
func (s *Server) Seen(user string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		if !m.Ephemeral || m.To == user {
			out = append(out, m.Visible())
		}
	}
	return out
}

// Calls returns the recorded calls of a Web API method ("" for all).
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Responses returns what was posted to response_urls.
func (s *Server) Responses() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResponsePost(nil), s.responses...)
}

// Visible is the message as a person reads it: the text of its blocks
// (sections, context lines, headers, markdown, button labels), or its text
// when it has no blocks. Slack's entities (&lt; …) stay as sent.
func (m Message) Visible() string {
	if m.Streamed {
		if len(m.Blocks) == 0 {
			return m.Text
		}
		return m.Text + "\n" + Message{Blocks: m.Blocks}.Visible()
	}
	var blocks []map[string]any
	if len(m.Blocks) == 0 || json.Unmarshal(m.Blocks, &blocks) != nil || len(blocks) == 0 {
		return m.Text
	}
	var lines []string
	for _, b := range blocks {
		switch b["type"] {
		case "section", "header":
			if t, ok := b["text"].(map[string]any); ok {
				lines = append(lines, str(t["text"]))
			}
		case "markdown":
			lines = append(lines, str(b["text"]))
		case "context":
			var parts []string
			for _, e := range list(b["elements"]) {
				if el, ok := e.(map[string]any); ok {
					parts = append(parts, str(el["text"]))
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "actions":
			var parts []string
			for _, e := range list(b["elements"]) {
				if el, ok := e.(map[string]any); ok {
					if t, ok := el["text"].(map[string]any); ok {
						parts = append(parts, "["+str(t["text"])+"]")
					}
				}
			}
			lines = append(lines, strings.Join(parts, " "))
		case "divider":
			lines = append(lines, "---")
		}
	}
	return strings.Join(lines, "\n")
}

// BlockIDs lists the message's block ids in order.
func (m Message) BlockIDs() []string {
	var blocks []struct {
		ID string `json:"block_id"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	var out []string
	for _, b := range blocks {
		out = append(out, b.ID)
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}
