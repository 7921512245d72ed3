package openroutertest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/orchat/orchat/router/openroutertest"
)

// specPath is OpenRouter's published OpenAPI document of 22 August 2026,
// trimmed to the four endpoints orchat uses and the schemas they reach
// (router/testdata/openapi/README.md says how).
const specPath = "../testdata/openapi/openrouter-openapi-2026-08-22.trimmed.yaml"

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		l := openapi3.NewLoader()
		if specDoc, specErr = l.LoadFromFile(specPath); specErr == nil {
			seen := map[*openapi3.Schema]bool{}
			for _, s := range specDoc.Components.Schemas {
				emptyAcceptsNull(s, seen)
			}
		}
	})
	if specErr != nil {
		t.Fatalf("load the OpenAPI document: %v", specErr)
	}
	return specDoc
}

// emptyAcceptsNull marks every empty schema ({}) nullable. The document is
// OpenAPI 3.1, whose schemas are JSON Schema 2020-12: {} accepts anything,
// null included. kin-openapi validates schemas without 2020-only keywords
// with its 3.0 validator, where null needs "nullable"; type lists with
// "null" it reads as 3.1 already.
func emptyAcceptsNull(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if s.IsEmpty() {
		s.Nullable = true
	}
	for _, p := range s.Properties {
		emptyAcceptsNull(p, seen)
	}
	emptyAcceptsNull(s.Items, seen)
	emptyAcceptsNull(s.AdditionalProperties.Schema, seen)
	emptyAcceptsNull(s.Not, seen)
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, x := range list {
			emptyAcceptsNull(x, seen)
		}
	}
}

// responseSchema is the schema of an operation's response for a status
// and content type ("" status falls back to the default).
func responseSchema(t *testing.T, path, method string, status int, ctype string) *openapi3.Schema {
	t.Helper()
	doc := loadSpec(t)
	item := doc.Paths.Find(path)
	if item == nil {
		t.Fatalf("the document has no path %s", path)
	}
	op := item.GetOperation(method)
	r := op.Responses.Status(status)
	if r == nil || r.Value == nil {
		t.Fatalf("%s %s: the document defines no %d response", method, path, status)
	}
	mt := r.Value.Content.Get(ctype)
	if mt == nil || mt.Schema == nil {
		t.Fatalf("%s %s %d: no %s schema", method, path, status, ctype)
	}
	return mt.Schema.Value
}

// schemaNamed is one of the document's component schemas.
func schemaNamed(t *testing.T, name string) *openapi3.Schema {
	t.Helper()
	s := loadSpec(t).Components.Schemas[name]
	if s == nil {
		t.Fatalf("the document has no schema %s", name)
	}
	return s.Value
}

// conforms fails the test unless body (JSON) is valid against s.
func conforms(t *testing.T, what string, s *openapi3.Schema, body []byte) {
	t.Helper()
	if err := validate(s, body); err != nil {
		t.Errorf("%s does not conform to the spec: %v\n%s", what, err, clip(body))
	}
}

func validate(s *openapi3.Schema, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return s.VisitJSON(v, openapi3.MultiErrors())
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// sseData returns the JSON of each data: event of a stream, [DONE] left
// out.
func sseData(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		out = append(out, []byte(data))
	}
	return out
}

