package slacktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	slackapi "github.com/slack-go/slack"
)

// ackTimeout is Slack's deadline for acknowledging a request.
const ackTimeout = 3 * time.Second

// sock is one Socket Mode connection of the app. An app may open several
// (one per process, up to Slack's ten): Slack keeps them all and spreads
// the envelopes across them.
type sock struct {
	n      int // 1 for the first connection ever opened, 2 for the next…
	c      *websocket.Conn
	closed chan struct{} // closed when the connection ends
}

// socket serves the Socket Mode websocket: hello first, then envelopes;
// the app's acks (envelope_id echoed) are recorded. Every connection the
// app opens stays until it closes: Slack does not end an app's older
// connections when it opens a new one.
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.wsMu.Lock()
	s.conns++
	me := &sock{n: s.conns, c: c, closed: make(chan struct{})}
	s.socks = append(s.socks, me)
	err = c.WriteJSON(map[string]any{
		"type": "hello", "num_connections": len(s.socks),
		"connection_info": map[string]any{"app_id": AppID},
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600},
	})
	s.wsMu.Unlock()
	defer func() {
		s.wsMu.Lock()
		for i, o := range s.socks {
			if o == me {
				s.socks = append(s.socks[:i], s.socks[i+1:]...)
				break
			}
		}
		s.wsMu.Unlock()
		close(me.closed)
		_ = c.Close()
	}()
	if err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() { // Slack pings; the client counts a silent socket as dead.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-s.closed:
				return
			case <-t.C:
				s.wsMu.Lock()
				err := c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				s.wsMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.acked[ack.EnvelopeID] = true
		ch := s.acks[ack.EnvelopeID]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- ack.Payload:
			default:
			}
		}
	}
}

// OpenConnections counts the Socket Mode connections open now.
func (s *Server) OpenConnections() int {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	return len(s.socks)
}

// OpenConnectionNumbers returns the numbers of the Socket Mode
// connections open now (Delivery.Conn names one), oldest first.
func (s *Server) OpenConnectionNumbers() []int {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	out := make([]int, len(s.socks))
	for i, c := range s.socks {
		out[i] = c.n
	}
	return out
}

// pick returns the connection the next envelope goes to, round robin
// over the open ones, skipping avoid when another is open; nil when none
// is open.
func (s *Server) pick(avoid *sock) *sock {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	if len(s.socks) == 0 {
		return nil
	}
	for range s.socks {
		c := s.socks[s.next%len(s.socks)]
		s.next++
		if c != avoid || len(s.socks) == 1 {
			return c
		}
	}
	return s.socks[0]
}

// Connections counts the Socket Mode connections the app opened.
func (s *Server) Connections() int {
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	return s.conns
}

// Send delivers d over Socket Mode and fails the test unless the app acks
// it within Slack's 3 seconds. It returns the envelope id.
func (s *Server) Send(d *Delivery) string {
	s.t.Helper()
	return s.sendOrFail(d, 0)
}

// Redeliver sends d again, as Slack does when it thinks the first
// delivery failed: same payload (same event_id), a new envelope, and
// retry_attempt 1.
func (s *Server) Redeliver(d *Delivery) string {
	s.t.Helper()
	return s.sendOrFail(d, 1)
}

func (s *Server) sendOrFail(d *Delivery, retry int) string {
	s.t.Helper()
	env, err := s.deliver(d, retry)
	switch {
	case errors.Is(err, errNoConnection):
		s.t.Fatalf("%v", err)
	case err != nil:
		s.t.Errorf("%v", err)
	}
	return env
}

// errNoConnection: the app never opened its Socket Mode connection.
var errNoConnection = errors.New("slacktest: the app never opened a Socket Mode connection")

// Deliver sends d as Slack's delivery number retry (0: the first, 1: a
// retry of it) over Socket Mode, or to the app's endpoint in HTTP mode,
// and waits until the app acknowledges it; the error says what went wrong.
// It is how a program that is not a test (the load test) delivers.
func (s *Server) Deliver(d *Delivery, retry int) error {
	_, err := s.deliver(d, retry)
	return err
}

func (s *Server) deliver(d *Delivery, retry int) (string, error) {
	if target, secret, ok := s.httpTarget(); ok {
		status, _, err := s.postHTTP(target, secret, d, retry, time.Now())
		if err != nil {
			return "", err
		}
		if status != http.StatusOK {
			return "", fmt.Errorf("slacktest: the app answered %s with %d, want 200", d.Type, status)
		}
		return "", nil
	}
	if s.awaitConn() == nil {
		return "", errNoConnection
	}
	// Slack sends an envelope the app did not acknowledge again (its
	// retry_attempt one more), over another of the app's connections when
	// it has several: what one dead process did not take, another does.
	var last *sock
	var err error
	var env string
	d.Attempts, d.Conn = 0, 0
	for attempt := 0; attempt < maxAttempts; attempt++ {
		c := s.pick(last)
		if c == nil || (attempt > 0 && c == last) {
			break
		}
		last = c
		d.Attempts++
		if env, err = s.sendOver(c, d, retry+attempt); err == nil {
			d.Conn = c.n
			return env, nil
		}
	}
	return env, err
}

