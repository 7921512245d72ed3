package bot

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A community is where one orchat is run by its own admins (DESIGN.md
// "Communities"): a Discord server ("discord:<guild id>"), a Slack
// workspace ("slack:<team id>") or the terminal ("console"). Its settings
// are looked up channel → community → host default; its pool is funded by
// the host's admins and drawn on by its own admins and its allowance.

// CommunityConsole is the terminal's one community.
const CommunityConsole = "console"

// PoolPrefix names a community's pool wherever a user could be named: a
// pool is "pool:discord:<guild id>", never "discord:<guild id>", which has
// the shape of a Discord user. Pools live in their own ledger tables, so a
// guild's pool and a user's balance can never mix, whatever their ids.
const PoolPrefix = "pool:"

// ValidateCommunity reports whether s names a community a setting or a
// pool may belong to. DMs are no community: a Discord DM is "discord:dm".
func ValidateCommunity(s string) error {
	platform, rest, _ := strings.Cut(s, ":")
	switch {
	case s == CommunityConsole:
		return nil
	case platform == PlatformDiscord && isSnowflake(rest):
		return nil
	case platform == PlatformSlack && isSlackID(rest):
		return nil
	case s == "discord:dm":
		return Errorf(EINVALID, "Settings and pools belong to a server, not to DMs: run the command in a channel of the server.")
	}
	return Errorf(EINVALID, "%q is not a community: write discord:<server id>, slack:<workspace id> or console.", Clip(s, 60))
}

// ParsePool reads "pool:<community>" and returns the community; ok is
// false when s does not start with PoolPrefix.
func ParsePool(s string) (community string, ok bool, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), PoolPrefix)
	if !ok {
		return "", false, nil
	}
	if err := ValidateCommunity(rest); err != nil {
		return "", true, Errorf(EINVALID, "%q is not a pool: write pool:discord:<server id>, pool:slack:<workspace id> or pool:console.", Clip(s, 60))
	}
	return rest, true, nil
}

// Setting keys. A key's value is stored as text in its canonical form
// (ParseSetting writes it); "" means not set here.
const (
	SettingPersona           = "persona"
	SettingModel             = "model"
	SettingModelsAllow       = "models.allow"
	SettingModelsDeny        = "models.deny"
	SettingModelsMaxPrice    = "models.max_price"
	SettingCompareModels     = "compare.models"
	SettingCompareBlind      = "compare.blind"
	SettingBudgetDaily       = "budget.daily"
	SettingBudgetMemberDaily = "budget.member_daily"
	SettingAllowance         = "allowance"
	SettingChannels          = "channels"
	SettingAdmins            = "admins"
	SettingAlertsChannel     = "alerts.channel"
	SettingAlertsPoolBelow   = "alerts.pool_below"
	SettingAlertsMemberLow   = "alerts.member_low"
	// SettingRoutingLearn is whether the auto router may learn from this
	// community's compare votes (on unless turned off).
	SettingRoutingLearn = "routing.learn"
	// SettingThreads is whether a mention starts a thread for its answer
	// (Discord; "on" or "off", else the host's discord.threads).
	SettingThreads = "threads"
)

// SettingDef describes one setting: its key, how /settings show names it,
// whether a channel may override it, and what it is when nothing is set.
type SettingDef struct {
	Key     string
	Title   string
	Channel bool // may be set for one channel (channel:)
	// Host is what applies when no community or channel sets it, for
	// /settings show, when the host's config does not decide it
	// (HostDefaults does for persona and compare models).
	Host string
}

