package slack_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"

	"github.com/orchat/orchat/slack"
)

// TestManifest checks that the app manifest registers what the adapter
// relies on, so setting up is one paste.
func TestManifest(t *testing.T) {
	b, err := os.ReadFile("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	var want []string
	for _, name := range slack.DefaultCommandNames() {
		want = append(want, "- command: /"+name+"\n")
	}
	for _, scope := range []string{"app_mentions:read", "chat:write", "commands", "channels:history", "groups:history", "im:history", "mpim:history", "im:write", "files:read", "files:write", "users:read"} {
		want = append(want, "- "+scope+" ")
	}
	for _, ev := range []string{"app_mention", "message.channels", "message.groups", "message.im", "message.mpim"} {
		want = append(want, "- "+ev+"\n")
	}
	want = append(want, "socket_mode_enabled: true", "interactivity:\n    is_enabled: true")
	for _, w := range want {
		if !strings.Contains(m, w) {
			t.Errorf("manifest.yaml lacks %q", strings.TrimSpace(w))
		}
	}
}

// manifestSchema is the part of Slack's app manifest schema
// (docs.slack.dev, "App manifest reference") that manifest.yaml uses: a
// field the schema does not have fails the decode, as Slack refuses it.
type manifestSchema struct {
	DisplayInformation struct {
		Name            string `yaml:"name"`             // required, ≤ 35
		Description     string `yaml:"description"`      // ≤ 140
		LongDescription string `yaml:"long_description"` // 175 to 4,000
		BackgroundColor string `yaml:"background_color"` // #rrggbb
	} `yaml:"display_information"`
	Features struct {
		AppHome struct {
			HomeTabEnabled             bool `yaml:"home_tab_enabled"`
			MessagesTabEnabled         bool `yaml:"messages_tab_enabled"`
			MessagesTabReadOnlyEnabled bool `yaml:"messages_tab_read_only_enabled"`
		} `yaml:"app_home"`
		BotUser struct {
			DisplayName  string `yaml:"display_name"` // ≤ 80
			AlwaysOnline bool   `yaml:"always_online"`
		} `yaml:"bot_user"`
		AgentView *struct {
			AgentDescription string `yaml:"agent_description"` // ≤ 300 (Slack's cap)
		} `yaml:"agent_view"`
		Shortcuts []struct {
			Name        string `yaml:"name"`        // ≤ 24
			Type        string `yaml:"type"`        // message or global
			CallbackID  string `yaml:"callback_id"` // ≤ 255
			Description string `yaml:"description"` // ≤ 150
		} `yaml:"shortcuts"`
		SlashCommands []struct {
			Command      string `yaml:"command"`     // "/" + ≤ 32 lower-case
			Description  string `yaml:"description"` // ≤ 2,000
			UsageHint    string `yaml:"usage_hint"`  // ≤ 1,000
			ShouldEscape bool   `yaml:"should_escape"`
			URL          string `yaml:"url"`
		} `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		EventSubscriptions struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		OrgDeployEnabled     bool `yaml:"org_deploy_enabled"`
		SocketModeEnabled    bool `yaml:"socket_mode_enabled"`
		TokenRotationEnabled bool `yaml:"token_rotation_enabled"`
	} `yaml:"settings"`
}

// TestManifestSchema decodes manifest.yaml against the schema's fields
// and checks Slack's limits on the values used, and that the agent
// surfaces the adapter serves are switched on.
func TestManifestSchema(t *testing.T) {
	f, err := os.Open("manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var m manifestSchema
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest.yaml does not fit Slack's manifest schema: %v", err)
	}
	bad := func(field string, n, max int) {
		t.Errorf("%s is %d characters, Slack allows %d", field, n, max)
	}
	count := utf8.RuneCountInString
	if d := m.DisplayInformation; d.Name == "" || count(d.Name) > 35 || count(d.Description) > 140 || count(d.LongDescription) < 175 || count(d.LongDescription) > 4000 || !regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(d.BackgroundColor) {
		t.Errorf("display_information out of Slack's bounds: %+v", d)
	}
	if n := count(m.Features.BotUser.DisplayName); n == 0 || n > 80 {
		bad("bot_user.display_name", n, 80)
	}
	av := m.Features.AgentView
	if av == nil || strings.TrimSpace(av.AgentDescription) == "" {
		t.Fatal("features.agent_view with an agent_description is missing: the agent messaging experience stays off")
	}
	if n := count(av.AgentDescription); n > 300 {
		bad("agent_view.agent_description", n, 300)
	}
	if !m.Features.AppHome.HomeTabEnabled || !m.Features.AppHome.MessagesTabEnabled {
		t.Error("App Home needs home_tab_enabled and messages_tab_enabled")
	}
	var shortcut bool
	for _, s := range m.Features.Shortcuts {
		if s.Type != "message" && s.Type != "global" {
			t.Errorf("shortcut %q has type %q, want message or global", s.Name, s.Type)
		}
		if count(s.Name) > 24 || count(s.Description) > 150 || s.CallbackID == "" || count(s.CallbackID) > 255 {
			t.Errorf("shortcut %+v out of Slack's bounds (name 24, description 150, callback_id 1-255)", s)
		}
		shortcut = shortcut || (s.Type == "message" && s.CallbackID == slack.DefaultShortcutID)
	}
	if !shortcut {
		t.Errorf("no message shortcut with callback_id %q", slack.DefaultShortcutID)
	}
	cmd := regexp.MustCompile(`^/[a-z0-9_-]{1,32}$`)
	for _, c := range m.Features.SlashCommands {
		if !cmd.MatchString(c.Command) || count(c.Description) > 2000 || count(c.UsageHint) > 1000 {
			t.Errorf("slash command %+v out of Slack's bounds", c)
		}
	}
	for _, want := range []string{"assistant:write", "chat:write", "im:history", "users:read"} {
		if !slices.Contains(m.OAuthConfig.Scopes.Bot, want) {
			t.Errorf("bot scope %s missing", want)
		}
	}
	for _, want := range []string{"app_home_opened", "app_context_changed", "message.im", "app_mention"} {
		if !slices.Contains(m.Settings.EventSubscriptions.BotEvents, want) {
			t.Errorf("bot event %s not subscribed", want)
		}
	}
}
