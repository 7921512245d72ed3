package router

import (
	"encoding/base64"
	"strings"

	"github.com/orchat/orchat/bot"
)

// Token estimates. Tokenizers average about four bytes of English per token;
// three bytes per token overestimates on purpose, so a hold covers the real
// bill and a trimmed prompt really fits.
const (
	bytesPerToken = 3
	// MessageOverheadTokens covers the role and separators of one message.
	MessageOverheadTokens = 4
	// PromptOverheadTokens covers the reply priming of a request.
	PromptOverheadTokens = 3
	// ImageTokens is what one image is assumed to cost (a large image on
	// the most expensive common vision tokenizers).
	ImageTokens = 1600
)

// EstimateTokens returns a conservative token count for text.
func EstimateTokens(text string) int {
	return (len(text) + bytesPerToken - 1) / bytesPerToken
}

// EstimateMessage returns the tokens one message adds to a prompt.
func EstimateMessage(m bot.ChatMessage) int {
	n := MessageOverheadTokens + EstimateTokens(m.Content) + ImageTokens*len(m.Images)
	for _, f := range m.Files {
		n += f.Tokens
	}
	return n
}

// EstimatePrompt returns the estimated prompt tokens of a request with msgs.
// The simulator counts prompt tokens the same way.
func EstimatePrompt(msgs []bot.ChatMessage) int {
	n := PromptOverheadTokens
	for _, m := range msgs {
		n += EstimateMessage(m)
	}
	return n
}

// EstimateFileTokens estimates the prompt tokens of a document given as a
// data: URL (see bot.FileTokens). The simulator counts the same.
func EstimateFileTokens(data string) int {
	raw := []byte(data)
	if _, b64, ok := strings.Cut(data, ";base64,"); ok {
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			raw = b
		}
	}
	return bot.FileTokens(raw)
}
