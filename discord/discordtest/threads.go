package discordtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Threads (Discord's "Start Thread from Message"): POST
// /channels/{channel}/messages/{message}/threads with a 1-100 character
// name makes a public thread (type 11) whose id is the message's, owned
// by the caller, which becomes its first member; Discord dispatches
// THREAD_CREATE. A message can start one thread: a second request is
// refused with 400, code 160004. Forum channels, DMs and threads cannot
// start one (400, 50024 "Cannot execute action on this channel type").

// ThreadMetadata is a thread's state.
type ThreadMetadata struct {
	Archived            bool `json:"archived"`
	AutoArchiveDuration int  `json:"auto_archive_duration"`
	Locked              bool `json:"locked"`
}

func (s *Server) startThread(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name                string `json:"name"`
		AutoArchiveDuration int    `json:"auto_archive_duration"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		return
	}
	if n := utf8.RuneCountInString(body.Name); n < 1 || n > 100 || strings.TrimSpace(body.Name) == "" {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: name: Must be between 1 and 100 in length.")
		return
	}
	switch body.AutoArchiveDuration {
	case 0, 60, 1440, 4320, 10080:
	default:
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body: auto_archive_duration: Value must be one of {60, 1440, 4320, 10080}.")
		return
	}
	channel, message := r.PathValue("channel"), r.PathValue("message")
	s.mu.Lock()
	ch, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, 10003, "Unknown Channel")
		return
	}
	if ch.Type != ChannelText {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, 50024, "Cannot execute action on this channel type")
		return
	}
	m, ok := s.messages[message]
	if !ok || m.Deleted || m.ChannelID != channel {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, 10008, "Unknown Message")
		return
	}
	if _, exists := s.channels[message]; exists {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, 160004, "A thread has already been created for this message")
		return
	}
	if body.AutoArchiveDuration == 0 {
		body.AutoArchiveDuration = 4320
	}
	th := &Channel{
		ID: message, Type: ChannelThread, GuildID: ch.GuildID, ParentID: channel, Name: body.Name, OwnerID: s.Bot.ID,
		ThreadMetadata: &ThreadMetadata{AutoArchiveDuration: body.AutoArchiveDuration},
	}
	s.channels[th.ID] = th
	s.startedThreads = append(s.startedThreads, th.ID)
	out := *th
	s.mu.Unlock()
	s.dispatch("THREAD_CREATE", map[string]any{
		"id": out.ID, "type": out.Type, "guild_id": out.GuildID, "parent_id": out.ParentID, "name": out.Name,
		"owner_id": out.OwnerID, "thread_metadata": out.ThreadMetadata, "newly_created": true,
	}, false)
	writeJSON(w, http.StatusCreated, out)
}

// StartedThreads returns the threads the bot started, oldest first.
func (s *Server) StartedThreads() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.startedThreads))
	for _, id := range s.startedThreads {
		out = append(out, *s.channels[id])
	}
	return out
}

// Channel returns a channel as the fake keeps it.
func (s *Server) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return Channel{}, false
	}
	return *c, true
}
