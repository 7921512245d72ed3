package router

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/orchat/orchat/bot"
)

// PDFOCRUSDPerPage is what OpenRouter's mistral-ocr engine costs a page
// ($2 per 1,000 pages, OpenRouter's PDF inputs documentation).
const PDFOCRUSDPerPage = 0.002

// ParsesFiles reports whether the upstream turns a PDF into text for a
// model that cannot read files itself: OpenRouter does, with every
// file-parser engine but "native"; a plain OpenAI-compatible server does
// not, so only file-capable models may get documents there.
func (c Config) ParsesFiles() bool {
	return c.OpenRouterAPI() && c.PDFEngine != "native"
}

// PDFParseUSD is what OpenRouter charges to read files for model m with
// the file-parser engine: nothing with pdf-text, nor when the model reads
// them itself (engine "native", or no engine named and a file-capable
// model); mistral-ocr by the page. cloudflare-ai is held at the OCR price
// too: a hold a little too large is released, one too small would leave
// the host paying.
func PDFParseUSD(engine string, m bot.Model, files []bot.FilePart) float64 {
	switch engine {
	case "pdf-text", "native":
		return 0
	case "":
		if m.Files() {
			return 0
		}
	}
	pages := 0
	for _, f := range files {
		pages += PDFPages(f)
	}
	return float64(pages) * PDFOCRUSDPerPage
}

// PDFPages estimates a PDF's pages: its page objects ("/Type /Page", not
// "/Pages") when the file is inline, else one a 100 KB, at least one.
func PDFPages(f bot.FilePart) int {
	guess := max(1, int(f.Size/100_000))
	_, b64, ok := strings.Cut(f.Data, ";base64,")
	if !ok || !strings.HasPrefix(f.Data, "data:") {
		return guess
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return guess
	}
	n := 0
	for rest := data; ; {
		i := bytes.Index(rest, []byte("/Type"))
		if i < 0 {
			break
		}
		rest = bytes.TrimLeft(rest[i+len("/Type"):], " \t\r\n")
		if bytes.HasPrefix(rest, []byte("/Page")) && !bytes.HasPrefix(rest, []byte("/Pages")) {
			n++
		}
	}
	if n == 0 {
		return guess
	}
	return n
}
