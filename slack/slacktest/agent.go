package slacktest

// The agent surfaces of Slack (docs.slack.dev, "Agent messaging
// experience", "chat.startStream", "chat.appendStream", "chat.stopStream",
// "assistant.threads.*", "views.publish", "app_home_opened",
// "app_context_changed", message shortcuts) and the Web API's rate-limit
// tiers, as the fake serves them.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	slackgotest "github.com/slack-go/slack/slacktest"
)

// Limit is one Web API method's rate limit as the fake enforces it: at
// most PerMinute calls in any minute (a sliding window), counted per Scope.
// A call over it answers 429 with Retry-After, as Slack does.
type Limit struct {
	PerMinute int
	// Scope is what the count is kept for: ScopeWorkspace (Slack's rule
	// for tiered methods: "per API method per app per workspace"),
	// ScopeChannel or ScopeStream (one streaming message, by its ts).
	Scope string
}

// Limit scopes.
const (
	ScopeWorkspace = "workspace"
	ScopeChannel   = "channel"
	ScopeStream    = "stream"
)

// DocumentedLimits are Slack's published limits for the methods an answer
// uses (docs.slack.dev method pages, "Rate limits"):
//   - chat.update: Tier 3, 50+ a minute per workspace;
//   - chat.appendStream: Tier 4, 100+ a minute;
//   - chat.stopStream: Tier 2, 20+ a minute;
//   - chat.startStream: it posts a message, which Slack allows about once a
//     second per channel (the "posting messages" limit).
//
// Slack does not say what the stream methods' tiers are counted for; the
// fake counts appendStream and stopStream per streaming message (a stream
// is one answer's own), and startStream per channel. Use Enforce with
// other scopes to see the worst case.
func DocumentedLimits() map[string]Limit {
	return map[string]Limit{
		"chat.update":       {PerMinute: 50, Scope: ScopeWorkspace},
		"chat.startStream":  {PerMinute: 60, Scope: ScopeChannel},
		"chat.appendStream": {PerMinute: 100, Scope: ScopeStream},
		"chat.stopStream":   {PerMinute: 20, Scope: ScopeStream},
	}
}

// limiter keeps the calls of each enforced method in the last minute.
type limiter struct {
	mu     sync.Mutex
	limits map[string]Limit
	calls  map[string][]time.Time // method + scope key → call times
	minute time.Duration          // the window (a minute; shorter when scaled)
}

// Enforce makes the fake answer 429 past each method's limit. window is
// the length of Slack's minute: time.Minute for real time, less to scale a
// test down (a 6 s window makes 50 a minute into 50 per 6 s: every figure
// the same, ten times sooner). nil limits turn enforcement off.
func (s *Server) Enforce(limits map[string]Limit, window time.Duration) {
	s.lim.mu.Lock()
	defer s.lim.mu.Unlock()
	s.lim.limits, s.lim.calls, s.lim.minute = limits, map[string][]time.Time{}, window
}

// over reports whether a call of method with form is past its limit, and
// when to retry; otherwise it counts the call.
func (l *limiter) over(method string, form url.Values, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.limits[method]
	if !ok || lim.PerMinute <= 0 {
		return false, 0
	}
	key := method
	switch lim.Scope {
	case ScopeChannel:
		key += " " + form.Get("channel")
	case ScopeStream:
		key += " " + form.Get("channel") + " " + form.Get("ts")
	}
	calls := l.calls[key]
	i := 0
	for i < len(calls) && now.Sub(calls[i]) >= l.minute {
		i++
	}
	calls = calls[i:]
	if len(calls) >= lim.PerMinute {
		l.calls[key] = calls
		return true, l.minute - now.Sub(calls[0])
	}
	l.calls[key] = append(calls, now)
	return false, 0
}

// agentState is what the fake keeps of the agent surfaces.
type agentState struct {
	refuse   map[string]string   // method → the error it answers (a workspace without the feature)
	statuses map[string][]string // channel:thread → every status set, in order ("" clears)
	titles   map[string]string   // channel:thread → title
	prompts  map[string][]Prompt // channel → the suggested prompts shown there
	homes    map[string]json.RawMessage
	contexts int
}

