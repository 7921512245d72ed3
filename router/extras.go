package router

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/orchat/orchat/bot"
)

// The rare parts of an answer (reasoning_details, url_citation
// annotations, images) arrive in a few chunks at most, so they are decoded
// with encoding/json; the hot path (content deltas) never reaches here.

// Bounds on what one answer may carry.
const (
	maxImages         = 8
	maxImageBytes     = 20 << 20
	maxCitations      = 50
	maxReasoningItems = 256
)

type wireAnnotation struct {
	Type        string `json:"type"`
	URLCitation *struct {
		URL   string `json:"url"`
		Title string `json:"title"`
	} `json:"url_citation"`
}

type wireImage struct {
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

func nullToNil(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// extras adds a chunk's (or a message's) reasoning_details, annotations
// and images to resp; the error names the field that could not be read.
func extras(resp *Response, dm *detailMerger, details, annotations, images []byte) error {
	if details != nil {
		var items []wireDetail
		if err := json.Unmarshal(details, &items); err != nil {
			return errors.New("reasoning_details")
		}
		for _, it := range items {
			dm.add(it)
		}
	}
	if annotations != nil {
		var anns []wireAnnotation
		if err := json.Unmarshal(annotations, &anns); err != nil {
			return errors.New("annotations")
		}
		for _, a := range anns {
			if a.Type == "url_citation" && a.URLCitation != nil && len(resp.Citations) < maxCitations {
				resp.Citations = append(resp.Citations, bot.Citation{URL: a.URLCitation.URL, Title: a.URLCitation.Title})
			}
		}
	}
	if images != nil {
		var imgs []wireImage
		if err := json.Unmarshal(images, &imgs); err != nil {
			return errors.New("images")
		}
		for _, im := range imgs {
			if im.ImageURL == nil || len(resp.Images)+len(resp.ImageURLs) >= maxImages {
				continue
			}
			u := im.ImageURL.URL
			if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
				resp.ImageURLs = append(resp.ImageURLs, u)
				continue
			}
			img, err := decodeDataImage(u)
			if err != nil {
				return errors.New("images (" + err.Error() + ")")
			}
			resp.Images = append(resp.Images, img)
		}
	}
	return nil
}

// decodeDataImage reads a data:image/...;base64,... URL.
func decodeDataImage(u string) (bot.Image, error) {
	meta, data, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
	if !ok || !strings.HasPrefix(u, "data:") || !strings.HasSuffix(meta, ";base64") {
		return bot.Image{}, errors.New("not a base64 data URL")
	}
	mime := strings.TrimSuffix(meta, ";base64")
	if !strings.HasPrefix(mime, "image/") {
		return bot.Image{}, errors.New("not an image")
	}
	if base64.StdEncoding.DecodedLen(len(data)) > maxImageBytes {
		return bot.Image{}, errors.New("larger than 20 MB")
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return bot.Image{}, errors.New("bad base64")
	}
	return bot.Image{MIME: mime, Data: b}, nil
}

// wireDetail is one reasoning_details item, with the fields the chat
// spec defines (ReasoningDetailText, Summary, Encrypted).
type wireDetail struct {
	Type      string  `json:"type"`
	ID        *string `json:"id,omitempty"`
	Format    string  `json:"format,omitempty"`
	Index     *int    `json:"index,omitempty"`
	Text      *string `json:"text,omitempty"`
	Summary   *string `json:"summary,omitempty"`
	Data      *string `json:"data,omitempty"`
	Signature *string `json:"signature,omitempty"`
}

// detail is an item being merged: its text, summary and data grow in
// builders (a long thinking arrives in thousands of pieces).
type detail struct {
	w                   wireDetail
	text, summary, data strings.Builder
	hasText, hasSummary bool
	hasData             bool
}

// detailMerger joins streamed reasoning_details: items with the same index
// are one item whose text, summary and data arrive in pieces.
type detailMerger struct {
	items []*detail
	byIdx map[int]*detail
}

// addPiece adds an item read by the chunk scanner.
func (d *detailMerger) addPiece(p detailPiece) {
	w := wireDetail{Type: p.typ, Format: p.format}
	if p.hasIndex {
		w.Index = &p.index
	}
	if p.hasID {
		w.ID = &p.id
	}
	if p.hasSig {
		w.Signature = &p.signature
	}
	if p.hasText {
		w.Text = &p.text
	}
	if p.hasSummary {
		w.Summary = &p.summary
	}
	if p.hasData {
		w.Data = &p.data
	}
	d.add(w)
}

func (d *detailMerger) add(w wireDetail) {
	var it *detail
	if w.Index != nil {
		it = d.byIdx[*w.Index]
	}
	if it == nil {
		if len(d.items) >= maxReasoningItems {
			return
		}
		it = &detail{w: wireDetail{Type: w.Type, ID: w.ID, Format: w.Format, Index: w.Index}}
		d.items = append(d.items, it)
		if w.Index != nil {
			if d.byIdx == nil {
				d.byIdx = map[int]*detail{}
			}
			d.byIdx[*w.Index] = it
		}
	}
	if w.Type != "" {
		it.w.Type = w.Type
	}
	if w.ID != nil {
		it.w.ID = w.ID
	}
	if w.Format != "" {
		it.w.Format = w.Format
	}
	if w.Signature != nil {
		it.w.Signature = w.Signature
	}
	if w.Text != nil {
		it.text.WriteString(*w.Text)
		it.hasText = true
	}
	if w.Summary != nil {
		it.summary.WriteString(*w.Summary)
		it.hasSummary = true
	}
	if w.Data != nil {
		it.data.WriteString(*w.Data)
		it.hasData = true
	}
}

func (d *detailMerger) json() []byte {
	if len(d.items) == 0 {
		return nil
	}
	out := make([]wireDetail, len(d.items))
	for i, it := range d.items {
		w := it.w
		if it.hasText {
			s := it.text.String()
			w.Text = &s
		}
		if it.hasSummary {
			s := it.summary.String()
			w.Summary = &s
		}
		if it.hasData {
			s := it.data.String()
			w.Data = &s
		}
		out[i] = w
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}
