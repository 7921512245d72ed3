package discordtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
)

// frame is one gateway payload.
type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

// gateway is the fake's websocket side: sessions (for resuming) and the
// connected clients.
type gateway struct {
	mu         sync.Mutex
	sessions   map[string]*session
	conns      map[*conn]bool
	current    *conn         // the last client that became ready
	byShard    map[int]*conn // the last client that became ready on each shard
	pending    []pendingEvent
	identifies []Identify
	buckets    map[int]time.Time // identify rate-limit key → when it last identified
	resumes    int
	heartbeats int
	last       []byte // the last event a test dispatched, as sent
	lastConn   *conn  // where it went
}

// pendingEvent is a dispatch kept while the shard it routes to has no
// client: sent when one becomes ready.
type pendingEvent struct {
	guild string
	data  []byte
}

// session is a gateway session: its sequence and the events sent in it.
type session struct {
	id    string
	shard [2]int // [shard_id, num_shards] as identified
	seq   int64
	log   []sent
}

type sent struct {
	seq  int64
	id   string // the message or interaction a test triggered, for Redeliver
	data []byte
}

type conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	session *session
	ready   bool
	refused int // identifies refused on this connection (rate limit)
}

func (g *gateway) init() {
	g.sessions = map[string]*session{}
	g.conns = map[*conn]bool{}
	g.byShard = map[int]*conn{}
	g.buckets = map[int]time.Time{}
}

func (c *conn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

func (c *conn) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(b)
}

func (g *gateway) closeAll() {
	g.mu.Lock()
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.wmu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server closing"), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = c.ws.Close()
	}
}

// serveGateway runs one gateway connection: HELLO, then IDENTIFY or
// RESUME, heartbeats, and the dispatches tests trigger.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws}
	g := &s.gw
	g.mu.Lock()
	g.conns[c] = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		if g.current == c {
			g.current = nil
		}
		if c.session != nil && g.byShard[c.session.shard[0]] == c {
			delete(g.byShard, c.session.shard[0])
		}
		g.mu.Unlock()
		ws.Close()
	}()
	if err := c.writeJSON(map[string]any{"op": opHello, "d": map[string]any{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds()}}); err != nil {
		return
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.closeWith(4002, "Error while decoding payload.")
			return
		}
		switch f.Op {
		case opHeartbeat:
			g.mu.Lock()
			g.heartbeats++
			g.mu.Unlock()
			_ = c.writeJSON(map[string]any{"op": opHeartbeatACK})
		case opIdentify:
			if !s.identify(c, f.D) {
				return
			}
		case opResume:
			if !s.resume(c, f.D) {
				return
			}
		}
	}
}

func (c *conn) closeWith(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	time.Sleep(50 * time.Millisecond)
}

func (s *Server) tokenOK(token string) bool {
	return strings.TrimPrefix(token, "Bot ") == s.Token
}

// identify opens a new session and sends READY. It enforces Discord's
// sharding rules: a shard outside [0, num_shards) is closed with 4010
// Invalid Shard, fewer shards than Options.MinShards with 4011 Sharding
// Required, and a second IDENTIFY in one rate-limit bucket (shard_id %
// max_concurrency) within Options.IdentifyWindow is refused with op 9
// Invalid Session (d: false), as Discord answers one that exceeds the
// maximum concurrency; a connection that identifies again at once after
// a refusal is closed with 4008 Rate Limited.
func (s *Server) identify(c *conn, d json.RawMessage) bool {
	var id struct {
		Token   string  `json:"token"`
		Intents int     `json:"intents"`
		Shard   *[2]int `json:"shard"`
	}
	_ = json.Unmarshal(d, &id)
	ok := s.tokenOK(id.Token)
	rec := Identify{Intents: id.Intents, Shard: id.Shard, TokenOK: ok, Time: time.Now()}
	g := &s.gw
	refuse := func(why string) {
		rec.Refused = why
		g.mu.Lock()
		g.identifies = append(g.identifies, rec)
		g.mu.Unlock()
	}
	if !ok {
		refuse("authentication failed")
		c.closeWith(4004, "Authentication failed.")
		return false
	}
	if id.Intents&s.opts.DisallowedIntents != 0 {
		refuse("disallowed intents")
		c.closeWith(4014, "Disallowed intent(s).")
		return false
	}
	shard := [2]int{0, 1}
	if id.Shard != nil {
		shard = *id.Shard
	}
	if shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1] {
		refuse("invalid shard")
		c.closeWith(4010, "Invalid shard.")
		return false
	}
	if shard[1] < s.opts.MinShards {
		refuse("sharding required")
		c.closeWith(4011, "Sharding required.")
		return false
	}
	bucket := shard[0] % s.opts.MaxConcurrency
	g.mu.Lock()
	last, seen := g.buckets[bucket]
	if seen && rec.Time.Sub(last) < s.opts.IdentifyWindow {
		c.refused++
		again := c.refused > 1
		rec.Refused = "rate limited: bucket " + strconv.Itoa(bucket) + " identified " + rec.Time.Sub(last).Round(time.Millisecond).String() + " ago"
		g.identifies = append(g.identifies, rec)
		g.mu.Unlock()
		if again {
			c.closeWith(4008, "Rate limited.")
			return false
		}
		return c.writeJSON(map[string]any{"op": opInvalidSession, "d": false}) == nil
	}
	g.buckets[bucket] = rec.Time
	g.identifies = append(g.identifies, rec)
	g.mu.Unlock()

	s.mu.Lock()
	sess := &session{id: s.snowflake(), shard: shard}
	s.mu.Unlock()
	ready := map[string]any{
		"v": 9, "user": s.Bot, "session_id": sess.id, "resume_gateway_url": s.GatewayURL,
		"guilds": []any{}, "private_channels": []any{}, "shard": shard,
		"application": map[string]any{"id": s.AppID, "flags": 0},
	}
	g.mu.Lock()
	g.sessions[sess.id] = sess
	c.session = sess
	data := sess.frame("READY", ready)
	g.mu.Unlock()
	if err := c.write(data); err != nil {
		return false
	}
	s.becomeReady(c)
	return true
}

