package discordtest

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TB is the part of testing.TB the fake uses (a *testing.T is one): Fatalf
// ends a wait that timed out, Cleanup stops the server.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// WaitTimeout bounds every wait of the helpers: generous, so a slow machine
// under the race detector never fails a test that would pass.
var WaitTimeout = 20 * time.Second

// NewUser adds a person the fake knows (for mentions, DMs and interactions).
func (s *Server) NewUser(name string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := User{ID: s.snowflake(), Username: name, GlobalName: strings.ToUpper(name[:1]) + name[1:], Discriminator: "0"}
	s.users[u.ID] = u
	return u
}

// NewGuild adds a guild (with its @everyone role of plain member
// permissions and no owner among the test's users) and returns its id.
func (s *Server) NewGuild() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.snowflake()
	s.guildLocked(id)
	return id
}

// NewChannel adds a text channel to a guild and returns its id.
func (s *Server) NewChannel(guild string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.snowflake()
	s.channels[id] = &Channel{ID: id, Type: ChannelText, GuildID: guild, Name: "general"}
	return id
}

// NewThread adds a public thread under a channel and returns its id.
func (s *Server) NewThread(guild, parent string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.snowflake()
	s.channels[id] = &Channel{ID: id, Type: ChannelThread, GuildID: guild, ParentID: parent, Name: "thread"}
	return id
}

// DMChannel returns the id of the DM channel between the bot and a user.
func (s *Server) DMChannel(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmLocked(user).ID
}

// CloseDMs makes a user refuse DMs from the bot (403, code 50007).
func (s *Server) CloseDMs(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closedDMs[user] = true
}

// MessageOption changes a message a user sends.
type MessageOption func(*Message)

// ReplyingTo makes the message a reply to another one.
func ReplyingTo(id string) MessageOption {
	return func(m *Message) {
		m.Type = MessageReply
		m.MessageReference = &MessageReference{MessageID: id, ChannelID: m.ChannelID, GuildID: m.GuildID}
	}
}

// WithAttachment adds a file to the message.
func WithAttachment(a Attachment) MessageOption {
	return func(m *Message) { m.Attachments = append(m.Attachments, a) }
}

// Nick sets the sender's server nickname.
func Nick(nick string) MessageOption {
	return func(m *Message) {
		if m.Member != nil {
			m.Member.Nick = nick
		}
	}
}

var mentionRE = regexp.MustCompile(`<@!?(\d+)>`)

// Say sends a message from a user (MESSAGE_CREATE) and returns it as stored.
func (s *Server) Say(from User, channel, content string, opts ...MessageOption) Message {
	s.mu.Lock()
	ch, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		panic(fmt.Sprintf("discordtest: Say in unknown channel %s (use NewChannel, NewThread or DMChannel)", channel))
	}
	m := &Message{
		ID: s.snowflake(), Type: MessageDefault, ChannelID: channel, GuildID: ch.GuildID, Author: from, Content: content,
		Embeds: []Embed{}, Components: []Component{}, Attachments: []Attachment{}, Mentions: []User{}, MentionRoles: []string{},
		Timestamp: time.Now().UTC(),
	}
	if ch.GuildID != "" {
		m.Member = s.memberLocked(ch.GuildID, from, false)
	}
	for _, o := range opts {
		o(m)
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if a.ID == "" {
			a.ID = s.snowflake()
		}
		if a.URL == "" {
			a.URL = "https://cdn.discordapp.com/attachments/" + channel + "/" + a.ID + "/" + a.Filename
		}
	}
	for _, sm := range mentionRE.FindAllStringSubmatch(content, -1) {
		if u, ok := s.users[sm[1]]; ok {
			m.Mentions = append(m.Mentions, u)
		}
	}
	m.MentionEveryone = strings.Contains(content, "@everyone") || strings.Contains(content, "@here")
	s.storeLocked(m)
	out := s.wire(m)
	reachable := s.reachableLocked(ch)
	s.mu.Unlock()
	if reachable { // the bot gets no events of a server or group DM it is not in
		s.dispatch("MESSAGE_CREATE", out, true)
	}
	return out
}

