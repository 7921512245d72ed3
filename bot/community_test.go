package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

func TestResolve(t *testing.T) {
	host := bot.HostDefaults{Persona: "host prompt", CompareModels: []string{"a/x", "b/y"}, Tiers: map[string][]string{"code": {"c/z"}}}
	stored := []bot.Setting{
		{Channel: "", Key: bot.SettingPersona, Value: "community prompt", UpdatedBy: "discord:1"},
		{Channel: "C2", Key: bot.SettingPersona, Value: "channel prompt"},
		{Channel: "C2", Key: bot.SettingBudgetDaily, Value: "9"}, // not a channel setting: ignored
		{Channel: "", Key: bot.SettingModelsDeny, Value: "code"},
	}
	for _, tt := range []struct {
		channel, persona, source string
	}{
		{"C1", "community prompt", bot.SourceCommunity},
		{"C2", "channel prompt", bot.SourceChannel},
	} {
		v := bot.Resolve("discord:5", tt.channel, stored, host)
		if got := v.Get(bot.SettingPersona); got.Value != tt.persona || got.Source != tt.source {
			t.Errorf("%s: persona=%+v, want %q from %s", tt.channel, got, tt.persona, tt.source)
		}
		if got := v.Get(bot.SettingCompareModels); got.Value != "a/x,b/y" || got.Source != bot.SourceHost {
			t.Errorf("%s: compare models=%+v, want the host's", tt.channel, got)
		}
		if v.Budget().Daily != 0 {
			t.Errorf("%s: a channel set the community's budget: %+v", tt.channel, v.Budget())
		}
		if ok, why := v.Policy().Permits(bot.Model{ID: "c/z:nitro"}); ok || !strings.Contains(why, "deny code") {
			t.Errorf("%s: a model of a denied tier was permitted (%q)", tt.channel, why)
		}
	}
	if v := bot.Resolve("discord:5", "C1", nil, host); v.Persona() != "host prompt" || v.Policy() != nil || v.Blind() || !v.LearnRouting() {
		t.Errorf("nothing stored: %+v", v)
	}
}

func TestModelPolicy(t *testing.T) {
	cheap := bot.Model{ID: "google/gemini-2.5-flash", PromptPrice: 0.3e-6, CompletionPrice: 2.5e-6}
	dear := bot.Model{ID: "openai/gpt-5", PromptPrice: 1.25e-6, CompletionPrice: 10e-6}
	free := bot.Model{ID: "meta/llama:free"}
	auto := bot.Model{ID: "openrouter/auto", PromptPrice: -1, CompletionPrice: -1}
	for _, tt := range []struct {
		name string
		p    *bot.ModelPolicy
		m    bot.Model
		ok   bool
		why  string
	}{
		{"NoPolicy", nil, dear, true, ""},
		{"AllowFree", &bot.ModelPolicy{Allow: []string{":free"}}, free, true, ""},
		{"AllowFreeRefusesPaid", &bot.ModelPolicy{Allow: []string{":free"}}, cheap, false, "only :free"},
		{"DenyPattern", &bot.ModelPolicy{Deny: []string{"openai/*"}}, dear, false, "deny openai/*"},
		{"DenyIgnoresSuffix", &bot.ModelPolicy{Deny: []string{"openai/gpt-5"}}, bot.Model{ID: "openai/gpt-5:nitro"}, false, "deny"},
		{"DenyWinsOverAllow", &bot.ModelPolicy{Allow: []string{"openai/*"}, Deny: []string{"openai/gpt-5"}}, dear, false, "deny"},
		{"AllowTier", &bot.ModelPolicy{Allow: []string{"fast"}, Tiers: map[string][]string{"fast": {"google/gemini-2.5-flash"}}}, cheap, true, ""},
		{"MaxPrice", &bot.ModelPolicy{MaxPricePerM: 3}, dear, false, "up to $10 per million"},
		{"MaxPriceCheapOK", &bot.ModelPolicy{MaxPricePerM: 3}, cheap, true, ""},
		{"MaxPriceFreeOK", &bot.ModelPolicy{MaxPricePerM: 0.01}, free, true, ""},
		{"MaxPriceRouter", &bot.ModelPolicy{MaxPricePerM: 3}, auto, false, "price varies"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := tt.p.Permits(tt.m)
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Fatalf("Permits(%s)=%v %q, want %v with %q", tt.m.ID, ok, why, tt.ok, tt.why)
			}
		})
	}
}

func TestParseAllowance(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"1000 every 7d", "1000 every 7d", ""},
		{"5,000 every weekly", "5000 every 7d", ""},
		{"200 daily", "200 every 1d", ""},
		{"200/12h", "200 every 12h", ""},
		{"1000 every 2w", "1000 every 14d", ""},
		{"1000", "", "AMOUNT every PERIOD"},
		{"abc every 1d", "", "not a number"},
		{"-5 every 1d", "", "positive"},
		{"1000 every 10m", "", "1h to 90d"},
		{"1000 every 100d", "", "1h to 90d"},
		{"1000 every fortnight", "", "not a period"},
	} {
		a, err := bot.ParseAllowance(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(bot.ErrorMessage(err), tt.err)):
			t.Errorf("ParseAllowance(%q)=%v, %v; want an error with %q", tt.in, a, err, tt.err)
		case tt.err == "" && (err != nil || a.String() != tt.want):
			t.Errorf("ParseAllowance(%q)=%q, %v; want %q", tt.in, a.String(), err, tt.want)
		}
	}
}

