package slack_test

import (
	"os"
	"strings"
	"testing"

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
