package slack_test

import (
	"context"
	"strings"
	"testing"
)

// TestNotify: a notice no request asked for (the scheduler's "free requests
// are back") reaches the user as a DM, escaped so it pings nobody.
func TestNotify(t *testing.T) {
	w := newWorld(t)
	if err := w.adapter.Notify(context.Background(), w.identity(alice), "Your free-model requests are back: 50 for today. <!channel>"); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, m := range w.slack.Messages(alice) {
		got += m.Text
	}
	if !strings.Contains(got, "requests are back") || !strings.Contains(got, "&lt;!channel&gt;") {
		t.Fatalf("alice's DM holds %q", got)
	}
	if err := w.adapter.Notify(context.Background(), "discord:1", "hi"); err == nil {
		t.Fatal("a Discord identity was accepted")
	}
}

// TestNotifyChannel: a community's alert reaches its alerts channel,
// escaped so it pings nobody.
func TestNotifyChannel(t *testing.T) {
	w := newWorld(t)
	if err := w.adapter.NotifyChannel(context.Background(), "slack:T0FAKE", general, "orchat: the daily budget is reached. <!channel>"); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, m := range w.slack.Messages(general) {
		got += m.Text
	}
	if !strings.Contains(got, "daily budget is reached") || !strings.Contains(got, "&lt;!channel&gt;") {
		t.Fatalf("the channel holds %q", got)
	}
	if err := w.adapter.NotifyChannel(context.Background(), "discord:1", "1", "hi"); err == nil {
		t.Fatal("a Discord server was accepted")
	}
}