func TestAllowancePeriod(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data")
	}
	daily := bot.Allowance{Amount: 1, Every: 24 * time.Hour}
	// 23:30 in Berlin on 22 Nov is the same local day as 00:30 on 22 Nov.
	a, next := daily.Period(time.Date(2026, 11, 22, 22, 30, 0, 0, time.UTC), berlin)
	b, _ := daily.Period(time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC), berlin)
	c, _ := daily.Period(time.Date(2026, 11, 22, 23, 30, 0, 0, time.UTC), berlin)
	if a != b || a == c {
		t.Fatalf("periods %q %q %q: want the first two equal (one Berlin day) and the third new", a, b, c)
	}
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, berlin); !next.Equal(want) {
		t.Fatalf("next period at %v, want %v", next, want)
	}
	weekly := bot.Allowance{Amount: 1, Every: 7 * 24 * time.Hour}
	_, next = weekly.Period(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), time.UTC)
	if next.Weekday() != time.Monday || next.Hour() != 0 {
		t.Fatalf("a weekly allowance comes back %v, want a Monday at midnight", next)
	}
}

func TestParsePersona(t *testing.T) {
	if p, err := bot.ParsePersona("  You help {user} in {community}.  "); err != nil || p != "You help {user} in {community}." {
		t.Fatalf("ParsePersona=%q, %v", p, err)
	}
	for _, bad := range []string{"", "   ", "Hello {name}", strings.Repeat("x", bot.MaxPersona+1)} {
		if _, err := bot.ParsePersona(bad); bot.ErrorCode(err) != bot.EINVALID {
			t.Errorf("ParsePersona(%.20q) accepted", bad)
		}
	}
}

func TestChannelRule(t *testing.T) {
	only, _ := bot.ParseChannelRule("only C1,C2")
	except, _ := bot.ParseChannelRule("except C1")
	if !only.Allows("C2") || only.Allows("C3") || except.Allows("C1") || !except.Allows("C3") || !(bot.ChannelRule{}).Allows("C9") {
		t.Fatalf("rules: only=%+v except=%+v", only, except)
	}
	if _, err := bot.ParseChannelRule("sometimes C1"); err == nil {
		t.Fatal("a rule that is neither only nor except was accepted")
	}
}

func TestValidateCommunity(t *testing.T) {
	for _, ok := range []string{"discord:123456789012345678", "slack:T0123", "console"} {
		if err := bot.ValidateCommunity(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "discord:dm", "discord:abc", "slack:T0123:U0456", "console:alice", "pool:console"} {
		if err := bot.ValidateCommunity(bad); err == nil {
			t.Errorf("%q accepted as a community", bad)
		}
	}
	if c, ok, err := bot.ParsePool("pool:discord:123456789012345678"); !ok || err != nil || c != "discord:123456789012345678" {
		t.Errorf("ParsePool=%q %v %v", c, ok, err)
	}
	if _, ok, err := bot.ParsePool("pool:discord:dm"); !ok || err == nil {
		t.Errorf("pool:discord:dm accepted")
	}
}

// settingsFake is a function-field fake of the settings store.
type settingsFake struct {
	settings func(community string) ([]bot.Setting, error)
	reads    int
}

func (f *settingsFake) CommunitySettings(_ context.Context, c string) ([]bot.Setting, error) {
	f.reads++
	return f.settings(c)
}
func (f *settingsFake) SetSetting(context.Context, bot.SettingUpdate) (bot.SettingChange, bool, error) {
	return bot.SettingChange{}, true, nil
}
func (f *settingsFake) SettingChanges(context.Context, string, int) ([]bot.SettingChange, error) {
	return nil, nil
}

func TestCommunitiesIsAdmin(t *testing.T) {
	store := &settingsFake{settings: func(string) ([]bot.Setting, error) {
		return []bot.Setting{{Key: bot.SettingAdmins, Value: "discord:7,role:42"}}, nil
	}}
	c := bot.NewCommunities(store, nil, bot.HostDefaults{Admins: []bot.Identity{"discord:1"}}, time.Minute, nil)
	asked := 0
	manages := func(yes bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { asked++; return yes, nil }
	}
	for _, tt := range []struct {
		name string
		ev   bot.Event
		want bool
	}{
		{"HostAdminAnywhere", bot.Event{Identity: "discord:1", Community: "discord:dm"}, true},
		{"ListedUser", bot.Event{Identity: "discord:7", Community: "discord:5"}, true},
		{"ListedRole", bot.Event{Identity: "discord:8", Community: "discord:5", Roles: []string{"41", "42"}}, true},
		{"PlatformSaysSo", bot.Event{Identity: "discord:9", Community: "discord:5", ManagesCommunity: manages(true)}, true},
		{"PlatformSaysNo", bot.Event{Identity: "discord:9", Community: "discord:5", ManagesCommunity: manages(false)}, false},
		{"NobodyInADM", bot.Event{Identity: "discord:9", Community: "discord:dm", ManagesCommunity: manages(true)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.IsAdmin(context.Background(), tt.ev)
			if err != nil || got != tt.want {
				t.Fatalf("IsAdmin=%v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if asked != 2 {
		t.Fatalf("the platform was asked %d times, want 2 (only when nothing else decided)", asked)
	}
	if store.reads != 1 {
		t.Fatalf("the store was read %d times, want 1 (cached)", store.reads)
	}
}
