package commands

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/orchat/orchat/bot"
)

// channelOption scopes a setting to one channel.
var channelOption = bot.Option{Name: "channel", Description: "Only in this channel (default: everywhere here)", Kind: bot.OptionChannel}

func (s *set) settings() *bot.Command {
	list := func(desc string) bot.Option {
		return bot.Option{Name: "list", Description: desc, Required: true, Rest: true}
	}
	tokens := func(desc string) bot.Option { return bot.Option{Name: "tokens", Description: desc, Required: true} }
	state := bot.Option{Name: "state", Description: "on or off", Required: true, Choices: []string{"on", "off"}}
	return &bot.Command{
		Name:           "settings",
		Usage:          "settings show|persona|model|models|compare|budget|allowance|channels|admins|alerts|routing|threads|pool|history …",
		Summary:        "Run orchat here: persona, models, compare, budgets, allowances, channels, alerts (community admins).",
		CommunityAdmin: true, Private: true,
		Subcommands: []bot.Subcommand{
			{Name: "show", Description: "Every setting in force here and where it comes from", Options: []bot.Option{channelOption}},
			{Name: "persona", Description: "The system prompt", Default: "set", Subcommands: []bot.Subcommand{
				{Name: "set", Description: "Set the persona ({date} {time} {platform} {community} {user} are filled in)", Options: []bot.Option{
					{Name: "text", Description: "The system prompt", Required: true, Rest: true}, channelOption}},
				{Name: "clear", Description: "Back to the default persona", Options: []bot.Option{channelOption}},
			}},
			{Name: "model", Description: "The default model here (a member's own /model still wins)", Options: []bot.Option{
				{Name: "id", Description: "A model id, or auto", Required: true, Model: true}, channelOption}},
			{Name: "models", Description: "Which models members may use here", Subcommands: []bot.Subcommand{
				{Name: "allow", Description: "Allow only these (ids, patterns like anthropic/*, :free, tiers), or clear", Options: []bot.Option{list("Models, patterns, :free or tiers; clear for all"), channelOption}},
				{Name: "deny", Description: "Refuse these (ids, patterns, :free, tiers), or clear", Options: []bot.Option{list("Models, patterns, :free or tiers; clear for none"), channelOption}},
				{Name: "max-price", Description: "Refuse models dearer than this, in USD per million tokens (or off)", Options: []bot.Option{
					{Name: "usd", Description: "USD per million tokens, such as 2; off for no limit", Required: true}, channelOption}},
			}},
			{Name: "compare", Description: "The compare defaults here", Subcommands: []bot.Subcommand{
				{Name: "models", Description: "The default compare set (2-4 models), or clear", Options: []bot.Option{list("2-4 model ids, or clear"), channelOption}},
				{Name: "blind", Description: "Hide the models until each member votes", Options: []bot.Option{state, channelOption}},
			}},
			{Name: "budget", Description: "The most spent per day here, in tokens", Subcommands: []bot.Subcommand{
				{Name: "daily", Description: "For everyone here together (or off)", Options: []bot.Option{tokens("Tokens a day, or off")}},
				{Name: "member-daily", Description: "For each member (or off)", Options: []bot.Option{tokens("Tokens a day per member, or off")}},
			}},
			{Name: "allowance", Description: "Refill every member up to N tokens every period, from the pool", Options: []bot.Option{
				{Name: "rule", Description: "AMOUNT every PERIOD (1000 every 7d), or off", Required: true, Rest: true}}},
			{Name: "channels", Description: "Where the bot answers mentions", Subcommands: []bot.Subcommand{
				{Name: "only", Description: "Only in these channels", Options: []bot.Option{list("Channels (#general #help)")}},
				{Name: "except", Description: "Everywhere but these channels", Options: []bot.Option{list("Channels (#random)")}},
				{Name: "all", Description: "In every channel"},
			}},
			{Name: "admins", Description: "Who else runs orchat here", Subcommands: []bot.Subcommand{
				{Name: "add", Description: "Make a member or a role an orchat admin here", Options: []bot.Option{{Name: "who", Description: "A member or a role", Required: true, Kind: bot.OptionMentionable}}},
				{Name: "remove", Description: "No longer an orchat admin here", Options: []bot.Option{{Name: "who", Description: "A member or a role", Required: true, Kind: bot.OptionMentionable}}},
			}},
			{Name: "alerts", Description: "What the admins are told, and where", Subcommands: []bot.Subcommand{
				{Name: "channel", Description: "Post alerts in a channel (off: DM the admins)", Options: []bot.Option{{Name: "where", Description: "A channel, or off", Required: true}}},
				{Name: "pool-below", Description: "Tell the admins when the pool falls below this (or off)", Options: []bot.Option{tokens("Tokens, or off")}},
				{Name: "member-low", Description: "Tell the admins when a member's balance falls below this (or off)", Options: []bot.Option{tokens("Tokens, or off")}},
			}},
			{Name: "routing", Description: "The auto router here", Subcommands: []bot.Subcommand{
				{Name: "learn", Description: "Let the auto router learn from this community's compare votes", Options: []bot.Option{state}},
			}},
			{Name: "threads", Description: "Whether a mention starts a thread for its answer (Discord)", Options: []bot.Option{
				{Name: "state", Description: "on, off, or default (the host's)", Required: true, Choices: []string{"on", "off", "default"}}, channelOption}},
			{Name: "pool", Description: "The community's pool and its last rows"},
			{Name: "history", Description: "The last changes: who, when, old → new"},
		},
		Run: s.runSettings,
	}
}