// TestSimulatorConformsToTheSpec validates every kind of response the
// simulator serves against OpenRouter's OpenAPI document: /models, /key,
// /generation, chat completions (streamed chunk by chunk, and not), with
// reasoning, citations, images, refusals, caching and cut streams, and
// its error bodies.
func TestSimulatorConformsToTheSpec(t *testing.T) {
	limit := 25.0
	s := MustServer(t, openroutertest.Options{
		KeyLimit: &limit,
		Faults: map[string]openroutertest.Fault{
			"mistralai/mistral-nemo":            {Truncate: true, AfterChunks: 3},
			"meta-llama/llama-3.3-70b-instruct": {MidStreamError: true, AfterChunks: 2},
		},
	})
	get := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}

	t.Run("Models", func(t *testing.T) {
		for _, q := range []string{"", "?output_modalities=text,image", "?output_modalities=image", "?output_modalities=all"} {
			status, body := get("/models" + q)
			conforms(t, "GET /models"+q, responseSchema(t, "/models", http.MethodGet, status, "application/json"), body)
		}
	})

	chatSchema := responseSchema(t, "/chat/completions", http.MethodPost, 200, "application/json")
	chunkSchema := schemaNamed(t, "ChatStreamChunk")
	var genIDs []string
	for _, tc := range []struct {
		name, body string
	}{
		{"Plain", chatBody("google/gemini-2.5-flash", "hello there", nil)},
		{"Reasoning", chatBody("openai/o4-mini", "prove it", map[string]any{"reasoning": map[string]any{"effort": "high"}, "max_tokens": 4000})},
		{"ReasoningStarved", chatBody("openai/o4-mini", "prove it", map[string]any{"reasoning": map[string]any{"effort": "xhigh"}, "max_tokens": 200})},
		{"Web", chatBody("google/gemini-2.5-flash", "news today", map[string]any{"plugins": []any{map[string]any{"id": "web", "max_results": 3}}})},
		{"Online", chatBody("google/gemini-2.5-flash:online", "news today", nil)},
		{"Image", chatBody("google/gemini-2.5-flash-image", "a red square", map[string]any{"modalities": []string{"image", "text"}})},
		{"Refusal", chatBody("google/gemini-2.5-flash", "please [refuse]", nil)},
		{"ContentFilter", chatBody("google/gemini-2.5-flash", "[filter] this", nil)},
		{"Length", chatBody("google/gemini-2.5-flash", "a long answer please", map[string]any{"max_tokens": 20})},
		{"PDF", pdfBody("google/gemini-2.5-flash")},
		{"Cached", cachedBody("anthropic/claude-haiku-4.5")},
		{"CachedAgain", cachedBody("anthropic/claude-haiku-4.5")},
	} {
		for _, stream := range []bool{false, true} {
			name := tc.name
			if stream {
				name += "/Streamed"
			}
			t.Run(name, func(t *testing.T) {
				body := tc.body
				if stream {
					body = streamed(body)
				}
				res, b := post(t, s, body)
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, b)
				}
				if !stream {
					conforms(t, "a completion", chatSchema, b)
					var c struct{ ID string }
					_ = json.Unmarshal(b, &c)
					genIDs = append(genIDs, c.ID)
					return
				}
				chunks := sseData(t, b)
				if len(chunks) < 2 {
					t.Fatalf("%d chunks", len(chunks))
				}
				for i, c := range chunks {
					conforms(t, "chunk "+strconv.Itoa(i), chunkSchema, c)
				}
			})
		}
	}

	t.Run("CutStreams", func(t *testing.T) {
		for _, model := range []string{"mistralai/mistral-nemo", "meta-llama/llama-3.3-70b-instruct"} {
			res, err := client.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(streamed(chatBody(model, "hello", nil))))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body) // a truncated stream ends in an error
			res.Body.Close()
			for i, c := range sseData(t, b) {
				conforms(t, model+" chunk "+strconv.Itoa(i), chunkSchema, c)
				var id struct{ ID string }
				_ = json.Unmarshal(c, &id)
				if i == 0 {
					genIDs = append(genIDs, id.ID)
				}
			}
		}
	})

	t.Run("Generation", func(t *testing.T) {
		if len(genIDs) == 0 {
			t.Fatal("no generations")
		}
		for _, id := range genIDs {
			status, body := get("/generation?id=" + id)
			conforms(t, "GET /generation "+id, responseSchema(t, "/generation", http.MethodGet, status, "application/json"), body)
		}
		status, body := get("/generation?id=gen-unknown")
		conforms(t, "GET /generation of an unknown id", responseSchema(t, "/generation", http.MethodGet, status, "application/json"), body)
	})

	t.Run("Key", func(t *testing.T) {
		status, body := get("/key")
		conforms(t, "GET /key", responseSchema(t, "/key", http.MethodGet, status, "application/json"), body)
	})

	t.Run("Errors", func(t *testing.T) {
		for _, st := range []int{400, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503, 524, 529} {
			f := openroutertest.Fault{Status: st}
			srv := MustServer(t, openroutertest.Options{Faults: map[string]openroutertest.Fault{"google/gemini-2.5-flash": f}})
			res, b := post(t, srv, chatBody("google/gemini-2.5-flash", "hi", nil))
			conforms(t, "the "+strconv.Itoa(st)+" body", responseSchema(t, "/chat/completions", http.MethodPost, res.StatusCode, "application/json"), b)
		}
	})
}

