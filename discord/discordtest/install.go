package discordtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// User installs (Discord's "Installing your app to a user"): a member who
// installed the application to their account can run its commands in any
// server, in DMs with others and in group DMs, where the bot itself is not
// a member. Such an interaction carries context 0 (a server) or 2 (a
// private channel) and authorizing_integration_owners naming only the
// user installation ("1": the user's id); the bot may answer it through
// the interaction's webhook, but every bot call on the server or the
// channel is refused with 403, code 50001 "Missing Access".

// Interaction contexts (an interaction's "context", a command's "contexts").
const (
	ContextGuild          = 0
	ContextBotDM          = 1
	ContextPrivateChannel = 2
)

// Integration types (a command's "integration_types", the keys of an
// interaction's "authorizing_integration_owners").
const (
	GuildInstall = 0
	UserInstall  = 1
)

// ChannelGroupDM is a group DM (type 3).
const ChannelGroupDM = 3

// NewOutsideGuild adds a server the bot is not a member of (its members
// reach orchat through their user install) and returns its id. Channels
// are added to it with NewChannel; the bot receives none of their events.
func (s *Server) NewOutsideGuild() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.snowflake()
	s.guildLocked(id)
	s.outside[id] = true
	return id
}

// NewGroupDM adds a group DM between users (not the bot) and returns its id.
func (s *Server) NewGroupDM(users ...User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.snowflake()
	s.channels[id] = &Channel{ID: id, Type: ChannelGroupDM, Recipients: append([]User(nil), users...)}
	return id
}

// reachableLocked reports whether the bot can see a channel: not one of a
// server it is not in, nor a DM or group DM it is not part of; s.mu is
// held.
func (s *Server) reachableLocked(c *Channel) bool {
	if c.GuildID != "" {
		return !s.outside[c.GuildID]
	}
	return c.Type != ChannelGroupDM
}

// userInstalledLocked reports whether an interaction in channel c can only
// come from a user install; s.mu is held.
func (s *Server) userInstalledLocked(c *Channel) bool { return !s.reachableLocked(c) }

// refusedLocked answers 403 Missing Access for a bot call on a server or
// channel the bot cannot reach (path is from /api/v9 on); s.mu is held.
func (s *Server) refusedLocked(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 {
		return false
	}
	switch parts[0] {
	case "guilds":
		return s.outside[parts[1]]
	case "channels":
		c, ok := s.channels[parts[1]]
		return ok && !s.reachableLocked(c)
	}
	return false
}

// refuse writes Discord's Missing Access.
func refuse(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, 50001, "Missing Access")
}

// interactionContextLocked fills an interaction's context and
// authorizing_integration_owners as Discord does for channel c: a server
// that installed the bot ("0": the guild id), the bot's DM ("0": "0"), or
// else the member's own install ("1": the user id); s.mu is held.
func (s *Server) interactionContextLocked(d map[string]any, in *Interaction, c *Channel, from User) {
	owners := map[string]string{}
	switch {
	case s.userInstalledLocked(c):
		owners["1"] = from.ID
		in.Context = ContextGuild
		if c.GuildID == "" {
			in.Context = ContextPrivateChannel
		}
	case c.GuildID != "":
		owners["0"] = c.GuildID
		in.Context = ContextGuild
	default:
		owners["0"] = "0"
		in.Context = ContextBotDM
	}
	in.Owners = owners
	d["context"] = in.Context
	d["authorizing_integration_owners"] = owners
	if in.Context == ContextPrivateChannel {
		d["channel"] = map[string]any{"id": c.ID, "type": c.Type}
	}
}

// FileOption is a slash command's attachment option (type 11): the file
// as the member picked it, which the interaction carries in
// data.resolved.attachments. a may name any url (an upload from Upload is
// on the fake's CDN).
func (s *Server) FileOption(name string, a Attachment) Option {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.ID == "" {
		a.ID = s.snowflake()
	}
	s.picked[a.ID] = a
	return Option{Name: name, Value: a.ID}
}

// RunMessageCommand runs a message command (type 3, from a message's Apps
// menu) on a message: data.target_id names it and data.resolved.messages
// holds it as the member saw it. A message deleted meanwhile is not in
// resolved (as when it was deleted before Discord resolved it).
func (s *Server) RunMessageCommand(from User, messageID, name string) Interaction {
	s.mu.Lock()
	m, ok := s.messages[messageID]
	if !ok {
		s.mu.Unlock()
		panic("discordtest: RunMessageCommand on unknown message " + messageID)
	}
	wire := s.wire(m)
	deleted := m.Deleted
	channel := m.ChannelID
	s.mu.Unlock()
	if deleted {
		return s.interact(from, channel, InteractionCommand, name, nil, &Message{ID: messageID})
	}
	return s.interact(from, channel, InteractionCommand, name, nil, &wire)
}

// DeleteMessage deletes a user's message (as its author would).
func (s *Server) DeleteMessage(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.messages[id]; ok {
		m.Deleted = true
	}
}

// Snowflake returns a new id, for events a test writes itself.
func (s *Server) Snowflake() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snowflake()
}

// DispatchRaw sends an event a test wrote as Discord's JSON (the bad-input
// corpus): an INTERACTION_CREATE is recorded so its callback and webhook
// calls are answered (it needs an id and a token), a MESSAGE_CREATE is
// stored as a message of its channel. The JSON is sent as written.
func (s *Server) DispatchRaw(event string, d json.RawMessage) error {
	var fields map[string]any
	if err := json.Unmarshal(d, &fields); err != nil {
		return fmt.Errorf("discordtest: %s: %w", event, err)
	}
	switch event {
	case "INTERACTION_CREATE":
		var head struct {
			ID        string `json:"id"`
			Token     string `json:"token"`
			Type      int    `json:"type"`
			ChannelID string `json:"channel_id"`
			GuildID   string `json:"guild_id"`
		}
		if err := json.Unmarshal(d, &head); err != nil || head.ID == "" || head.Token == "" {
			return fmt.Errorf("discordtest: an interaction needs an id and a token (%v)", err)
		}
		s.mu.Lock()
		in := &Interaction{ID: head.ID, Token: head.Token, Type: head.Type, ChannelID: head.ChannelID, GuildID: head.GuildID, Created: time.Now()}
		s.interactions[in.ID] = in
		s.tokens[in.Token] = in
		s.mu.Unlock()
	case "MESSAGE_CREATE":
		var m Message
		if err := json.Unmarshal(d, &m); err != nil || m.ID == "" || m.ChannelID == "" {
			return fmt.Errorf("discordtest: a message needs an id and a channel_id (%v)", err)
		}
		s.mu.Lock()
		s.storeLocked(&m)
		s.mu.Unlock()
	}
	s.dispatch(event, fields, true)
	return nil
}