// SettingDefs are every setting, in the order /settings show lists them.
// A new setting is one line here (and its parser in ParseSetting).
var SettingDefs = []SettingDef{
	{Key: SettingPersona, Title: "persona", Channel: true},
	{Key: SettingModel, Title: "model", Channel: true, Host: "auto"},
	{Key: SettingModelsAllow, Title: "models allow", Channel: true, Host: "every model"},
	{Key: SettingModelsDeny, Title: "models deny", Channel: true, Host: "none"},
	{Key: SettingModelsMaxPrice, Title: "models max-price", Channel: true, Host: "no limit"},
	{Key: SettingCompareModels, Title: "compare models", Channel: true},
	{Key: SettingCompareBlind, Title: "compare blind", Channel: true, Host: "off"},
	{Key: SettingBudgetDaily, Title: "budget daily", Host: "no limit"},
	{Key: SettingBudgetMemberDaily, Title: "budget member-daily", Host: "no limit"},
	{Key: SettingAllowance, Title: "allowance", Host: "none"},
	{Key: SettingChannels, Title: "channels", Host: "all"},
	{Key: SettingAdmins, Title: "admins", Host: "the platform's (Manage Server / workspace admins) and the host's"},
	{Key: SettingAlertsChannel, Title: "alerts channel", Host: "DMs to the community's admins"},
	{Key: SettingAlertsPoolBelow, Title: "alerts pool-below", Host: "off"},
	{Key: SettingAlertsMemberLow, Title: "alerts member-low", Host: "off"},
	{Key: SettingRoutingLearn, Title: "routing learn", Host: "on"},
	{Key: SettingThreads, Title: "threads", Channel: true, Host: "the host's (discord.threads)"},
}

// SettingDefOf returns the definition of key.
func SettingDefOf(key string) (SettingDef, bool) {
	for _, d := range SettingDefs {
		if d.Key == key {
			return d, true
		}
	}
	return SettingDef{}, false
}

// Setting is one stored setting of a community, or of one of its channels
// (Channel "" for the whole community).
type Setting struct {
	Community string
	Channel   string
	Key       string
	Value     string
	UpdatedBy Identity
	UpdatedAt time.Time
}

// SettingUpdate is a change an admin asks for; Value "" clears the
// setting at that scope.
type SettingUpdate struct {
	Community string
	Channel   string
	Key       string
	Value     string
	Actor     Identity
}

// SettingChange is one audited change: who changed what, when, from what
// to what. Changes are append-only rows.
type SettingChange struct {
	ID        int64
	Community string
	Channel   string
	Key       string
	Old, New  string
	Actor     Identity
	At        time.Time
}

// SettingsStore keeps communities' settings and the audit of their
// changes (accounts.Store implements it on both engines).
type SettingsStore interface {
	// CommunitySettings returns every setting of a community, its
	// channels' included. EINVALID for a malformed community.
	CommunitySettings(ctx context.Context, community string) ([]Setting, error)
	// SetSetting stores u (Value "" removes the setting) and records the
	// change; changed is false, and nothing is written, when the value was
	// already u.Value. EINVALID for a malformed community, key or actor,
	// or a value too long to keep.
	SetSetting(ctx context.Context, u SettingUpdate) (c SettingChange, changed bool, err error)
	// SettingChanges returns the community's last limit changes, newest
	// first.
	SettingChanges(ctx context.Context, community string, limit int) ([]SettingChange, error)
}

// Where a setting in force comes from.
const (
	SourceChannel   = "channel"
	SourceCommunity = "community"
	SourceHost      = "host default"
)

// InForce is one setting as it applies in a channel: its value and where
// it came from.
type InForce struct {
	Key    string
	Value  string // canonical; "" when nothing is set and the host has no value
	Source string // SourceChannel, SourceCommunity or SourceHost
	By     Identity
	At     time.Time
}

// HostDefaults are the host's config as far as communities see it: the
// values in force where no community sets one, and who the host's admins
// are. A config reload replaces them.
type HostDefaults struct {
	// Persona is bot.system_prompt.
	Persona string
	// CompareModels are [compare] models.
	CompareModels []string
	// Admins are the host's admins: community admins everywhere.
	Admins []Identity
	// Tiers are the auto router's tiers, for model rules naming a tier.
	Tiers map[string][]string
}

// CommunityView is every setting in force in one channel of a community.
type CommunityView struct {
	Community string
	Channel   string
	Settings  []InForce // in SettingDefs order
	tiers     map[string][]string
}

