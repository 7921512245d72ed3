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
		var items []map[string]any
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

// detailMerger joins streamed reasoning_details: items with the same index
// are one item whose text, summary and data arrive in pieces.
type detailMerger struct {
	items []map[string]any
	byIdx map[float64]int
}

func (d *detailMerger) add(it map[string]any) {
	idx, hasIdx := it["index"].(float64)
	if hasIdx {
		if i, ok := d.byIdx[idx]; ok {
			cur := d.items[i]
			for k, v := range it {
				switch k {
				case "text", "summary", "data":
					a, _ := cur[k].(string)
					b, _ := v.(string)
					cur[k] = a + b
				default:
					if v != nil {
						cur[k] = v
					}
				}
			}
			return
		}
	}
	if len(d.items) >= maxReasoningItems {
		return
	}
	if hasIdx {
		if d.byIdx == nil {
			d.byIdx = map[float64]int{}
		}
		d.byIdx[idx] = len(d.items)
	}
	d.items = append(d.items, it)
}

func (d *detailMerger) json() []byte {
	if len(d.items) == 0 {
		return nil
	}
	b, err := json.Marshal(d.items)
	if err != nil {
		return nil
	}
	return b
}