// Mention sends "@bot text" from a user in a channel.
func (s *Server) Mention(from User, channel, text string, opts ...MessageOption) Message {
	return s.Say(from, channel, "<@"+s.Bot.ID+"> "+text, opts...)
}

// DM sends a direct message from a user to the bot.
func (s *Server) DM(from User, text string, opts ...MessageOption) Message {
	return s.Say(from, s.DMChannel(from.ID), text, opts...)
}

// Reply sends a reply (without a mention) to a message, in its channel.
func (s *Server) Reply(from User, to Message, text string, opts ...MessageOption) Message {
	return s.Say(from, to.ChannelID, text, append([]MessageOption{ReplyingTo(to.ID)}, opts...)...)
}

// RunCommand dispatches a slash command from a user (INTERACTION_CREATE,
// type 2) and returns the interaction.
func (s *Server) RunCommand(from User, channel, name string, opts ...Option) Interaction {
	return s.interact(from, channel, InteractionCommand, name, opts, nil)
}

// Autocomplete dispatches the autocomplete of a slash command option (the
// option with Focused set) and returns the interaction.
func (s *Server) Autocomplete(from User, channel, name string, opts ...Option) Interaction {
	return s.interact(from, channel, InteractionAutocomplete, name, opts, nil)
}

// ClickButton dispatches a button click on a message (INTERACTION_CREATE,
// type 3). The button must be on the message.
func (s *Server) ClickButton(from User, messageID, customID string) Interaction {
	s.mu.Lock()
	m, ok := s.messages[messageID]
	if !ok {
		s.mu.Unlock()
		panic("discordtest: ClickButton on unknown message " + messageID)
	}
	found := false
	for _, b := range m.Buttons() {
		found = found || b.CustomID == customID
	}
	if !found {
		s.mu.Unlock()
		panic(fmt.Sprintf("discordtest: message %s has no button %q", messageID, customID))
	}
	wire := s.wire(m)
	s.mu.Unlock()
	return s.interact(from, m.ChannelID, InteractionComponent, customID, nil, &wire)
}

func (s *Server) interact(from User, channel string, typ int, name string, opts []Option, msg *Message) Interaction {
	s.mu.Lock()
	ch, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		panic("discordtest: interaction in unknown channel " + channel)
	}
	in := &Interaction{
		ID: s.snowflake(), Token: randomToken(), Type: typ, ChannelID: channel, GuildID: ch.GuildID, User: from,
		Options: append([]Option(nil), opts...),
	}
	d := map[string]any{
		"id": in.ID, "application_id": s.AppID, "type": typ, "token": in.Token, "version": 1,
		"channel_id": channel, "locale": "en-US", "app_permissions": "0",
	}
	if ch.GuildID != "" {
		d["guild_id"] = ch.GuildID
		d["guild_locale"] = "en-US"
		d["member"] = s.memberLocked(ch.GuildID, from, true)
	} else {
		d["user"] = from
	}
	s.interactionContextLocked(d, in, ch, from)
	switch {
	case typ == InteractionComponent:
		in.CustomID, in.MessageID = name, msg.ID
		d["message"] = msg
		d["data"] = map[string]any{"custom_id": name, "component_type": 2}
	case msg != nil: // a message command
		in.Command, in.MessageID = name, msg.ID
		data := map[string]any{"id": s.commandID(ch.GuildID, name), "name": name, "type": CommandMessage, "target_id": msg.ID}
		if msg.ChannelID != "" {
			data["resolved"] = map[string]any{"messages": map[string]any{msg.ID: msg}}
		}
		d["data"] = data
	default:
		words := strings.Fields(name)
		in.Command = words[0]
		data := map[string]any{"id": s.commandID(ch.GuildID, words[0]), "name": words[0], "type": 1}
		if options, resolved := s.commandOptionsLocked(ch.GuildID, words, opts); options != nil {
			data["options"] = options
			if len(resolved) > 0 {
				data["resolved"] = resolved
			}
		}
		d["data"] = data
	}
	in.Created = time.Now()
	s.interactions[in.ID] = in
	s.tokens[in.Token] = in
	snapshot := *in
	s.mu.Unlock()
	s.dispatch("INTERACTION_CREATE", d, true)
	return snapshot
}

