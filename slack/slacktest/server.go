// Package slacktest is a fake Slack on loopback for the adapter's tests and
// the load test. It builds on slack-go's own slacktest server (imported here
// as slackgotest), adding through its customize hook the Web API methods
// that server lacks or keeps no state for
// (auth.test, apps.connections.open, chat.postMessage, chat.update,
// chat.postEphemeral, conversations.replies, conversations.history,
// users.info), private file downloads, response_url endpoints, and a
// Socket Mode websocket that sends hello, events_api, slash_commands and
// interactive envelopes and checks that each is acknowledged.
//
// It keeps every message (text and blocks) so tests can read what each
// user saw, records every call with its time, and can answer chat.update
// with 429 and Retry-After on demand. Everything speaks Slack's JSON.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"
	slackgotest "github.com/slack-go/slack/slacktest"
)

// Defaults of a new server.
const (
	TeamID    = "T0FAKE"
	BotUserID = "UORCHAT"
	BotID     = "BORCHAT"
	AppID     = "A0ORCHAT"
	BotToken  = "xoxb-0000-fake-bot-token-do-not-log"
	AppToken  = "xapp-1-fake-app-token-do-not-log"
	Secret    = "fake-signing-secret-do-not-log"
)

// Message is one message as the fake stores it.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string // "" for a top-level message
	User      string
	BotID     string
	Text      string
	Blocks    json.RawMessage
	Files     []slackapi.File
	Ephemeral bool   // shown only to To
	To        string // the user an ephemeral message is for
	Edits     int    // how often chat.update changed it
	// Streamed: posted with chat.startStream; Text is its markdown_text
	// and Blocks what chat.stopStream rendered under it. Streaming: not
	// stopped yet. Appends counts the calls that added text.
	Streamed, Streaming bool
	Appends             int
	Recipient           string // recipient_user_id of a stream
}

// Call is one Web API call the fake answered.
type Call struct {
	Method string
	At     time.Time
	Params url.Values // the form, without the token
	Status int
}

// ResponsePost is one message posted to a response_url.
type ResponsePost struct {
	URL  string
	Body map[string]any
}

// Delivery is one request Slack sends the app: an Events API callback, a
// slash command or an interaction. It can be sent over Socket Mode or
// HTTP, and sent again (a retry).
type Delivery struct {
	Type      string          // events_api, slash_commands or interactive
	Payload   json.RawMessage // what Slack sends
	Form      url.Values      // slash commands over HTTP
	EventID   string
	TriggerID string
	TS        string // the user message's ts (events)
	Envelope  string // the last Socket Mode envelope id it was sent with
	// Conn is the Socket Mode connection (numbered from 1 in the order
	// they opened) that acknowledged its last delivery (Send or
	// Redeliver), and Attempts how many times that delivery was sent:
	// more than once when a connection died or did not acknowledge in
	// time and the fake sent it again over another.
	Conn     int
	Attempts int
}

// Options configure a Server.
type Options struct {
	// NoEcho stops the server from sending the app message events for the
	// bot's own messages (Slack sends them; the app must ignore them).
	NoEcho bool
}

// TB is the part of testing.TB the fake uses (a *testing.T is one): Errorf
// reports a delivery the app did not acknowledge in time, Fatalf one that
// could not be made at all, and Cleanup stops the server.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// noTB is the TB of a server started without a test: the helpers that
// report to a test say how to use the server instead.
type noTB struct{}

func (noTB) Helper()                      {}
func (noTB) Cleanup(func())               {}
func (noTB) Errorf(f string, args ...any) { noTB{}.Fatalf(f, args...) }
func (noTB) Fatalf(f string, args ...any) {
	panic("slacktest: " + fmt.Sprintf(f, args...) + " (a server from Start reports to no test: deliver with Deliver, or start it with MustStart)")
}

// Server is the fake Slack.
type Server struct {
	TeamID, BotUserID, BotID string
	BotToken, AppToken       string

	t     TB
	st    *slackgotest.Server
	start time.Time

	mu        sync.Mutex
	seq       int64
	messages  []*Message
	calls     []Call
	users     map[string]string // id → display name
	roles     map[string]string // id → "admin", "owner" or "primary_owner" (a member when missing)
	outside   map[string]bool   // channels the bot is not in
	files     map[string][]byte
	uploads   map[string]*pendingUpload // file id → an upload not completed yet
	redirects map[string]string         // file id → where its download redirects
	responses []ResponsePost
	limits    map[string]*limit // method → programmed 429s
	shares    map[string]*limit // method → a share of calls answered 429
	echo      bool
	target    string // http mode: the app's endpoint
	secret    string
	events    int
	triggers  int

	wsMu     sync.Mutex // guards socks and every write to them
	socks    []*sock    // the open Socket Mode connections, oldest first
	conns    int        // connections ever opened
	next     int        // round-robin position among socks
	acks     map[string]chan json.RawMessage
	acked    map[string]bool
	envelope int
	closed   chan struct{}

	lim   limiter    // the rate limits enforced (Enforce)
	agent agentState // streams' statuses, titles, prompts, Home tabs
}