// Resolve builds the view of a channel from a community's stored settings
// and the host's defaults: channel, then community, then host.
func Resolve(community, channel string, stored []Setting, host HostDefaults) CommunityView {
	v := CommunityView{Community: community, Channel: channel, tiers: host.Tiers}
	for _, d := range SettingDefs {
		in := InForce{Key: d.Key, Source: SourceHost, Value: hostValue(d, host)}
		var com, ch *Setting
		for i := range stored {
			s := &stored[i]
			if s.Key != d.Key || s.Value == "" {
				continue
			}
			switch {
			case s.Channel == "":
				com = s
			case s.Channel == channel && d.Channel && channel != "":
				ch = s
			}
		}
		switch {
		case ch != nil:
			in = InForce{Key: d.Key, Value: ch.Value, Source: SourceChannel, By: ch.UpdatedBy, At: ch.UpdatedAt}
		case com != nil:
			in = InForce{Key: d.Key, Value: com.Value, Source: SourceCommunity, By: com.UpdatedBy, At: com.UpdatedAt}
		}
		v.Settings = append(v.Settings, in)
	}
	return v
}

func hostValue(d SettingDef, host HostDefaults) string {
	switch d.Key {
	case SettingPersona:
		return host.Persona
	case SettingCompareModels:
		return strings.Join(host.CompareModels, ",")
	}
	return ""
}

// Get returns the setting in force for key.
func (v CommunityView) Get(key string) InForce {
	for _, s := range v.Settings {
		if s.Key == key {
			return s
		}
	}
	return InForce{Key: key, Source: SourceHost}
}

// set reports whether a community or a channel set key.
func (v CommunityView) set(key string) (string, bool) {
	in := v.Get(key)
	return in.Value, in.Source != SourceHost && in.Value != ""
}

// Persona is the system prompt in force, placeholders unfilled.
func (v CommunityView) Persona() string { return v.Get(SettingPersona).Value }

// Model is the community's default model ("" for auto).
func (v CommunityView) Model() string { m, _ := v.set(SettingModel); return m }

// CompareModels are the default compare set in force.
func (v CommunityView) CompareModels() []string { return SplitList(v.Get(SettingCompareModels).Value) }

// Blind reports whether compares here hide the models until one votes.
func (v CommunityView) Blind() bool { b, _ := v.set(SettingCompareBlind); return b == "on" }

// LearnRouting reports whether the auto router may learn from this
// community's votes.
func (v CommunityView) LearnRouting() bool { l, _ := v.set(SettingRoutingLearn); return l != "off" }

// Threads reports whether a mention here starts a thread for its answer,
// and whether the community or channel decided it (else the host's
// configuration does).
func (v CommunityView) Threads() (on, set bool) {
	t, set := v.set(SettingThreads)
	return t == "on", set
}

// Policy is the model rules in force, nil when there are none.
func (v CommunityView) Policy() *ModelPolicy {
	allow, _ := v.set(SettingModelsAllow)
	deny, _ := v.set(SettingModelsDeny)
	price, _ := v.set(SettingModelsMaxPrice)
	if allow == "" && deny == "" && price == "" {
		return nil
	}
	p := &ModelPolicy{Allow: SplitList(allow), Deny: SplitList(deny), Tiers: v.tiers}
	p.MaxPricePerM, _ = strconv.ParseFloat(price, 64)
	return p
}

// Budget is the daily spending caps in force (0: none).
func (v CommunityView) Budget() Budget {
	b := Budget{Community: v.Community}
	if s, ok := v.set(SettingBudgetDaily); ok {
		b.Daily, _ = strconv.ParseInt(s, 10, 64)
	}
	if s, ok := v.set(SettingBudgetMemberDaily); ok {
		b.MemberDaily, _ = strconv.ParseInt(s, 10, 64)
	}
	return b
}

