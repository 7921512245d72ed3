package bot_test

import (
	"strings"
	"testing"

	"github.com/orchat/orchat/bot"
)

// TestParseIdentity: one person has one spelling. A Discord id with leading
// zeros is the same user as without them (an admin's /topup discord:0123
// must not create a second account), and ids Discord never issues are
// refused.
func TestParseIdentity(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"discord:123456789012345678", "discord:123456789012345678"},
		{"discord:0123", "discord:123"},
		{"discord:000000000000000000123", "discord:123"},
		{"discord:18446744073709551615", "discord:18446744073709551615"},
		{"slack:T0123ABCD:U0456EFGH", "slack:T0123ABCD:U0456EFGH"},
		{"console:007", "console:007"},
	} {
		got, err := bot.ParseIdentity(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("ParseIdentity(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"discord:0", "discord:000", "discord:18446744073709551616", "discord:+123", "discord:12a", "discord:"} {
		if got, err := bot.ParseIdentity(in); bot.ErrorCode(err) != bot.EINVALID {
			t.Errorf("ParseIdentity(%q) = %q, %v; want EINVALID", in, got, err)
		}
	}
	// Stored identities are canonical: the long spelling is not one.
	err := bot.Identity("discord:0123").Validate()
	if msg := bot.ErrorMessage(err); bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(msg, "discord:123") {
		t.Errorf(`Validate("discord:0123") = %v; want EINVALID naming discord:123`, err)
	}
}
