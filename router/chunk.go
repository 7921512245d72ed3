package router

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// A stream chunk is parsed by hand: encoding/json would cost a dozen
// allocations per chunk and cap the parser below the goal of 100 MB/s. The
// parser validates the whole chunk (a garbled chunk is an error, never a
// silent truncation) and extracts only what the router reads; the rare
// usage and error objects are handed to encoding/json.

// chunkFields are the parts of a chunk the router reads. Slices point into
// the event buffer and are valid until the next event.
type chunkFields struct {
	id, model, provider []byte
	choices             []choiceFields
	usage, err          []byte // raw JSON, nil when absent or null
	spare               []detailPiece
}

type choiceFields struct {
	content, reasoning, refusal string
	finishReason                []byte
	// details are the reasoning_details items, read by hand: a thinking
	// model sends one with every piece of its thinking.
	details    []detailPiece
	hasDetails bool
	// Raw JSON of the rare fields, decoded by encoding/json when present.
	annotations, images []byte
}

// detailPiece is one reasoning_details item of a chunk; its strings are
// decoded (the chunk's buffer is reused).
type detailPiece struct {
	typ, id, format, signature string
	text, summary, data        string
	hasText, hasSummary        bool
	hasData, hasID, hasSig     bool
	index                      int
	hasIndex                   bool
}

func (c *chunkFields) reset() {
	c.id, c.model, c.provider = nil, nil, nil
	if len(c.choices) > 0 {
		c.spare = c.choices[0].details[:0]
	}
	c.choices = c.choices[:0]
	c.usage, c.err = nil, nil
}

// spareDetails hands the first choice the details slice of the last
// chunk's, so a thinking stream does not allocate one per chunk.
func (c *chunkFields) spareDetails() []detailPiece {
	d := c.spare
	c.spare = nil
	return d[:0]
}

const maxDepth = 256

var errSyntax = errors.New("invalid JSON")

type jsonScanner struct {
	b     []byte
	i     int
	depth int
}

func (s *jsonScanner) fail(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("%w: unexpected end while reading %s", errSyntax, what)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d while reading %s", errSyntax, s.b[s.i], s.i, what)
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// expect consumes byte c after optional whitespace.
func (s *jsonScanner) expect(c byte, what string) error {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return nil
	}
	return s.fail(what)
}

// rawString reads a string and returns its undecoded contents and whether
// it holds escapes.
func (s *jsonScanner) rawString() (raw []byte, escaped bool, err error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.fail("a string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, s.fail("an escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) || !isHex(s.b[s.i+1]) || !isHex(s.b[s.i+2]) || !isHex(s.b[s.i+3]) || !isHex(s.b[s.i+4]) {
					return nil, false, s.fail("a \\u escape")
				}
				s.i += 5
			default:
				return nil, false, s.fail("an escape")
			}
		case c < 0x20:
			return nil, false, s.fail("a string (control character)")
		default:
			s.i++
		}
	}
	return nil, false, s.fail("a string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	}
	return rune(c - 'A' + 10)
}

// decodeString turns a validated raw string into Go text; invalid UTF-8
// becomes U+FFFD, as encoding/json does.
func decodeString(raw []byte, escaped bool) string {
	if !escaped {
		if utf8.Valid(raw) {
			return string(raw)
		}
		return string(toValidUTF8(raw))
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hexVal(raw[i+1])<<12 | hexVal(raw[i+2])<<8 | hexVal(raw[i+3])<<4 | hexVal(raw[i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(raw)+0 && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hexVal(raw[i+3])<<12 | hexVal(raw[i+4])<<8 | hexVal(raw[i+5])<<4 | hexVal(raw[i+6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, raw[i])
		}
		i++
	}
	if !utf8.Valid(out) {
		out = toValidUTF8(out)
	}
	return string(out)
}

func toValidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// skip validates and skips one value.
func (s *jsonScanner) skip() error {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, err := s.rawString()
		return err
	case c == '{':
		return s.object(func([]byte) error { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.fail("a value")
}

func (s *jsonScanner) literal(lit string) error {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return nil
	}
	return s.fail(lit)
}

// null consumes a null if one comes next.
func (s *jsonScanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

func (s *jsonScanner) number() error {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return s.fail("a number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("a number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("a number")
		}
	}
	if s.i == start {
		return s.fail("a number")
	}
	return nil
}

// object reads an object, calling field for each key with the scanner at
// its value; field must consume the value.
func (s *jsonScanner) object(field func(key []byte) error) error {
	if err := s.expect('{', "an object"); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("a value (nested too deep)")
	}
	defer func() { s.depth-- }()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		key, _, err := s.rawString()
		if err != nil {
			return err
		}
		if err := s.expect(':', "a colon"); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		return s.expect('}', "the end of an object")
	}
}

func (s *jsonScanner) array(elem func() error) error {
	if err := s.expect('[', "an array"); err != nil {
		return err
	}
	if s.depth++; s.depth > maxDepth {
		return s.fail("a value (nested too deep)")
	}
	defer func() { s.depth-- }()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			continue
		}
		return s.expect(']', "the end of an array")
	}
}

