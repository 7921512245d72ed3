package discord_test

import (
	"strings"
	"testing"
)

// TestNoFeedbackOnDiscord: /feedback rates an answer through Slack's
// buttons under it; Discord shows no answer reference a member could give
// it, so it is neither registered nor listed in /help here.
func TestNoFeedbackOnDiscord(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.eventually("the commands to be registered", func() bool { _, ok := w.dc.Commands(""); return ok })
	cmds, _ := w.dc.Commands("")
	for _, c := range cmds {
		if c.Name == "feedback" {
			t.Fatalf("/feedback is registered on Discord: %v", names(cmds))
		}
	}
	_, msgs := w.command(w.alice, w.general, "help")
	if len(msgs) != 1 || strings.Contains(msgs[0].Text(), "/feedback") || !strings.Contains(msgs[0].Text(), "/leaderboard") {
		t.Fatalf("/help=%q, want /leaderboard and no /feedback", texts(msgs))
	}
}
