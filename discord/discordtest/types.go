package discordtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// User is a Discord user as the API writes it.
type User struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	GlobalName    string `json:"global_name,omitempty"`
	Discriminator string `json:"discriminator"`
	Bot           bool   `json:"bot,omitempty"`
}

// Member is a user's membership of a guild (nickname, permissions).
type Member struct {
	User        *User     `json:"user,omitempty"`
	Nick        string    `json:"nick,omitempty"`
	Roles       []string  `json:"roles"`
	JoinedAt    time.Time `json:"joined_at"`
	Permissions string    `json:"permissions,omitempty"`
}

// Channel is a guild text channel (type 0), a DM (1) or a thread (11).
type Channel struct {
	ID         string `json:"id"`
	Type       int    `json:"type"`
	GuildID    string `json:"guild_id,omitempty"`
	Name       string `json:"name,omitempty"`
	ParentID   string `json:"parent_id,omitempty"`
	Recipients []User `json:"recipients,omitempty"`
	// OwnerID and ThreadMetadata are set for threads (threads.go).
	OwnerID        string          `json:"owner_id,omitempty"`
	ThreadMetadata *ThreadMetadata `json:"thread_metadata,omitempty"`
}

// Channel types.
const (
	ChannelText   = 0
	ChannelDM     = 1
	ChannelThread = 11
)

// Message flags.
const (
	FlagEphemeral = 1 << 6
	FlagLoading   = 1 << 7
)

// Embed is a rich embed.
type Embed struct {
	Type        string       `json:"type,omitempty"`
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	URL         string       `json:"url,omitempty"`
	Color       int          `json:"color,omitempty"`
	Footer      *EmbedFooter `json:"footer,omitempty"`
	Fields      []EmbedField `json:"fields,omitempty"`
	Author      *EmbedAuthor `json:"author,omitempty"`
}

// EmbedFooter is an embed's small print.
type EmbedFooter struct {
	Text string `json:"text"`
}

// EmbedField is a name/value pair in an embed.
type EmbedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// EmbedAuthor is an embed's author line.
type EmbedAuthor struct {
	Name string `json:"name"`
}

// Component is an action row (type 1) or a button (type 2).
type Component struct {
	Type       int         `json:"type"`
	Style      int         `json:"style,omitempty"`
	Label      string      `json:"label,omitempty"`
	CustomID   string      `json:"custom_id,omitempty"`
	URL        string      `json:"url,omitempty"`
	Disabled   bool        `json:"disabled,omitempty"`
	Components []Component `json:"components,omitempty"`
}

// AllowedMentions says whom a message may ping.
type AllowedMentions struct {
	Parse       []string `json:"parse"`
	Users       []string `json:"users,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	RepliedUser bool     `json:"replied_user"`
}

// MessageReference points a reply at the message it answers.
type MessageReference struct {
	Type            int    `json:"type,omitempty"`
	MessageID       string `json:"message_id"`
	ChannelID       string `json:"channel_id,omitempty"`
	GuildID         string `json:"guild_id,omitempty"`
	FailIfNotExists *bool  `json:"fail_if_not_exists,omitempty"`
}

// Attachment is a file on a message.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type,omitempty"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url,omitempty"`
}

// Message types.
const (
	MessageDefault = 0
	MessageReply   = 19
)

// Message is a message as the API writes it, plus what the fake keeps for
// tests (not on the wire): edits, the allowed mentions last sent, the
// interaction it answers, deletion.
type Message struct {
	ID                string            `json:"id"`
	Type              int               `json:"type"`
	ChannelID         string            `json:"channel_id"`
	GuildID           string            `json:"guild_id,omitempty"`
	Author            User              `json:"author"`
	Member            *Member           `json:"member,omitempty"`
	Content           string            `json:"content"`
	Embeds            []Embed           `json:"embeds"`
	Components        []Component       `json:"components"`
	Attachments       []Attachment      `json:"attachments"`
	Mentions          []User            `json:"mentions"`
	MentionRoles      []string          `json:"mention_roles"`
	MentionEveryone   bool              `json:"mention_everyone"`
	Flags             int               `json:"flags"`
	Timestamp         time.Time         `json:"timestamp"`
	EditedTimestamp   *time.Time        `json:"edited_timestamp"`
	MessageReference  *MessageReference `json:"message_reference,omitempty"`
	ReferencedMessage *Message          `json:"referenced_message,omitempty"`
	WebhookID         string            `json:"webhook_id,omitempty"`
	ApplicationID     string            `json:"application_id,omitempty"`

	Edits           int              `json:"-"`
	AllowedMentions *AllowedMentions `json:"-"`
	Interaction     string           `json:"-"` // the interaction this message answers
	Deleted         bool             `json:"-"`
}

// Ephemeral reports whether only the interaction's user sees the message.
func (m Message) Ephemeral() bool { return m.Flags&FlagEphemeral != 0 }

// Loading reports whether the message is a deferred "thinking…" response.
func (m Message) Loading() bool { return m.Flags&FlagLoading != 0 }

// Text is the message's content and embed descriptions, joined by blank
// lines: what a reader sees as the body.
func (m Message) Text() string {
	var parts []string
	if m.Content != "" {
		parts = append(parts, m.Content)
	}
	for _, e := range m.Embeds {
		if e.Description != "" {
			parts = append(parts, e.Description)
		}
	}
	return strings.Join(parts, "\n\n")
}