type limit struct {
	n          int
	share      float64
	retryAfter int
}

// MustStart starts a fake Slack for a test; it stops when the test ends,
// and its helpers (Send, Mention, Slash, Click…) fail the test when a
// delivery fails.
func MustStart(tb TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("slacktest: %v", err)
	}
	s.t = tb
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake Slack for a program (the load test): Close stops it,
// and Deliver, not the test helpers, delivers its events.
func Start(opts Options) (*Server, error) {
	s := &Server{
		TeamID: TeamID, BotUserID: BotUserID, BotID: BotID, BotToken: BotToken, AppToken: AppToken,
		t: noTB{}, start: time.Now(),
		users: map[string]string{}, roles: map[string]string{}, outside: map[string]bool{}, files: map[string][]byte{}, uploads: map[string]*pendingUpload{}, redirects: map[string]string{},
		limits: map[string]*limit{}, shares: map[string]*limit{}, acks: map[string]chan json.RawMessage{}, acked: map[string]bool{},
		echo: !opts.NoEcho, closed: make(chan struct{}),
		agent: agentState{refuse: map[string]string{}, statuses: map[string][]string{}, titles: map[string]string{}, prompts: map[string][]Prompt{}, homes: map[string]json.RawMessage{}},
	}
	s.st = slackgotest.NewTestServer(func(c slackgotest.Customize) {
		c.Handle("/auth.test", s.api("auth.test", s.authTest))
		c.Handle("/apps.connections.open", s.appsConnectionsOpen)
		c.Handle("/chat.postMessage", s.api("chat.postMessage", s.postMessage))
		c.Handle("/chat.update", s.api("chat.update", s.update))
		c.Handle("/chat.postEphemeral", s.api("chat.postEphemeral", s.postEphemeral))
		c.Handle("/conversations.replies", s.api("conversations.replies", s.replies))
		c.Handle("/conversations.history", s.api("conversations.history", s.history))
		c.Handle("/users.info", s.api("users.info", s.usersInfo))
		c.Handle("/files/", s.file)
		c.Handle("/files.getUploadURLExternal", s.api("files.getUploadURLExternal", s.getUploadURL))
		c.Handle("/upload/", s.upload)
		c.Handle("/files.completeUploadExternal", s.api("files.completeUploadExternal", s.completeUpload))
		c.Handle("/response/", s.response)
		c.Handle("/socket", s.socket)
		s.registerAgent(c)
	})
	s.st.Start()
	return s, nil
}

// Close stops the server and its websocket.
func (s *Server) Close() {
	s.wsMu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	for _, c := range s.socks {
		_ = c.c.Close()
	}
	s.wsMu.Unlock()
	s.st.Stop()
}

// APIURL is the Web API base to give the adapter.
func (s *Server) APIURL() string { return s.st.GetAPIURL() }

// base is the server's http://host:port.
func (s *Server) base() string { return strings.TrimSuffix(s.st.GetAPIURL(), "/") }

// SetUser names a user (users.info).
func (s *Server) SetUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// SetRole makes a user a workspace "admin", "owner" or "primary_owner"
// (users.info says so with is_admin, is_owner, is_primary_owner, as
// Slack does: an owner is an admin too); "" makes them a plain member.
func (s *Server) SetRole(id, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch role {
	case "", "admin", "owner", "primary_owner":
	default:
		panic("slacktest: SetRole " + role + ": use admin, owner, primary_owner or \"\"")
	}
	s.roles[id] = role
}

// Outside makes the bot a non-member of channel: posts there fail with
// not_in_channel, as in a private channel it was not invited to.
func (s *Server) Outside(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outside[channel] = true
}

// Echo sets whether the fake sends the app the events Slack sends about the
// bot's own messages (a message with bot_id when it posts, message_changed
// when it edits). On by default: the adapter must ignore them.
func (s *Server) Echo(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = on
}

// RateLimit makes the next n calls of method answer 429 with Retry-After.
func (s *Server) RateLimit(method string, n, retryAfterSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &limit{n: n, retryAfter: retryAfterSeconds}
}