// Allowance is the members' allowance in force; ok is false when there is
// none.
func (v CommunityView) Allowance() (Allowance, bool) {
	s, ok := v.set(SettingAllowance)
	if !ok {
		return Allowance{}, false
	}
	a, err := ParseAllowance(s)
	return a, err == nil
}

// Channels is where the bot answers mentions here.
func (v CommunityView) Channels() ChannelRule {
	s, _ := v.set(SettingChannels)
	r, _ := ParseChannelRule(s)
	return r
}

// Admins are the users ("discord:123") and roles ("role:456") the
// community made its admins.
func (v CommunityView) Admins() []string {
	s, _ := v.set(SettingAdmins)
	return SplitList(s)
}

// AlertsChannel is the channel alerts go to ("" : DMs to the admins).
func (v CommunityView) AlertsChannel() string { c, _ := v.set(SettingAlertsChannel); return c }

// PoolBelow is the pool balance under which the admins are told (0: off).
func (v CommunityView) PoolBelow() int64 { return v.int(SettingAlertsPoolBelow) }

// MemberLow is the member balance under which the admins are told (0: off).
func (v CommunityView) MemberLow() int64 { return v.int(SettingAlertsMemberLow) }

func (v CommunityView) int(key string) int64 {
	s, _ := v.set(key)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Budget is a community's daily spending caps, in balance tokens per
// free-tier day (the same period key): Daily for everyone in it together,
// MemberDaily for each member. Zero means no cap.
type Budget struct {
	Community   string
	Daily       int64
	MemberDaily int64
}

// Any reports whether a cap is set.
func (b Budget) Any() bool { return b.Daily > 0 || b.MemberDaily > 0 }

// Spend is what was spent and is held (answers in progress) in one day.
type Spend struct {
	Spent, Held int64
}

// Used is spent plus held: what a new request must fit beside.
func (s Spend) Used() int64 { return s.Spent + s.Held }

// BudgetUse is a day's spend of a community and of one member in it.
type BudgetUse struct {
	Period   string
	ResetsAt time.Time
	All      Spend
	Member   Spend
}

// Left is what the caps leave for a new request (-1: no cap).
func (u BudgetUse) Left(b Budget) int64 {
	left := int64(-1)
	if b.Daily > 0 {
		left = max(b.Daily-u.All.Used(), 0)
	}
	if b.MemberDaily > 0 {
		m := max(b.MemberDaily-u.Member.Used(), 0)
		if left < 0 || m < left {
			left = m
		}
	}
	return left
}

// Budgets holds paid calls within a community's daily caps
// (accounts.Store implements it).
type Budgets interface {
	// ReserveWithin is Ledger.Reserve that also counts the hold against
	// b's caps for today: ERATELIMIT, with when the budget comes back and
	// nothing written, when the hold does not fit. A zero b is Reserve.
	ReserveWithin(ctx context.Context, id Identity, amount int64, key string, b Budget) (Hold, error)
	// BudgetUse returns today's spend of the community and of id in it.
	BudgetUse(ctx context.Context, community string, id Identity, now time.Time) (BudgetUse, error)
}

// Allowance refills every member of a community up to Amount balance
// tokens every Every, from the community's pool.
type Allowance struct {
	Amount int64
	Every  time.Duration
}

// Allowance bounds: at least an hour between refills, at most 90 days.
const (
	MinAllowanceEvery = time.Hour
	MaxAllowanceEvery = 90 * 24 * time.Hour
)

// String writes the allowance as /settings reads it: "1000 every 7d".
func (a Allowance) String() string {
	return strconv.FormatInt(a.Amount, 10) + " every " + FormatEvery(a.Every)
}

// FormatEvery writes a period in days or hours: 7d, 1d, 12h, 90m.
func FormatEvery(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}

// Period returns the allowance period now falls in, as a key, and when
// the next one starts. Periods are counted in wall-clock time of loc from
// Monday 3 January 2000, so a daily allowance starts at local midnight and
// a weekly one on Monday.
func (a Allowance) Period(now time.Time, loc *time.Location) (string, time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	l := now.In(loc)
	wall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	anchor := time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC)
	n := int64(wall.Sub(anchor) / a.Every)
	if wall.Before(anchor) {
		n = 0
	}
	next := anchor.Add(time.Duration(n+1) * a.Every)
	nextLocal := time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), next.Minute(), next.Second(), 0, loc)
	return FormatEvery(a.Every) + ":" + strconv.FormatInt(n, 10), nextLocal
}