// stringOrNull reads a string (raw) or null (nil).
func (s *jsonScanner) stringOrNull() ([]byte, bool, error) {
	if s.null() {
		return nil, false, nil
	}
	return s.rawString()
}

// rawValue skips a value and returns its bytes (nil for null).
func (s *jsonScanner) rawValue() ([]byte, error) {
	if s.null() {
		return nil, nil
	}
	s.ws()
	start := s.i
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// parseChunk validates data as one JSON object and extracts its fields.
func parseChunk(data []byte, c *chunkFields) error {
	c.reset()
	s := jsonScanner{b: data}
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			c.id, _, err = s.stringOrNull()
		case "model":
			c.model, _, err = s.stringOrNull()
		case "provider":
			c.provider, _, err = s.stringOrNull()
		case "usage":
			c.usage, err = s.rawValue()
		case "error":
			c.err, err = s.rawValue()
		case "choices":
			if s.null() {
				return nil
			}
			err = s.array(func() error { return s.choice(c) })
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("the end of the chunk")
	}
	return nil
}

// detail reads one reasoning_details item.
func (s *jsonScanner) detail(ch *choiceFields) error {
	var d detailPiece
	err := s.object(func(key []byte) error {
		switch k := string(key); k {
		case "type", "id", "format", "signature", "text", "summary", "data":
			raw, esc, err := s.stringOrNull()
			if err != nil || raw == nil {
				return err
			}
			v := decodeString(raw, esc)
			switch k {
			case "type":
				d.typ = v
			case "id":
				d.id, d.hasID = v, true
			case "format":
				d.format = v
			case "signature":
				d.signature, d.hasSig = v, true
			case "text":
				d.text, d.hasText = v, true
			case "summary":
				d.summary, d.hasSummary = v, true
			default:
				d.data, d.hasData = v, true
			}
			return nil
		case "index":
			s.ws()
			start := s.i
			if err := s.number(); err != nil {
				return err
			}
			n := 0
			for _, c := range s.b[start:s.i] {
				if c < '0' || c > '9' || n > 1<<20 {
					return nil // not a small whole number: no index
				}
				n = n*10 + int(c-'0')
			}
			d.index, d.hasIndex = n, true
			return nil
		}
		return s.skip()
	})
	if err == nil {
		ch.details = append(ch.details, d)
	}
	return err
}

func (s *jsonScanner) choice(c *chunkFields) error {
	c.choices = append(c.choices, choiceFields{details: c.spareDetails()})
	ch := &c.choices[len(c.choices)-1]
	return s.object(func(key []byte) error {
		switch string(key) {
		case "delta", "message":
			if s.null() {
				return nil
			}
			return s.object(func(key []byte) error {
				var err error
				switch string(key) {
				case "content", "reasoning", "refusal":
					if s.ws(); s.i < len(s.b) && s.b[s.i] != '"' {
						return s.skip() // null, or a shape this router does not read
					}
					raw, esc, err := s.rawString()
					if err != nil || len(raw) == 0 {
						return err
					}
					switch string(key) {
					case "content":
						ch.content = decodeString(raw, esc)
					case "reasoning":
						ch.reasoning = decodeString(raw, esc)
					default:
						ch.refusal = decodeString(raw, esc)
					}
					return nil
				case "reasoning_details":
					if s.null() {
						return nil
					}
					ch.hasDetails = true
					err = s.array(func() error { return s.detail(ch) })
				case "annotations":
					ch.annotations, err = s.rawValue()
				case "images":
					ch.images, err = s.rawValue()
				default:
					err = s.skip()
				}
				return err
			})
		case "finish_reason":
			raw, _, err := s.stringOrNull()
			ch.finishReason = raw
			return err
		}
		return s.skip()
	})
}
