package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

// Every stream sample of testdata/wire is parsed exactly, over loopback
// HTTP through Router.Stream.
func TestWireSamples(t *testing.T) {
	type want struct {
		text, model, provider, id, finish string
		prompt, completion                int64
		cost, upstream                    float64
		charged                           int64
		errCode                           string // UpstreamError.Code; "" = success
	}
	for _, tt := range []struct {
		file string
		want want
	}{
		{"stream-usage-empty-choices.sse", want{"Hello there!", "google/gemini-2.5-flash-lite", "Google", "gen-1763798400-a1B2c3D4e5F6g7H8i9J0", "stop", 13, 16, 0.000093, 0.000093, 93, ""}},
		{"stream-crlf.sse", want{"Hello there!", "google/gemini-2.5-flash-lite", "Google", "gen-1763798400-a1B2c3D4e5F6g7H8i9J0", "stop", 13, 16, 0.000093, 0.000093, 93, ""}},
		{"stream-usage-empty-delta.sse", want{"Two plus two is four.", "meta-llama/llama-3.3-70b-instruct", "DeepInfra", "gen-1761955200-Zz9Yy8Xx7Ww6Vv5Uu4Tt", "stop", 18, 7, 0.0000039, 0, 4, ""}},
		{"stream-midstream-error.sse", want{"The first part of an answer", "openai/gpt-5-mini", "OpenAI", "gen-1763798500-Qq1Ww2Ee3Rr4Tt5Yy6Uu", "error", 0, 0, 0, 0, -1, "429"}},
		{"stream-midstream-error-string-code.sse", want{"Partial", "anthropic/claude-sonnet-4.6", "Anthropic", "gen-1763798600-Aa1Ss2Dd3Ff4Gg5Hh6Jj", "error", 0, 0, 0, 0, -1, "server_error"}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			srv := serveFile(t, tt.file, http.StatusOK, "text/event-stream")
			m := &metrics{}
			r := MustRouter(t, srv.URL, func(c *router.Config) { c.Metrics = m })
			// A fallback is offered: it must not be used once text has come.
			res, text, err := stream(t, r, chosenPlan(tt.want.model, "openai/gpt-4.1-nano"))
			w := tt.want
			if text != w.text || res.Text != w.text {
				t.Fatalf("text=%q, want %q", text, w.text)
			}
			if res.Model != w.model || res.Provider != w.provider || res.GenerationID != w.id || res.FinishReason != w.finish {
				t.Fatalf("model=%q provider=%q id=%q finish=%q, want %q %q %q %q", res.Model, res.Provider, res.GenerationID, res.FinishReason, w.model, w.provider, w.id, w.finish)
			}
			if got, want := len(res.Attempts), 1; got != want {
				t.Fatalf("attempts=%v, want one (no restart after output)", res.Attempts)
			}
			if w.errCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				u := res.Usage
				if u.PromptTokens != w.prompt || u.CompletionTokens != w.completion || !u.CostReported || math.Abs(u.CostUSD-w.cost) > 1e-12 {
					t.Fatalf("usage=%+v, want %d/%d cost %g", u, w.prompt, w.completion, w.cost)
				}
				if math.Abs(u.UpstreamCostUSD-w.upstream) > 1e-12 || u.IsBYOK {
					t.Fatalf("upstream cost=%g byok=%t, want %g false", u.UpstreamCostUSD, u.IsBYOK, w.upstream)
				}
				if res.Cost != w.charged || res.Estimated {
					t.Fatalf("cost=%d estimated=%t, want %d false", res.Cost, res.Estimated, w.charged)
				}
				if res.TTFT <= 0 || res.Latency < res.TTFT {
					t.Fatalf("ttft=%v latency=%v", res.TTFT, res.Latency)
				}
				return
			}
			var ue *router.UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("err=%v, want an *UpstreamError", err)
			}
			if ue.Code != w.errCode || ue.Status != http.StatusOK || !ue.Partial {
				t.Fatalf("code=%q status=%d partial=%t, want %q 200 true", ue.Code, ue.Status, ue.Partial, w.errCode)
			}
			if got := bot.ErrorCode(err); got != bot.EUNAVAILABLE {
				t.Fatalf("bot code=%s, want %s", got, bot.EUNAVAILABLE)
			}
			if msg := bot.ErrorMessage(err); !strings.Contains(msg, "cut off") {
				t.Fatalf("message %q does not say the answer was cut off", msg)
			}
			if !errors.Is(res.Err, ue) && res.Err == nil {
				t.Fatal("Result.Err is not set")
			}
			// No usage came: charge an estimate of what was received.
			if !res.Estimated || res.Cost <= 0 || res.Usage.CompletionTokens != int64(router.EstimateTokens(w.text)) {
				t.Fatalf("estimated=%t cost=%d usage=%+v, want an estimate of the received text", res.Estimated, res.Cost, res.Usage)
			}
			if len(m.fallbacks) != 0 {
				t.Fatalf("fallbacks=%v after output", m.fallbacks)
			}
		})
	}
}

