package bot

import (
	"context"
	"time"
)

// Event is one thing a user did on a platform that the bot should answer: a
// mention, a DM, a slash command, a button click. Adapters build it; the
// Engine handles it.
type Event struct {
	// ID is the platform's id for this event (message id, interaction id,
	// Slack event id), prefixed by the platform. Redeliveries carry the same
	// id, so the engine answers each id once and admin commands use it as
	// their idempotency key.
	ID       string
	Platform string
	Identity Identity
	// UserName is the display name, for the system prompt's {user}.
	UserName string
	// Community is where votes and leaderboards are counted:
	// "discord:<guild id>", "slack:<team id>" or "console".
	Community string
	Channel   string
	// ParentChannel is the channel a thread belongs to (Discord threads
	// are channels of their own); "" when Channel is no thread. Settings
	// for a channel apply to its threads.
	ParentChannel string
	// Text is the message text with the bot's mention removed, or the raw
	// text of a slash command typed as a message ("/balance").
	Text string
	// Command and Options are set for native slash commands and buttons:
	// the command name without "/" and its options by name.
	Command string
	Options map[string]string
	// Subcommand is a native slash command's subcommand path, its group
	// first ("models allow"); typed commands name it in Text.
	Subcommand string
	// Roles are the user's roles in the community (Discord role ids), for
	// the community's admins by role.
	Roles []string
	// ManagesCommunity reports whether the platform says the user manages
	// the community (Discord: Manage Server or Administrator; Slack: a
	// workspace admin or owner); nil means it does not. It may call the
	// platform, so the engine asks only when a command needs an admin.
	ManagesCommunity func(ctx context.Context) (bool, error)
	// Direct is true in a DM.
	Direct      bool
	Attachments []Attachment
	// History reads the conversation this event continues (reply chain,
	// thread); nil when there is none.
	History History
	// Context is what the member has in view, told to the model under the
	// system prompt: the channel they are looking at beside the app's DM
	// (Slack's app_context_changed), the message a shortcut was run on.
	// The adapter reads it from the platform; it is never stored.
	Context string
	Time    time.Time
}

// SettingsChannel is the channel whose settings apply to the event: a
// thread's parent, else its own.
func (ev Event) SettingsChannel() string {
	if ev.ParentChannel != "" {
		return ev.ParentChannel
	}
	return ev.Channel
}

// Attachment is a file a user sent with a message.
type Attachment struct {
	Name        string
	ContentType string
	Size        int64
	URL         string
	// Fetch downloads at most max bytes of the file, from where the
	// platform keeps it and nowhere else (Discord's attachment hosts,
	// Slack with the bot token, a local file in the console). Its errors
	// are sentences for the user. Without it the file is left out: the
	// commands never download an address an event names by themselves.
	Fetch func(ctx context.Context, max int64) ([]byte, error)
}

// Turn is one earlier message of a conversation, read back from the platform.
type Turn struct {
	Role        string // RoleUser or RoleAssistant (the bot's own messages)
	Author      string
	Text        string // footers stripped
	Attachments []Attachment
}

// HistoryLimit bounds what an adapter reads back.
type HistoryLimit struct {
	Messages int // at most this many turns
	Chars    int // at most this many characters in all
}

// History reads earlier turns of a conversation from the platform, oldest
// first, never including the event's own message. Message text is never
// stored by the bot: it is read back when needed.
type History interface {
	Turns(ctx context.Context, limit HistoryLimit) ([]Turn, error)
}

// HistoryFunc adapts a function to History.
type HistoryFunc func(ctx context.Context, limit HistoryLimit) ([]Turn, error)

// Turns calls f.
func (f HistoryFunc) Turns(ctx context.Context, limit HistoryLimit) ([]Turn, error) {
	return f(ctx, limit)
}

// Handler answers events; the Engine is one. Adapters depend on this, not
// on the Engine, so their tests can hand them any handler.
type Handler interface {
	Handle(ctx context.Context, ev Event, out Output) error
}

var _ Handler = (*Engine)(nil)
