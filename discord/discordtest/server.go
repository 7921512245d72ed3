// Package discordtest is a fake Discord on loopback for tests: the REST API
// (under /api/v9) and a gateway websocket, speaking Discord's JSON, so a real
// client (discordgo) connects to it as it would to Discord.
//
// The gateway sends HELLO, accepts IDENTIFY and RESUME, answers heartbeats,
// and dispatches MESSAGE_CREATE and INTERACTION_CREATE events that tests
// trigger with helpers (Mention, RunCommand, Autocomplete, ClickButton,
// ReplayLast). The REST side implements the routes a bot uses to answer
// (interaction callbacks, webhook edits and follow-ups, channel messages,
// typing, DMs, command registration), keeps every message's current state,
// records every request, validates Discord's message limits, and answers
// 429 with retry_after and rate-limit headers when told to (RateLimit). A
// CDN on https serves attachments with signed, expiring links (Upload).
package discordtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Options configure a Server.
type Options struct {
	// Token is the bot token the server accepts (default "fake-token").
	Token string
	// HeartbeatInterval is announced in HELLO (default 2 s).
	HeartbeatInterval time.Duration
	// BotName is the bot user's name (default "orchat").
	BotName string
	// DisallowedIntents are intents the application may not use (as when a
	// privileged intent is off in the developer portal): an IDENTIFY asking
	// for one is closed with 4014.
	DisallowedIntents int
	// NoEcho stops the server from dispatching MESSAGE_CREATE for the bot's
	// own messages (Discord sends them; the bot must ignore them).
	NoEcho bool
	// AckWindow is how long after INTERACTION_CREATE the first callback is
	// accepted (default 3 s, as on Discord); a later one answers 404,
	// code 10062 "Unknown interaction", and the interaction stays
	// unanswered.
	AckWindow time.Duration
	// Shards is the shard count GET /gateway/bot recommends (default 1).
	Shards int
	// MinShards, when above 1, is the fewest shards an IDENTIFY may ask
	// for: fewer is closed with 4011 Sharding Required, as Discord closes
	// a session that would hold too many guilds.
	MinShards int
	// MaxConcurrency is session_start_limit.max_concurrency (default 1):
	// shards identify in buckets shard_id % max_concurrency, one IDENTIFY
	// per bucket per IdentifyWindow.
	MaxConcurrency int
	// IdentifyWindow is the identify rate limit's window (default 5 s, as
	// on Discord; tests shorten it).
	IdentifyWindow time.Duration
	// SessionStarts is session_start_limit.total (default 1000); each
	// IDENTIFY that gets READY takes one from remaining.
	SessionStarts int
}

// Server is a fake Discord.
type Server struct {
	// URL is the server's base, http://127.0.0.1:port; APIURL is URL+"/api/v9".
	URL    string
	APIURL string
	// GatewayURL is the websocket URL GET /gateway returns.
	GatewayURL string
	Token      string
	AppID      string
	Bot        User

	opts Options
	http *httptest.Server

	mu             sync.Mutex
	next           uint64
	users          map[string]User
	channels       map[string]*Channel
	messages       map[string]*Message
	order          []string
	interactions   map[string]*Interaction
	tokens         map[string]*Interaction
	commands       map[string][]ApplicationCommand // by guild ("" global)
	guilds         map[string]*guild
	requests       []Request
	rules          []*rateRule
	closedDMs      map[string]bool
	typing         map[string]int
	outside        map[string]bool       // guilds the bot is not in (install.go)
	picked         map[string]Attachment // files picked for attachment options
	startedThreads []string              // threads the bot started (threads.go)

	cdn      *httptest.Server // attachments (cdn.go)
	cdnKey   []byte
	cdnFiles map[string]cdnFile
	cdnHits  int

	gw gateway
}

