package discordtest

import (
	"encoding/json"
	"net/http"
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
	current    *conn // the last client that became ready
	pending    [][]byte
	identifies []Identify
	resumes    int
	heartbeats int
	last       []byte // the last event a test dispatched, as sent
}

// session is a gateway session: its sequence and the events sent in it.
type session struct {
	id  string
	seq int64
	log []sent
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
}

func (g *gateway) init() {
	g.sessions = map[string]*session{}
	g.conns = map[*conn]bool{}
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

// identify opens a new session and sends READY.
func (s *Server) identify(c *conn, d json.RawMessage) bool {
	var id struct {
		Token   string  `json:"token"`
		Intents int     `json:"intents"`
		Shard   *[2]int `json:"shard"`
	}
	_ = json.Unmarshal(d, &id)
	ok := s.tokenOK(id.Token)
	g := &s.gw
	g.mu.Lock()
	g.identifies = append(g.identifies, Identify{Intents: id.Intents, Shard: id.Shard, TokenOK: ok})
	g.mu.Unlock()
	if !ok {
		c.closeWith(4004, "Authentication failed.")
		return false
	}
	if id.Intents&s.opts.DisallowedIntents != 0 {
		c.closeWith(4014, "Disallowed intent(s).")
		return false
	}
	s.mu.Lock()
	sess := &session{id: s.snowflake()}
	s.mu.Unlock()
	shard := [2]int{0, 1}
	if id.Shard != nil {
		shard = *id.Shard
	}
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

// becomeReady makes c the connection dispatches go to, and sends what was
// dispatched while no client was connected.
func (s *Server) becomeReady(c *conn) {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	c.ready = true
	g.current = c
	pending := g.pending
	g.pending = nil
	for _, p := range pending {
		_ = c.write(c.session.restamp(p))
	}
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

// dispatch sends an event to the connected client (or keeps it for the
// next one). user marks events a test triggered (for ReplayLast).
func (s *Server) dispatch(t string, d any, user bool) {
	g := &s.gw
	g.mu.Lock()
	c := g.current
	if c == nil || !c.ready {
		b, _ := json.Marshal(map[string]any{"op": opDispatch, "t": t, "d": d})
		g.pending = append(g.pending, b)
		g.mu.Unlock()
		return
	}
	// Written under the lock, so sequence numbers arrive in order.
	defer g.mu.Unlock()
	data := c.session.frame(t, d)
	if user {
		g.last = data
		c.session.log[len(c.session.log)-1].id = eventID(d)
	}
	_ = c.write(data)
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
