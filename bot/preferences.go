package bot

import "context"

// Preferences stores per-user settings (metadata only, never message text).
type Preferences interface {
	// DefaultModel returns the user's chosen model, or "" for auto.
	DefaultModel(ctx context.Context, id Identity) (string, error)
	// SetDefaultModel sets the user's model; "" means auto.
	SetDefaultModel(ctx context.Context, id Identity, model string) error
}