// AllowanceReport says what one run of the allowances did.
type AllowanceReport struct {
	Communities int   // with an allowance
	Refilled    int   // members given tokens
	Granted     int64 // tokens given in all
	Short       int   // members the pool could not refill in full
}

// ParseEvery reads a period: 1d, 7d, 2w, 12h, 90m, a Go duration, or the
// words day, week, daily, weekly, hourly.
func ParseEvery(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "hour", "hourly":
		return time.Hour, nil
	case "day", "daily":
		return 24 * time.Hour, nil
	case "week", "weekly":
		return 7 * 24 * time.Hour, nil
	}
	var d time.Duration
	if n, unit := strings.TrimRight(t, "dw"), strings.TrimLeft(t, "0123456789"); n != t && (unit == "d" || unit == "w") {
		k, err := strconv.Atoi(n)
		if err != nil || k <= 0 || k > 1000 {
			return 0, everyError(s)
		}
		d = time.Duration(k) * 24 * time.Hour
		if unit == "w" {
			d *= 7
		}
	} else {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, everyError(s)
		}
	}
	if d < MinAllowanceEvery || d > MaxAllowanceEvery {
		return 0, Errorf(EINVALID, "An allowance refills every 1h to 90d, not every %s.", Clip(s, 20))
	}
	return d, nil
}

func everyError(s string) error {
	return Errorf(EINVALID, "%q is not a period: write it like 1d, 7d, 12h or weekly.", Clip(s, 20))
}

// ParseAllowance reads "N every PERIOD" (or "N PERIOD", "N/PERIOD").
func ParseAllowance(s string) (Allowance, error) {
	t := strings.TrimSpace(strings.ReplaceAll(s, "/", " every "))
	amount, rest, _ := strings.Cut(t, " ")
	rest = strings.TrimSpace(rest)
	rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest, "every"), ":"))
	if amount == "" || rest == "" {
		return Allowance{}, Errorf(EINVALID, "Write an allowance as AMOUNT every PERIOD, such as 1000 every 7d.")
	}
	n, err := ParseTokens(amount)
	if err != nil {
		return Allowance{}, err
	}
	d, err := ParseEvery(rest)
	if err != nil {
		return Allowance{}, err
	}
	return Allowance{Amount: n, Every: d}, nil
}

// ParseTokens reads a whole positive number of balance tokens up to
// MaxAmount; 15,000 and 15_000 are fine.
func ParseTokens(s string) (int64, error) {
	t := strings.NewReplacer(",", "", "_", "").Replace(strings.TrimSpace(s))
	n, err := strconv.ParseInt(t, 10, 64)
	switch {
	case t == "":
		return 0, Errorf(EINVALID, "Say how many tokens, such as 5000.")
	case err != nil && strings.TrimLeft(t, "0123456789") == "":
		return 0, Errorf(EINVALID, "%s tokens is over the limit of %s.", Clip(s, 30), FormatTokens(MaxAmount))
	case err != nil:
		return 0, Errorf(EINVALID, "%q is not a number of tokens: write a whole number such as 5000.", Clip(s, 30))
	case n <= 0:
		return 0, Errorf(EINVALID, "The number of tokens must be positive, not %s.", Clip(s, 30))
	case n > MaxAmount:
		return 0, Errorf(EINVALID, "%s tokens is over the limit of %s.", Clip(s, 30), FormatTokens(MaxAmount))
	}
	return n, nil
}

// ChannelRule is where the bot answers mentions: everywhere (no rule),
// only in some channels, or everywhere except some.
type ChannelRule struct {
	Only     bool // else: except
	Channels []string
}