// MustStart starts a fake Discord for a test; it stops when the test ends.
func MustStart(tb TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("discordtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake Discord on loopback for a program (the load test);
// Close stops it.
func Start(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = "fake-token"
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 2 * time.Second
	}
	if opts.BotName == "" {
		opts.BotName = "orchat"
	}
	if opts.AckWindow <= 0 {
		opts.AckWindow = 3 * time.Second
	}
	if opts.Shards < 1 {
		opts.Shards = 1
	}
	if opts.MaxConcurrency < 1 {
		opts.MaxConcurrency = 1
	}
	if opts.IdentifyWindow <= 0 {
		opts.IdentifyWindow = 5 * time.Second
	}
	if opts.SessionStarts <= 0 {
		opts.SessionStarts = 1000
	}
	s := &Server{
		opts: opts, Token: opts.Token, next: 1_200_000_000_000_000_000,
		users: map[string]User{}, channels: map[string]*Channel{}, messages: map[string]*Message{},
		interactions: map[string]*Interaction{}, tokens: map[string]*Interaction{},
		commands: map[string][]ApplicationCommand{}, guilds: map[string]*guild{}, closedDMs: map[string]bool{}, typing: map[string]int{},
		cdnFiles: map[string]cdnFile{}, outside: map[string]bool{}, picked: map[string]Attachment{},
	}
	s.startCDN()
	s.Bot = User{ID: s.snowflake(), Username: opts.BotName, Discriminator: "0", Bot: true}
	s.AppID = s.Bot.ID
	s.users[s.Bot.ID] = s.Bot
	s.gw.init()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /gateway", s.serveGateway)
	mux.HandleFunc("GET /gateway/", s.serveGateway)
	api := http.NewServeMux()
	s.routes(api)
	mux.Handle("/api/v9/", s.middleware(api))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.http = &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	s.http.Start()
	s.URL = s.http.URL
	s.APIURL = s.URL + "/api/v9"
	s.GatewayURL = "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway"
	return s, nil
}

// Close disconnects every gateway client and stops the server.
func (s *Server) Close() {
	s.gw.closeAll()
	s.http.CloseClientConnections()
	s.http.Close()
	s.cdn.CloseClientConnections()
	s.cdn.Close()
}

// snowflake returns a new id; ids grow with time, like Discord's.
func (s *Server) snowflake() string {
	s.next += 1 << 22 // one step of the timestamp: consecutive ids fall on consecutive shards
	return strconv.FormatUint(s.next, 10)
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v9/gateway", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"url": s.GatewayURL})
	})
	mux.HandleFunc("GET /api/v9/gateway/bot", func(w http.ResponseWriter, r *http.Request) {
		s.gw.mu.Lock()
		started := 0
		for _, id := range s.gw.identifies {
			if id.Refused == "" {
				started++
			}
		}
		s.gw.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"url": s.GatewayURL, "shards": s.opts.Shards,
			"session_start_limit": map[string]int{"total": s.opts.SessionStarts, "remaining": max(s.opts.SessionStarts-started, 0),
				"reset_after": 86_400_000, "max_concurrency": s.opts.MaxConcurrency}})
	})
	mux.HandleFunc("GET /api/v9/users/@me", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Bot) })
	mux.HandleFunc("POST /api/v9/users/@me/channels", s.createDM)
	mux.HandleFunc("GET /api/v9/channels/{channel}", s.getChannel)
	mux.HandleFunc("POST /api/v9/channels/{channel}/typing", s.postTyping)
	mux.HandleFunc("POST /api/v9/channels/{channel}/messages", s.createChannelMessage)
	mux.HandleFunc("GET /api/v9/channels/{channel}/messages", s.listChannelMessages)
	mux.HandleFunc("GET /api/v9/channels/{channel}/messages/{message}", s.getChannelMessage)
	mux.HandleFunc("PATCH /api/v9/channels/{channel}/messages/{message}", s.editChannelMessage)
	mux.HandleFunc("POST /api/v9/channels/{channel}/messages/{message}/threads", s.startThread)
	mux.HandleFunc("DELETE /api/v9/channels/{channel}/messages/{message}", s.deleteChannelMessage)
	mux.HandleFunc("POST /api/v9/interactions/{id}/{token}/callback", s.callback)
	mux.HandleFunc("POST /api/v9/webhooks/{app}/{token}", s.followup)
	mux.HandleFunc("GET /api/v9/webhooks/{app}/{token}/messages/{message}", s.getWebhookMessage)
	mux.HandleFunc("PATCH /api/v9/webhooks/{app}/{token}/messages/{message}", s.editWebhookMessage)
	mux.HandleFunc("DELETE /api/v9/webhooks/{app}/{token}/messages/{message}", s.deleteWebhookMessage)
	mux.HandleFunc("GET /api/v9/guilds/{guild}", s.getGuild)
	mux.HandleFunc("GET /api/v9/guilds/{guild}/roles", s.getRoles)
	mux.HandleFunc("GET /api/v9/guilds/{guild}/members/{user}", s.getMember)
	mux.HandleFunc("PUT /api/v9/applications/{app}/commands", s.putCommands)
	mux.HandleFunc("PUT /api/v9/applications/{app}/guilds/{guild}/commands", s.putCommands)
	mux.HandleFunc("GET /api/v9/applications/{app}/commands", s.getCommands)
	mux.HandleFunc("GET /api/v9/applications/{app}/guilds/{guild}/commands", s.getCommands)
}

