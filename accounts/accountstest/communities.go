package accountstest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchat/orchat/bot"
)

// Communities is what a store keeps for communities that run their own
// orchat: settings with their audit, pools, members and allowances,
// budgets and alerts (DESIGN.md "Communities").
type Communities interface {
	bot.SettingsStore
	bot.Pools
	bot.Budgets
	bot.Members
	bot.Alerts
	// RefillAllowances refills every member of every community with an
	// allowance, once per period.
	RefillAllowances(ctx context.Context, now time.Time) (bot.AllowanceReport, error)
	// PendingAlerts lists the alerts not sent yet; AlertSent marks one sent.
	PendingAlerts(ctx context.Context, limit int) ([]bot.Alert, error)
	AlertSent(ctx context.Context, key string, at time.Time) (bool, error)
	// AlertRecipients says where a community's alerts go.
	AlertRecipients(ctx context.Context, community string) (channel string, people []bot.Identity, err error)
}

// Communities the suite uses: a Discord guild whose id is also the id of
// a Discord user (snowflakes have one shape), and a Slack workspace.
const (
	guild     = "discord:123456789012345678"
	workspace = "slack:T0123"
	mod       = bot.Identity("discord:900000000000000001")
)

func (f *fixture) communities() Communities {
	f.t.Helper()
	c, ok := f.Store.(Communities)
	if !ok {
		f.t.Fatalf("the store %T keeps no communities", f.Store)
	}
	return c
}

func (f *fixture) set(community, channel, key, value string) bot.SettingChange {
	f.t.Helper()
	c, _, err := f.communities().SetSetting(f.ctx, bot.SettingUpdate{Community: community, Channel: channel, Key: key, Value: value, Actor: mod})
	if err != nil {
		f.t.Fatalf("SetSetting(%s %s %s=%q): %v", community, channel, key, value, err)
	}
	return c
}

func (f *fixture) fund(community string, amount int64, key string) {
	f.t.Helper()
	if _, applied, err := f.communities().FundPool(f.ctx, bot.PoolAdjustment{Community: community, Amount: amount, Key: key, Actor: admin}); err != nil || !applied {
		f.t.Fatalf("FundPool(%s, %d, %q)=%v, %v", community, amount, key, applied, err)
	}
}

func (f *fixture) pool(community string) bot.Pool {
	f.t.Helper()
	p, err := f.communities().Pool(f.ctx, community)
	if err != nil {
		f.t.Fatalf("Pool(%s): %v", community, err)
	}
	return p
}

func testCommunities(t *testing.T, b Backend) {
	t.Run("Settings", func(t *testing.T) { testSettings(t, b) })
	t.Run("Pools", func(t *testing.T) { testPools(t, b) })
	t.Run("Allowances", func(t *testing.T) { testAllowances(t, b) })
	t.Run("Budgets", func(t *testing.T) { testBudgets(t, b) })
	t.Run("Alerts", func(t *testing.T) { testAlerts(t, b) })
	t.Run("BlindVotes", func(t *testing.T) { testBlindVotes(t, b) })
	t.Run("CommunityRowsAppendOnly", func(t *testing.T) { testCommunityAppendOnly(t, b) })
}