// Allows reports whether the bot answers mentions in channel.
func (r ChannelRule) Allows(channel string) bool {
	if len(r.Channels) == 0 {
		return true
	}
	in := false
	for _, c := range r.Channels {
		in = in || c == channel
	}
	return in == r.Only
}

// String writes the rule as stored: "only C1,C2" or "except C1".
func (r ChannelRule) String() string {
	if len(r.Channels) == 0 {
		return ""
	}
	word := "except"
	if r.Only {
		word = "only"
	}
	return word + " " + strings.Join(r.Channels, ",")
}

// ParseChannelRule reads a stored rule ("" is everywhere).
func ParseChannelRule(s string) (ChannelRule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ChannelRule{}, nil
	}
	word, list, _ := strings.Cut(s, " ")
	r := ChannelRule{Only: word == "only", Channels: SplitList(list)}
	if word != "only" && word != "except" || len(r.Channels) == 0 {
		return ChannelRule{}, Errorf(EINVALID, "Write channels only LIST or channels except LIST.")
	}
	return r, nil
}

// SplitList splits a stored or typed list on commas and spaces, dropping
// empty items.
func SplitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// Persona limits: the system prompt a community sets is at most this many
// characters, and uses only these placeholders.
const MaxPersona = 4000

// Placeholders are the words a system prompt or persona may use, filled in
// per request.
var Placeholders = []string{"{date}", "{time}", "{platform}", "{community}", "{user}"}

var placeholderRE = regexp.MustCompile(`\{[A-Za-z_]+\}`)

// ParsePersona checks a persona: not empty, at most MaxPersona characters,
// and no placeholder but those in Placeholders.
func ParsePersona(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", Errorf(EINVALID, "Give the persona's text, such as: /settings persona You are a friendly guide to {community}. (persona clear goes back to the default)")
	}
	if n := utf8.RuneCountInString(s); n > MaxPersona {
		return "", Errorf(EINVALID, "The persona is %d characters long; the limit is %d.", n, MaxPersona)
	}
	for _, p := range placeholderRE.FindAllString(s, -1) {
		known := false
		for _, k := range Placeholders {
			known = known || strings.EqualFold(p, k)
		}
		if !known {
			return "", Errorf(EINVALID, "%s is not a placeholder: use %s.", p, strings.Join(Placeholders, ", "))
		}
	}
	return s, nil
}

// ParseSwitch reads on or off (yes, no, true, false, 1, 0).
func ParseSwitch(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes", "true", "1", "enable", "enabled":
		return "on", nil
	case "off", "no", "false", "0", "disable", "disabled":
		return "off", nil
	}
	return "", Errorf(EINVALID, "Say on or off, not %q.", Clip(s, 20))
}

