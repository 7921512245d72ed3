package discord

import (
	"context"
	"sort"
	"strings"
	"unicode"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// MaxChoices is the most autocomplete suggestions Discord shows.
const MaxChoices = 25

// commandName is a command's name as Discord allows it: 1-32 lowercase
// letters, digits, '-' or '_'.
func commandName(name string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToLower(name) {
		if (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') && n < 32 {
			b.WriteRune(r)
			n++
		}
	}
	s := b.String()
	if s == "" {
		s = "command"
	}
	return s
}

// ApplicationCommands returns the slash commands for cmds: string options
// (required first, as Discord demands), autocomplete on model options, and
// admin commands visible by default to administrators only.
// Commands with subcommands register them as Discord's subcommands (type
// 1) and groups (type 2), one level deep; channel options are channel
// pickers and "who" options mentionables. Community admin commands are
// shown by default to members with Manage Server (the engine still checks
// who runs the community).
//
// Every command but a community admin's is registered for both
// installations (a server's, integration type 0, and a member's own, 1)
// and every context (a server, the bot's DM, other DMs and group DMs), so a
// member who installed orchat can use it where the bot is not a member;
// a community admin command runs a server, so it stays in servers that
// installed the bot. /ask and /compare also appear in a message's Apps
// menu (message commands, type 3: MessageCommands).
func ApplicationCommands(cmds []*bot.Command) []*discordgo.ApplicationCommand {
	admin := int64(discordgo.PermissionAdministrator)
	manage := int64(discordgo.PermissionManageGuild)
	var out []*discordgo.ApplicationCommand
	seen := map[string]bool{}
	for _, c := range cmds {
		name := commandName(c.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		ac := &discordgo.ApplicationCommand{
			Type: discordgo.ChatApplicationCommand, Name: name,
			Description: describe(c.Summary, c.Name),
			Options:     valueOptions(c.Options),
		}
		everywhere(ac, !c.CommunityAdmin)
		switch {
		case c.Admin:
			ac.DefaultMemberPermissions = &admin
		case c.CommunityAdmin:
			ac.DefaultMemberPermissions = &manage
		}
		if len(c.Subcommands) > 0 {
			ac.Options = subcommandOptions(c.Subcommands)
		}
		out = append(out, ac)
	}
	for _, mc := range MessageCommands {
		if !seen[mc.Command] {
			continue
		}
		ac := &discordgo.ApplicationCommand{Type: discordgo.MessageApplicationCommand, Name: mc.Name}
		everywhere(ac, true)
		out = append(out, ac)
	}
	return out
}

// everywhere sets where a command may be used: with user, in every
// installation and context; else in servers that installed the bot only.
func everywhere(ac *discordgo.ApplicationCommand, user bool) {
	types := []discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall}
	contexts := []discordgo.InteractionContextType{discordgo.InteractionContextGuild}
	if user {
		types = append(types, discordgo.ApplicationIntegrationUserInstall)
		contexts = append(contexts, discordgo.InteractionContextBotDM, discordgo.InteractionContextPrivateChannel)
	}
	ac.IntegrationTypes, ac.Contexts = &types, &contexts
}

// guildScoped are cmds as a guild registers them: integration types and
// contexts are for global commands only (Discord's application command
// object), a guild's commands live in that guild.
func guildScoped(cmds []*discordgo.ApplicationCommand) []*discordgo.ApplicationCommand {
	out := make([]*discordgo.ApplicationCommand, len(cmds))
	for i, c := range cmds {
		cc := *c
		cc.IntegrationTypes, cc.Contexts = nil, nil
		out[i] = &cc
	}
	return out
}

// MessageCommand is an entry of a message's Apps menu: the command it
// runs with the message as its prompt.
type MessageCommand struct {
	Name    string // as Discord shows it (message commands may have spaces and capitals)
	Command string // the bot command it runs
}

// MessageCommands are the Apps menu entries: "Ask orchat" answers the
// message, "Compare models" compares the community's (else the default)
// compare models on it.
var MessageCommands = []MessageCommand{
	{Name: "Ask orchat", Command: "ask"},
	{Name: "Compare models", Command: "compare"},
}

// messageCommand returns the bot command a message command's name runs.
func messageCommand(name string) (string, bool) {
	for _, mc := range MessageCommands {
		if mc.Name == name {
			return mc.Command, true
		}
	}
	return "", false
}

// subcommandOptions are subcommands and groups as Discord registers them.
func subcommandOptions(subs []bot.Subcommand) []*discordgo.ApplicationCommandOption {
	out := []*discordgo.ApplicationCommandOption{}
	for _, sc := range subs {
		o := &discordgo.ApplicationCommandOption{Name: commandName(sc.Name), Description: describe(sc.Description, sc.Name)}
		if len(sc.Subcommands) > 0 {
			o.Type = discordgo.ApplicationCommandOptionSubCommandGroup
			o.Options = subcommandOptions(sc.Subcommands)
		} else {
			o.Type = discordgo.ApplicationCommandOptionSubCommand
			o.Options = valueOptions(sc.Options)
		}
		out = append(out, o)
	}
	if len(out) > 25 {
		out = out[:25]
	}
	return out
}

// valueOptions are a command's options: text, with autocomplete for model
// ids, or a channel or mentionable picker; required ones first, as Discord
// demands.
func valueOptions(opts []bot.Option) []*discordgo.ApplicationCommandOption {
	out := []*discordgo.ApplicationCommandOption{}
	for _, o := range opts {
		ao := &discordgo.ApplicationCommandOption{
			Type: discordgo.ApplicationCommandOptionString, Name: commandName(o.Name),
			Description: describe(o.Description, o.Name), Required: o.Required, Autocomplete: o.Model,
		}
		// A fixed list (effort:, web:, on|off) is offered as Discord's choices.
		for _, v := range o.Choices {
			if len(ao.Choices) < MaxChoices && !o.Model {
				ao.Choices = append(ao.Choices, &discordgo.ApplicationCommandOptionChoice{Name: v, Value: v})
			}
		}
		switch o.Kind {
		case bot.OptionChannel:
			ao.Type, ao.Autocomplete = discordgo.ApplicationCommandOptionChannel, false
			ao.ChannelTypes = []discordgo.ChannelType{discordgo.ChannelTypeGuildText, discordgo.ChannelTypeGuildNews,
				discordgo.ChannelTypeGuildPublicThread, discordgo.ChannelTypeGuildPrivateThread, discordgo.ChannelTypeGuildForum}
		case bot.OptionMentionable:
			ao.Type, ao.Autocomplete = discordgo.ApplicationCommandOptionMentionable, false
		case bot.OptionFile:
			ao.Type, ao.Autocomplete, ao.Choices = discordgo.ApplicationCommandOptionAttachment, false, nil
		}
		out = append(out, ao)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Required && !out[j].Required })
	if len(out) > 25 {
		out = out[:25]
	}
	return out
}