// TestWireSamplesConformToTheSpec validates the real wire samples the
// client is tested against. Where OpenRouter's own responses depart from
// its document, the departure is listed and must still be there: a sample
// that starts to conform (or departs elsewhere) fails the test.
func TestWireSamplesConformToTheSpec(t *testing.T) {
	known := map[string]string{
		// The document types a mid-stream error's code as an integer;
		// OpenRouter also sends strings such as "server_error".
		"stream-midstream-error-string-code.sse": "/error/code",
	}
	files, err := filepath.Glob("../testdata/wire/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no wire samples: %v", err)
	}
	chunk := schemaNamed(t, "ChatStreamChunk")
	checked := 0
	for _, f := range files {
		name := filepath.Base(f)
		if name == "README.md" || name == ".gitattributes" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		switch {
		case strings.HasSuffix(name, ".sse"):
			for i, c := range sseData(t, b) {
				if err := validate(chunk, c); err != nil {
					errs = append(errs, "chunk "+strconv.Itoa(i)+": "+err.Error())
				}
			}
		case strings.HasPrefix(name, "error-"):
			code, _ := strconv.Atoi(strings.TrimPrefix(name, "error-")[:3])
			if err := validate(responseSchema(t, "/chat/completions", http.MethodPost, code, "application/json"), b); err != nil {
				errs = append(errs, err.Error())
			}
		default:
			if err := validate(responseSchema(t, "/chat/completions", http.MethodPost, 200, "application/json"), b); err != nil {
				errs = append(errs, err.Error())
			}
		}
		checked++
		where, departs := known[name]
		switch {
		case departs && len(errs) == 0:
			t.Errorf("%s now conforms: remove it from the known departures", name)
		case departs && !strings.Contains(strings.Join(errs, "\n"), where):
			t.Errorf("%s departs from the spec elsewhere than %s: %v", name, where, errs)
		case !departs && len(errs) > 0:
			t.Errorf("%s does not conform to the spec: %v", name, errs)
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d samples, want every one", checked)
	}
}

func chatBody(model, prompt string, extra map[string]any) string {
	m := map[string]any{"model": model, "messages": []any{map[string]any{"role": "user", "content": prompt}}}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// streamed is body asking for a stream with usage.
func streamed(body string) string {
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	m["stream"], m["stream_options"] = true, map[string]any{"include_usage": true}
	b, _ := json.Marshal(m)
	return string(b)
}

func pdfBody(model string) string {
	pdf := "data:application/pdf;base64,JVBERi0xLjQKMSAwIG9iaiA8PCAvVHlwZSAvUGFnZSA+PiBlbmRvYmoKQlQgKEhlbGxvIFBERikgVGogRVQKJSVFT0YK"
	return chatBody(model, "summarise", map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "text", "text": "summarise"},
		map[string]any{"type": "file", "file": map[string]any{"filename": "a.pdf", "file_data": pdf}},
	}}}, "plugins": []any{map[string]any{"id": "file-parser", "pdf": map[string]any{"engine": "pdf-text"}}}})
}

func cachedBody(model string) string {
	return chatBody(model, "", map[string]any{"messages": []any{
		map[string]any{"role": "system", "content": []any{map[string]any{"type": "text", "text": strings.Repeat("You are a careful assistant. ", 200), "cache_control": map[string]any{"type": "ephemeral"}}}},
		map[string]any{"role": "user", "content": "hello"},
	}})
}