// commandOptionsLocked builds an interaction's data.options as Discord
// does from the registered command: words are the command and its
// subcommand path ("settings models allow"), each value typed as its
// registered option (a string when the command or option is unknown), and
// user, role and channel values resolved in data.resolved; s.mu is held.
func (s *Server) commandOptionsLocked(guildID string, words []string, opts []Option) ([]map[string]any, map[string]any) {
	var schema []ApplicationCommandOption
	for _, g := range []string{guildID, ""} {
		for _, c := range s.commands[g] {
			if c.Name == words[0] && schema == nil {
				schema = c.Options
			}
		}
	}
	for _, w := range words[1:] {
		found := false
		for _, o := range schema {
			if o.Name == w && (o.Type == OptionSubcommand || o.Type == OptionGroup) {
				schema, found = o.Options, true
				break
			}
		}
		if !found {
			panic(fmt.Sprintf("discordtest: %q has no registered subcommand or group %q", strings.Join(words, " "), w))
		}
	}
	resolved := map[string]any{}
	resolve := func(kind, id string, v any) {
		m, _ := resolved[kind].(map[string]any)
		if m == nil {
			m = map[string]any{}
			resolved[kind] = m
		}
		m[id] = v
	}
	var leaf []map[string]any
	for _, o := range opts {
		typ := OptionString
		for _, so := range schema {
			if so.Name == o.Name {
				typ = so.Type
			}
		}
		opt := map[string]any{"name": o.Name, "type": typ, "value": o.Value}
		switch typ {
		case OptionInteger, OptionNumber:
			if f, err := strconv.ParseFloat(o.Value, 64); err == nil {
				opt["value"] = f
			}
		case OptionBoolean:
			opt["value"] = o.Value == "true"
		case OptionChannel:
			if c, ok := s.channels[o.Value]; ok {
				resolve("channels", c.ID, map[string]any{"id": c.ID, "name": c.Name, "type": c.Type, "permissions": "0"})
			}
		case OptionUser, OptionMentionable:
			if u, ok := s.users[o.Value]; ok {
				resolve("users", u.ID, u)
				resolve("members", u.ID, s.memberLocked(guildID, u, true))
			} else if g := s.guilds[guildID]; g != nil && g.role(o.Value) != nil {
				resolve("roles", o.Value, *g.role(o.Value))
			}
		case OptionRole:
			if g := s.guilds[guildID]; g != nil && g.role(o.Value) != nil {
				resolve("roles", o.Value, *g.role(o.Value))
			}
		case OptionAttachment:
			if a, ok := s.picked[o.Value]; ok {
				resolve("attachments", a.ID, a)
			}
		}
		if o.Focused {
			opt["focused"] = true
		}
		leaf = append(leaf, opt)
	}
	out := leaf
	for i := len(words) - 1; i >= 1; i-- {
		typ := OptionSubcommand
		if i < len(words)-1 {
			typ = OptionGroup
		}
		wrap := map[string]any{"name": words[i], "type": typ}
		if out != nil {
			wrap["options"] = out
		}
		out = []map[string]any{wrap}
	}
	return out, resolved
}

// commandID is the registered command's id (or a fresh one); s.mu is held.
func (s *Server) commandID(guild, name string) string {
	for _, g := range []string{guild, ""} {
		for _, c := range s.commands[g] {
			if c.Name == name {
				return c.ID
			}
		}
	}
	return s.snowflake()
}

// ReplayLast sends the last event a test triggered again, with the same
// sequence number, as a gateway resume may replay it.
func (s *Server) ReplayLast() {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil || g.lastConn == nil {
		panic("discordtest: nothing to replay")
	}
	_ = g.lastConn.write(g.last)
}