// middleware records each request, checks the bot token, and answers the
// programmed 429s.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		req := Request{
			Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/api/v9"), Query: r.URL.Query(),
			Header: r.Header.Clone(), Body: json.RawMessage(append([]byte(nil), body...)), Time: time.Now(),
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			req.Status = rec.status
			s.mu.Lock()
			s.requests = append(s.requests, req)
			s.mu.Unlock()
		}()
		webhook := strings.HasPrefix(req.Path, "/webhooks/") || strings.HasPrefix(req.Path, "/interactions/")
		if !webhook && !s.authorized(r) {
			writeError(rec, http.StatusUnauthorized, 0, "401: Unauthorized")
			return
		}
		if rule := s.limited(req); rule != nil {
			rule.write(rec)
			return
		}
		s.mu.Lock()
		refused := !webhook && s.refusedLocked(req.Path)
		s.mu.Unlock()
		if refused {
			refuse(rec)
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	return auth == "Bot "+s.Token
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// RateLimit describes 429 answers to give.
type RateLimit struct {
	// Method and Path select requests: an empty Method matches any, Path
	// matches when the request path (from /api/v9 on) starts with it, and
	// Match, when set, must agree too.
	Method string
	Path   string
	Match  func(Request) bool
	// Count is how many matching requests answer 429 (default 1).
	Count int
	// RetryAfter is the wait announced (default 200 ms).
	RetryAfter time.Duration
	// Global marks the limit as the global one (X-RateLimit-Global).
	Global bool
}

type rateRule struct {
	RateLimit
	left int
	hits int
}

// RateLimit makes the next matching requests answer 429 Too Many Requests,
// with retry_after in the body and X-RateLimit-* and Retry-After headers.
func (s *Server) RateLimit(rl RateLimit) {
	if rl.Count <= 0 {
		rl.Count = 1
	}
	if rl.RetryAfter <= 0 {
		rl.RetryAfter = 200 * time.Millisecond
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &rateRule{RateLimit: rl, left: rl.Count})
}

// RateLimited returns how many requests answered 429.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func (s *Server) limited(req Request) *rateRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.left == 0 || (r.Method != "" && r.Method != req.Method) || !strings.HasPrefix(req.Path, r.Path) {
			continue
		}
		if r.Match != nil && !r.Match(req) {
			continue
		}
		r.left--
		r.hits++
		return r
	}
	return nil
}

func (r *rateRule) write(w http.ResponseWriter) {
	secs := r.RetryAfter.Seconds()
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
	h.Set("X-RateLimit-Limit", "5")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(time.Now().Add(r.RetryAfter).UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", "fake-bucket")
	scope := "user"
	if r.Global {
		h.Set("X-RateLimit-Global", "true")
		scope = "global"
	}
	h.Set("X-RateLimit-Scope", scope)
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": secs, "global": r.Global})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "code": code})
}

// messageBody is what a bot sends to create or edit a message.
type messageBody struct {
	// files are the files of a multipart/form-data body (files[n] parts).
	files            []upload
	Content          *string           `json:"content"`
	Embeds           *[]Embed          `json:"embeds"`
	Components       *[]Component      `json:"components"`
	AllowedMentions  *AllowedMentions  `json:"allowed_mentions"`
	Flags            *int              `json:"flags"`
	MessageReference *MessageReference `json:"message_reference"`
}

// upload is one file of a multipart message.
type upload struct {
	name, ctype string
	data        []byte
}

// maxUpload is Discord's file size limit for a bot without boosts.
const maxUpload = 10 << 20

// decodeBody reads a message body: JSON, or multipart/form-data with the
// JSON in payload_json and the files in files[n] parts (Discord's upload
// format).
func decodeBody(r *http.Request) (messageBody, error) {
	var b messageBody
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		err := json.NewDecoder(r.Body).Decode(&b)
		return b, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		data, err := io.ReadAll(io.LimitReader(part, maxUpload+1))
		if err != nil {
			return b, err
		}
		switch name := part.FormName(); {
		case name == "payload_json":
			if err := json.Unmarshal(data, &b); err != nil {
				return b, err
			}
		case strings.HasPrefix(name, "files["):
			if len(data) > maxUpload {
				return b, errors.New("file too large")
			}
			b.files = append(b.files, upload{name: part.FileName(), ctype: part.Header.Get("Content-Type"), data: data})
		}
	}
}