// runSettings runs one /settings subcommand for a community admin (the
// engine refused everyone else).
func (s *set) runSettings(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	if s.Communities == nil {
		return bot.Errorf(bot.EUNAVAILABLE, "Community settings are not available in this orchat.")
	}
	if err := bot.ValidateCommunity(ev.Community); err != nil {
		return err
	}
	sub := req.Args.Sub
	// An option is given by name, or by its place before the option that
	// takes the rest of the text ("/settings budget daily 5000").
	var opts []bot.Option
	if sc, ok := req.Command.Find(sub); ok {
		opts = sc.Options
	}
	arg := func(name string) string {
		pos := -1
		for i, o := range opts {
			if o.Rest {
				break
			}
			if o.Name == name {
				pos = i
			}
		}
		return strings.TrimSpace(req.Args.Get(name, pos))
	}
	channel, err := s.scope(ev, arg("channel"))
	if err != nil {
		return err
	}
	off := func(v string) bool {
		return slices.Contains([]string{"off", "clear", "none", "no", "0", "auto", "default", "reset"}, strings.ToLower(v))
	}
	switch sub {
	case "show":
		return s.showSettings(ctx, req, channel)
	case "history":
		return s.settingsHistory(ctx, req)
	case "pool":
		return s.showPool(ctx, req)
	case "persona set":
		if off(arg("text")) && !strings.Contains(arg("text"), " ") {
			return s.change(ctx, req, bot.SettingPersona, channel, "")
		}
		v, err := bot.ParsePersona(arg("text"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingPersona, channel, v)
	case "persona clear":
		return s.change(ctx, req, bot.SettingPersona, channel, "")
	case "model":
		id := arg("id")
		if off(id) {
			return s.change(ctx, req, bot.SettingModel, channel, "")
		}
		m, err := s.Catalog.Lookup(id)
		if err != nil {
			return err
		}
		if err := s.permitted(ctx, ev, channel, m); err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingModel, channel, m.ID)
	case "models allow", "models deny":
		key := bot.SettingModelsAllow
		if sub == "models deny" {
			key = bot.SettingModelsDeny
		}
		if off(arg("list")) {
			return s.change(ctx, req, key, channel, "")
		}
		v, err := s.modelRules(arg("list"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, key, channel, v)
	case "models max-price":
		if off(arg("usd")) {
			return s.change(ctx, req, bot.SettingModelsMaxPrice, channel, "")
		}
		v, err := bot.ParsePrice(arg("usd"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingModelsMaxPrice, channel, v)
	case "compare models":
		if off(arg("list")) {
			return s.change(ctx, req, bot.SettingCompareModels, channel, "")
		}
		ids, err := s.compareSet(ctx, ev, channel, arg("list"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingCompareModels, channel, strings.Join(ids, ","))
	case "compare blind":
		v, err := bot.ParseSwitch(arg("state"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingCompareBlind, channel, offIsDefault(v))
	case "budget daily", "budget member-daily":
		key := bot.SettingBudgetDaily
		if sub == "budget member-daily" {
			key = bot.SettingBudgetMemberDaily
		}
		return s.changeTokens(ctx, req, key, channel, arg("tokens"), off)
	case "allowance":
		rule := arg("rule")
		if off(rule) {
			return s.change(ctx, req, bot.SettingAllowance, channel, "")
		}
		a, err := bot.ParseAllowance(rule)
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingAllowance, channel, a.String())
	case "channels only", "channels except":
		ids, err := channelList(ev, arg("list"))
		if err != nil {
			return err
		}
		r := bot.ChannelRule{Only: sub == "channels only", Channels: ids}
		return s.change(ctx, req, bot.SettingChannels, channel, r.String())
	case "channels all":
		return s.change(ctx, req, bot.SettingChannels, channel, "")
	case "admins add", "admins remove":
		return s.changeAdmins(ctx, req, channel, arg("who"), sub == "admins add")
	case "alerts channel":
		where := arg("where")
		if off(where) || strings.EqualFold(where, "dm") {
			return s.change(ctx, req, bot.SettingAlertsChannel, channel, "")
		}
		id, err := channelRef(ev, where)
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingAlertsChannel, channel, id)
	case "alerts pool-below", "alerts member-low":
		key := bot.SettingAlertsPoolBelow
		if sub == "alerts member-low" {
			key = bot.SettingAlertsMemberLow
		}
		return s.changeTokens(ctx, req, key, channel, arg("tokens"), off)
	case "threads":
		if strings.EqualFold(arg("state"), "default") {
			return s.change(ctx, req, bot.SettingThreads, channel, "")
		}
		v, err := bot.ParseSwitch(arg("state"))
		if err != nil {
			return err
		}
		return s.change(ctx, req, bot.SettingThreads, channel, v)
	case "routing learn":
		v, err := bot.ParseSwitch(arg("state"))
		if err != nil {
			return err
		}
		if v == "on" {
			v = "" // on is the default
		}
		return s.change(ctx, req, bot.SettingRoutingLearn, channel, v)
	}
	return bot.Errorf(bot.EINVALID, "/settings has no subcommand %q. Try /settings show.", bot.Clip(sub, 40))
}

// offIsDefault stores a switch whose default is off as "" when off.
func offIsDefault(v string) string {
	if v == "off" {
		return ""
	}
	return v
}

func (s *set) changeTokens(ctx context.Context, req *bot.Request, key, channel, raw string, off func(string) bool) error {
	if off(raw) {
		return s.change(ctx, req, key, channel, "")
	}
	n, err := bot.ParseTokens(raw)
	if err != nil {
		return err
	}
	return s.change(ctx, req, key, channel, fmt.Sprint(n))
}

// scope reads the channel: option: "" for the whole community, else the
// channel's id (a mention, an id, or "here").
func (s *set) scope(ev bot.Event, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	if strings.EqualFold(raw, "here") {
		return ev.SettingsChannel(), nil
	}
	return channelRef(ev, raw)
}

var (
	discordChannel = regexp.MustCompile(`^<#(\d{1,20})>$`)
	slackChannel   = regexp.MustCompile(`^<#([CGD][A-Z0-9]{1,23})(\|[^>]*)?>$`)
	discordRole    = regexp.MustCompile(`^<@&(\d{1,20})>$`)
	bareChannel    = regexp.MustCompile(`^#?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// channelRef reads one channel as a platform writes it: <#123> on
// Discord, <#C123|name> on Slack, or an id as it is; "here" is the
// event's channel.
func channelRef(ev bot.Event, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case strings.EqualFold(raw, "here"):
		return ev.SettingsChannel(), nil
	case discordChannel.MatchString(raw):
		return discordChannel.FindStringSubmatch(raw)[1], nil
	case slackChannel.MatchString(raw):
		return slackChannel.FindStringSubmatch(raw)[1], nil
	case ev.Platform == bot.PlatformDiscord && isDigits(raw), ev.Platform == bot.PlatformSlack && slackChannel.MatchString("<#"+raw+">"):
		return raw, nil
	case ev.Platform == bot.PlatformConsole && bareChannel.MatchString(raw):
		return strings.TrimPrefix(raw, "#"), nil
	}
	return "", bot.Errorf(bot.EINVALID, "%q is not a channel: pick one with #, such as #general, or write here.", bot.Clip(raw, 40))
}

func isDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// channelList reads several channels.
func channelList(ev bot.Event, raw string) ([]string, error) {
	var out []string
	for _, w := range bot.SplitList(raw) {
		id, err := channelRef(ev, w)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, bot.Errorf(bot.EINVALID, "Name at least one channel, such as #general.")
	}
	if len(out) > 50 {
		return nil, bot.Errorf(bot.EINVALID, "That is %d channels; name at most 50.", len(out))
	}
	return out, nil
}

// modelRules checks a list of model rules: catalog ids (a routing suffix
// is fine), patterns with * ? [, ":free" and tier names.
func (s *set) modelRules(raw string) (string, error) {
	var out []string
	for _, w := range bot.SplitList(raw) {
		lw := strings.ToLower(w)
		switch {
		case lw == ":free" || slices.Contains(bot.TierNames, lw):
			w = lw
		case strings.ContainsAny(w, "*?["):
			if _, err := matchPattern(lw); err != nil {
				return "", bot.Errorf(bot.EINVALID, "%q is not a pattern: write it like anthropic/* or *:free.", bot.Clip(w, 60))
			}
			w = lw
		default:
			m, err := s.Catalog.Lookup(w)
			if err != nil {
				return "", err
			}
			w = m.ID
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return "", bot.Errorf(bot.EINVALID, "Name models, patterns (anthropic/*), :free or tiers (%s), or clear.", strings.Join(bot.TierNames, ", "))
	}
	if len(out) > 100 {
		return "", bot.Errorf(bot.EINVALID, "That is %d rules; give at most 100.", len(out))
	}
	return strings.Join(out, ","), nil
}

func matchPattern(p string) (bool, error) {
	return path.Match(p, "x/y")
}

// compareSet checks a compare set: 2-4 distinct catalog models the rules
// here allow.
func (s *set) compareSet(ctx context.Context, ev bot.Event, channel, raw string) ([]string, error) {
	var ids []string
	for _, w := range bot.SplitList(raw) {
		m, err := s.Catalog.Lookup(w)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ids, m.ID) {
			return nil, bot.Errorf(bot.EINVALID, "%s is listed twice; compare different models.", m.ID)
		}
		if err := s.permitted(ctx, ev, channel, m); err != nil {
			return nil, err
		}
		ids = append(ids, m.ID)
	}
	if len(ids) < 2 || len(ids) > 4 {
		return nil, bot.Errorf(bot.EINVALID, "A compare set is 2 to 4 models, and %d were given.", len(ids))
	}
	return ids, nil
}

// permitted refuses a model the rules in force in the channel refuse.
func (s *set) permitted(ctx context.Context, ev bot.Event, channel string, m bot.Model) error {
	if channel == "" {
		channel = ev.SettingsChannel()
	}
	v, err := s.Communities.View(ctx, ev.Community, channel)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if ok, why := v.Policy().Permits(m); !ok {
		return bot.Errorf(bot.EINVALID, "%s is not allowed here: %s. Change the models rules first (/settings show).", m.ID, why)
	}
	return nil
}

// adminRef reads who an admin is: a member (a mention or an identity) or,
// on Discord, a role (<@&id>, or role:ID).
func adminRef(ev bot.Event, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if m := discordRole.FindStringSubmatch(raw); m != nil && ev.Platform == bot.PlatformDiscord {
		return "role:" + m[1], nil
	}
	if r, ok := strings.CutPrefix(raw, "role:"); ok && ev.Platform == bot.PlatformDiscord && isDigits(r) {
		return raw, nil
	}
	id, err := resolveUser(ev, raw)
	if err != nil {
		return "", err
	}
	if id.Platform() != ev.Platform {
		return "", bot.Errorf(bot.EINVALID, "%s is not a member here: name someone of %s.", id, bot.CommunityWord(ev.Community, false))
	}
	return string(id), nil
}

func (s *set) changeAdmins(ctx context.Context, req *bot.Request, channel, who string, add bool) error {
	if channel != "" {
		return bot.Errorf(bot.EINVALID, "Admins run all of %s, not one channel: leave out channel:.", bot.CommunityWord(req.Event.Community, false))
	}
	ref, err := adminRef(req.Event, who)
	if err != nil {
		return err
	}
	v, err := s.Communities.View(ctx, req.Event.Community, "")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	list := v.Admins()
	switch {
	case add && slices.Contains(list, ref):
		return req.Reply.Notice(fmt.Sprintf("%s is already an orchat admin here.", showRef(req.Event, ref)))
	case add:
		if len(list) >= 50 {
			return bot.Errorf(bot.EINVALID, "%s has 50 orchat admins already; remove one first.", bot.CommunityWord(req.Event.Community, true))
		}
		list = append(list, ref)
	case !slices.Contains(list, ref):
		return bot.Errorf(bot.ENOTFOUND, "%s is not one of the admins added here (/settings show lists them; the platform's own admins are admins anyway).", showRef(req.Event, ref))
	default:
		list = slices.DeleteFunc(list, func(a string) bool { return a == ref })
	}
	return s.change(ctx, req, bot.SettingAdmins, "", strings.Join(list, ","))
}

// change stores one setting and says what it is now, and what it was.
func (s *set) change(ctx context.Context, req *bot.Request, key, channel, value string) error {
	ev := req.Event
	def, _ := bot.SettingDefOf(key)
	if channel != "" && !def.Channel {
		return bot.Errorf(bot.EINVALID, "%s is set for all of %s, not one channel: leave out channel:.", def.Title, bot.CommunityWord(ev.Community, false))
	}
	c, changed, err := s.Communities.Set(ctx, bot.SettingUpdate{Community: ev.Community, Channel: channel, Key: key, Value: value, Actor: ev.Identity})
	if err != nil {
		return err
	}
	where := "here"
	if channel != "" {
		where = "in " + showChannel(ev, channel)
	}
	if !changed {
		return req.Reply.Notice(fmt.Sprintf("Nothing changed: %s %s was already %s.", def.Title, where, s.showValue(ev, key, value, "not set")))
	}
	v, err := s.Communities.View(ctx, ev.Community, channel)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	now := v.Get(key)
	text := fmt.Sprintf("Done: %s %s is now %s (was %s).", def.Title, where, s.showValue(ev, key, now.Value, def.Host), s.showValue(ev, key, c.Old, "not set"))
	if value == "" {
		text = fmt.Sprintf("Done: %s %s is back to the %s: %s (was %s).", def.Title, where, now.Source, s.showValue(ev, key, now.Value, def.Host), s.showValue(ev, key, c.Old, "not set"))
	}
	switch key {
	case bot.SettingAllowance:
		if value != "" {
			text += " Members are refilled from the pool at the start of each period; /settings pool shows what it holds."
		}
	case bot.SettingBudgetDaily, bot.SettingBudgetMemberDaily:
		if value != "" {
			text += " Spending counts from now on, per day (the free-tier day)."
		}
	}
	return req.Reply.Notice(text)
}

// showValue writes a setting's value for people.
func (s *set) showValue(ev bot.Event, key, value, none string) string {
	if value == "" {
		if none == "" {
			return "not set"
		}
		return none
	}
	switch key {
	case bot.SettingPersona:
		return "“" + bot.Clip(strings.Join(strings.Fields(value), " "), 300) + "”"
	case bot.SettingModel:
		return "`" + value + "`"
	case bot.SettingModelsAllow, bot.SettingModelsDeny, bot.SettingCompareModels:
		return "`" + strings.Join(bot.SplitList(value), "`, `") + "`"
	case bot.SettingModelsMaxPrice:
		return "$" + value + " per million tokens"
	case bot.SettingBudgetDaily, bot.SettingBudgetMemberDaily, bot.SettingAlertsPoolBelow, bot.SettingAlertsMemberLow:
		var n int64
		fmt.Sscan(value, &n)
		return bot.FormatTokens(n) + " tokens"
	case bot.SettingChannels:
		r, _ := bot.ParseChannelRule(value)
		names := make([]string, len(r.Channels))
		for i, c := range r.Channels {
			names[i] = showChannel(ev, c)
		}
		word := "everywhere except"
		if r.Only {
			word = "only in"
		}
		return word + " " + strings.Join(names, ", ")
	case bot.SettingAlertsChannel:
		return showChannel(ev, value)
	case bot.SettingAdmins:
		refs := bot.SplitList(value)
		for i, r := range refs {
			refs[i] = showRef(ev, r)
		}
		return strings.Join(refs, ", ")
	}
	return value
}

// showChannel writes a channel as the platform links it.
func showChannel(ev bot.Event, id string) string {
	switch ev.Platform {
	case bot.PlatformDiscord, bot.PlatformSlack:
		return "<#" + id + ">"
	}
	return "#" + id
}

// showRef writes an admin as the platform shows them.
func showRef(ev bot.Event, ref string) string {
	if r, ok := strings.CutPrefix(ref, "role:"); ok {
		return "<@&" + r + ">"
	}
	id := bot.Identity(ref)
	switch id.Platform() {
	case bot.PlatformDiscord:
		return "<@" + strings.TrimPrefix(ref, "discord:") + ">"
	case bot.PlatformSlack:
		parts := strings.Split(ref, ":")
		return "<@" + parts[len(parts)-1] + ">"
	}
	return ref
}

// showSettings lists every setting in force and where it comes from, the
// pool and today's spend.
func (s *set) showSettings(ctx context.Context, req *bot.Request, channel string) error {
	ev := req.Event
	if channel == "" {
		channel = ev.SettingsChannel()
	}
	v, err := s.Communities.View(ctx, ev.Community, channel)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**orchat settings in %s** (%s), each with where it comes from:\n", showChannel(ev, channel), ev.Community)
	for _, in := range v.Settings {
		def, _ := bot.SettingDefOf(in.Key)
		src := in.Source
		if in.By != "" {
			src += fmt.Sprintf(", set by %s on %s", showRef(ev, string(in.By)), in.At.In(s.Config.Location).Format("2 Jan 2006"))
		}
		fmt.Fprintf(&b, "• %s: %s — %s\n", def.Title, s.showValue(ev, in.Key, in.Value, def.Host), src)
	}
	if p, err := s.Communities.Pool(ctx, ev.Community); err == nil {
		fmt.Fprintf(&b, "**Pool:** %s tokens (funded %s, given to members %s).", bot.FormatTokens(p.Balance), bot.FormatTokens(p.Funded), bot.FormatTokens(p.Drawn))
		if p.Funded == 0 {
			b.WriteString(" A host admin funds it with /topup community AMOUNT.")
		}
		b.WriteString("\n")
	}
	if budget := v.Budget(); budget.Any() && s.Budgets != nil {
		if u, err := s.Budgets.BudgetUse(ctx, ev.Community, ev.Identity, s.Now()); err == nil {
			fmt.Fprintf(&b, "**Today:** %s tokens spent here and %s held for answers in progress", bot.FormatTokens(u.All.Spent), bot.FormatTokens(u.All.Held))
			if budget.Daily > 0 {
				fmt.Fprintf(&b, " of the daily %s", bot.FormatTokens(budget.Daily))
			}
			fmt.Fprintf(&b, "; it resets %s.\n", bot.FormatReset(u.ResetsAt, s.Now(), s.Config.Location))
		}
	}
	b.WriteString("Change one with /settings NAME …; channel: sets it for one channel only.")
	return req.Reply.Send(bot.Message{Kind: bot.KindNotice, Private: true, Text: b.String()})
}

// settingsHistory lists the last changes.
func (s *set) settingsHistory(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	changes, err := s.Communities.Changes(ctx, ev.Community, 15)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return req.Reply.Notice("No setting was changed here yet: everything comes from the host's defaults.")
	}
	var b strings.Builder
	b.WriteString("**Setting changes here**, newest first:\n")
	for _, c := range changes {
		def, _ := bot.SettingDefOf(c.Key)
		title := def.Title
		if title == "" {
			title = c.Key
		}
		where := ""
		if c.Channel != "" {
			where = " in " + showChannel(ev, c.Channel)
		}
		fmt.Fprintf(&b, "• %s %s%s: %s → %s, by %s\n", c.At.In(s.Config.Location).Format("2006-01-02 15:04"), title, where,
			s.showValue(ev, c.Key, c.Old, "not set"), s.showValue(ev, c.Key, c.New, "not set"), showRef(ev, string(c.Actor)))
	}
	return req.Reply.Notice(strings.TrimSpace(b.String()))
}

// showPool shows the pool and its last rows.
func (s *set) showPool(ctx context.Context, req *bot.Request) error {
	ev := req.Event
	if s.Pools == nil {
		return bot.Errorf(bot.EUNAVAILABLE, "Pools are not available in this orchat.")
	}
	p, err := s.Pools.Pool(ctx, ev.Community)
	if err != nil {
		return err
	}
	rows, err := s.Pools.PoolHistory(ctx, ev.Community, 10)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Pool of %s:** %s tokens (funded %s in all, given to members %s).\n", ev.Community, bot.FormatTokens(p.Balance), bot.FormatTokens(p.Funded), bot.FormatTokens(p.Drawn))
	if len(rows) == 0 {
		b.WriteString("Nothing yet: a host admin funds it with /topup community AMOUNT; then /topup @member AMOUNT gives from it, and an allowance refills members from it.")
	}
	for _, e := range rows {
		fmt.Fprintf(&b, "• #%d %s %s %+d", e.ID, e.CreatedAt.In(s.Config.Location).Format("2006-01-02 15:04"), e.Kind, e.Amount)
		if e.Member != "" {
			fmt.Fprintf(&b, " → %s", showRef(ev, string(e.Member)))
		}
		if e.Actor != bot.ActorSystem {
			fmt.Fprintf(&b, " · by %s", showRef(ev, string(e.Actor)))
		}
		if e.Note != "" {
			b.WriteString(" · " + e.Note)
		}
		b.WriteString("\n")
	}
	return req.Reply.Notice(strings.TrimSpace(b.String()))
}