// describe is a 1-100 character description.
func describe(s, fallback string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		s = fallback
	}
	if len([]rune(s)) > 100 {
		s = bot.Clip(s, 100)
	}
	return s
}

// register overwrites the application's commands in one call: in each dev
// guild, or globally.
func (a *Adapter) register(appID string) {
	if appID == "" {
		a.log.Warn("cannot register slash commands: READY carried no application id")
		return
	}
	cmds := ApplicationCommands(a.opts.Commands)
	guilds := a.opts.DevGuilds
	if len(guilds) == 0 {
		guilds = []string{""}
	}
	ok := true
	for _, g := range guilds {
		list := cmds
		if g != "" {
			list = guildScoped(cmds)
		}
		if _, err := a.api.ApplicationCommandBulkOverwrite(appID, g, list, discordgo.WithContext(a.work)); err != nil {
			ok = false
			a.log.Error("registering slash commands failed", "guild", g, "err", a.redact(err))
			continue
		}
		a.log.Info("slash commands registered", "guild", g, "commands", len(cmds))
	}
	if ok {
		a.registered.Store(true)
	}
}

// autocomplete answers a model option with catalog matches: up to 25, free
// models marked, the id as value.
func (a *Adapter) autocomplete(ctx context.Context, i *discordgo.Interaction) {
	data := i.ApplicationCommandData()
	focused := focusedOption(data.Options)
	var choices []*discordgo.ApplicationCommandOptionChoice
	if cmd := a.commands[data.Name]; cmd != nil && focused != nil {
		opts := cmd.Options
		if path, _ := subcommandPath(data.Options); path != "" {
			if sub, ok := cmd.Find(path); ok {
				opts = sub.Options
			}
		}
		for _, o := range opts {
			if commandName(o.Name) == focused.Name && o.Model {
				text, _ := focused.Value.(string)
				choices = a.modelChoices(ctx, cmd.Name, text, a.policy(ctx, i))
				break
			}
		}
	}
	resp := &discordgo.InteractionResponse{
		Type: discordgo.InteractionApplicationCommandAutocompleteResult,
		Data: &discordgo.InteractionResponseData{Choices: choices},
	}
	if err := a.respond(ctx, i, resp); err != nil {
		a.log.Debug("autocomplete answer failed", "err", a.redactInteraction(err, i))
	}
}