// Redeliver sends the event that carried a message or an interaction (by
// its id) again, with its sequence number, as a gateway resume replays
// what the client may have missed. It reports whether the event was still
// in the session's replay log (the last 1,000 events).
func (s *Server) Redeliver(id string) bool {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		if c.session == nil || !c.ready {
			continue
		}
		log := c.session.log
		for i := len(log) - 1; i >= 0; i-- {
			if log[i].id == id {
				_ = c.write(log[i].data)
				return true
			}
		}
	}
	return false
}

// Reconnect asks the client to reconnect (op 7); it comes back with RESUME.
func (s *Server) Reconnect() {
	g := &s.gw
	g.mu.Lock()
	c := g.current
	g.mu.Unlock()
	if c != nil {
		_ = c.writeJSON(map[string]any{"op": opReconnect, "d": nil})
	}
}

// DropConnection closes the client's websocket without a word, as a
// network failure would; discordgo reconnects and resumes.
func (s *Server) DropConnection() {
	g := &s.gw
	g.mu.Lock()
	c := g.current
	if c != nil {
		c.ready = false
		g.current = nil
	}
	g.mu.Unlock()
	if c != nil {
		c.wmu.Lock()
		_ = c.ws.UnderlyingConn().Close()
		c.wmu.Unlock()
	}
}

// DropShard closes the websocket of the client serving shard (of a
// sharded bot) without a word, as a network failure would; it reports
// whether one was connected.
func (s *Server) DropShard(shard int) bool {
	g := &s.gw
	g.mu.Lock()
	c := g.byShard[shard]
	if c != nil {
		c.ready = false
		delete(g.byShard, shard)
		if g.current == c {
			g.current = nil
		}
	}
	g.mu.Unlock()
	if c == nil {
		return false
	}
	c.wmu.Lock()
	_ = c.ws.UnderlyingConn().Close()
	c.wmu.Unlock()
	return true
}

// ConnectedShards returns the shards that have a client receiving events,
// sorted, with the shard count they identified with (0 when none is
// connected).
func (s *Server) ConnectedShards() (shards []int, count int) {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, c := range g.byShard {
		if c.ready && c.session != nil {
			shards = append(shards, id)
			count = c.session.shard[1]
		}
	}
	sort.Ints(shards)
	return shards, count
}

// RefusedIdentifies returns the IDENTIFYs the gateway refused (Identify.Refused
// says why: a bad token or shard, or the identify rate limit).
func (s *Server) RefusedIdentifies() []Identify {
	var out []Identify
	for _, id := range s.Identifies() {
		if id.Refused != "" {
			out = append(out, id)
		}
	}
	return out
}

// Registrations counts the bulk overwrites of application commands
// (PUT /applications/{app}/commands, global or in a guild) that succeeded.
func (s *Server) Registrations() int {
	n := 0
	for _, r := range s.RequestsTo("PUT", "/applications/") {
		if r.Status == http.StatusOK && strings.HasSuffix(r.Path, "/commands") {
			n++
		}
	}
	return n
}

// ExpireInteraction makes an interaction's token invalid (as after 15
// minutes): webhook calls with it answer 401, code 50027.
func (s *Server) ExpireInteraction(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.interactions[id]; ok {
		in.Expired = true
	}
}

// Connected reports whether a client has identified (or resumed) and is
// receiving events.
func (s *Server) Connected() bool {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		if c.ready {
			return true
		}
	}
	return false
}

// Identifies returns every IDENTIFY the gateway received.
func (s *Server) Identifies() []Identify {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Identify(nil), g.identifies...)
}

// Resumes returns how many sessions were resumed.
func (s *Server) Resumes() int {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.resumes
}

// Heartbeats returns how many heartbeats the gateway answered.
func (s *Server) Heartbeats() int {
	g := &s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.heartbeats
}

// Message returns a message's current state.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return copyMessage(m), true
}

// Messages returns every message, oldest first (deleted ones included,
// marked Deleted).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, copyMessage(s.messages[id]))
	}
	return out
}