// attachLocked stores a message's uploaded files on the CDN and lists them
// as its attachments, as Discord does with a multipart message.
func (s *Server) attachLocked(m *Message, files []upload) {
	for _, f := range files {
		a := s.storeAttachmentLocked(m.ChannelID, f.name, f.ctype, len(f.data), cdnFile{contentType: f.ctype, data: f.data}, 24*time.Hour)
		m.Attachments = append(m.Attachments, a)
	}
}

// File returns the bytes of an attachment on the CDN (one the bot
// uploaded, or one a test put there with Upload).
func (s *Server) File(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, f := range s.cdnFiles {
		if strings.Contains(path, "/"+id+"/") && f.handler == nil {
			return f.data, true
		}
	}
	return nil, false
}

// validate checks Discord's message limits; it returns "" when they hold.
func (b messageBody) validate(current *Message) string {
	content, embeds, comps := "", []Embed(nil), []Component(nil)
	if current != nil {
		content, embeds, comps = current.Content, current.Embeds, current.Components
	}
	if b.Content != nil {
		content = *b.Content
	}
	if b.Embeds != nil {
		embeds = *b.Embeds
	}
	if b.Components != nil {
		comps = *b.Components
	}
	if utf8.RuneCountInString(content) > 2000 {
		return "content: Must be 2000 or fewer in length."
	}
	if len(embeds) > 10 {
		return "embeds: Must be 10 or fewer in length."
	}
	total := 0
	for i, e := range embeds {
		n := func(s string) int { return utf8.RuneCountInString(s) }
		if n(e.Description) > 4096 {
			return fmt.Sprintf("embeds.%d.description: Must be 4096 or fewer in length.", i)
		}
		if n(e.Title) > 256 {
			return fmt.Sprintf("embeds.%d.title: Must be 256 or fewer in length.", i)
		}
		total += n(e.Title) + n(e.Description)
		if e.Footer != nil {
			if n(e.Footer.Text) > 2048 {
				return fmt.Sprintf("embeds.%d.footer.text: Must be 2048 or fewer in length.", i)
			}
			total += n(e.Footer.Text)
		}
		if len(e.Fields) > 25 {
			return fmt.Sprintf("embeds.%d.fields: Must be 25 or fewer in length.", i)
		}
		for _, f := range e.Fields {
			if n(f.Value) > 1024 {
				return fmt.Sprintf("embeds.%d.fields.value: Must be 1024 or fewer in length.", i)
			}
			total += n(f.Name) + n(f.Value)
		}
		if e.Author != nil {
			total += n(e.Author.Name)
		}
		if e.Title == "" && e.Description == "" && len(e.Fields) == 0 && e.Footer == nil && e.Author == nil {
			return fmt.Sprintf("embeds.%d: An embed must have a title, a description, fields, a footer or an author.", i)
		}
	}
	if total > 6000 {
		return "embeds: Embed size exceeds maximum size of 6000"
	}
	if len(comps) > 5 {
		return "components: Must be 5 or fewer in length."
	}
	for _, row := range comps {
		if row.Type != 1 || len(row.Components) > 5 {
			return "components: Invalid action row."
		}
		for _, c := range row.Components {
			if c.Type == 2 && (utf8.RuneCountInString(c.Label) > 80 || len(c.CustomID) > 100 || (c.CustomID == "" && c.URL == "")) {
				return "components: Invalid button."
			}
		}
	}
	if content == "" && len(embeds) == 0 && len(comps) == 0 {
		return "Cannot send an empty message"
	}
	return ""
}

// apply writes the body's fields onto m.
func (b messageBody) apply(m *Message) {
	if b.Content != nil {
		m.Content = *b.Content
	}
	if b.Embeds != nil {
		m.Embeds = append([]Embed(nil), *b.Embeds...)
	}
	if b.Components != nil {
		m.Components = append([]Component(nil), *b.Components...)
	}
	if b.AllowedMentions != nil {
		am := *b.AllowedMentions
		m.AllowedMentions = &am
	} else {
		m.AllowedMentions = nil
	}
}

// newBotMessage stores a message from the bot; s.mu is held.
func (s *Server) newBotMessage(channel string, b messageBody, flags int) *Message {
	ch := s.channelLocked(channel, "")
	m := &Message{
		ID: s.snowflake(), Type: MessageDefault, ChannelID: channel, GuildID: ch.GuildID, Author: s.Bot,
		Embeds: []Embed{}, Components: []Component{}, Attachments: []Attachment{}, Mentions: []User{}, MentionRoles: []string{},
		Flags: flags, Timestamp: time.Now().UTC(),
	}
	b.apply(m)
	s.attachLocked(m, b.files)
	if ref := b.MessageReference; ref != nil && ref.MessageID != "" {
		r := *ref
		if r.ChannelID == "" {
			r.ChannelID = channel
		}
		m.MessageReference = &r
		m.Type = MessageReply
	}
	s.storeLocked(m)
	return m
}