// policy is the model rules in force where an interaction happened (nil:
// none, or no Rules given).
func (a *Adapter) policy(ctx context.Context, i *discordgo.Interaction) *bot.ModelPolicy {
	if a.opts.Rules == nil || i.GuildID == "" || userInstalled(i) {
		return nil
	}
	p, err := a.opts.Rules.ModelPolicy(ctx, community(i.GuildID), i.ChannelID)
	if err != nil {
		a.log.Warn("read the model rules for autocomplete; offering every model", "err", err)
		return nil
	}
	return p
}

// modelChoices offers the catalog's models matching text that the rules
// in force allow.
func (a *Adapter) modelChoices(_ context.Context, command, text string, policy *bot.ModelPolicy) []*discordgo.ApplicationCommandOptionChoice {
	text = strings.TrimSpace(text)
	var out []*discordgo.ApplicationCommandOptionChoice
	if command != "compare" && strings.HasPrefix("auto", strings.ToLower(text)) {
		out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: "auto — pick a model for each prompt", Value: "auto"})
	}
	if a.opts.Catalog == nil {
		return out
	}
	// The catalog also matches descriptions ("gemini" finds a router that
	// mentions it); when ids or names hold the text, only those are offered.
	found := a.opts.Catalog.Search(bot.ModelQuery{Text: text, Limit: 100})
	lower := strings.ToLower(text)
	var byName []bot.Model
	for _, m := range found {
		if named(m, lower) {
			byName = append(byName, m)
		}
	}
	if len(byName) > 0 {
		found = byName
	}
	for _, m := range found {
		if len(out) == MaxChoices {
			break
		}
		if len(m.ID) > 100 {
			continue // a value Discord cannot carry
		}
		if ok, _ := policy.Permits(m); !ok {
			continue
		}
		out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: choiceName(m), Value: m.ID})
	}
	return out
}

// choiceName is "id — Name", with " (free)" for free models, in at most
// 100 characters.
func choiceName(m bot.Model) string {
	suffix := ""
	if m.Free() {
		suffix = " (free)"
	}
	name := m.ID
	if m.Name != "" && !strings.EqualFold(m.Name, m.ID) {
		name += " — " + m.Name
	}
	return bot.Clip(name, 100-len([]rune(suffix))) + suffix
}

func focusedOption(opts []*discordgo.ApplicationCommandInteractionDataOption) *discordgo.ApplicationCommandInteractionDataOption {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if o.Focused {
			return o
		}
		if f := focusedOption(o.Options); f != nil {
			return f
		}
	}
	return nil
}

func named(m bot.Model, lower string) bool {
	return strings.Contains(strings.ToLower(m.ID), lower) || strings.Contains(strings.ToLower(m.Name), lower)
}