// BotMessages returns the bot's messages in a channel that are not deleted,
// oldest first, ephemeral ones included.
func (s *Server) BotMessages(channel string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.ChannelID == channel && m.Author.ID == s.Bot.ID && !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// Seen returns what a user sees of the bot's messages, oldest first: its
// public messages in the user's channels (the channels the user wrote or
// ran a command in, and the DM with the user), and the ephemeral messages
// answering the user's interactions. Deleted and "thinking…" messages are
// left out.
func (s *Server) Seen(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	chans := map[string]bool{}
	for _, id := range s.order {
		if m := s.messages[id]; m.Author.ID == user {
			chans[m.ChannelID] = true
		}
	}
	mine := map[string]bool{}
	for _, in := range s.interactions {
		if in.User.ID == user {
			chans[in.ChannelID] = true
			mine[in.ID] = true
		}
	}
	for _, c := range s.channels {
		if c.Type == ChannelDM && len(c.Recipients) == 1 && c.Recipients[0].ID == user {
			chans[c.ID] = true
		}
	}
	var out []Message
	for _, id := range s.order {
		m := s.messages[id]
		if m.Author.ID != s.Bot.ID || m.Deleted || m.Loading() || !chans[m.ChannelID] {
			continue
		}
		if m.Ephemeral() && !mine[m.Interaction] {
			continue
		}
		out = append(out, copyMessage(m))
	}
	return out
}

// Interaction returns an interaction's current state.
func (s *Server) Interaction(id string) (Interaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok {
		return Interaction{}, false
	}
	c := *in
	c.Options = append([]Option(nil), in.Options...)
	c.Choices = append([]Choice(nil), in.Choices...)
	c.Followups = append([]string(nil), in.Followups...)
	return c, true
}

// Responses returns the messages answering an interaction: the original
// response, then the follow-ups (neither deleted nor still "thinking…").
func (s *Server) Responses(id string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[id]
	if !ok {
		return nil
	}
	var out []Message
	for _, mid := range append([]string{in.Original}, in.Followups...) {
		if m, ok := s.messages[mid]; ok && !m.Deleted && !m.Loading() && (in.Type != InteractionComponent || mid != in.Original) {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Requests returns every REST request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestsTo returns the requests with a method (any when "") whose path
// starts with prefix.
func (s *Server) RequestsTo(method, prefix string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Commands returns the commands registered in a guild ("" for global) and
// whether any registration happened there.
func (s *Server) Commands(guild string) ([]ApplicationCommand, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmds, ok := s.commands[guild]
	return append([]ApplicationCommand(nil), cmds...), ok
}

// Typing returns how many typing indicators were sent to a channel.
func (s *Server) Typing(channel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.typing[channel]
}

// WaitFor polls cond until it holds, failing the test with what was awaited
// and a summary of the fake's state after WaitTimeout.
func (s *Server) WaitFor(tb TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("discordtest: timed out waiting for %s\n%s", what, s.Dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitConnected waits until a client is connected and receiving events.
func (s *Server) WaitConnected(tb TB) {
	tb.Helper()
	s.WaitFor(tb, "the bot to connect to the gateway", s.Connected)
}

// Dump summarizes the messages and the last requests, for failures.
func (s *Server) Dump() string {
	var b strings.Builder
	b.WriteString("messages:\n")
	for _, m := range s.Messages() {
		text := m.Text()
		if len(text) > 120 {
			text = text[:120] + "…"
		}
		fmt.Fprintf(&b, "  %s ch=%s author=%s flags=%d edits=%d deleted=%v buttons=%d footer=%q text=%q\n",
			m.ID, m.ChannelID, m.Author.Username, m.Flags, m.Edits, m.Deleted, len(m.Buttons()), m.Footer(), text)
	}
	reqs := s.Requests()
	if len(reqs) > 30 {
		reqs = reqs[len(reqs)-30:]
	}
	b.WriteString("last requests:\n")
	for _, r := range reqs {
		body := string(r.Body)
		if len(body) > 160 {
			body = body[:160] + "…"
		}
		fmt.Fprintf(&b, "  %s %s -> %d %s\n", r.Method, r.Path, r.Status, body)
	}
	return b.String()
}