// resume continues a session: the events it missed, then RESUMED.
func (s *Server) resume(c *conn, d json.RawMessage) bool {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(d, &r)
	if !s.tokenOK(r.Token) {
		c.closeWith(4004, "Authentication failed.")
		return false
	}
	g := &s.gw
	g.mu.Lock()
	sess, ok := g.sessions[r.SessionID]
	if !ok {
		g.mu.Unlock()
		_ = c.writeJSON(map[string]any{"op": opInvalidSession, "d": false})
		return true
	}
	g.resumes++
	c.session = sess
	var missed [][]byte
	for _, e := range sess.log {
		if e.seq > r.Seq {
			missed = append(missed, e.data)
		}
	}
	resumed := sess.frame("RESUMED", map[string]any{})
	g.mu.Unlock()
	for _, m := range missed {
		if err := c.write(m); err != nil {
			return false
		}
	}
	if err := c.write(resumed); err != nil {
		return false
	}
	s.becomeReady(c)
	return true
}

// becomeReady makes c the connection dispatches for its shard go to, and
// sends what was dispatched for that shard while it had no client.
func (s *Server) becomeReady(c *conn) {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	c.ready = true
	g.current = c
	g.byShard[c.session.shard[0]] = c
	var keep []pendingEvent
	for _, p := range g.pending {
		if g.routeLocked(p.guild) != c {
			keep = append(keep, p)
			continue
		}
		_ = c.write(c.session.restamp(p.data))
	}
	g.pending = keep
}

// routeLocked is the ready connection an event of guild goes to: the
// shard (guild_id >> 22) % num_shards, DMs (no guild) to shard 0, as
// Discord routes them; nil when that shard has no client. g.mu is held.
func (g *gateway) routeLocked(guild string) *conn {
	c := g.current
	if c == nil || c.session == nil {
		return nil
	}
	n := c.session.shard[1]
	if n <= 1 {
		if c.ready {
			return c
		}
		return nil
	}
	c = g.byShard[ShardFor(guild, n)]
	if c == nil || !c.ready {
		return nil
	}
	return c
}

// ShardFor is the shard of num_shards that Discord sends guild's events
// to: (guild_id >> 22) % num_shards; DMs (guild "") go to shard 0.
func ShardFor(guild string, shards int) int {
	if guild == "" || shards <= 1 {
		return 0
	}
	id, err := strconv.ParseUint(guild, 10, 64)
	if err != nil {
		return 0
	}
	return int((id >> 22) % uint64(shards))
}

// frame builds a dispatch with the session's next sequence number and
// keeps it for resumes; g.mu is held.
func (s *session) frame(t string, d any) []byte {
	s.seq++
	b, _ := json.Marshal(map[string]any{"op": opDispatch, "t": t, "s": s.seq, "d": d})
	s.log = append(s.log, sent{seq: s.seq, data: b})
	if len(s.log) > 1000 {
		s.log = s.log[len(s.log)-1000:]
	}
	return b
}

// restamp gives a frame dispatched without a session a sequence number in
// this one; g.mu is held.
func (s *session) restamp(p []byte) []byte {
	var f struct {
		T string          `json:"t"`
		D json.RawMessage `json:"d"`
	}
	_ = json.Unmarshal(p, &f)
	return s.frame(f.T, f.D)
}

// dispatch sends an event to the client of the shard it routes to (or
// keeps it for the next one). user marks events a test triggered (for
// ReplayLast).
func (s *Server) dispatch(t string, d any, user bool) {
	g := &s.gw
	g.mu.Lock()
	guild := eventGuild(d)
	c := g.routeLocked(guild)
	if c == nil {
		b, _ := json.Marshal(map[string]any{"op": opDispatch, "t": t, "d": d})
		g.pending = append(g.pending, pendingEvent{guild: guild, data: b})
		g.mu.Unlock()
		return
	}
	// Written under the lock, so sequence numbers arrive in order.
	defer g.mu.Unlock()
	data := c.session.frame(t, d)
	if user {
		g.last, g.lastConn = data, c
		c.session.log[len(c.session.log)-1].id = eventID(d)
	}
	_ = c.write(data)
}

// eventGuild is the guild an event happened in ("" for DMs).
func eventGuild(d any) string {
	switch v := d.(type) {
	case Message:
		return v.GuildID
	case map[string]any:
		id, _ := v["guild_id"].(string)
		return id
	}
	return ""
}

// eventID is the id of the message or interaction an event carries.
func eventID(d any) string {
	switch v := d.(type) {
	case Message:
		return v.ID
	case map[string]any:
		id, _ := v["id"].(string)
		return id
	}
	return ""
}

// echo dispatches MESSAGE_CREATE for one of the bot's own messages, as
// Discord does (the bot must ignore it).
func (s *Server) echo(m Message) {
	if s.opts.NoEcho || m.Ephemeral() || m.Loading() {
		return
	}
	s.dispatch("MESSAGE_CREATE", m, false)
}
