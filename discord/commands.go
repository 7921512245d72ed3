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
func ApplicationCommands(cmds []*bot.Command) []*discordgo.ApplicationCommand {
	admin := int64(discordgo.PermissionAdministrator)
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
			Options:     []*discordgo.ApplicationCommandOption{},
		}
		if c.Admin {
			ac.DefaultMemberPermissions = &admin
		}
		for _, o := range c.Options {
			opt := &discordgo.ApplicationCommandOption{
				Type: discordgo.ApplicationCommandOptionString, Name: commandName(o.Name),
				Description: describe(o.Description, o.Name), Required: o.Required, Autocomplete: o.Model,
			}
			// A fixed list (effort:, web:) is offered as Discord's choices.
			for _, v := range o.Choices {
				if len(opt.Choices) < MaxChoices && !o.Model {
					opt.Choices = append(opt.Choices, &discordgo.ApplicationCommandOptionChoice{Name: v, Value: v})
				}
			}
			ac.Options = append(ac.Options, opt)
		}
		sort.SliceStable(ac.Options, func(i, j int) bool { return ac.Options[i].Required && !ac.Options[j].Required })
		if len(ac.Options) > 25 {
			ac.Options = ac.Options[:25]
		}
		out = append(out, ac)
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
		if _, err := a.api.ApplicationCommandBulkOverwrite(appID, g, cmds, discordgo.WithContext(a.work)); err != nil {
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
		for _, o := range cmd.Options {
			if commandName(o.Name) == focused.Name && o.Model {
				text, _ := focused.Value.(string)
				choices = a.modelChoices(cmd.Name, text)
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

func (a *Adapter) modelChoices(command, text string) []*discordgo.ApplicationCommandOptionChoice {
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