// maxAttempts is how many times an envelope is sent before the fake gives
// up on it: the first delivery and Slack's three retries.
const maxAttempts = 4

// sendOver sends d once over c, as delivery number retry, and waits for
// its acknowledgement: an error when it does not come within Slack's 3
// seconds or the connection ends first.
func (s *Server) sendOver(c *sock, d *Delivery, retry int) (string, error) {
	s.mu.Lock()
	s.envelope++
	env := fmt.Sprintf("env-%06d", s.envelope)
	ch := make(chan json.RawMessage, 1)
	s.acks[env] = ch
	s.mu.Unlock()
	d.Envelope = env
	msg := map[string]any{
		"type": d.Type, "envelope_id": env, "payload": d.Payload,
		"accepts_response_payload": d.Type != "events_api",
		"retry_attempt":            retry,
	}
	if retry > 0 {
		msg["retry_reason"] = "timeout"
	}
	s.wsMu.Lock()
	err := c.c.WriteJSON(msg)
	s.wsMu.Unlock()
	if err != nil {
		return env, fmt.Errorf("slacktest: sending %s: %v", d.Type, err)
	}
	select {
	case <-ch:
	case <-c.closed:
		// The connection may have acknowledged just before it ended.
		select {
		case <-ch:
			return env, nil
		default:
		}
		return env, fmt.Errorf("slacktest: connection %d closed before it acknowledged envelope %s (%s)", c.n, env, d.Type)
	case <-time.After(ackTimeout):
		return env, fmt.Errorf("slacktest: envelope %s (%s) was not acknowledged within %s", env, d.Type, ackTimeout)
	}
	return env, nil
}

// Acked reports whether the app acknowledged an envelope.
func (s *Server) Acked(envelope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[envelope]
}

// awaitConn waits up to 10 s for the app's Socket Mode connection; nil
// when none came.
func (s *Server) awaitConn() *sock {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.wsMu.Lock()
		var c *sock
		if len(s.socks) > 0 {
			c = s.socks[len(s.socks)-1]
		}
		s.wsMu.Unlock()
		if c != nil || time.Now().After(deadline) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UseHTTP makes the fake deliver to the app's HTTP endpoint (http mode),
// signing every request with secret, instead of over Socket Mode.
func (s *Server) UseHTTP(target, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target, s.secret = target, secret
}

func (s *Server) httpTarget() (string, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.target, s.secret, s.target != ""
}

// PostHTTP posts d to an http-mode endpoint the way Slack does, signed
// with secret at time at; retry > 0 adds X-Slack-Retry-Num. It fails the
// test when the post cannot be made.
func (s *Server) PostHTTP(target, secret string, d *Delivery, retry int, at time.Time) (status int, answer string) {
	s.t.Helper()
	status, answer, err := s.postHTTP(target, secret, d, retry, at)
	if err != nil {
		s.t.Fatalf("%v", err)
	}
	return status, answer
}

func (s *Server) postHTTP(target, secret string, d *Delivery, retry int, at time.Time) (int, string, error) {
	body, ctype := d.HTTPBody()
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("slacktest: %v", err)
	}
	stamp := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(sign(secret, stamp, body)))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("slacktest: posting to the app: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// URLVerification is the challenge Slack posts when the request URL is set.
func URLVerification(challenge string) *Delivery {
	payload, _ := json.Marshal(map[string]any{"token": "fake-verification-token", "challenge": challenge, "type": "url_verification"})
	return &Delivery{Type: "events_api", Payload: payload}
}

// HTTPBody is d as Slack posts it in http mode: JSON for events, a form
// for slash commands, a form with a payload field for interactions.
func (d *Delivery) HTTPBody() ([]byte, string) {
	switch d.Type {
	case "slash_commands":
		return []byte(d.Form.Encode()), "application/x-www-form-urlencoded"
	case "interactive":
		return []byte(url.Values{"payload": {string(d.Payload)}}.Encode()), "application/x-www-form-urlencoded"
	}
	return d.Payload, "application/json"
}

func sign(secret, stamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(mac, "v0:"+stamp+":")
	mac.Write(body)
	return mac.Sum(nil)
}

// callback wraps an inner event in an Events API callback.
func (s *Server) callback(event map[string]any) *Delivery {
	s.mu.Lock()
	s.events++
	id := fmt.Sprintf("Ev%08d", s.events)
	s.mu.Unlock()
	payload, _ := json.Marshal(map[string]any{
		"token": "fake-verification-token", "team_id": s.TeamID, "api_app_id": AppID,
		"event": event, "type": "event_callback", "event_id": id, "event_time": time.Now().Unix(),
		"event_context":  "4-fake",
		"authorizations": []map[string]any{{"team_id": s.TeamID, "user_id": s.BotUserID, "is_bot": true}},
	})
	ts, _ := event["ts"].(string)
	return &Delivery{Type: "events_api", Payload: payload, EventID: id, TS: ts}
}

// Post is a message a user writes.
type Post struct {
	User    string
	Channel string
	Text    string
	Thread  string // the thread's ts, for a reply in a thread
	Files   []slackapi.File
	BotID   string // set: the message comes from another app's bot
}

// DMChannel is the id of a user's DM with the bot.
func DMChannel(user string) string { return "D" + strings.TrimPrefix(user, "U") }

func channelType(channel string) string {
	switch {
	case strings.HasPrefix(channel, "D"):
		return "im"
	case strings.HasPrefix(channel, "G"):
		return "group"
	}
	return "channel"
}

// store records a user's message.
func (s *Server) store(p Post) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Channel: p.Channel, TS: s.nextTS(), ThreadTS: p.Thread, User: p.User, BotID: p.BotID, Text: p.Text, Files: p.Files}
	s.messages = append(s.messages, m)
	return m
}

