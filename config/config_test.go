package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestConfig(t *testing.T) {
	t.Run("NoFileUsesDefaults", func(t *testing.T) {
		cfg, err := Load("", noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.Accounts.SignupBonus, int64(15000); got != want {
			t.Fatalf("signup_bonus=%d, want %d", got, want)
		}
		if got, want := cfg.Stream.EditInterval.Seconds(), 1.0; got != want {
			t.Fatalf("edit_interval=%vs, want %vs", got, want)
		}
	})

	t.Run("ExampleFileIsTheDefaults", func(t *testing.T) {
		cfg, err := Load("../config.example.toml", noEnv)
		if err != nil {
			t.Fatal(err)
		}
		def := Default()
		// The example leaves catalog_cache empty and tiers commented; every
		// other key must equal the default, so the file documents the truth.
		if !reflect.DeepEqual(cfg.Accounts, def.Accounts) || !reflect.DeepEqual(cfg.OpenRouter, def.OpenRouter) ||
			!reflect.DeepEqual(cfg.Scheduler, def.Scheduler) || !reflect.DeepEqual(cfg.Bot, def.Bot) ||
			cfg.Router.MaxTokens != def.Router.MaxTokens || cfg.Billing != def.Billing ||
			cfg.HTTP != def.HTTP || cfg.Log != def.Log || cfg.Console != def.Console {
			t.Fatalf("config.example.toml drifted from Default:\n%+v\n%+v", cfg, def)
		}
	})

	t.Run("EveryDocumentedSectionExists", func(t *testing.T) {
		b, err := os.ReadFile("../config.example.toml")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"[openrouter]", "[router]", "[billing]", "[accounts]", "[scheduler]", "[discord]", "[slack]", "[console]", "[http]", "[log]", "admins ="} {
			if !strings.Contains(string(b), s) {
				t.Errorf("config.example.toml lacks %s", s)
			}
		}
	})

	t.Run("EnvExpansionAndSecretOverride", func(t *testing.T) {
		env := map[string]string{"MY_KEY": "sk-or-file", "DISCORD_BOT_TOKEN": "from-env"}
		cfg, err := Parse(strings.NewReader("[openrouter]\napi_key = \"${MY_KEY}\"\n[discord]\ntoken = \"from-file\"\n"), func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.OpenRouter.APIKey, "sk-or-file"; got != want {
			t.Fatalf("api_key=%q, want %q", got, want)
		}
		if got, want := cfg.Discord.Token, "from-env"; got != want {
			t.Fatalf("discord.token=%q, want the environment's %q", got, want)
		}
	})

	t.Run("WarnHoldShorterThanRequest", func(t *testing.T) {
		cfg, err := Parse(strings.NewReader("[accounts]\nhold_ttl = \"2m\"\n"), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "not charged") {
			t.Fatalf("warnings %q", w)
		}
		if w := Default().Warnings(); len(w) != 0 {
			t.Fatalf("the defaults warn: %q", w)
		}
	})

	for _, tt := range []struct {
		name, toml, want string
	}{
		{"ErrUnknownKey", "[accounts]\nsignup_bonsu = 5\n", "unknown key accounts.signup_bonsu"},
		{"ErrWrongType", "[accounts]\nsignup_bonus = \"lots\"\n", "signup_bonus"},
		{"ErrNegativeBonus", "[accounts]\nsignup_bonus = -1\n", "accounts.signup_bonus = -1: must be between 0"},
		{"ErrBadDuration", "[stream]\nedit_interval = \"soon\"\n", "not a duration"},
		{"ErrBadTimezone", "[scheduler]\ntimezone = \"Mars/Olympus\"\n", `scheduler.timezone = "Mars/Olympus"`},
		{"ErrBadSort", "[router.provider]\nsort = \"fastest\"\n", `router.provider.sort = "fastest"`},
		{"ErrBadAdmin", "admins = [\"discord:\"]\n", `admins = "discord:"`},
		{"ErrUnsetEnv", "[openrouter]\napi_key = \"${NOT_SET_ANYWHERE}\"\n", "${NOT_SET_ANYWHERE}"},
		{"ErrNotTOML", "this is = = not toml", "config: line 1"},
		{"ErrNegativeMaxRetryAfter", "[openrouter]\nmax_retry_after = \"-5s\"\n", "openrouter.max_retry_after = -5s"},
		{"ErrCompareOneModel", "[compare]\nmodels = [\"a/b\"]\n", "compare.models"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.toml), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err=%v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRestartNeeded(t *testing.T) {
	old := Default()
	same := Default()
	same.Admins = []string{"console:ada"}
	same.Bot.SystemPrompt = "You are terse."
	same.Bot.RateLimitPerMinute = 1
	same.Router.Tiers = map[string][]string{"fast": {"x/y"}}
	same.Billing.USDPerToken = 0.000002
	if keys := same.RestartNeeded(old); len(keys) != 0 {
		t.Fatalf("settings a reload applies are named as needing a restart: %v", keys)
	}
	changed := Default()
	changed.Discord.Token = "secret-token"
	changed.HTTP.Addr = "127.0.0.1:1"
	changed.Accounts.Database = "other.db"
	changed.Log.Format = "json"
	keys := changed.RestartNeeded(old)
	for _, want := range []string{"discord.token", "http.addr", "accounts.database", "log"} {
		if !slices.Contains(keys, want) {
			t.Errorf("RestartNeeded=%v lacks %s", keys, want)
		}
	}
	if strings.Contains(strings.Join(keys, " "), "secret-token") {
		t.Fatalf("RestartNeeded shows a secret: %v", keys)
	}
}