// ParseStream reads the samples directly, too.
func TestParseStream(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "wire", "stream-crlf.sse"))
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	resp, err := router.ParseStream(strings.NewReader(string(b)), func(d string) { deltas = append(deltas, d) })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(deltas, "|"), "Hello| there!"; got != want {
		t.Fatalf("deltas=%q, want %q", got, want)
	}
	if !resp.UsageReported || resp.Usage.PromptTokens != 13 {
		t.Fatalf("usage=%+v", resp.Usage)
	}

	t.Run("MissingDoneAfterUsage", func(t *testing.T) {
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"cost\":0.5}}\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil || resp.Text != "hi" || resp.Usage.CostUSD != 0.5 {
			t.Fatalf("resp=%+v err=%v", resp, err)
		}
	})
	t.Run("NoTrailingNewline", func(t *testing.T) {
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil || resp.Text != "hi" {
			t.Fatalf("resp=%+v err=%v", resp, err)
		}
	})
	t.Run("LargeEvent", func(t *testing.T) {
		big := strings.Repeat("x", 400<<10)
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"" + big + "\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil || len(resp.Text) != len(big) {
			t.Fatalf("len=%d err=%v", len(resp.Text), err)
		}
	})
	// A hostile or broken upstream: one event, or one line, past the
	// event limit ends the stream with a clear error, after the text that
	// came before it, without reading (or holding) the rest.
	tooLong := func(t *testing.T, in io.Reader, wantText string) {
		t.Helper()
		resp, err := router.ParseStream(in, nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeBadStream || !strings.Contains(err.Error(), "an SSE event longer than 1 MiB") || resp.Text != wantText {
			t.Fatalf("text=%q err=%v; want %q and an event too long", clipTest(resp.Text), err, wantText)
		}
	}
	first := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
	t.Run("HugeLine", func(t *testing.T) {
		tooLong(t, io.MultiReader(strings.NewReader(first+"data: "), endless('x')), "hi")
	})
	t.Run("HugeEventOfShortLines", func(t *testing.T) {
		tooLong(t, io.MultiReader(strings.NewReader(first), endlessLines("data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")), "hi")
	})
	t.Run("AnswerPastTheLimit", func(t *testing.T) {
		// 2 KiB chunks forever: the answer is cut at 512 KiB, with the
		// text up to there delivered and a finish reason that says why.
		chunk := "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("é", 1024) + "\"}}]}\n\n"
		var delivered int
		resp, err := router.ParseStream(endlessLines(chunk), func(d string) { delivered += len(d) })
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeAnswerTooLong || !ue.Partial || ue.Retryable {
			t.Fatalf("err=%v, want a partial, final %s", err, router.CodeAnswerTooLong)
		}
		if msg := bot.ErrorMessage(err); msg != "The answer went past 512 KiB, the most one answer may hold here, so it was cut there." {
			t.Fatalf("message %q", msg)
		}
		if len(resp.Text) != router.DefaultMaxAnswerBytes || delivered != len(resp.Text) || !utf8.ValidString(resp.Text) || resp.FinishReason != "length" {
			t.Fatalf("text %d bytes (valid UTF-8 %v), delivered %d, finish %q; want %d", len(resp.Text), utf8.ValidString(resp.Text), delivered, resp.FinishReason, router.DefaultMaxAnswerBytes)
		}
	})
	t.Run("ThinkingPastTheLimit", func(t *testing.T) {
		chunk := "data: {\"choices\":[{\"delta\":{\"reasoning\":\"" + strings.Repeat("hm ", 1000) + "\"}}]}\n\n"
		resp, err := router.ParseStream(endlessLines(chunk), nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeAnswerTooLong || resp.ReasoningBytes != router.DefaultMaxAnswerBytes {
			t.Fatalf("reasoning=%d err=%v", resp.ReasoningBytes, err)
		}
	})
	t.Run("MultiLineData", func(t *testing.T) {
		in := "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"joined\"},\"finish_reason\":\"stop\"}]}\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil || resp.Text != "joined" {
			t.Fatalf("resp=%+v err=%v", resp, err)
		}
	})
	t.Run("BYOKAndDetails", func(t *testing.T) {
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\",\"reasoning\":\"hmm\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,\"cost\":0.00001,\"is_byok\":true,\"prompt_tokens_details\":{\"cached_tokens\":60},\"completion_tokens_details\":{\"reasoning_tokens\":20},\"cost_details\":{\"upstream_inference_cost\":0.002}}}\n\ndata: [DONE]\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil {
			t.Fatal(err)
		}
		u := resp.Usage
		if !u.IsBYOK || u.CachedTokens != 60 || u.ReasoningTokens != 20 || u.UpstreamCostUSD != 0.002 || u.USD() != 0.00201 || resp.ReasoningBytes != 3 {
			t.Fatalf("usage=%+v reasoning=%d", u, resp.ReasoningBytes)
		}
	})
	t.Run("AbsurdUsage", func(t *testing.T) {
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1e30,\"cost\":-3,\"prompt_tokens_details\":{\"cached_tokens\":-1},\"completion_tokens_details\":{\"reasoning_tokens\":1e40}}}\n\ndata: [DONE]\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		if err != nil {
			t.Fatal(err)
		}
		u := resp.Usage
		if u.PromptTokens != 0 || u.CompletionTokens <= 0 || u.CompletionTokens > 100_000_000 || u.CostReported || u.CachedTokens != 0 || u.ReasoningTokens > u.CompletionTokens {
			t.Fatalf("usage=%+v: negative or absurd numbers must be clamped, a negative cost ignored", u)
		}
	})
}