func (s *Server) messageEvent(m *Message, subtype string) map[string]any {
	ev := map[string]any{
		"type": "message", "channel": m.Channel, "text": m.Text, "ts": m.TS, "event_ts": m.TS,
		"channel_type": channelType(m.Channel),
	}
	if m.User != "" {
		ev["user"] = m.User
	}
	if m.BotID != "" {
		ev["bot_id"] = m.BotID
	}
	if m.ThreadTS != "" {
		ev["thread_ts"] = m.ThreadTS
	}
	if len(m.Files) > 0 {
		ev["files"] = m.Files
		ev["subtype"] = "file_share"
	}
	if subtype == "message_changed" {
		inner := s.wire(m)
		return map[string]any{
			"type": "message", "subtype": "message_changed", "channel": m.Channel, "hidden": true,
			"ts": s.nextTSLocked(), "event_ts": m.TS, "channel_type": channelType(m.Channel), "message": inner,
		}
	}
	return ev
}

func (s *Server) nextTSLocked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextTS()
}

// sendMessageEvent tells the app about one of the bot's own messages, as
// Slack does; nobody waits for it.
func (s *Server) sendMessageEvent(m *Message, subtype string) {
	s.mu.Lock()
	cp := *m
	s.mu.Unlock()
	d := s.callback(s.messageEvent(&cp, subtype))
	go func() {
		if target, secret, ok := s.httpTarget(); ok {
			defer func() { _ = recover() }() // the test may have ended
			body, ctype := d.HTTPBody()
			stamp := strconv.FormatInt(time.Now().Unix(), 10)
			req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("X-Slack-Request-Timestamp", stamp)
			req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(sign(secret, stamp, body)))
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
			return
		}
		c := s.pick(nil)
		if c == nil {
			return
		}
		s.mu.Lock()
		s.envelope++
		env := fmt.Sprintf("env-%06d", s.envelope)
		s.mu.Unlock()
		s.wsMu.Lock()
		_ = c.c.WriteJSON(map[string]any{"type": "events_api", "envelope_id": env, "payload": d.Payload, "retry_attempt": 0})
		s.wsMu.Unlock()
	}()
}

// Mention posts a message that mentions the bot (<@bot> text) and sends
// what Slack sends for it: a message event and an app_mention event. It
// returns the app_mention delivery (TS is the message's ts).
func (s *Server) Mention(p Post) *Delivery {
	s.t.Helper()
	message, mention := s.MentionEvents(p)
	s.Send(message)
	s.Send(mention)
	return mention
}

// MentionEvents stores a message that mentions the bot and returns, unsent,
// the two deliveries Slack makes for it: its message event and its
// app_mention event.
func (s *Server) MentionEvents(p Post) (message, mention *Delivery) {
	p.Text = "<@" + s.BotUserID + "> " + p.Text
	m := s.store(p)
	ev := map[string]any{
		"type": "app_mention", "user": m.User, "text": m.Text, "ts": m.TS, "channel": m.Channel, "event_ts": m.TS,
	}
	if m.ThreadTS != "" {
		ev["thread_ts"] = m.ThreadTS
	}
	if len(m.Files) > 0 {
		ev["files"] = m.Files
	}
	return s.callback(s.messageEvent(m, "")), s.callback(ev)
}