// RateLimitShare makes a share (0 to 1) of the calls of method, drawn at
// random, answer 429 with Retry-After, as a busy workspace sees under load;
// 0 turns it off.
func (s *Server) RateLimitShare(method string, share float64, retryAfterSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if share <= 0 {
		delete(s.shares, method)
		return
	}
	s.shares[method] = &limit{share: share, retryAfter: retryAfterSeconds}
}

// nextTS returns a new, increasing Slack timestamp.
func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.start.Unix()+s.seq/1_000_000, s.seq%1_000_000)
}

// api wraps a Web API method: checks the bot token, answers programmed
// 429s and records the call.
func (s *Server) api(method string, fn func(form url.Values) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		token := form.Get("token")
		if token == "" {
			token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		params := url.Values{}
		for k, v := range form {
			if k != "token" {
				params[k] = v
			}
		}
		s.mu.Lock()
		call := Call{Method: method, At: time.Now(), Params: params, Status: http.StatusOK}
		l := s.limits[method]
		if l != nil && l.n > 0 {
			l.n--
		} else if l = s.shares[method]; l != nil && rand.Float64() >= l.share {
			l = nil
		}
		if l == nil {
			if over, wait := s.lim.over(method, params, call.At); over {
				l = &limit{retryAfter: int((wait + time.Second - 1) / time.Second)}
			}
		}
		if l != nil {
			call.Status = http.StatusTooManyRequests
			s.calls = append(s.calls, call)
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter))
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
		s.calls = append(s.calls, call)
		s.mu.Unlock()
		status, res := http.StatusOK, any(map[string]any{"ok": false, "error": "invalid_auth"})
		if token == s.BotToken {
			status, res = fn(form)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(res)
	}
}

func fail(code string) (int, any) {
	return http.StatusOK, map[string]any{"ok": false, "error": code}
}

func (s *Server) authTest(url.Values) (int, any) {
	return http.StatusOK, map[string]any{
		"ok": true, "url": "https://fake.slack.com/", "team": "Fake Team", "user": "orchat",
		"team_id": s.TeamID, "user_id": s.BotUserID, "bot_id": s.BotID,
	}
}

func (s *Server) appsConnectionsOpen(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: "apps.connections.open", At: time.Now(), Status: http.StatusOK})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+s.AppToken {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	ws := "ws" + strings.TrimPrefix(s.base(), "http") + "/socket"
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": ws})
}

func (s *Server) postMessage(form url.Values) (int, any) {
	channel := form.Get("channel")
	s.mu.Lock()
	if s.outside[channel] {
		s.mu.Unlock()
		return fail("not_in_channel")
	}
	m := &Message{
		Channel: channel, TS: s.nextTS(), ThreadTS: form.Get("thread_ts"),
		User: s.BotUserID, BotID: s.BotID, Text: form.Get("text"), Blocks: json.RawMessage(form.Get("blocks")),
	}
	s.messages = append(s.messages, m)
	echo := s.echo
	s.mu.Unlock()
	if echo {
		s.sendMessageEvent(m, "")
	}
	return http.StatusOK, map[string]any{"ok": true, "channel": channel, "ts": m.TS, "message": s.wire(m)}
}

func (s *Server) update(form url.Values) (int, any) {
	channel, ts := form.Get("channel"), form.Get("ts")
	s.mu.Lock()
	m := s.find(channel, ts)
	if m == nil || m.Ephemeral {
		s.mu.Unlock()
		return fail("message_not_found")
	}
	if m.User != s.BotUserID {
		s.mu.Unlock()
		return fail("cant_update_message")
	}
	m.Text = form.Get("text")
	m.Streamed, m.Streaming = false, false // an update makes a stream an ordinary message
	if b := form.Get("blocks"); b != "" {
		m.Blocks = json.RawMessage(b)
	}
	m.Edits++
	echo := s.echo
	s.mu.Unlock()
	if echo {
		s.sendMessageEvent(m, "message_changed")
	}
	return http.StatusOK, map[string]any{"ok": true, "channel": channel, "ts": ts, "text": m.Text}
}

func (s *Server) postEphemeral(form url.Values) (int, any) {
	channel := form.Get("channel")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outside[channel] {
		return fail("not_in_channel")
	}
	if form.Get("user") == "" {
		return fail("user_not_in_channel")
	}
	m := &Message{
		Channel: channel, TS: s.nextTS(), ThreadTS: form.Get("thread_ts"), User: s.BotUserID, BotID: s.BotID,
		Text: form.Get("text"), Blocks: json.RawMessage(form.Get("blocks")), Ephemeral: true, To: form.Get("user"),
	}
	s.messages = append(s.messages, m)
	return http.StatusOK, map[string]any{"ok": true, "message_ts": m.TS}
}