// Prompt is one suggested prompt (assistant.threads.setSuggestedPrompts).
type Prompt struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

func (s *Server) registerAgent(c slackgotest.Customize) {
	c.Handle("/chat.startStream", s.api("chat.startStream", s.startStream))
	c.Handle("/chat.appendStream", s.api("chat.appendStream", s.appendStream))
	c.Handle("/chat.stopStream", s.api("chat.stopStream", s.stopStream))
	c.Handle("/assistant.threads.setStatus", s.api("assistant.threads.setStatus", s.setStatus))
	c.Handle("/assistant.threads.setTitle", s.api("assistant.threads.setTitle", s.setTitle))
	c.Handle("/assistant.threads.setSuggestedPrompts", s.api("assistant.threads.setSuggestedPrompts", s.setSuggestedPrompts))
	c.Handle("/views.publish", s.viewsPublish)
}

// Refuse makes method answer {"ok":false,"error":code}, as a workspace
// where the feature is off does (chat.startStream: "not_allowed",
// "unknown_method", "missing_scope"…); "" answers normally again.
func (s *Server) Refuse(method, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.agent.refuse, method)
		return
	}
	s.agent.refuse[method] = code
}

func (s *Server) refused(method string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code, ok := s.agent.refuse[method]
	return code, ok
}