// Footer is the first embed footer's text.
func (m Message) Footer() string {
	for _, e := range m.Embeds {
		if e.Footer != nil && e.Footer.Text != "" {
			return e.Footer.Text
		}
	}
	return ""
}

// Buttons returns the message's buttons, in order.
func (m Message) Buttons() []Component {
	var out []Component
	var walk func([]Component)
	walk = func(cs []Component) {
		for _, c := range cs {
			if c.Type == 2 {
				out = append(out, c)
			}
			walk(c.Components)
		}
	}
	walk(m.Components)
	return out
}

// Interaction types.
const (
	InteractionCommand      = 2
	InteractionComponent    = 3
	InteractionAutocomplete = 4
)

// Interaction callback types.
const (
	CallbackMessage            = 4
	CallbackDeferredMessage    = 5
	CallbackDeferredUpdate     = 6
	CallbackUpdateMessage      = 7
	CallbackAutocompleteResult = 8
)

// Option is one slash command option as a user filled it in.
type Option struct {
	Name    string
	Value   string
	Focused bool
}

// Choice is one autocomplete suggestion.
type Choice struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Interaction is one interaction the fake dispatched and what the bot did
// with it.
type Interaction struct {
	ID        string
	Token     string
	Type      int
	ChannelID string
	GuildID   string
	User      User
	Command   string
	Options   []Option
	CustomID  string
	MessageID string // the button's message (components), the target of a message command
	// Context is where it happened (ContextGuild, ContextBotDM,
	// ContextPrivateChannel); Owners its authorizing_integration_owners
	// ("0": the installing guild, "1": the installing user).
	Context int
	Owners  map[string]string
	// Created is when INTERACTION_CREATE was dispatched: the callback must
	// come within Options.AckWindow of it.
	Created time.Time

	// Callbacks counts the callback requests; the first one is the response.
	Callbacks     int
	ResponseType  int
	ResponseFlags int
	ResponseAt    time.Time
	Choices       []Choice
	// Original is the id of the original response message (for a deferred
	// update, the button's message).
	Original  string
	Followups []string
	Expired   bool
}

// ApplicationCommand is a registered slash command.
type ApplicationCommand struct {
	ID                       string                     `json:"id,omitempty"`
	ApplicationID            string                     `json:"application_id,omitempty"`
	GuildID                  string                     `json:"guild_id,omitempty"`
	Type                     int                        `json:"type,omitempty"`
	Name                     string                     `json:"name"`
	Description              string                     `json:"description"`
	DefaultMemberPermissions *string                    `json:"default_member_permissions,omitempty"`
	Options                  []ApplicationCommandOption `json:"options,omitempty"`
	// IntegrationTypes are the installations the command is offered in
	// (GuildInstall, UserInstall); Contexts where it may be used
	// (ContextGuild, ContextBotDM, ContextPrivateChannel).
	IntegrationTypes []int `json:"integration_types,omitempty"`
	Contexts         []int `json:"contexts,omitempty"`
}

// Application command types.
const (
	CommandChat    = 1
	CommandUser    = 2
	CommandMessage = 3
)

// ApplicationCommandOption is one option of a registered command: a
// value, or a subcommand (type 1) or group (type 2) with options of its
// own.
type ApplicationCommandOption struct {
	Type         int                        `json:"type"`
	Name         string                     `json:"name"`
	Description  string                     `json:"description"`
	Required     bool                       `json:"required"`
	Autocomplete bool                       `json:"autocomplete"`
	ChannelTypes []int                      `json:"channel_types,omitempty"`
	Options      []ApplicationCommandOption `json:"options,omitempty"`
	// Choices are the fixed values offered (at most 25).
	Choices []Choice `json:"choices,omitempty"`
}

// Application command option types.
const (
	OptionSubcommand  = 1
	OptionGroup       = 2
	OptionString      = 3
	OptionInteger     = 4
	OptionBoolean     = 5
	OptionUser        = 6
	OptionChannel     = 7
	OptionRole        = 8
	OptionMentionable = 9
	OptionNumber      = 10
	OptionAttachment  = 11
)

// Identify is what a gateway client sent to open a session.
type Identify struct {
	Intents int     `json:"intents"`
	Shard   *[2]int `json:"shard,omitempty"`
	// TokenOK reports whether the token matched.
	TokenOK bool `json:"-"`
	// Time is when the gateway received it.
	Time time.Time `json:"-"`
	// Refused says why the gateway refused it ("" when it sent READY):
	// a bad token, a disallowed intent, an invalid shard, sharding
	// required, or the identify rate limit of its bucket.
	Refused string `json:"-"`
}

// Request is one REST request the fake received.
type Request struct {
	Method string
	// Path is the URL path from /api/v9 on, e.g. /channels/1/messages.
	Path   string
	Query  url.Values
	Header http.Header
	Body   json.RawMessage
	Time   time.Time
	Status int
}

// Decode unmarshals the request's JSON body into v.
func (r Request) Decode(v any) error { return json.Unmarshal(r.Body, v) }

// Fields returns the request's JSON body as a map (nil when it is not an
// object).
func (r Request) Fields() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil
	}
	return m
}