// A non-streaming completion is parsed exactly, by Complete and by Stream
// when a server answers JSON to a streaming request.
func TestCompletionSample(t *testing.T) {
	srv := serveFile(t, "completion-nonstream.json", http.StatusOK, "application/json")
	cfg := testConfig(srv.URL)
	c := router.NewClient(cfg)
	check := func(t *testing.T, resp router.Response) {
		t.Helper()
		if resp.Text != "Hello! How can I help you today?" || resp.Model != "mistralai/mistral-7b-instruct:free" || resp.Provider != "DeepInfra" || resp.GenerationID != "gen-1759854064-le6bIHtjKU5oZsTW73rX" || resp.FinishReason != "stop" {
			t.Fatalf("resp=%+v", resp)
		}
		if u := resp.Usage; u.PromptTokens != 9 || u.CompletionTokens != 10 || !u.CostReported || u.CostUSD != 0 {
			t.Fatalf("usage=%+v", u)
		}
	}
	t.Run("Complete", func(t *testing.T) {
		resp, err := c.Complete(context.Background(), router.Request{Model: "mistralai/mistral-7b-instruct:free", Messages: []bot.ChatMessage{user("hi")}})
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
	})
	t.Run("StreamGotJSON", func(t *testing.T) {
		var got string
		resp, err := c.Stream(context.Background(), router.Request{Model: "mistralai/mistral-7b-instruct:free", Messages: []bot.ChatMessage{user("hi")}}, func(d string) { got += d })
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
		if got != resp.Text {
			t.Fatalf("delta=%q", got)
		}
	})
}

// The hand-written chunk parser decodes text exactly as encoding/json
// does.
func FuzzChunkContent(f *testing.F) {
	for _, s := range []string{"", "plain", "line\nbreak", `quote " and \ backslash`, "tab\there", "é ü 日本", "emoji 😀", "\x00\x1f", "bad \xff utf8", "\u2028", "</script>", `\u0041 literal`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		chunk, _ := json.Marshal(map[string]any{"id": "gen-1", "choices": []any{map[string]any{"delta": map[string]any{"content": s}, "finish_reason": "stop"}}})
		var want string
		var back struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(chunk, &back); err != nil {
			t.Fatal(err)
		}
		want = back.Choices[0].Delta.Content
		resp, err := router.ParseStream(strings.NewReader("data: "+string(chunk)+"\n\ndata: [DONE]\n\n"), nil)
		if want == "" {
			return // an empty answer is a separate case
		}
		if err != nil || resp.Text != want {
			t.Fatalf("text=%q err=%v, want %q", resp.Text, err, want)
		}
	})
}

// Garbled chunks are errors, never silently dropped.
func TestGarbledChunks(t *testing.T) {
	for _, bad := range []string{
		`{"choices":[]} trailing`,
		`{"choices":[{"delta":{"content":"hi"}}]`,
		`{"choices":[{"delta":{"content":"bad \q escape"}}]}`,
		"{\"choices\":[{\"delta\":{\"content\":\"raw \x01 control\"}}]}",
		`{"choices":[{"delta":{"content":"x"}},]}`,
		`{"id":01}`,
		`{"id":"x",}`,
		`[1,2]`,
		`not json`,
		`{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`,
	} {
		in := "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: " + bad + "\n\ndata: [DONE]\n\n"
		resp, err := router.ParseStream(strings.NewReader(in), nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeBadStream || !ue.Partial || resp.Text != "Hello" {
			t.Fatalf("%s: text=%q err=%v", bad, resp.Text, err)
		}
	}
	// Shapes that are valid JSON but not what this router reads are skipped.
	in := "data: {\"id\":null,\"choices\":[{\"delta\":{\"content\":null,\"tool_calls\":[{\"id\":\"t\"}]},\"finish_reason\":null},{\"delta\":{\"content\":[{\"type\":\"text\"}]}}],\"x\":[true,false,1.5e-3,-0]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n"
	if resp, err := router.ParseStream(strings.NewReader(in), nil); err != nil || resp.Text != "ok" {
		t.Fatalf("text=%q err=%v", resp.Text, err)
	}
}

// endless reads as the byte c forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// endlessLines reads as line repeated forever.
func endlessLines(line string) io.Reader { return &repeater{s: line} }

type repeater struct {
	s   string
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

func clipTest(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
