package discordtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Permission bits the fake computes with (Discord's "Bitwise Permission
// Flags"): a member's permissions in a guild are its @everyone role's
// and its roles' OR-ed together, every bit for the owner or an
// Administrator.
const (
	PermAdministrator int64 = 1 << 3
	PermManageGuild   int64 = 1 << 5
	// PermAll is every permission, as Discord answers for the owner and
	// administrators.
	PermAll int64 = 1<<53 - 1
	// DefaultMemberPermissions are the @everyone role's permissions of a
	// new guild: what a plain member can do (view and send messages, read
	// history, use application commands…), no administration.
	DefaultMemberPermissions int64 = 2248473465835073
)

// Role is a guild role as the API writes it.
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Permissions string `json:"permissions"`
	Position    int    `json:"position"`
	Color       int    `json:"color"`
	Hoist       bool   `json:"hoist"`
	Managed     bool   `json:"managed"`
	Mentionable bool   `json:"mentionable"`
	Flags       int    `json:"flags"`
}

// Guild is a guild as GET /guilds/{id} writes it (the fields a bot reads).
type Guild struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	OwnerID string `json:"owner_id"`
	Roles   []Role `json:"roles"`
}

// guild is what the fake keeps of a guild: its roles and members.
type guild struct {
	Guild
	members map[string][]string // user id → role ids
}

func (g *guild) role(id string) *Role {
	for i := range g.Roles {
		if g.Roles[i].ID == id {
			return &g.Roles[i]
		}
	}
	return nil
}

// permissions computes a member's base permissions as Discord's
// compute_base_permissions does; s.mu is held.
func (g *guild) permissions(user string) int64 {
	if user == g.OwnerID {
		return PermAll
	}
	var p int64
	if r := g.role(g.ID); r != nil {
		p, _ = strconv.ParseInt(r.Permissions, 10, 64)
	}
	for _, id := range g.members[user] {
		if r := g.role(id); r != nil {
			v, _ := strconv.ParseInt(r.Permissions, 10, 64)
			p |= v
		}
	}
	if p&PermAdministrator != 0 {
		return PermAll
	}
	return p
}

// memberLocked is user's member object in guild g, permissions included
// when withPerms (the interaction's member); s.mu is held.
func (s *Server) memberLocked(guildID string, user User, withPerms bool) *Member {
	m := &Member{Roles: []string{}, JoinedAt: time.Now().UTC().Add(-time.Hour)}
	g := s.guilds[guildID]
	if g != nil {
		m.Roles = append(m.Roles, g.members[user.ID]...)
	}
	if withPerms {
		u := user
		m.User = &u
		p := DefaultMemberPermissions
		if g != nil {
			p = g.permissions(user.ID)
		}
		m.Permissions = strconv.FormatInt(p, 10)
	}
	return m
}

// guildLocked returns guild id, creating it (with its @everyone role and
// no owner) for a guild made before; s.mu is held.
func (s *Server) guildLocked(id string) *guild {
	g := s.guilds[id]
	if g == nil {
		g = &guild{Guild: Guild{ID: id, Name: "guild", OwnerID: "0", Roles: []Role{{
			ID: id, Name: "@everyone", Permissions: strconv.FormatInt(DefaultMemberPermissions, 10),
		}}}, members: map[string][]string{}}
		s.guilds[id] = g
	}
	return g
}

// NewRole adds a role with the given permissions to a guild and returns
// its id.
func (s *Server) NewRole(guildID, name string, permissions int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guildLocked(guildID)
	id := s.snowflake()
	g.Roles = append(g.Roles, Role{ID: id, Name: name, Permissions: strconv.FormatInt(permissions, 10), Position: len(g.Roles)})
	return id
}

// GiveRole gives a member of a guild a role.
func (s *Server) GiveRole(guildID, user, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guildLocked(guildID)
	if g.role(role) == nil {
		panic(fmt.Sprintf("discordtest: guild %s has no role %s", guildID, role))
	}
	if !slices.Contains(g.members[user], role) {
		g.members[user] = append(g.members[user], role)
	}
}

// SetOwner makes a user the guild's owner.
func (s *Server) SetOwner(guildID, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guildLocked(guildID).OwnerID = user
}

// Permissions returns a member's permissions in a guild, as the
// interaction's member.permissions carries them.
func (s *Server) Permissions(guildID, user string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guildLocked(guildID).permissions(user)
}

// getGuild answers GET /guilds/{guild}.
func (s *Server) getGuild(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[r.PathValue("guild")]
	if !ok {
		writeError(w, http.StatusNotFound, 10004, "Unknown Guild")
		return
	}
	writeJSON(w, http.StatusOK, g.Guild)
}

// getRoles answers GET /guilds/{guild}/roles.
func (s *Server) getRoles(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[r.PathValue("guild")]
	if !ok {
		writeError(w, http.StatusNotFound, 10004, "Unknown Guild")
		return
	}
	writeJSON(w, http.StatusOK, g.Roles)
}

// getMember answers GET /guilds/{guild}/members/{user}.
func (s *Server) getMember(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guilds[r.PathValue("guild")]
	u, known := s.users[r.PathValue("user")]
	if !ok || !known {
		writeError(w, http.StatusNotFound, 10007, "Unknown Member")
		return
	}
	m := s.memberLocked(g.ID, u, false)
	m.User = &u
	writeJSON(w, http.StatusOK, m)
}