func (s *Server) storeLocked(m *Message) {
	s.messages[m.ID] = m
	s.order = append(s.order, m.ID)
}

// wire returns m as the API sends it, with the message it replies to.
func (s *Server) wire(m *Message) Message {
	out := copyMessage(m)
	if ref := m.MessageReference; ref != nil && ref.Type == 0 {
		if parent, ok := s.messages[ref.MessageID]; ok && !parent.Deleted {
			p := copyMessage(parent)
			p.ReferencedMessage = nil
			out.ReferencedMessage = &p
		}
	}
	return out
}

func copyMessage(m *Message) Message {
	c := *m
	c.Embeds = append([]Embed(nil), m.Embeds...)
	for i := range c.Embeds {
		if f := c.Embeds[i].Footer; f != nil {
			ff := *f
			c.Embeds[i].Footer = &ff
		}
		c.Embeds[i].Fields = append([]EmbedField(nil), c.Embeds[i].Fields...)
	}
	c.Components = copyComponents(m.Components)
	c.Attachments = append([]Attachment(nil), m.Attachments...)
	c.Mentions = append([]User(nil), m.Mentions...)
	if m.AllowedMentions != nil {
		am := *m.AllowedMentions
		c.AllowedMentions = &am
	}
	if m.EditedTimestamp != nil {
		t := *m.EditedTimestamp
		c.EditedTimestamp = &t
	}
	if m.Embeds == nil {
		c.Embeds = []Embed{}
	}
	if m.Components == nil {
		c.Components = []Component{}
	}
	if m.Attachments == nil {
		c.Attachments = []Attachment{}
	}
	if m.Mentions == nil {
		c.Mentions = []User{}
	}
	if m.MentionRoles == nil {
		c.MentionRoles = []string{}
	}
	return c
}

func copyComponents(cs []Component) []Component {
	if cs == nil {
		return nil
	}
	out := make([]Component, len(cs))
	for i, c := range cs {
		out[i] = c
		out[i].Components = copyComponents(c.Components)
	}
	return out
}

// channelLocked returns a channel, creating a text channel in guild when it
// is unknown; s.mu is held.
func (s *Server) channelLocked(id, guild string) *Channel {
	if c, ok := s.channels[id]; ok {
		return c
	}
	c := &Channel{ID: id, Type: ChannelText, GuildID: guild, Name: "channel-" + id[len(id)-4:]}
	s.channels[id] = c
	return c
}

