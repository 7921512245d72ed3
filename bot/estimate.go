package bot

import "bytes"

// pageTokens is what one page of a document is assumed to hold.
const pageTokens = 800

// FileTokens estimates the prompt tokens of a document: 800 per page of a
// PDF (its /Type /Page objects), else a token per three bytes. Holds and
// trimming count documents with it.
func FileTokens(raw []byte) int {
	if pages := bytes.Count(raw, []byte("/Type /Page")) - bytes.Count(raw, []byte("/Type /Pages")); pages > 0 {
		return pages * pageTokens
	}
	return (len(raw) + 2) / 3
}