func testSettings(t *testing.T, b Backend) {
	t.Run("SetChangeClearAudited", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		first := f.set(guild, "", bot.SettingPersona, "You are a pirate.")
		if first.Old != "" || first.New != "You are a pirate." || first.Actor != mod || first.ID == 0 {
			t.Fatalf("first change=%+v", first)
		}
		f.clock.Add(time.Minute)
		second := f.set(guild, "", bot.SettingPersona, "You are a poet.")
		if second.Old != "You are a pirate." || second.New != "You are a poet." || !second.At.Equal(Start.Add(time.Minute)) {
			t.Fatalf("second change=%+v", second)
		}
		f.set(guild, "C1", bot.SettingModel, "openai/gpt-5-mini")
		got, err := cs.CommunitySettings(f.ctx, guild)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Channel != "" || got[0].Value != "You are a poet." || got[1].Channel != "C1" || got[1].UpdatedBy != mod {
			t.Fatalf("settings=%+v", got)
		}
		_, changed, err := cs.SetSetting(f.ctx, bot.SettingUpdate{Community: guild, Key: bot.SettingPersona, Value: "You are a poet.", Actor: mod})
		if err != nil || changed {
			t.Fatalf("setting the same value again: changed=%v, %v; want no change", changed, err)
		}
		cleared := f.set(guild, "", bot.SettingPersona, "")
		if cleared.Old != "You are a poet." || cleared.New != "" {
			t.Fatalf("clear=%+v", cleared)
		}
		got, _ = cs.CommunitySettings(f.ctx, guild)
		if len(got) != 1 || got[0].Key != bot.SettingModel {
			t.Fatalf("after clearing the persona: %+v", got)
		}
		audit, err := cs.SettingChanges(f.ctx, guild, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 4 || audit[0].New != "" || audit[3].New != "You are a pirate." {
			t.Fatalf("audit (newest first)=%+v, want 4 changes", audit)
		}
		if other, _ := cs.CommunitySettings(f.ctx, workspace); len(other) != 0 {
			t.Fatalf("another community sees %+v", other)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		for _, u := range []bot.SettingUpdate{
			{Community: "discord:dm", Key: bot.SettingPersona, Value: "x", Actor: mod},
			{Community: "discord:", Key: bot.SettingPersona, Value: "x", Actor: mod},
			{Community: guild, Key: "", Value: "x", Actor: mod},
			{Community: guild, Key: bot.SettingPersona, Value: strings.Repeat("x", 9000), Actor: mod},
			{Community: guild, Key: bot.SettingPersona, Value: "x", Actor: "nobody"},
		} {
			_, _, err := cs.SetSetting(f.ctx, u)
			wantCode(t, err, bot.EINVALID)
		}
		if audit, _ := cs.SettingChanges(f.ctx, guild, 10); len(audit) != 0 {
			t.Fatalf("refused changes were audited: %+v", audit)
		}
	})

	t.Run("SeenAcrossStores", func(t *testing.T) {
		f := open(t, b)
		other := b.Reopen(t, f.Store, f.cfg).(Communities)
		f.set(guild, "", bot.SettingBudgetDaily, "5000")
		got, err := other.CommunitySettings(f.ctx, guild)
		if err != nil || len(got) != 1 || got[0].Value != "5000" {
			t.Fatalf("the second store sees %+v, %v", got, err)
		}
	})
}

func testPools(t *testing.T, b Backend) {
	t.Run("FundGrantWithdraw", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		if p := f.pool(guild); p.Balance != 0 || p.Funded != 0 {
			t.Fatalf("a pool never funded=%+v", p)
		}
		f.fund(guild, 10_000, "fund-1")
		e, applied, err := cs.GrantFromPool(f.ctx, bot.PoolGrant{Community: guild, Member: bob, Amount: 2_500, Key: "grant-1", Actor: mod, Note: "helper"})
		if err != nil || !applied || e.Amount != -2_500 || e.Member != bob || e.EntryID == 0 {
			t.Fatalf("GrantFromPool=%+v, %v, %v", e, applied, err)
		}
		// bob is new: created with the signup bonus, then given the grant.
		f.wantBalance(bob, 15_000+2_500, 0)
		if p := f.pool(guild); p.Balance != 7_500 || p.Funded != 10_000 || p.Drawn != 2_500 {
			t.Fatalf("pool after a grant=%+v", p)
		}
		if _, applied, err := cs.GrantFromPool(f.ctx, bot.PoolGrant{Community: guild, Member: bob, Amount: 2_500, Key: "grant-1", Actor: mod}); err != nil || applied {
			t.Fatalf("the same key again: applied=%v, %v", applied, err)
		}
		f.wantBalance(bob, 17_500, 0)
		if _, _, err := cs.WithdrawPool(f.ctx, bot.PoolAdjustment{Community: guild, Amount: 500, Key: "withdraw-1", Actor: admin}); err != nil {
			t.Fatal(err)
		}
		hist, err := cs.PoolHistory(f.ctx, guild, 10)
		if err != nil || len(hist) != 3 || hist[0].Kind != bot.PoolWithdraw || hist[1].Kind != bot.PoolTopUp || hist[2].Kind != bot.PoolFund {
			t.Fatalf("pool history=%+v, %v", hist, err)
		}
		rows, err := f.History(f.ctx, bob, 10)
		if err != nil || rows[0].Kind != bot.EntryGrant || rows[0].Amount != 2_500 || !strings.Contains(rows[0].Note, guild) {
			t.Fatalf("bob's ledger=%+v, %v", rows, err)
		}
		rep := f.verify()
		if rep.Pools != 1 || rep.PoolEntries != 3 {
			t.Fatalf("verify counted %d pools and %d pool rows, want 1 and 3", rep.Pools, rep.PoolEntries)
		}
	})

	t.Run("GuildPoolNeverMixesWithUser", func(t *testing.T) {
		// carol is discord:123456789012345678, the same text as guild.
		f := open(t, b)
		f.ensure(carol)
		f.fund(guild, 5_000, "fund-1")
		f.wantBalance(carol, 15_000, 0)
		if p := f.pool(guild); p.Balance != 5_000 {
			t.Fatalf("pool=%+v", p)
		}
		f.topUp(carol, 100, "topup-1")
		if p := f.pool(guild); p.Balance != 5_000 {
			t.Fatalf("a top-up of the user with the guild's id changed the pool: %+v", p)
		}
		f.verify()
	})

	t.Run("NeverBeyondThePool", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		_, _, err := cs.GrantFromPool(f.ctx, bot.PoolGrant{Community: guild, Member: bob, Amount: 1, Key: "g0", Actor: mod})
		wantCode(t, err, bot.ENOTFOUND)
		f.fund(guild, 1_000, "fund-1")
		_, _, err = cs.GrantFromPool(f.ctx, bot.PoolGrant{Community: guild, Member: bob, Amount: 1_001, Key: "g1", Actor: mod})
		wantCode(t, err, bot.EINSUFFICIENT)
		wantMessage(t, err, "1,000")
		_, _, err = cs.WithdrawPool(f.ctx, bot.PoolAdjustment{Community: guild, Amount: 1_001, Key: "w1", Actor: admin})
		wantCode(t, err, bot.EINSUFFICIENT)
		if p := f.pool(guild); p.Balance != 1_000 {
			t.Fatalf("refusals changed the pool: %+v", p)
		}
		if _, err := f.Balance(f.ctx, bob); bot.ErrorCode(err) != bot.ENOTFOUND {
			t.Fatalf("a refused grant created bob: %v", err)
		}
		f.verify()
	})

	t.Run("ConcurrentGrantsNeverOverdraw", func(t *testing.T) {
		f := open(t, b)
		other := b.Reopen(t, f.Store, f.cfg).(Communities)
		f.fund(guild, 10_000, "fund-1")
		var ok atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			cs := f.communities()
			if i%2 == 1 {
				cs = other
			}
			wg.Go(func() {
				member := bot.Identity(fmt.Sprintf("console:m%d", i%5))
				if _, applied, err := cs.GrantFromPool(context.Background(), bot.PoolGrant{Community: guild, Member: member, Amount: 700, Key: fmt.Sprintf("g%d", i), Actor: mod}); err == nil && applied {
					ok.Add(1)
				} else if bot.ErrorCode(err) != bot.EINSUFFICIENT {
					t.Errorf("grant %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if got := ok.Load(); got != 14 {
			t.Fatalf("%d grants of 700 from a pool of 10,000 went through, want 14", got)
		}
		if p := f.pool(guild); p.Balance != 10_000-14*700 {
			t.Fatalf("pool=%+v", p)
		}
		f.verify()
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		for _, a := range []bot.PoolAdjustment{
			{Community: "discord:dm", Amount: 1, Key: "k", Actor: admin},
			{Community: "console:alice", Amount: 1, Key: "k", Actor: admin},
			{Community: guild, Amount: 0, Key: "k", Actor: admin},
			{Community: guild, Amount: bot.MaxAmount + 1, Key: "k", Actor: admin},
			{Community: guild, Amount: 1, Key: "", Actor: admin},
		} {
			_, _, err := cs.FundPool(f.ctx, a)
			wantCode(t, err, bot.EINVALID)
		}
		// Member grants use keys of their own: an admin's top-up may not.
		_, _, err := f.TopUp(f.ctx, bot.Adjustment{Identity: alice, Amount: 1, Key: "pool:x", Actor: admin})
		wantCode(t, err, bot.EINVALID)
		f.verify()
	})

	t.Run("VerifyFindsTampering", func(t *testing.T) {
		f := open(t, b)
		f.fund(guild, 1_000, "fund-1")
		if err := b.Exec(t, f.Store, `UPDATE pools SET balance = 2000`); err != nil {
			t.Fatal(err)
		}
		rep, err := f.Verify(f.ctx)
		if err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), "pool "+guild) {
			t.Fatalf("verify of a tampered pool=%+v, %v", rep, err)
		}
	})
}

