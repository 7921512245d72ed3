package router_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every error status maps to a typed error with the right code, sentence
// and retry decision.
func TestErrorStatuses(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	type want struct {
		botCode   string
		code      string
		retryable bool
		message   string // part of the sentence people read
		retryIn   time.Duration
		dailyCap  bool
	}
	for _, tt := range []struct {
		name   string
		status int
		body   []byte
		header http.Header
		want   want
	}{
		{"400", 400, []byte(`{"error":{"code":400,"message":"max_tokens is too large"}}`), nil, want{bot.EINVALID, "400", false, "max_tokens is too large", 0, false}},
		{"401", 401, []byte(`{"error":{"code":401,"message":"User not found."}}`), nil, want{bot.EUNAVAILABLE, "401", false, "API key was refused", 0, false}},
		{"402", 402, sample(t, "error-402.json"), nil, want{bot.EINSUFFICIENT, "402", false, "out of credits; tell the host", 0, false}},
		{"403Moderation", 403, sample(t, "error-403-moderation.json"), nil, want{bot.EINVALID, "403", false, "flagged it for harassment", 0, false}},
		{"403Guardrail", 403, sample(t, "error-403-guardrail.json"), nil, want{bot.EINVALID, "403", false, `guardrail blocked this request: Request blocked: prompt injection patterns detected (matched "ignore all previous instructions")`, 0, false}},
		{"413", 413, sample(t, "error-413.json"), nil, want{bot.EINVALID, "413", false, "too large for", 0, false}},
		{"422", 422, sample(t, "error-422.json"), nil, want{bot.EINVALID, "422", false, "could not process the request (422): Invalid argument", 0, false}},
		{"404NoEndpoints", 404, sample(t, "error-404-no-endpoints.json"), nil, want{bot.EUNAVAILABLE, "404", true, "No provider serves", 0, false}},
		{"408", 408, []byte(`{"error":{"code":408,"message":"Request timed out"}}`), nil, want{bot.EUNAVAILABLE, "408", true, "failed upstream (408)", 0, false}},
		{"429RetryAfter", 429, []byte(`{"error":{"code":429,"message":"Rate limit exceeded"}}`), http.Header{"Retry-After": {"7"}}, want{bot.ERATELIMIT, "429", true, "try again in 7s", 7 * time.Second, false}},
		{"429RetryAfterDate", 429, []byte(`{"error":{"code":429,"message":"Rate limit exceeded"}}`), http.Header{"Retry-After": {now.Add(12 * time.Second).Format(http.TimeFormat)}}, want{bot.ERATELIMIT, "429", true, "in 12s", 12 * time.Second, false}},
		{"429RateLimitReset", 429, []byte(`{"error":{"code":429,"message":"Rate limit exceeded"}}`), http.Header{"X-Ratelimit-Reset": {"1795348805000"}}, want{bot.ERATELIMIT, "429", true, "in 5s", 5 * time.Second, false}},
		{"429RetryAfterAYear", 429, []byte(`{"error":{"code":429,"message":"Rate limit exceeded"}}`), http.Header{"Retry-After": {"31536000"}}, want{bot.ERATELIMIT, "429", true, "try again later", 30 * time.Second, false}},
		{"429DailyCap", 429, sample(t, "error-429-free-daily.json"), nil, want{bot.ERATELIMIT, "429", false, "free-model requests", 0, true}},
		{"500", 500, []byte(`{"error":{"code":500,"message":"Internal Server Error"}}`), nil, want{bot.EUNAVAILABLE, "500", true, "failed upstream (500)", 0, false}},
		{"502Provider", 502, sample(t, "error-502-provider.json"), nil, want{bot.EUNAVAILABLE, "502", true, "(Together) failed upstream (502)", 0, false}},
		{"503", 503, []byte(`{"error":{"code":503,"message":"No available providers"}}`), http.Header{"Retry-After": {"2"}}, want{bot.EUNAVAILABLE, "503", true, "failed upstream (503)", 2 * time.Second, false}},
		{"524", 524, []byte(`{"error":{"code":524,"message":"A timeout occurred"}}`), nil, want{bot.EUNAVAILABLE, "524", true, "failed upstream (524)", 0, false}},
		{"529", 529, []byte(`{"error":{"code":529,"message":"Provider returned error"}}`), nil, want{bot.EUNAVAILABLE, "529", true, "failed upstream (529)", 0, false}},
		{"NoCodeUsesStatus", 502, []byte(`{"error":{"message":"Provider returned error"}}`), nil, want{bot.EUNAVAILABLE, "502", true, "failed upstream (502)", 0, false}},
		{"StringCode", 400, []byte(`{"error":{"code":"invalid_request","message":"bad"}}`), nil, want{bot.EINVALID, "invalid_request", false, "bad", 0, false}},
		{"HTMLBody", 502, []byte("<html><body>Bad Gateway</body></html>"), http.Header{"Content-Type": {"text/html"}}, want{bot.EUNAVAILABLE, router.CodeHTML, true, "failed upstream (502)", 0, false}},
		{"EmptyBody", 500, nil, nil, want{bot.EUNAVAILABLE, router.CodeEmptyBody, true, "failed upstream (500)", 0, false}},
		{"NotJSON", 503, []byte("upstream overloaded"), nil, want{bot.EUNAVAILABLE, router.CodeBadJSON, true, "failed upstream (503)", 0, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveBytes(t, tt.body, tt.status, "", tt.header)
			cfg := testConfig(srv.URL)
			cfg.Now = func() time.Time { return now }
			if tt.name == "429RateLimitReset" {
				cfg.Now = func() time.Time { return time.UnixMilli(1795348800000) }
			}
			c := router.NewClient(cfg)
			resp, err := c.Stream(context.Background(), router.Request{Model: "openai/gpt-5-mini", Messages: []bot.ChatMessage{user("hi")}}, nil)
			var ue *router.UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("err=%v, want an *UpstreamError", err)
			}
			w := tt.want
			if ue.Status != tt.status || ue.Code != w.code || ue.Retryable != w.retryable || ue.DailyCap != w.dailyCap {
				t.Fatalf("status=%d code=%q retryable=%t dailycap=%t, want %d %q %t %t", ue.Status, ue.Code, ue.Retryable, ue.DailyCap, tt.status, w.code, w.retryable, w.dailyCap)
			}
			if got := bot.ErrorCode(err); got != w.botCode {
				t.Fatalf("bot code=%s, want %s", got, w.botCode)
			}
			if msg := bot.ErrorMessage(err); !strings.Contains(msg, w.message) {
				t.Fatalf("message %q, want it to contain %q", msg, w.message)
			}
			if ue.RetryAfter != w.retryIn {
				t.Fatalf("retry after=%v, want %v", ue.RetryAfter, w.retryIn)
			}
			if resp.Status != tt.status || resp.Text != "" {
				t.Fatalf("resp=%+v", resp)
			}
		})
	}

	t.Run("402DoesNotBlameTheUser", func(t *testing.T) {
		srv := serveBytes(t, sample(t, "error-402.json"), 402, "", nil)
		_, err := router.NewClient(testConfig(srv.URL)).Stream(context.Background(), router.Request{Model: "x/y", Messages: []bot.ChatMessage{user("hi")}}, nil)
		if msg := bot.ErrorMessage(err); strings.Contains(strings.ToLower(msg), "your balance") || !strings.Contains(msg, "Nothing was charged to you") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("403Metadata", func(t *testing.T) {
		srv := serveBytes(t, sample(t, "error-403-moderation.json"), 403, "", nil)
		_, err := router.NewClient(testConfig(srv.URL)).Stream(context.Background(), router.Request{Model: "openai/gpt-5-mini", Messages: []bot.ChatMessage{user("hi")}}, nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || len(ue.Metadata.Reasons) != 1 || ue.Metadata.Reasons[0] != "harassment" || ue.Metadata.ProviderName != "OpenAI" || ue.Metadata.FlaggedInput == "" {
			t.Fatalf("metadata=%+v", ue.Metadata)
		}
	})
	t.Run("429DailyCapResetAt", func(t *testing.T) {
		srv := serveBytes(t, sample(t, "error-429-free-daily.json"), 429, "", nil)
		_, err := router.NewClient(testConfig(srv.URL)).Stream(context.Background(), router.Request{Model: "x/y:free", Messages: []bot.ChatMessage{user("hi")}}, nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || !ue.ResetAt.Equal(time.UnixMilli(1763856000000)) {
			t.Fatalf("reset at=%v", ue.ResetAt)
		}
	})
}

// Broken 200 answers: no choices, HTML, invalid JSON mid-stream, a stream
// that stops, headers that never come.
func TestBrokenAnswers(t *testing.T) {
	call := func(t *testing.T, h http.HandlerFunc, edit func(*router.Config)) (router.Response, *router.UpstreamError) {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client leaving.
			io.Copy(io.Discard, r.Body)
			h(w, r)
		}))
		t.Cleanup(srv.Close)
		cfg := testConfig(srv.URL)
		if edit != nil {
			edit(&cfg)
		}
		resp, err := router.NewClient(cfg).Stream(context.Background(), router.Request{Model: "openai/gpt-5-mini", Messages: []bot.ChatMessage{user("hi")}}, nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) {
			t.Fatalf("err=%v, want an *UpstreamError", err)
		}
		return resp, ue
	}
	sse := func(w http.ResponseWriter, lines ...string) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, l := range lines {
			w.Write([]byte(l))
			w.(http.Flusher).Flush()
		}
	}
	chunk := `data: {"id":"gen-1","model":"openai/gpt-5-mini","choices":[{"delta":{"content":"Hello"}}]}` + "\n\n"

	t.Run("200NoChoices", func(t *testing.T) {
		_, ue := call(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"gen-1","model":"openai/gpt-5-mini","choices":[]}`))
		}, nil)
		if ue.Code != router.CodeNoChoices || !ue.Retryable {
			t.Fatalf("code=%q retryable=%t", ue.Code, ue.Retryable)
		}
	})
	t.Run("200StreamOnlyDone", func(t *testing.T) {
		_, ue := call(t, func(w http.ResponseWriter, r *http.Request) {
			sse(w, ": OPENROUTER PROCESSING\n\n", "data: [DONE]\n\n")
		}, nil)
		if ue.Code != router.CodeNoChoices {
			t.Fatalf("code=%q", ue.Code)
		}
	})
	t.Run("200HTML", func(t *testing.T) {
		_, ue := call(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<!DOCTYPE html><html>login</html>"))
		}, nil)
		if ue.Code != router.CodeHTML || !strings.Contains(bot.ErrorMessage(ue), "could not be read") {
			t.Fatalf("code=%q message=%q", ue.Code, bot.ErrorMessage(ue))
		}
	})
	t.Run("200EmptyBody", func(t *testing.T) {
		_, ue := call(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Content-Type", "application/json") }, nil)
		if ue.Code != router.CodeEmptyBody {
			t.Fatalf("code=%q", ue.Code)
		}
	})
	t.Run("InvalidJSONMidStream", func(t *testing.T) {
		resp, ue := call(t, func(w http.ResponseWriter, r *http.Request) {
			sse(w, chunk, "data: {\"choices\":[{\"delta\":{\"content\":\"oops\n\n", "data: [DONE]\n\n")
		}, nil)
		if ue.Code != router.CodeBadStream || !ue.Partial || resp.Text != "Hello" {
			t.Fatalf("code=%q partial=%t text=%q", ue.Code, ue.Partial, resp.Text)
		}
	})
	t.Run("TruncatedStream", func(t *testing.T) {
		resp, ue := call(t, func(w http.ResponseWriter, r *http.Request) { sse(w, chunk) }, nil)
		if ue.Code != router.CodeTruncated || !ue.Partial || resp.Text != "Hello" {
			t.Fatalf("code=%q partial=%t text=%q", ue.Code, ue.Partial, resp.Text)
		}
	})
	t.Run("StreamThatNeverEnds", func(t *testing.T) {
		resp, ue := call(t, func(w http.ResponseWriter, r *http.Request) {
			sse(w, chunk)
			// Keep-alive comments are not progress: the idle timeout still fires.
			for {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
					sse(w, ": OPENROUTER PROCESSING\n\n")
				}
			}
		}, func(c *router.Config) { c.IdleTimeout = 100 * time.Millisecond })
		if ue.Code != router.CodeIdleTimeout || !ue.Partial || resp.Text != "Hello" {
			t.Fatalf("code=%q partial=%t text=%q", ue.Code, ue.Partial, resp.Text)
		}
		if !strings.Contains(bot.ErrorMessage(ue), "cut off") {
			t.Fatalf("message=%q", bot.ErrorMessage(ue))
		}
	})
	t.Run("NoHeaders", func(t *testing.T) {
		_, ue := call(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			func(c *router.Config) { c.FirstByteTimeout = 100 * time.Millisecond })
		if ue.Code != router.CodeTimeout || !ue.Retryable || ue.Partial {
			t.Fatalf("code=%q retryable=%t partial=%t", ue.Code, ue.Retryable, ue.Partial)
		}
	})
	t.Run("ConnectionRefused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := router.NewClient(testConfig(url)).Stream(context.Background(), router.Request{Model: "a/b", Messages: []bot.ChatMessage{user("hi")}}, nil)
		var ue *router.UpstreamError
		if !errors.As(err, &ue) || ue.Code != router.CodeTransport || !ue.Retryable {
			t.Fatalf("err=%v", err)
		}
	})
}

// The request carries the OpenRouter extras and attribution headers, and
// never the raw identity.
func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got, body = r, b.String()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(sample(t, "stream-usage-empty-choices.sse"))
	}))
	t.Cleanup(srv.Close)
	yes := false
	temp := 0.3
	r := MustRouter(t, srv.URL, func(c *router.Config) {
		c.Provider = router.ProviderPrefs{Order: []string{"anthropic"}, AllowFallbacks: &yes, Sort: "price", DataCollection: "deny", MaxPrice: router.MaxPrice{Prompt: 1, Completion: 2}}
		c.Temperature = &temp
	})
	plan := chosenPlan("google/gemini-2.5-flash", "openai/gpt-5-mini")
	plan.Reasoning = "low"
	plan.Messages = append(plan.Messages, bot.ChatMessage{Role: bot.RoleUser, Content: "what is this?", Images: []string{"https://example.org/cat.png"}})
	if _, _, err := stream(t, r, plan); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"Authorization": "Bearer sk-or-v1-test", "Http-Referer": "https://example.org/orchat",
		"X-Openrouter-Title": "orchat-test", "X-Title": "orchat-test", "Content-Type": "application/json",
	} {
		if got.Header.Get(k) != v {
			t.Errorf("header %s=%q, want %q", k, got.Header.Get(k), v)
		}
	}
	for _, part := range []string{
		`"model":"google/gemini-2.5-flash"`, `"models":["google/gemini-2.5-flash","openai/gpt-5-mini"]`,
		`"max_tokens":200`, `"temperature":0.3`, `"stream":true`, `"stream_options":{"include_usage":true}`,
		`"provider":{"order":["anthropic"],"allow_fallbacks":false,"sort":"price","data_collection":"deny","max_price":{"prompt":"1","completion":"2"}}`,
		`"reasoning":{"effort":"low"}`, `"session_id":"s1"`, `"user":"u_`,
		`{"type":"image_url","image_url":{"url":"https://example.org/cat.png"}}`,
		`{"role":"system","content":"You are terse."}`,
	} {
		if !strings.Contains(body, part) {
			t.Errorf("body lacks %s\n%s", part, body)
		}
	}
	if strings.Contains(body, "alice") {
		t.Errorf("the raw identity leaked into the request: %s", body)
	}
	if a, b := r.UserHash("console:alice"), r.UserHash("console:alice"); a != b || a == r.UserHash("console:bob") {
		t.Error("the user hash is not stable and distinct")
	}
}
