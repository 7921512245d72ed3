package slack

import (
	"context"
	"fmt"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// Notify sends a user a direct message that no request asked for: the
// scheduler's "your free requests are back" notice. Posting to a user id
// opens the DM with the bot; the text is escaped so it pings nobody.
func (a *Adapter) Notify(ctx context.Context, id bot.Identity, text string) error {
	parts := strings.Split(string(id), ":")
	if len(parts) != 3 || parts[0] != bot.PlatformSlack {
		return fmt.Errorf("slack: notify: %s is not a Slack user", id)
	}
	if _, _, err := a.api.PostMessageContext(ctx, parts[2], slackapi.MsgOptionText(Mrkdwn(text), false)); err != nil {
		return fmt.Errorf("slack: notify: %w", err)
	}
	return nil
}

// NotifyChannel posts a notice in a channel of the workspace (a
// community's alerts channel); the text is escaped so it pings nobody.
func (a *Adapter) NotifyChannel(ctx context.Context, community, channel, text string) error {
	if !strings.HasPrefix(community, bot.PlatformSlack+":") {
		return fmt.Errorf("slack: notify channel: %s is not a Slack workspace", community)
	}
	if _, _, err := a.api.PostMessageContext(ctx, channel, slackapi.MsgOptionText(Mrkdwn(text), false)); err != nil {
		return fmt.Errorf("slack: notify channel: %w", err)
	}
	return nil
}