func testAllowances(t *testing.T, b Backend) {
	t.Run("RefillOncePerPeriod", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.fund(guild, 100_000, "fund-1")
		f.set(guild, "", bot.SettingAllowance, "20000 every 1d")
		f.ensure(alice)
		f.ensure(bob)
		for _, id := range []bot.Identity{alice, bob} {
			if err := cs.NoteMember(f.ctx, guild, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := cs.NoteMember(f.ctx, guild, alice); err != nil {
			t.Fatalf("noting a member twice: %v", err)
		}
		rep, err := cs.RefillAllowances(f.ctx, f.clock.Now())
		if err != nil || rep.Refilled != 2 || rep.Granted != 2*5_000 {
			t.Fatalf("first run=%+v, %v; want 2 members refilled by 5,000 each", rep, err)
		}
		f.wantBalance(alice, 20_000, 0)
		// Spend, then run again the same day: nothing.
		h := f.reserve(alice, 8_000, "spend")
		f.settle(h.ID, bot.Charge{Amount: 8_000})
		if rep, err := cs.RefillAllowances(f.ctx, f.clock.Add(time.Hour)); err != nil || rep.Refilled != 0 {
			t.Fatalf("second run in the period=%+v, %v", rep, err)
		}
		f.wantBalance(alice, 12_000, 0)
		// The next day: back up to 20,000; bob, who spent nothing, gets none.
		f.clock.Set(time.Date(2026, 11, 23, 0, 0, 1, 0, time.UTC))
		rep, err = cs.RefillAllowances(f.ctx, f.clock.Now())
		if err != nil || rep.Refilled != 1 || rep.Granted != 8_000 {
			t.Fatalf("next day=%+v, %v", rep, err)
		}
		f.wantBalance(alice, 20_000, 0)
		f.wantBalance(bob, 20_000, 0)
		if p := f.pool(guild); p.Balance != 100_000-18_000 || p.Drawn != 18_000 {
			t.Fatalf("pool=%+v", p)
		}
		f.verify()
	})

	t.Run("NeverBeyondThePool", func(t *testing.T) {
		f := open(t, b, func(c *Config) { c.SignupBonus = 0 })
		cs := f.communities()
		f.fund(guild, 1_500, "fund-1")
		f.set(guild, "", bot.SettingAllowance, "1000 every 7d")
		for _, id := range []bot.Identity{alice, bob} {
			f.ensure(id)
			if err := cs.NoteMember(f.ctx, guild, id); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := cs.RefillAllowances(f.ctx, f.clock.Now())
		if err != nil || rep.Granted != 1_500 || rep.Short != 1 {
			t.Fatalf("run=%+v, %v; want 1,500 given and one member short", rep, err)
		}
		if p := f.pool(guild); p.Balance != 0 {
			t.Fatalf("pool=%+v", p)
		}
		if got := f.balance(alice).Balance + f.balance(bob).Balance; got != 1_500 {
			t.Fatalf("members hold %d, want the pool's 1,500", got)
		}
		alerts, err := cs.PendingAlerts(f.ctx, 10)
		if err != nil || len(alerts) != 1 || alerts[0].Kind != bot.AlertPoolLow || alerts[0].Community != guild {
			t.Fatalf("alerts=%+v, %v; want one pool alert", alerts, err)
		}
		f.verify()
	})

	t.Run("TwoStoresRefillOnce", func(t *testing.T) {
		f := open(t, b)
		other := b.Reopen(t, f.Store, f.cfg).(Communities)
		cs := f.communities()
		f.fund(guild, 1_000_000, "fund-1")
		f.set(guild, "", bot.SettingAllowance, "30000 every 1d")
		for i := range 10 {
			id := bot.Identity(fmt.Sprintf("console:m%d", i))
			f.ensure(id)
			if err := cs.NoteMember(f.ctx, guild, id); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var granted atomic.Int64
		for _, s := range []Communities{cs, other, cs, other} {
			wg.Go(func() {
				rep, err := s.RefillAllowances(context.Background(), f.clock.Now())
				if err != nil {
					t.Error(err)
				}
				granted.Add(rep.Granted)
			})
		}
		wg.Wait()
		if got := granted.Load(); got != 10*15_000 {
			t.Fatalf("four concurrent runs granted %d, want %d once", got, 10*15_000)
		}
		f.verify()
	})
}

func testBudgets(t *testing.T, b Backend) {
	budget := bot.Budget{Community: guild, Daily: 1_000, MemberDaily: 600}
	t.Run("CapsAndReset", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.ensure(alice)
		f.ensure(bob)
		h1, err := cs.ReserveWithin(f.ctx, alice, 500, "a1", budget)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.ReserveWithin(f.ctx, alice, 200, "a2", budget)
		wantCode(t, err, bot.ERATELIMIT)
		wantMessage(t, err, "Your daily budget in this server", "600", "00:00", "free models still work")
		h2, err := cs.ReserveWithin(f.ctx, bob, 500, "b1", budget)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.ReserveWithin(f.ctx, bob, 1, "b2", budget)
		wantCode(t, err, bot.ERATELIMIT)
		wantMessage(t, err, "This server's daily budget", "1,000")
		f.wantBalance(bob, 15_000, 500)
		// Settling charges less than held: the rest is back in the budget.
		f.settle(h1.ID, bot.Charge{Amount: 100})
		u, err := cs.BudgetUse(f.ctx, guild, alice, f.clock.Now())
		if err != nil || u.All.Spent != 100 || u.All.Held != 500 || u.Member.Spent != 100 || u.Member.Held != 0 {
			t.Fatalf("use=%+v, %v", u, err)
		}
		if u.Left(budget) != 400 {
			t.Fatalf("left=%d, want 400", u.Left(budget))
		}
		if _, err := cs.ReserveWithin(f.ctx, alice, 400, "a3", budget); err != nil {
			t.Fatalf("a hold that fits after the settle: %v", err)
		}
		if err := f.Release(f.ctx, h2.ID); err != nil {
			t.Fatal(err)
		}
		f.verify()
		// The next day the caps are whole again.
		f.clock.Set(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
		if _, err := cs.ReserveWithin(f.ctx, alice, 600, "a4", budget); err != nil {
			t.Fatalf("the next day: %v", err)
		}
		f.verify()
	})

	t.Run("ExpiredHoldsFreeTheBudget", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.ensure(alice)
		if _, err := cs.ReserveWithin(f.ctx, alice, 600, "a1", budget); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Hour)
		if n, err := f.ReleaseExpired(f.ctx, f.clock.Now()); err != nil || n != 1 {
			t.Fatalf("ReleaseExpired=%d, %v", n, err)
		}
		if u, _ := cs.BudgetUse(f.ctx, guild, alice, f.clock.Now()); u.All.Used() != 0 || u.Member.Used() != 0 {
			t.Fatalf("an expired hold still counts: %+v", u)
		}
		f.verify()
	})

	t.Run("RepeatedKey", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.ensure(alice)
		h, err := cs.ReserveWithin(f.ctx, alice, 600, "a1", budget)
		if err != nil {
			t.Fatal(err)
		}
		again, err := cs.ReserveWithin(f.ctx, alice, 600, "a1", budget)
		if err != nil || again.ID != h.ID {
			t.Fatalf("the same key again=%+v, %v; want hold %d", again, err, h.ID)
		}
		if u, _ := cs.BudgetUse(f.ctx, guild, alice, f.clock.Now()); u.All.Held != 600 {
			t.Fatalf("a repeated key counted twice: %+v", u)
		}
		f.verify()
	})

	t.Run("ConcurrentHoldsNeverPassTheCap", func(t *testing.T) {
		f := open(t, b)
		other := b.Reopen(t, f.Store, f.cfg).(Communities)
		daily := bot.Budget{Community: guild, Daily: 5_000}
		for i := range 8 {
			f.ensure(bot.Identity(fmt.Sprintf("console:m%d", i)))
		}
		var wg sync.WaitGroup
		var held atomic.Int64
		for i := range 40 {
			cs := f.communities()
			if i%2 == 1 {
				cs = other
			}
			wg.Go(func() {
				id := bot.Identity(fmt.Sprintf("console:m%d", i%8))
				if _, err := cs.ReserveWithin(context.Background(), id, 300, fmt.Sprintf("k%d", i), daily); err == nil {
					held.Add(300)
				} else if bot.ErrorCode(err) != bot.ERATELIMIT {
					t.Errorf("hold %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if got := held.Load(); got != 4_800 {
			t.Fatalf("held %d under a cap of 5,000 in holds of 300, want 4,800", got)
		}
		f.verify()
	})

	t.Run("ZeroBudgetIsReserve", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.ensure(alice)
		if _, err := cs.ReserveWithin(f.ctx, alice, 15_000, "a1", bot.Budget{Community: guild}); err != nil {
			t.Fatal(err)
		}
		if u, _ := cs.BudgetUse(f.ctx, guild, alice, f.clock.Now()); u.All.Used() != 0 {
			t.Fatalf("a hold with no budget was counted: %+v", u)
		}
		f.verify()
	})
}

func testAlerts(t *testing.T, b Backend) {
	t.Run("QueuedOnceSentOnce", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		a := bot.Alert{Key: guild + ":budget:2026-11-22", Community: guild, Kind: bot.AlertBudget, Text: "The daily budget is reached."}
		if queued, err := cs.QueueAlert(f.ctx, a); err != nil || !queued {
			t.Fatalf("QueueAlert=%v, %v", queued, err)
		}
		if queued, err := cs.QueueAlert(f.ctx, a); err != nil || queued {
			t.Fatalf("the same key again=%v, %v", queued, err)
		}
		pending, err := cs.PendingAlerts(f.ctx, 10)
		if err != nil || len(pending) != 1 || pending[0].Text != a.Text {
			t.Fatalf("pending=%+v, %v", pending, err)
		}
		other := b.Reopen(t, f.Store, f.cfg).(Communities)
		first, err := cs.AlertSent(f.ctx, a.Key, f.clock.Now())
		second, err2 := other.AlertSent(f.ctx, a.Key, f.clock.Now())
		if err != nil || err2 != nil || !first || second {
			t.Fatalf("AlertSent twice=%v, %v (%v, %v); want the first only", first, second, err, err2)
		}
		if pending, _ := cs.PendingAlerts(f.ctx, 10); len(pending) != 0 {
			t.Fatalf("a sent alert is pending: %+v", pending)
		}
	})

	t.Run("Recipients", func(t *testing.T) {
		f := open(t, b)
		cs := f.communities()
		f.set(guild, "", bot.SettingAdmins, "discord:900000000000000002,role:77")
		channel, people, err := cs.AlertRecipients(f.ctx, guild)
		if err != nil || channel != "" || len(people) != 2 || people[0] != "discord:900000000000000002" || people[1] != mod {
			t.Fatalf("recipients=%q %v, %v; want the listed admin and the admin who changed settings", channel, people, err)
		}
		f.set(guild, "", bot.SettingAlertsChannel, "555")
		if channel, _, _ := cs.AlertRecipients(f.ctx, guild); channel != "555" {
			t.Fatalf("alerts channel=%q, want 555", channel)
		}
	})
}

func testBlindVotes(t *testing.T, b Backend) {
	f := open(t, b)
	models := []string{"x/a", "x/b"}
	for i, blind := range []bool{false, true} {
		id := fmt.Sprintf("c%d", i)
		if err := f.RecordCompare(f.ctx, bot.CompareRecord{ID: id, Community: guild, Requester: alice, Models: models, Blind: blind}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Vote(f.ctx, id, bob, "A"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Vote(f.ctx, id, carol, "tie"); err != nil {
			t.Fatal(err)
		}
	}
	pairs, err := f.Pairs(f.ctx, guild)
	if err != nil || len(pairs) != 1 {
		t.Fatalf("pairs=%+v, %v", pairs, err)
	}
	if p := pairs[0]; p.AWins != 2 || p.Ties != 2 || p.BlindAWins != 1 || p.BlindTies != 1 || p.BlindBWins != 0 {
		t.Fatalf("pair=%+v, want 2 wins and 2 ties of which 1 and 1 blind", p)
	}
	c, err := f.Compare(f.ctx, "c1")
	if err != nil || !c.Blind || c.Requester != alice || len(c.Models) != 2 || c.Models[1] != "x/b" {
		t.Fatalf("Compare(c1)=%+v, %v", c, err)
	}
	_, err = f.Compare(f.ctx, "nope")
	wantCode(t, err, bot.ENOTFOUND)
}

func testCommunityAppendOnly(t *testing.T, b Backend) {
	f := open(t, b)
	f.fund(guild, 1_000, "fund-1")
	f.set(guild, "", bot.SettingPersona, "p")
	for _, q := range []string{
		`UPDATE pool_entries SET amount = 5`,
		`DELETE FROM pool_entries`,
		`UPDATE setting_changes SET actor = 'console:x'`,
		`DELETE FROM setting_changes`,
	} {
		if err := b.Exec(t, f.Store, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v, want an append-only refusal", q, err)
		}
	}
	f.verify()
}
