package bot

import (
	"strconv"
	"strings"
)

// Identity names one user on one platform: "discord:<user id>",
// "slack:<team id>:<user id>" or "console:<name>". Balances, free-tier
// counters and admin rights are per identity.
type Identity string

// Platforms that identities may name.
const (
	PlatformDiscord = "discord"
	PlatformSlack   = "slack"
	PlatformConsole = "console"
)

// MaxIdentityLen bounds an identity so a pasted essay is refused, not stored.
const MaxIdentityLen = 128

// Platform returns the part of the identity before the first colon.
func (id Identity) Platform() string {
	p, _, _ := strings.Cut(string(id), ":")
	return p
}

// String returns the identity as written.
func (id Identity) String() string { return string(id) }

// ParseIdentity validates s and returns it as an Identity, written the one
// way the platform writes it: discord:0123 is discord:123, or an admin
// typing a stray zero would create a second account for the same person.
// The error is an EINVALID *Error that says which shape was expected.
func ParseIdentity(s string) (Identity, error) {
	id := Identity(s).canonical()
	return id, id.Validate()
}

// canonical writes a Discord user id without leading zeros, as Discord
// does; anything else stays as it is.
func (id Identity) canonical() Identity {
	rest, ok := strings.CutPrefix(string(id), PlatformDiscord+":")
	if !ok || len(rest) < 2 || rest[0] != '0' || !isDigits(rest) {
		return id
	}
	if n := strings.TrimLeft(rest, "0"); n != "" {
		return Identity(PlatformDiscord + ":" + n)
	}
	return Identity(PlatformDiscord + ":0")
}

// Validate reports whether the identity has one of the known shapes.
func (id Identity) Validate() error {
	s := string(id)
	if s == "" {
		return Errorf(EINVALID, "A user is required, such as discord:123456789012345678, slack:T0123:U0456 or console:alice.")
	}
	if len(s) > MaxIdentityLen {
		return Errorf(EINVALID, "That user name is %d characters long; the limit is %d.", len(s), MaxIdentityLen)
	}
	platform, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Errorf(EINVALID, "%q is not a user: write platform:id, such as discord:123456789012345678, slack:T0123:U0456 or console:alice.", Clip(s, 40))
	}
	switch platform {
	case PlatformDiscord:
		if !isSnowflake(rest) {
			return Errorf(EINVALID, "%q is not a Discord user: write discord: followed by the numeric user id, such as discord:123456789012345678.", Clip(s, 40))
		}
		if c := id.canonical(); c != id {
			// Stored identities are canonical: one person, one account.
			return Errorf(EINVALID, "%q is not a Discord user id as Discord writes it: write %s (no leading zeros).", Clip(s, 40), Clip(string(c), 40))
		}
	case PlatformSlack:
		team, user, ok := strings.Cut(rest, ":")
		if !ok || !isSlackID(team) || !isSlackID(user) {
			return Errorf(EINVALID, "%q is not a Slack user: write slack:TEAM:USER, such as slack:T0123ABCD:U0456EFGH.", Clip(s, 40))
		}
	case PlatformConsole:
		if !isName(rest) {
			return Errorf(EINVALID, "%q is not a console user: write console: followed by 1-64 letters, digits, '.', '_' or '-', such as console:alice.", Clip(s, 40))
		}
	default:
		return Errorf(EINVALID, "%q names an unknown platform %q: use discord:, slack: or console:.", Clip(s, 40), Clip(platform, 40))
	}
	return nil
}

// isSnowflake reports whether s is a Discord id: a positive 64-bit number
// in decimal.
func isSnowflake(s string) bool {
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0 && isDigits(s)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func isSlackID(s string) bool {
	if len(s) < 2 || len(s) > 24 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