// startStream is chat.startStream: a streaming message, always a reply in
// a thread (thread_ts); outside a DM the recipient (recipient_team_id and
// recipient_user_id) is required. markdown_text is its first text.
func (s *Server) startStream(form url.Values) (int, any) {
	if code, ok := s.refused("chat.startStream"); ok {
		return fail(code)
	}
	channel, thread := form.Get("channel"), form.Get("thread_ts")
	switch {
	case channel == "":
		return fail("channel_not_found")
	case thread == "":
		return fail("missing_thread_ts")
	case !strings.HasPrefix(channel, "D") && form.Get("recipient_team_id") == "":
		return fail("missing_recipient_team_id")
	case !strings.HasPrefix(channel, "D") && form.Get("recipient_user_id") == "":
		return fail("missing_recipient_user_id")
	case len([]rune(form.Get("markdown_text"))) > 12000:
		return fail("msg_too_long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outside[channel] {
		return fail("not_in_channel")
	}
	m := &Message{Channel: channel, TS: s.nextTS(), ThreadTS: thread, User: s.BotUserID, BotID: s.BotID,
		Text: form.Get("markdown_text"), Streamed: true, Streaming: true, Recipient: form.Get("recipient_user_id")}
	if m.Text != "" {
		m.Appends = 1
	}
	s.messages = append(s.messages, m)
	return http.StatusOK, map[string]any{"ok": true, "channel": channel, "ts": m.TS}
}

// streaming finds a streaming message of the bot's; the caller holds s.mu.
func (s *Server) streaming(form url.Values) (*Message, string) {
	m := s.find(form.Get("channel"), form.Get("ts"))
	switch {
	case m == nil:
		return nil, "message_not_found"
	case m.User != s.BotUserID:
		return nil, "message_not_owned_by_app"
	case !m.Streaming:
		return nil, "message_not_in_streaming_state"
	}
	return m, ""
}

// appendStream is chat.appendStream: markdown_text (required) is added to
// what the message shows so far.
func (s *Server) appendStream(form url.Values) (int, any) {
	if code, ok := s.refused("chat.appendStream"); ok {
		return fail(code)
	}
	text := form.Get("markdown_text")
	if text == "" {
		return fail("no_text")
	}
	if len([]rune(text)) > 12000 {
		return fail("msg_too_long")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, code := s.streaming(form)
	if m == nil {
		return fail(code)
	}
	m.Text += text
	m.Appends++
	return http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS}
}

// stopStream is chat.stopStream: the last markdown_text is added, blocks
// are rendered under the text, and the message stops streaming.
func (s *Server) stopStream(form url.Values) (int, any) {
	if code, ok := s.refused("chat.stopStream"); ok {
		return fail(code)
	}
	if len([]rune(form.Get("markdown_text"))) > 12000 {
		return fail("msg_too_long")
	}
	var blocks json.RawMessage
	if b := form.Get("blocks"); b != "" {
		var list []json.RawMessage
		if json.Unmarshal([]byte(b), &list) != nil {
			return fail("invalid_blocks")
		}
		if len(list) > 50 {
			return fail("invalid_blocks")
		}
		blocks = json.RawMessage(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, code := s.streaming(form)
	if m == nil {
		return fail(code)
	}
	if t := form.Get("markdown_text"); t != "" {
		m.Text += t
		m.Appends++
	}
	m.Blocks, m.Streaming = blocks, false
	return http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS,
		"message": map[string]any{"type": "message", "subtype": "bot_message", "text": m.Text, "ts": m.TS, "bot_id": m.BotID}}
}

// setStatus is assistant.threads.setStatus: channel_id and thread_ts are
// required; an empty status clears it.
func (s *Server) setStatus(form url.Values) (int, any) {
	channel, thread := form.Get("channel_id"), form.Get("thread_ts")
	if channel == "" {
		return fail("channel_not_found")
	}
	if thread == "" {
		return fail("invalid_thread_ts")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := channel + ":" + thread
	s.agent.statuses[key] = append(s.agent.statuses[key], form.Get("status"))
	return http.StatusOK, map[string]any{"ok": true}
}

// setTitle is assistant.threads.setTitle: channel_id, thread_ts and title
// are required.
func (s *Server) setTitle(form url.Values) (int, any) {
	channel, thread, title := form.Get("channel_id"), form.Get("thread_ts"), form.Get("title")
	switch {
	case channel == "":
		return fail("channel_not_found")
	case thread == "":
		return fail("invalid_thread_ts")
	case title == "":
		return fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent.titles[channel+":"+thread] = title
	return http.StatusOK, map[string]any{"ok": true}
}

// setSuggestedPrompts is assistant.threads.setSuggestedPrompts: up to four
// prompts, each with a title and a message. In the agent messaging
// experience thread_ts must be left out: Slack answers ok and shows
// nothing (docs: "Including it in a call for an agent app will cause the
// call to silently fail"), and so does the fake.
func (s *Server) setSuggestedPrompts(form url.Values) (int, any) {
	channel := form.Get("channel_id")
	if channel == "" {
		return fail("channel_not_found")
	}
	var prompts []Prompt
	if err := json.Unmarshal([]byte(form.Get("prompts")), &prompts); err != nil || len(prompts) == 0 || len(prompts) > 4 {
		return fail("invalid_arguments")
	}
	for _, p := range prompts {
		if p.Title == "" || p.Message == "" {
			return fail("invalid_arguments")
		}
	}
	if form.Get("thread_ts") != "" {
		return http.StatusOK, map[string]any{"ok": true}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agent.prompts[channel] = prompts
	return http.StatusOK, map[string]any{"ok": true}
}

// viewsPublish is views.publish: a JSON body with user_id and a view of
// type "home" (at most 100 blocks), kept as the user's Home tab.
func (s *Server) viewsPublish(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	var req struct {
		UserID string `json:"user_id"`
		View   struct {
			Type   string            `json:"type"`
			Blocks []json.RawMessage `json:"blocks"`
		} `json:"view"`
	}
	res := map[string]any{"ok": true}
	status := http.StatusOK
	var user string
	switch {
	case token != s.BotToken:
		res = map[string]any{"ok": false, "error": "invalid_auth"}
	case json.Unmarshal(body, &req) != nil:
		res = map[string]any{"ok": false, "error": "invalid_json"}
	case req.UserID == "":
		res = map[string]any{"ok": false, "error": "invalid_arguments"}
	case req.View.Type != "home" || len(req.View.Blocks) > 100:
		res = map[string]any{"ok": false, "error": "invalid_arguments"}
	default:
		user = req.UserID
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: "views.publish", At: time.Now(), Params: url.Values{"user_id": {req.UserID}}, Status: status})
	if user != "" {
		blocks, _ := json.Marshal(req.View.Blocks)
		s.agent.homes[user] = blocks
		res["view"] = map[string]any{"id": "V" + strings.TrimPrefix(user, "U"), "type": "home", "blocks": json.RawMessage(blocks)}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// Statuses returns every status set on a thread, in order ("" is a clear).
func (s *Server) Statuses(channel, thread string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.agent.statuses[channel+":"+thread]...)
}

// Title returns a thread's title ("" when none was set).
func (s *Server) Title(channel, thread string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agent.titles[channel+":"+thread]
}

// Prompts returns the suggested prompts shown in a DM.
func (s *Server) Prompts(channel string) []Prompt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Prompt(nil), s.agent.prompts[channel]...)
}

// Home returns the user's Home tab as a message whose blocks are the
// view's, so Visible reads it; false when none was published.
func (s *Server) Home(user string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.agent.homes[user]
	return Message{Blocks: b}, ok
}

// OpenDM sends app_home_opened for the user opening the app: tab
// "messages" (the agent DM) or "home" (App Home). It returns the delivery.
func (s *Server) OpenDM(user, tab string) *Delivery {
	s.t.Helper()
	d := s.callback(map[string]any{
		"type": "app_home_opened", "user": user, "channel": DMChannel(user), "tab": tab,
		"event_ts": fmt.Sprintf("%d.000100", time.Now().Unix()),
	})
	s.Send(d)
	return d
}

// LookAt sends app_context_changed: the user, with the app's DM open,
// now looks at channel ("" sends the empty context Slack sends when the
// user looks at nothing the app may know of).
func (s *Server) LookAt(user, channel string) *Delivery {
	s.t.Helper()
	ctx := map[string]any{}
	if channel != "" {
		ctx["entities"] = []map[string]any{{"type": "slack#/types/channel_id", "value": channel, "team_id": s.TeamID}}
	}
	s.mu.Lock()
	s.agent.contexts++
	s.mu.Unlock()
	d := s.callback(map[string]any{
		"type": "app_context_changed", "user": user, "channel": DMChannel(user), "context": ctx,
		"event_ts": fmt.Sprintf("%d.000200", time.Now().Unix()),
	})
	s.Send(d)
	return d
}

// Shortcut runs a message shortcut (callback_id) on the message
// channel/ts, as user: a message_action interaction.
func (s *Server) Shortcut(user, channel, ts, callbackID string) *Delivery {
	s.t.Helper()
	s.mu.Lock()
	m := s.find(channel, ts)
	if m == nil {
		s.mu.Unlock()
		s.t.Fatalf("slacktest: no message %s in %s for the shortcut", ts, channel)
		return nil
	}
	wire := s.wire(m)
	s.triggers++
	n := s.triggers
	name := s.users[user]
	s.mu.Unlock()
	trigger := fmt.Sprintf("%d.%d.fake-trigger", n, time.Now().UnixNano())
	payload, _ := json.Marshal(map[string]any{
		"type": "message_action", "token": "fake-verification-token", "callback_id": callbackID, "trigger_id": trigger,
		"action_ts": fmt.Sprintf("%d.000001", time.Now().Unix()),
		"team":      map[string]any{"id": s.TeamID, "domain": "fake"},
		"user":      map[string]any{"id": user, "username": strings.ToLower(name), "name": strings.ToLower(name), "team_id": s.TeamID},
		"channel":   map[string]any{"id": channel, "name": strings.ToLower(channel)},
		"message":   wire, "message_ts": ts,
		"response_url": fmt.Sprintf("%s/response/shortcuts/%d", s.base(), n),
	})
	d := &Delivery{Type: "interactive", Payload: payload, TriggerID: trigger}
	s.Send(d)
	return d
}
