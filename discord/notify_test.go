package discord_test

import (
	"context"
	"testing"
)

// TestNotify: a notice no request asked for (the scheduler's "free requests
// are back") reaches the user as a DM that pings nobody.
func TestNotify(t *testing.T) {
	w := newWorld(t)
	if err := w.adapter.Notify(context.Background(), w.identity(w.alice), "Your free-model requests are back: 50 for today. @everyone"); err != nil {
		t.Fatal(err)
	}
	dm := w.dc.DMChannel(w.alice.ID)
	var found bool
	for _, m := range w.dc.Messages() {
		if m.ChannelID == dm && m.Content == "Your free-model requests are back: 50 for today. @everyone" {
			found = true
			if m.AllowedMentions == nil || len(m.AllowedMentions.Parse) != 0 {
				t.Fatalf("the notice was sent with allowed mentions %+v", m.AllowedMentions)
			}
		}
	}
	if !found {
		t.Fatalf("no DM to alice among %+v", w.dc.Messages())
	}
	if err := w.adapter.Notify(context.Background(), "slack:T1:U1", "hi"); err == nil {
		t.Fatal("a Slack identity was accepted")
	}
}

// TestNotifyChannel: a community's alert reaches its alerts channel,
// pinging nobody.
func TestNotifyChannel(t *testing.T) {
	w := newWorld(t)
	text := "orchat: the pool of this server is down to 10 tokens. @everyone"
	if err := w.adapter.NotifyChannel(context.Background(), "discord:"+w.guild, w.general, text); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range w.dc.Messages() {
		if m.ChannelID == w.general && m.Content == text {
			found = true
			if m.AllowedMentions == nil || len(m.AllowedMentions.Parse) != 0 {
				t.Fatalf("the alert was sent with allowed mentions %+v", m.AllowedMentions)
			}
		}
	}
	if !found {
		t.Fatalf("no alert in the channel among %+v", w.dc.Messages())
	}
	if err := w.adapter.NotifyChannel(context.Background(), "slack:T1", "C1", "hi"); err == nil {
		t.Fatal("a Slack workspace was accepted")
	}
}
