package discord

import (
	"context"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// Notify sends a user a direct message that no request asked for: the
// scheduler's "your free requests are back" notice. Like every message, it
// pings nobody.
func (a *Adapter) Notify(ctx context.Context, id bot.Identity, text string) error {
	user, ok := strings.CutPrefix(string(id), bot.PlatformDiscord+":")
	if !ok {
		return fmt.Errorf("discord: notify: %s is not a Discord user", id)
	}
	ch, err := a.dmChannel(ctx, user)
	if err != nil {
		return fmt.Errorf("discord: notify: open a DM: %w", a.redact(err))
	}
	_, err = a.api.ChannelMessageSendComplex(ch, &discordgo.MessageSend{
		Content:         text,
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
	}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: notify: %w", a.redact(err))
	}
	return nil
}

// NotifyChannel posts a notice in a channel of a server (a community's
// alerts channel), pinging nobody.
func (a *Adapter) NotifyChannel(ctx context.Context, community, channel, text string) error {
	if !strings.HasPrefix(community, bot.PlatformDiscord+":") {
		return fmt.Errorf("discord: notify channel: %s is not a Discord server", community)
	}
	_, err := a.api.ChannelMessageSendComplex(channel, &discordgo.MessageSend{
		Content:         text,
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}},
	}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: notify channel: %w", a.redact(err))
	}
	return nil
}