// Say posts a message without a mention (in a thread, a channel or a DM)
// and sends its message event.
func (s *Server) Say(p Post) *Delivery {
	s.t.Helper()
	m := s.store(p)
	d := s.callback(s.messageEvent(m, ""))
	s.Send(d)
	return d
}

// Slash runs a slash command (command without "/") in channel.
func (s *Server) Slash(user, channel, command, text string) *Delivery {
	s.t.Helper()
	d := s.SlashEvent(user, channel, command, text)
	s.Send(d)
	return d
}

// SlashEvent returns, unsent, the delivery Slack makes for a slash command
// (command without "/") in channel.
func (s *Server) SlashEvent(user, channel, command, text string) *Delivery {
	s.mu.Lock()
	s.triggers++
	n := s.triggers
	name := s.users[user]
	s.mu.Unlock()
	if name == "" {
		name = strings.ToLower(user)
	}
	trigger := fmt.Sprintf("%d.%d.fake-trigger", n, time.Now().UnixNano())
	form := url.Values{
		"token": {"fake-verification-token"}, "team_id": {s.TeamID}, "team_domain": {"fake"},
		"channel_id": {channel}, "channel_name": {strings.ToLower(channel)},
		"user_id": {user}, "user_name": {name}, "command": {"/" + command}, "text": {text},
		"api_app_id": {AppID}, "is_enterprise_install": {"false"},
		"response_url": {fmt.Sprintf("%s/response/commands/%d", s.base(), n)}, "trigger_id": {trigger},
	}
	fields := map[string]string{}
	for k := range form {
		fields[k] = form.Get(k)
	}
	payload, _ := json.Marshal(fields)
	return &Delivery{Type: "slash_commands", Payload: payload, Form: form, TriggerID: trigger}
}

// Click presses the button of a message whose action_id ends in
// "_"+choice (a compare's vote buttons), as user.
func (s *Server) Click(user, channel, ts, choice string) *Delivery {
	s.t.Helper()
	s.mu.Lock()
	m := s.find(channel, ts)
	if m == nil {
		s.mu.Unlock()
		s.t.Fatalf("slacktest: no message %s in %s to click", ts, channel)
	}
	wire := s.wire(m)
	blocks := m.Blocks
	s.triggers++
	n := s.triggers
	name := s.users[user]
	s.mu.Unlock()
	var action map[string]any
	var decoded []map[string]any
	_ = json.Unmarshal(blocks, &decoded)
	for _, b := range decoded {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			el, _ := e.(map[string]any)
			if id, _ := el["action_id"].(string); el["type"] == "button" && strings.HasSuffix(id, "_"+choice) {
				action = map[string]any{
					"type": "button", "action_id": id, "block_id": b["block_id"], "value": el["value"],
					"text": el["text"], "action_ts": fmt.Sprintf("%d.000001", time.Now().Unix()),
				}
			}
		}
	}
	if action == nil {
		s.t.Fatalf("slacktest: message %s has no button for %q", ts, choice)
	}
	trigger := fmt.Sprintf("%d.%d.fake-trigger", n, time.Now().UnixNano())
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "token": "fake-verification-token", "api_app_id": AppID, "trigger_id": trigger,
		"team":      map[string]any{"id": s.TeamID, "domain": "fake"},
		"user":      map[string]any{"id": user, "username": strings.ToLower(name), "name": strings.ToLower(name), "team_id": s.TeamID},
		"container": map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":   map[string]any{"id": channel, "name": strings.ToLower(channel)},
		"message":   wire, "response_url": fmt.Sprintf("%s/response/actions/%d", s.base(), n),
		"actions": []any{action},
	})
	d := &Delivery{Type: "interactive", Payload: payload, TriggerID: trigger}
	s.Send(d)
	return d
}

// Disconnect asks the app to reconnect, as Slack does every few hours
// ("refresh_requested"): the app should open a new connection.
func (s *Server) Disconnect() {
	s.t.Helper()
	c := s.awaitConn()
	if c == nil {
		s.t.Fatalf("%v", errNoConnection)
		return
	}
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	if err := c.c.WriteJSON(map[string]any{"type": "disconnect", "reason": "refresh_requested", "debug_info": map[string]any{"host": "slacktest"}}); err != nil {
		s.t.Errorf("slacktest: sending disconnect: %v", err)
	}
}