// replies answers conversations.replies: the parent and its replies,
// oldest first, paged by cursor.
func (s *Server) replies(form url.Values) (int, any) {
	channel, ts := form.Get("channel"), form.Get("ts")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outside[channel] {
		return fail("not_in_channel")
	}
	var thread []*Message
	for _, m := range s.messages {
		if m.Channel == channel && !m.Ephemeral && (m.TS == ts || m.ThreadTS == ts) {
			thread = append(thread, m)
		}
	}
	if len(thread) == 0 {
		return fail("thread_not_found")
	}
	sort.Slice(thread, func(i, j int) bool { return tsBefore(thread[i].TS, thread[j].TS) })
	from, _ := strconv.Atoi(form.Get("cursor"))
	n, _ := strconv.Atoi(form.Get("limit"))
	if n <= 0 || n > 1000 {
		n = 1000
	}
	page := thread[min(from, len(thread)):]
	more := len(page) > n
	if more {
		page = page[:n]
	}
	msgs := make([]map[string]any, len(page))
	for i, m := range page {
		msgs[i] = s.wire(m)
	}
	res := map[string]any{"ok": true, "messages": msgs, "has_more": more}
	if more {
		res["response_metadata"] = map[string]any{"next_cursor": strconv.Itoa(from + n)}
	}
	return http.StatusOK, res
}

// history answers conversations.history: top-level messages before
// latest, newest first.
func (s *Server) history(form url.Values) (int, any) {
	channel, latest := form.Get("channel"), form.Get("latest")
	n, _ := strconv.Atoi(form.Get("limit"))
	if n <= 0 {
		n = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []map[string]any
	for i := len(s.messages) - 1; i >= 0 && len(msgs) < n; i-- {
		m := s.messages[i]
		if m.Channel != channel || m.Ephemeral || (m.ThreadTS != "" && m.ThreadTS != m.TS) {
			continue
		}
		if latest != "" && !tsBefore(m.TS, latest) {
			continue
		}
		msgs = append(msgs, s.wire(m))
	}
	return http.StatusOK, map[string]any{"ok": true, "messages": msgs, "has_more": false}
}

func (s *Server) usersInfo(form url.Values) (int, any) {
	id := form.Get("user")
	s.mu.Lock()
	name, ok := s.users[id]
	s.mu.Unlock()
	if !ok {
		return fail("user_not_found")
	}
	s.mu.Lock()
	role := s.roles[id]
	s.mu.Unlock()
	return http.StatusOK, map[string]any{"ok": true, "user": map[string]any{
		"id": id, "team_id": s.TeamID, "name": strings.ToLower(name), "real_name": name, "deleted": false, "is_bot": false,
		"is_admin": role != "", "is_owner": role == "owner" || role == "primary_owner", "is_primary_owner": role == "primary_owner",
		"is_restricted": false, "is_ultra_restricted": false,
		"profile": map[string]any{"display_name": name, "real_name": name},
	}}
}

// AddFile stores a private file and returns it as Slack describes it in a
// message; downloading it needs the bot token.
func (s *Server) AddFile(name, mimetype string, content []byte) slackapi.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("F%04d", len(s.files)+1)
	s.files[id] = content
	u := s.base() + "/files/" + id + "/" + url.PathEscape(name)
	return slackapi.File{ID: id, Name: name, Title: name, Mimetype: mimetype, Size: len(content), URLPrivate: u, URLPrivateDownload: u}
}