func (s *Server) createDM(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RecipientID string `json:"recipient_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RecipientID == "" {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.dmLocked(body.RecipientID)
	writeJSON(w, http.StatusOK, ch)
}

// dmLocked returns the DM channel with a user; s.mu is held.
func (s *Server) dmLocked(user string) *Channel {
	for _, c := range s.channels {
		if c.Type == ChannelDM && len(c.Recipients) == 1 && c.Recipients[0].ID == user {
			return c
		}
	}
	u, ok := s.users[user]
	if !ok {
		u = User{ID: user, Username: "user" + user[len(user)-4:], Discriminator: "0"}
	}
	c := &Channel{ID: s.snowflake(), Type: ChannelDM, Recipients: []User{u}}
	s.channels[c.ID] = c
	return c
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[r.PathValue("channel")]
	if !ok {
		writeError(w, http.StatusNotFound, 10003, "Unknown Channel")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) postTyping(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.typing[r.PathValue("channel")]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) createChannelMessage(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	if msg := b.validate(nil); msg != "" {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
		return
	}
	channel := r.PathValue("channel")
	s.mu.Lock()
	ch, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, 10003, "Unknown Channel")
		return
	}
	if ch.Type == ChannelDM && len(ch.Recipients) == 1 && s.closedDMs[ch.Recipients[0].ID] {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, 50007, "Cannot send messages to this user")
		return
	}
	flags := 0
	if b.Flags != nil {
		flags = *b.Flags &^ (FlagEphemeral | FlagLoading)
	}
	m := s.newBotMessage(channel, b, flags)
	out := s.wire(m)
	s.mu.Unlock()
	s.echo(out)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listChannelMessages(w http.ResponseWriter, r *http.Request) {
	channel := r.PathValue("channel")
	limit := 50
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = min(v, 100)
	}
	before, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[channel]; !ok {
		writeError(w, http.StatusNotFound, 10003, "Unknown Channel")
		return
	}
	out := []Message{}
	for i := len(s.order) - 1; i >= 0 && len(out) < limit; i-- {
		m := s.messages[s.order[i]]
		if m.ChannelID != channel || m.Deleted || m.Ephemeral() {
			continue
		}
		if id, _ := strconv.ParseUint(m.ID, 10, 64); before != 0 && id >= before {
			continue
		}
		out = append(out, s.wire(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getChannelMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[r.PathValue("message")]
	if !ok || m.Deleted || m.Ephemeral() || m.ChannelID != r.PathValue("channel") {
		writeError(w, http.StatusNotFound, 10008, "Unknown Message")
		return
	}
	writeJSON(w, http.StatusOK, s.wire(m))
}

func (s *Server) editChannelMessage(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	m, ok := s.messages[r.PathValue("message")]
	if !ok || m.Deleted || m.Ephemeral() || m.ChannelID != r.PathValue("channel") {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, 10008, "Unknown Message")
		return
	}
	if m.Author.ID != s.Bot.ID {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, 50005, "Cannot edit a message authored by another user")
		return
	}
	out, msg := s.editLocked(m, b)
	s.mu.Unlock()
	if msg != "" {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// editLocked applies an edit; it returns the problem when the edit breaks
// a limit. s.mu is held.
func (s *Server) editLocked(m *Message, b messageBody) (Message, string) {
	if msg := b.validate(m); msg != "" {
		return Message{}, msg
	}
	b.apply(m)
	s.attachLocked(m, b.files)
	now := time.Now().UTC()
	m.EditedTimestamp = &now
	m.Edits++
	return s.wire(m), ""
}

func (s *Server) deleteChannelMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[r.PathValue("message")]
	if !ok || m.Deleted {
		writeError(w, http.StatusNotFound, 10008, "Unknown Message")
		return
	}
	m.Deleted = true
	w.WriteHeader(http.StatusNoContent)
}

// callback is the interaction response: the first one counts, a second is
// refused as Discord does.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type int `json:"type"`
		Data *struct {
			messageBody
			Choices []Choice `json:"choices"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[r.PathValue("id")]
	if !ok || in.Token != r.PathValue("token") || (in.Callbacks == 0 && time.Since(in.Created) > s.opts.AckWindow) {
		writeError(w, http.StatusNotFound, 10062, "Unknown interaction")
		return
	}
	in.Callbacks++
	if in.Callbacks > 1 {
		writeError(w, http.StatusBadRequest, 40060, "Interaction has already been acknowledged.")
		return
	}
	in.ResponseType, in.ResponseAt = body.Type, time.Now()
	flags := 0
	if body.Data != nil && body.Data.Flags != nil {
		flags = *body.Data.Flags & FlagEphemeral
	}
	in.ResponseFlags = flags
	switch body.Type {
	case CallbackDeferredMessage:
		if in.Type == InteractionAutocomplete {
			writeError(w, http.StatusBadRequest, 50035, "Invalid interaction response type for autocomplete")
			return
		}
		m := s.newBotMessage(in.ChannelID, messageBody{}, flags|FlagLoading)
		m.Interaction, m.WebhookID, m.ApplicationID = in.ID, s.AppID, s.AppID
		in.Original = m.ID
	case CallbackMessage:
		var b messageBody
		if body.Data != nil {
			b = body.Data.messageBody
		}
		if msg := b.validate(nil); msg != "" {
			writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
			return
		}
		m := s.newBotMessage(in.ChannelID, b, flags)
		m.Interaction, m.WebhookID, m.ApplicationID = in.ID, s.AppID, s.AppID
		in.Original = m.ID
	case CallbackDeferredUpdate, CallbackUpdateMessage:
		if in.Type != InteractionComponent {
			writeError(w, http.StatusBadRequest, 50035, "Invalid interaction response type")
			return
		}
		in.Original = in.MessageID
		if body.Type == CallbackUpdateMessage && body.Data != nil {
			if m, ok := s.messages[in.MessageID]; ok {
				if _, msg := s.editLocked(m, body.Data.messageBody); msg != "" {
					writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
					return
				}
			}
		}
	case CallbackAutocompleteResult:
		if in.Type != InteractionAutocomplete {
			writeError(w, http.StatusBadRequest, 50035, "Invalid interaction response type")
			return
		}
		if body.Data != nil {
			if len(body.Data.Choices) > 25 {
				writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: choices: Must be 25 or fewer in length.")
				return
			}
			for _, c := range body.Data.Choices {
				if n := utf8.RuneCountInString(c.Name); n < 1 || n > 100 {
					writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: choices.name: Must be between 1 and 100 in length.")
					return
				}
			}
			in.Choices = append([]Choice{}, body.Data.Choices...)
		} else {
			in.Choices = []Choice{}
		}
	default:
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: type")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// interactionFor finds the interaction of a webhook token; s.mu is held.
func (s *Server) interactionFor(w http.ResponseWriter, r *http.Request) *Interaction {
	in, ok := s.tokens[r.PathValue("token")]
	if !ok || r.PathValue("app") != s.AppID {
		writeError(w, http.StatusNotFound, 10015, "Unknown Webhook")
		return nil
	}
	if in.Expired {
		writeError(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
		return nil
	}
	if in.Callbacks == 0 {
		writeError(w, http.StatusNotFound, 10015, "Unknown Webhook")
		return nil
	}
	return in
}

// webhookMessage finds the message a webhook route names; s.mu is held.
func (s *Server) webhookMessage(w http.ResponseWriter, r *http.Request, in *Interaction) *Message {
	id := r.PathValue("message")
	if id == "@original" {
		id = in.Original
	} else if !contains(in.Followups, id) && id != in.Original {
		id = ""
	}
	m, ok := s.messages[id]
	if !ok || m.Deleted {
		writeError(w, http.StatusNotFound, 10008, "Unknown Message")
		return nil
	}
	return m
}

// followup creates a follow-up message. While a deferred response is still
// "thinking…", the follow-up fills it instead, with the deferred
// response's visibility (as Discord does).
func (s *Server) followup(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	in := s.interactionFor(w, r)
	if in == nil {
		s.mu.Unlock()
		return
	}
	if orig, ok := s.messages[in.Original]; ok && orig.Loading() && !orig.Deleted {
		out, msg := s.editLocked(orig, b)
		if msg != "" {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
			return
		}
		orig.Flags &^= FlagLoading
		orig.Edits = 0
		out.Flags = orig.Flags
		s.mu.Unlock()
		if !orig.Ephemeral() {
			s.echo(out)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	if msg := b.validate(nil); msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
		return
	}
	flags := 0
	if b.Flags != nil {
		flags = *b.Flags & FlagEphemeral
	}
	m := s.newBotMessage(in.ChannelID, b, flags)
	m.Interaction, m.WebhookID, m.ApplicationID = in.ID, s.AppID, s.AppID
	in.Followups = append(in.Followups, m.ID)
	out := s.wire(m)
	s.mu.Unlock()
	if !m.Ephemeral() {
		s.echo(out)
	}
	if r.URL.Query().Get("wait") != "true" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getWebhookMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.interactionFor(w, r)
	if in == nil {
		return
	}
	if m := s.webhookMessage(w, r, in); m != nil {
		writeJSON(w, http.StatusOK, s.wire(m))
	}
}

func (s *Server) editWebhookMessage(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	s.mu.Lock()
	in := s.interactionFor(w, r)
	if in == nil {
		s.mu.Unlock()
		return
	}
	m := s.webhookMessage(w, r, in)
	if m == nil {
		s.mu.Unlock()
		return
	}
	wasLoading := m.Loading()
	out, msg := s.editLocked(m, b)
	if msg != "" {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
		return
	}
	if wasLoading {
		m.Flags &^= FlagLoading
		m.Edits = 0 // filling the deferred response is its first content, not an edit
		out = s.wire(m)
	}
	s.mu.Unlock()
	if wasLoading && !m.Ephemeral() {
		s.echo(out)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteWebhookMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.interactionFor(w, r)
	if in == nil {
		return
	}
	if m := s.webhookMessage(w, r, in); m != nil {
		m.Deleted = true
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) putCommands(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("app") != s.AppID {
		writeError(w, http.StatusForbidden, 50001, "Missing Access")
		return
	}
	var cmds []ApplicationCommand
	if err := json.NewDecoder(r.Body).Decode(&cmds); err != nil {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	if len(cmds) > 100 {
		writeError(w, http.StatusBadRequest, 30032, "Maximum number of application commands reached (100)")
		return
	}
	for _, c := range cmds {
		if msg := validateCommand(c); msg != "" {
			writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: "+msg)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	guild := r.PathValue("guild")
	for i := range cmds {
		cmds[i].ID, cmds[i].ApplicationID, cmds[i].GuildID = s.snowflake(), s.AppID, guild
		if cmds[i].Type == 0 {
			cmds[i].Type = 1
		}
	}
	s.commands[guild] = cmds
	writeJSON(w, http.StatusOK, cmds)
}

func validateCommand(c ApplicationCommand) string {
	for _, t := range c.IntegrationTypes {
		if t != GuildInstall && t != UserInstall {
			return fmt.Sprintf("%s.integration_types: %d is not an integration type", c.Name, t)
		}
	}
	for _, x := range c.Contexts {
		if x < ContextGuild || x > ContextPrivateChannel {
			return fmt.Sprintf("%s.contexts: %d is not an interaction context", c.Name, x)
		}
	}
	if c.Type == CommandMessage || c.Type == CommandUser {
		// Context menu commands: a name of 1-32 characters of any case
		// and with spaces, and no description or options.
		if n := utf8.RuneCountInString(c.Name); n < 1 || n > 32 {
			return fmt.Sprintf("name %q: must be 1-32 characters", c.Name)
		}
		if c.Description != "" || len(c.Options) > 0 {
			return fmt.Sprintf("%s: Context menu commands cannot have a description or options", c.Name)
		}
		return ""
	}
	if !validName(c.Name) {
		return fmt.Sprintf("name %q: must be 1-32 lowercase characters", c.Name)
	}
	if n := utf8.RuneCountInString(c.Description); n < 1 || n > 100 {
		return fmt.Sprintf("%s.description: Must be between 1 and 100 in length.", c.Name)
	}
	return validateOptions(c.Name, c.Options, 0)
}

// validateOptions checks one level of options as Discord does: at most
// 25, unique names, required before optional; subcommands (type 1) and
// groups (type 2) only at the top, groups holding only subcommands (one
// level of nesting), neither of them required, and a level holding
// subcommands holding nothing else.
func validateOptions(path string, opts []ApplicationCommandOption, depth int) string {
	if len(opts) > 25 {
		return fmt.Sprintf("%s.options: Must be 25 or fewer in length.", path)
	}
	optional, subs, values := false, 0, 0
	seen := map[string]bool{}
	for _, o := range opts {
		p := path + ".options." + o.Name
		if !validName(o.Name) {
			return fmt.Sprintf("%s.options.name %q: must be 1-32 lowercase characters", path, o.Name)
		}
		if seen[o.Name] {
			return fmt.Sprintf("%s: Application command option names must be unique", p)
		}
		seen[o.Name] = true
		if n := utf8.RuneCountInString(o.Description); n < 1 || n > 100 {
			return fmt.Sprintf("%s.description: Must be between 1 and 100 in length.", p)
		}
		switch o.Type {
		case OptionSubcommand, OptionGroup:
			subs++
			if o.Required {
				return fmt.Sprintf("%s.required: Subcommands and groups cannot be required", p)
			}
			if o.Type == OptionGroup && depth > 0 || o.Type == OptionSubcommand && depth > 1 {
				return fmt.Sprintf("%s: Subcommand groups nest only one level deep", p)
			}
			if o.Type == OptionGroup {
				for _, sub := range o.Options {
					if sub.Type != OptionSubcommand {
						return fmt.Sprintf("%s.options.%s: A subcommand group holds only subcommands", p, sub.Name)
					}
				}
				if len(o.Options) == 0 {
					return fmt.Sprintf("%s.options: A subcommand group needs subcommands", p)
				}
			}
			if msg := validateOptions(p, o.Options, depth+1); msg != "" {
				return msg
			}
			continue
		case OptionString, OptionInteger, OptionBoolean, OptionUser, OptionChannel, OptionRole, OptionMentionable, OptionNumber, OptionAttachment:
		default:
			return fmt.Sprintf("%s.type: %d is not an option type", p, o.Type)
		}
		values++
		if len(o.Options) > 0 {
			return fmt.Sprintf("%s.options: Only subcommands and groups have options", p)
		}
		if o.Autocomplete && o.Type != OptionString && o.Type != OptionInteger && o.Type != OptionNumber {
			return fmt.Sprintf("%s.autocomplete: Only string, integer and number options autocomplete", p)
		}
		if o.Required && optional {
			return fmt.Sprintf("%s: Required options must be placed before non-required options", path)
		}
		optional = optional || !o.Required
	}
	if subs > 0 && values > 0 {
		return fmt.Sprintf("%s.options: Subcommands and groups cannot be mixed with other options", path)
	}
	return ""
}

func validName(s string) bool {
	if n := utf8.RuneCountInString(s); n < 1 || n > 32 {
		return false
	}
	for _, r := range s {
		if r >= 'A' && r <= 'Z' || r == ' ' {
			return false
		}
	}
	return true
}

func (s *Server) getCommands(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmds := s.commands[r.PathValue("guild")]
	if cmds == nil {
		cmds = []ApplicationCommand{}
	}
	writeJSON(w, http.StatusOK, cmds)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "aW50ZXJhY3Rpb24" + hex.EncodeToString(b[:])
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
