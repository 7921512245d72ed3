package scheduler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/scheduler"
)

func TestAllowanceRefill(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(start)
	o := storeOptions(clock, time.UTC)
	o.SignupBonus = 0
	store := MustOpenTempStore(t, o)
	const guild = "discord:123456789012345678"
	const alice bot.Identity = "console:alice"
	if _, _, err := store.FundPool(ctx, bot.PoolAdjustment{Community: guild, Amount: 10_000, Key: "fund", Actor: "console:admin"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.SetSetting(ctx, bot.SettingUpdate{Community: guild, Key: bot.SettingAllowance, Value: "1000 every 1d", Actor: "console:admin"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.EnsureUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if err := store.NoteMember(ctx, guild, alice); err != nil {
		t.Fatal(err)
	}
	m := &metrics{}
	MustStart(t, scheduler.Options{Clock: clock, Allowances: store, AllowanceEvery: time.Minute, Metrics: m})

	balance := func() int64 {
		t.Helper()
		b, err := store.Balance(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return b.Balance
	}
	advanceTo(t, clock, 1, start.Add(time.Minute))
	waitRuns(t, m, scheduler.JobAllowances, 1)
	if got := balance(); got != 1_000 {
		t.Fatalf("balance after the first run=%d, want the allowance of 1,000", got)
	}
	h, err := store.Reserve(ctx, alice, 600, "spend")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Settle(ctx, h.ID, bot.Charge{Amount: 600}); err != nil {
		t.Fatal(err)
	}
	advanceTo(t, clock, 1, start.Add(2*time.Minute))
	waitRuns(t, m, scheduler.JobAllowances, 2)
	if got := balance(); got != 400 {
		t.Fatalf("balance later the same day=%d, want 400: one refill a period", got)
	}
	// The next day's first run refills.
	next := time.Date(start.Year(), start.Month(), start.Day()+1, 0, 0, 30, 0, time.UTC)
	advanceTo(t, clock, 1, next)
	waitRuns(t, m, scheduler.JobAllowances, 3)
	if got := balance(); got != 1_000 {
		t.Fatalf("balance the next day=%d, want 1,000", got)
	}
	if p, _ := store.Pool(ctx, guild); p.Balance != 10_000-1_600 {
		t.Fatalf("pool=%+v, want 8,400 left", p)
	}
	for _, r := range m.of(scheduler.JobAllowances) {
		if r.err != nil {
			t.Fatalf("run failed: %v", r.err)
		}
	}
	if rep, err := store.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify=%+v, %v", rep, err)
	}
}

// channelNotifier is a fake ChannelNotifier with a function field.
type channelNotifier struct {
	NotifyChannelFunc func(ctx context.Context, community, channel, text string) error
}

func (c *channelNotifier) NotifyChannel(ctx context.Context, community, channel, text string) error {
	return c.NotifyChannelFunc(ctx, community, channel, text)
}

func TestCommunityAlerts(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(start)
	store := MustOpenTempStore(t, storeOptions(clock, time.UTC))
	const guild, workspace = "discord:123456789012345678", "slack:T0123"
	const mod bot.Identity = "discord:900000000000000001"
	set := func(community, key, value string, actor bot.Identity) {
		t.Helper()
		if _, _, err := store.SetSetting(ctx, bot.SettingUpdate{Community: community, Key: key, Value: value, Actor: actor}); err != nil {
			t.Fatal(err)
		}
	}
	set(guild, bot.SettingPersona, "p", mod)                           // mod changed a setting: an admin to DM
	set(workspace, bot.SettingAlertsChannel, "C777", "slack:T0123:U1") // the workspace chose a channel
	for _, a := range []bot.Alert{
		{Key: guild + ":budget:d", Community: guild, Kind: bot.AlertBudget, Text: "guild budget reached"},
		{Key: workspace + ":budget:d", Community: workspace, Kind: bot.AlertBudget, Text: "workspace budget reached"},
	} {
		if _, err := store.QueueAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var dms notices
	var mu sync.Mutex
	posts := map[string][]string{}
	m := &metrics{}
	MustStart(t, scheduler.Options{Clock: clock, Alerts: store, AlertEvery: 30 * time.Second, Metrics: m,
		Notifier: dms.notifier(),
		ChannelNotifier: &channelNotifier{NotifyChannelFunc: func(_ context.Context, community, channel, text string) error {
			mu.Lock()
			defer mu.Unlock()
			posts[community+"/"+channel] = append(posts[community+"/"+channel], text)
			return nil
		}}})
	advanceTo(t, clock, 1, start.Add(30*time.Second))
	waitRuns(t, m, scheduler.JobAlerts, 1)
	advanceTo(t, clock, 1, start.Add(time.Minute))
	waitRuns(t, m, scheduler.JobAlerts, 2)
	if got := dms.get()[mod]; len(got) != 1 || got[0] != "guild budget reached" {
		t.Fatalf("DMs to the guild's admin=%v, want the alert once", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := posts[workspace+"/C777"]; len(got) != 1 || !strings.Contains(got[0], "workspace budget") {
		t.Fatalf("posts in the workspace's alerts channel=%v, want the alert once", got)
	}
	if dms.total() != 1 {
		t.Fatalf("%d DMs in all, want 1 (the workspace's alert went to its channel)", dms.total())
	}
}