// AddFileRedirect stores a file whose download answers 302 Found to
// target, as a file host moving a download elsewhere would.
func (s *Server) AddFileRedirect(name, mimetype, target string) slackapi.File {
	f := s.AddFile(name, mimetype, nil)
	s.mu.Lock()
	s.redirects[f.ID] = target
	s.mu.Unlock()
	return f
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/files/"), "/")
	s.mu.Lock()
	data, ok := s.files[id]
	target := s.redirects[id]
	s.mu.Unlock()
	if target != "" {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.BotToken {
		// Slack answers an unauthenticated file request with its login page.
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>sign in</html>")
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(data)
}

// pendingUpload is a file between files.getUploadURLExternal and
// files.completeUploadExternal.
type pendingUpload struct {
	name   string
	length int
	data   []byte
	done   bool // the bytes arrived at the upload URL
}

// maxUploadBytes is Slack's limit for one file.
const maxUploadBytes = 1 << 30

// getUploadURL is files.getUploadURLExternal: filename and length are
// required; it answers an upload URL on the fake and the file's id.
func (s *Server) getUploadURL(form url.Values) (int, any) {
	name := form.Get("filename")
	n, err := strconv.Atoi(form.Get("length"))
	if name == "" || err != nil || n <= 0 {
		return fail("invalid_arguments")
	}
	if n > maxUploadBytes {
		return fail("file_too_large")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("F%04d", len(s.files)+len(s.uploads)+1)
	s.uploads[id] = &pendingUpload{name: name, length: n}
	return http.StatusOK, map[string]any{"ok": true, "upload_url": s.base() + "/upload/" + id, "file_id": id}
}

// upload takes a file's bytes at its upload URL, raw or multipart (as
// Slack's upload service does), and checks the length announced.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	var data []byte
	var err error
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, perr := mr.NextPart()
			if perr != nil {
				break
			}
			if part.FileName() != "" {
				data, err = io.ReadAll(io.LimitReader(part, maxUploadBytes+1))
				break
			}
		}
	} else {
		data, err = io.ReadAll(io.LimitReader(r.Body, maxUploadBytes+1))
	}
	s.mu.Lock()
	u := s.uploads[id]
	ok := u != nil && err == nil && len(data) == u.length
	if ok {
		u.data, u.done = data, true
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "upload failed: unknown upload or wrong length", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "OK - %d", len(data))
}

// completeUpload is files.completeUploadExternal: every file must have been
// uploaded; with channel_id (and thread_ts) the files are shared as a
// message of the bot's, with initial_comment as its text.
func (s *Server) completeUpload(form url.Values) (int, any) {
	var list []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(form.Get("files")), &list); err != nil || len(list) == 0 {
		return fail("invalid_arguments")
	}
	channel := form.Get("channel_id")
	s.mu.Lock()
	if channel != "" && s.outside[channel] {
		s.mu.Unlock()
		return fail("not_in_channel")
	}
	var files []slackapi.File
	for _, f := range list {
		u := s.uploads[f.ID]
		if u == nil || !u.done {
			s.mu.Unlock()
			return fail("file_uploads_not_completed")
		}
		delete(s.uploads, f.ID)
		s.files[f.ID] = u.data
		link := s.base() + "/files/" + f.ID + "/" + url.PathEscape(u.name)
		title := f.Title
		if title == "" {
			title = u.name
		}
		files = append(files, slackapi.File{ID: f.ID, Name: u.name, Title: title, Size: len(u.data), Mimetype: http.DetectContentType(u.data),
			URLPrivate: link, URLPrivateDownload: link})
	}
	var m *Message
	if channel != "" {
		m = &Message{Channel: channel, TS: s.nextTS(), ThreadTS: form.Get("thread_ts"), User: s.BotUserID, BotID: s.BotID,
			Text: form.Get("initial_comment"), Files: files}
		s.messages = append(s.messages, m)
	}
	echo := s.echo
	s.mu.Unlock()
	if m != nil && echo {
		s.sendMessageEvent(m, "")
	}
	out := make([]map[string]any, len(files))
	for i, f := range files {
		out[i] = map[string]any{"id": f.ID, "title": f.Title, "name": f.Name}
	}
	return http.StatusOK, map[string]any{"ok": true, "files": out}
}

// FileData returns the bytes of a file (uploaded by the bot, or added
// with AddFile).
func (s *Server) FileData(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[id]
	return b, ok
}

func (s *Server) response(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.responses = append(s.responses, ResponsePost{URL: r.URL.String(), Body: body})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// find returns the message channel/ts; the caller holds s.mu.
func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

// wire is a message as the Web API returns it.
func (s *Server) wire(m *Message) map[string]any {
	w := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
	if m.User != "" {
		w["user"] = m.User
	}
	if m.BotID != "" {
		w["bot_id"] = m.BotID
		w["app_id"] = AppID
	}
	if m.ThreadTS != "" {
		w["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		w["blocks"] = m.Blocks
	}
	if len(m.Files) > 0 {
		w["files"] = m.Files
	}
	return w
}

// tsBefore compares Slack timestamps ("seconds.micros").
func tsBefore(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	ai, _ := strconv.ParseInt(as, 10, 64)
	bi, _ := strconv.ParseInt(bs, 10, 64)
	if ai != bi {
		return ai < bi
	}
	af, bf = (af + "000000")[:6], (bf + "000000")[:6]
	return af < bf
}