// ParsePrice reads a price in USD per million tokens: a number from 0 to
// 10,000 (a leading $ is fine).
func ParsePrice(s string) (string, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f > 10_000 || t == "" {
		return "", Errorf(EINVALID, "%q is not a price: write USD per million tokens, such as 2 or 0.5.", Clip(s, 20))
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

// Alert is a notice to a community's admins, queued in the store and sent
// once by the scheduler (DESIGN.md "Communities"). Key makes it happen
// once: "<community>:budget:<period>".
type Alert struct {
	Key       string
	Community string
	Kind      string // AlertPoolLow, AlertBudget, AlertMemberLow
	Text      string
	CreatedAt time.Time
}

// Alert kinds.
const (
	AlertPoolLow   = "pool_low"
	AlertBudget    = "budget"
	AlertMemberLow = "member_low"
)

// Alerts queues alerts for the scheduler to send (accounts.Store).
type Alerts interface {
	// QueueAlert stores a for sending unless its key was queued before;
	// queued reports whether it was new.
	QueueAlert(ctx context.Context, a Alert) (queued bool, err error)
}

// Pool is a community's pool of balance tokens: funded by the host's
// admins, drawn on by the community's admins and its allowance, never
// below zero.
type Pool struct {
	Community string
	Balance   int64
	Funded    int64 // lifetime funding
	Drawn     int64 // lifetime given to members
	CreatedAt time.Time
}

// Pool entry kinds. A pool's balance is the sum of its entries.
const (
	PoolFund      = "fund"      // the host's admin added tokens
	PoolWithdraw  = "withdraw"  // the host's admin took tokens back
	PoolTopUp     = "topup"     // a community admin gave a member tokens
	PoolAllowance = "allowance" // the scheduler refilled a member
)

// PoolEntry is one append-only row of a pool's ledger. Amount is signed;
// a topup or allowance names the member and the member's ledger row.
type PoolEntry struct {
	ID        int64
	Community string
	Kind      string
	Amount    int64
	Key       string
	Actor     Identity
	Member    Identity
	EntryID   int64
	Note      string
	CreatedAt time.Time
}

// PoolAdjustment is a host admin's change to a pool.
type PoolAdjustment struct {
	Community string
	Amount    int64 // 1..MaxAmount
	Key       string
	Actor     Identity
	Note      string
}

// PoolGrant moves tokens from a pool to a member, as one pool row and one
// grant row on the member's ledger.
type PoolGrant struct {
	Community string
	Member    Identity
	Amount    int64 // 1..MaxAmount
	Key       string
	Actor     Identity
	Note      string
}

// Pools keeps communities' pools (accounts.Store).
type Pools interface {
	// FundPool adds to a pool (creating it). EINVALID for a bad community,
	// amount or key; a repeated key changes nothing (applied false).
	FundPool(ctx context.Context, a PoolAdjustment) (e PoolEntry, applied bool, err error)
	// WithdrawPool takes tokens back from a pool; EINSUFFICIENT beyond its
	// balance.
	WithdrawPool(ctx context.Context, a PoolAdjustment) (e PoolEntry, applied bool, err error)
	// GrantFromPool gives a member tokens from the pool, never beyond it:
	// EINSUFFICIENT when the pool holds less. The member is created (with
	// the signup bonus) if new.
	GrantFromPool(ctx context.Context, g PoolGrant) (e PoolEntry, applied bool, err error)
	// Pool returns a community's pool (zero when never funded).
	Pool(ctx context.Context, community string) (Pool, error)
	// PoolHistory returns the pool's last limit rows, newest first.
	PoolHistory(ctx context.Context, community string, limit int) ([]PoolEntry, error)
}

// CommunityReader is what a view of a community needs, such as an App
// Home tab: the settings in force and the pool.
type CommunityReader interface {
	View(ctx context.Context, community, channel string) (CommunityView, error)
	Pool(ctx context.Context, community string) (Pool, error)
}

// Members remembers who used the bot in which community, so an allowance
// knows whom to refill (accounts.Store).
type Members interface {
	NoteMember(ctx context.Context, community string, id Identity) error
}

// CommunityWord names a community for a sentence: "this server" on
// Discord, "this workspace" on Slack, "this community" elsewhere; capital
// starts it with a capital letter.
func CommunityWord(community string, capital bool) string {
	w := "this community"
	switch Identity(community).Platform() {
	case PlatformDiscord:
		w = "this server"
	case PlatformSlack:
		w = "this workspace"
	}
	if capital {
		return "T" + w[1:]
	}
	return w
}

// FormatReset says when something comes back: the local time and how long
// until then, "at 00:00 UTC (in 5h 12m)".
func FormatReset(at, now time.Time, loc *time.Location) string {
	if at.IsZero() {
		return "tomorrow"
	}
	if loc == nil {
		loc = time.UTC
	}
	local := at.In(loc)
	when := local.Format("15:04 MST")
	if local.Sub(now) > 24*time.Hour {
		when = local.Format("Mon 2 Jan 15:04 MST")
	}
	return fmt.Sprintf("at %s (in %s)", when, FormatWait(at.Sub(now)))
}
