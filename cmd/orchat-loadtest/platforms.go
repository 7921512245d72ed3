package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
)

// loopbackClient is the adapters' HTTP client to their fake: enough idle
// connections that hundreds of concurrent answers reuse them.
func loopbackClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// awaitConnected waits until an adapter says it is connected.
func awaitConnected(name string, ok func() bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("loadtest: the %s adapter did not connect to its fake within 15s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// discordDriver runs the real Discord adapter against discordtest: asks
// and compares are slash commands (interactions), answered by deferred
// responses and webhook edits over loopback HTTP, the events arriving
// over the fake's gateway websocket.
type discordDriver struct {
	lt      *loadRun
	dc      *discordtest.Server
	ad      *discord.Adapter
	guild   string
	channel string
	cancel  context.CancelFunc
	done    chan error
}

func newDiscordDriver(lt *loadRun) (*discordDriver, error) {
	c := lt.m.Config
	dc, err := discordtest.Start(discordtest.Options{})
	if err != nil {
		return nil, err
	}
	lt.m.onClose(func() error { dc.Close(); return nil })
	guild := dc.NewGuild()
	p := &discordDriver{lt: lt, dc: dc, guild: guild, channel: dc.NewChannel(guild), done: make(chan error, 1)}
	if rate := lt.o.Edit429Rate; rate > 0 {
		dc.RateLimit(discordtest.RateLimit{
			Method: http.MethodPatch, Path: "/webhooks/", Count: math.MaxInt, RetryAfter: lt.o.Edit429Wait,
			Match: func(discordtest.Request) bool { return rand.Float64() < rate },
		})
	}
	p.ad, err = discord.New(discord.Options{
		Token: dc.Token, APIURL: dc.APIURL, Commands: lt.st.Commands, Catalog: lt.st.Catalog, Rules: lt.st.Communities, Handler: lt,
		History:    bot.HistoryLimit{Messages: c.Bot.HistoryMessages, Chars: c.Bot.HistoryChars},
		Logger:     lt.m.logger().With("component", "discord"),
		HTTPClient: loopbackClient(), DrainTimeout: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- p.ad.Run(ctx) }()
	if err := awaitConnected("Discord", p.ad.Connected); err != nil {
		p.stop(context.Background())
		return nil, err
	}
	return p, nil
}

func (p *discordDriver) newUsers(n int) []*loadUser {
	users := make([]*loadUser, n)
	for i := range users {
		u := p.dc.NewUser(fmt.Sprintf("load%05d", i+1))
		users[i] = &loadUser{id: bot.Identity("discord:" + u.ID), name: u.Username, ref: u.ID, dcRef: u}
	}
	return users
}

func (p *discordDriver) submit(ctx context.Context, r *loadRequest) (string, error) {
	name := "ask"
	if r.compare {
		name = "compare"
	}
	in := p.dc.RunCommand(r.user.dcRef.(discordtest.User), p.channel, name, discordtest.Option{Name: "prompt", Value: r.prompt})
	for range p.lt.o.Duplicates - 1 {
		if !p.dc.Redeliver(in.ID) {
			p.lt.problem("discord: interaction %s was no longer in the gateway's replay log, so it could not be delivered again", in.ID)
		}
	}
	return "discord:interaction:" + in.ID, nil
}

func (p *discordDriver) stop(ctx context.Context) {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			p.lt.problem("discord adapter: %v", err)
		}
	case <-ctx.Done():
		p.lt.problem("discord adapter: did not stop in time")
	}
}

// slackDriver runs the real Slack adapter against slacktest over Socket
// Mode: asks are mentions (message + app_mention events, answered in a
// thread: a native stream, or with --slack-stream update chat.postMessage
// and paced chat.update), compares are slash commands.
type slackDriver struct {
	lt      *loadRun
	sl      *slacktest.Server
	ad      *slack.Adapter
	channel string
	cancel  context.CancelFunc
	done    chan error
}

func newSlackDriver(lt *loadRun) (*slackDriver, error) {
	c := lt.m.Config
	sl, err := slacktest.Start(slacktest.Options{})
	if err != nil {
		return nil, err
	}
	lt.m.onClose(func() error { sl.Close(); return nil })
	p := &slackDriver{lt: lt, sl: sl, channel: "CLOADTEST", done: make(chan error, 1)}
	if rate := lt.o.Edit429Rate; rate > 0 {
		// Edits are chat.update, or a native stream's appends.
		for _, method := range []string{"chat.update", "chat.appendStream"} {
			sl.RateLimitShare(method, rate, int(math.Ceil(lt.o.Edit429Wait.Seconds())))
		}
	}
	// Without tiers the fake is not rate-limited: keep the workspace's
	// pace out of the way of the figures (its 429s, when asked for, still
	// apply). With them, the adapter paces chat.update at Tier 3 on the
	// fake's (scaled) minute.
	perMinute := 1_000_000
	if w := lt.o.SlackTiers; w > 0 {
		sl.Enforce(slacktest.DocumentedLimits(), w)
		perMinute = int(float64(slack.DefaultUpdatesPerMinute) * float64(time.Minute) / float64(w))
	}
	p.ad, err = slack.New(slack.Options{
		BotToken: sl.BotToken, AppToken: sl.AppToken, APIURL: sl.APIURL(), Commands: lt.st.Commands, Handler: lt,
		History:          bot.HistoryLimit{Messages: c.Bot.HistoryMessages, Chars: c.Bot.HistoryChars},
		Logger:           lt.m.logger().With("component", "slack"),
		UpdatesPerMinute: perMinute, HTTPClient: loopbackClient(),
		NativeStreaming: lt.o.SlackStream == "native",
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- p.ad.Run(ctx) }()
	if err := awaitConnected("Slack", p.ad.Connected); err != nil {
		p.stop(context.Background())
		return nil, err
	}
	return p, nil
}

func (p *slackDriver) newUsers(n int) []*loadUser {
	users := make([]*loadUser, n)
	for i := range users {
		ref, name := fmt.Sprintf("UL%06d", i+1), fmt.Sprintf("load%05d", i+1)
		p.sl.SetUser(ref, name)
		users[i] = &loadUser{id: bot.Identity("slack:" + p.sl.TeamID + ":" + ref), name: name, ref: ref}
	}
	return users
}

func (p *slackDriver) submit(ctx context.Context, r *loadRequest) (string, error) {
	var first []*slacktest.Delivery // what Slack sends for the request
	var d *slacktest.Delivery       // the one the bot answers, and its id
	var id string
	if r.compare {
		d = p.sl.SlashEvent(r.user.ref, p.channel, "compare", r.prompt)
		first, id = []*slacktest.Delivery{d}, d.TriggerID
	} else {
		var message *slacktest.Delivery
		message, d = p.sl.MentionEvents(slacktest.Post{User: r.user.ref, Channel: p.channel, Text: r.prompt})
		first, id = []*slacktest.Delivery{message, d}, d.EventID
	}
	if id == "" {
		return "", errors.New("slack: the fake's delivery has no id")
	}
	for _, f := range first {
		if err := p.sl.Deliver(f, 0); err != nil {
			return "", err
		}
	}
	for range p.lt.o.Duplicates - 1 {
		if err := p.sl.Deliver(d, 1); err != nil {
			p.lt.problem("slack: %v", err)
		}
	}
	return "slack:" + id, nil
}

func (p *slackDriver) stop(ctx context.Context) {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			p.lt.problem("slack adapter: %v", err)
		}
		p.ad.Wait()
	case <-ctx.Done():
		p.lt.problem("slack adapter: did not stop in time")
	}
}

func (p *discordDriver) community() string { return "discord:" + p.guild }

func (p *slackDriver) community() string { return "slack:" + p.sl.TeamID }

func (p *slackDriver) rateLimited() int {
	n := 0
	for _, c := range p.sl.Calls("") {
		if c.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func (p *discordDriver) rateLimited() int {
	n := 0
	for _, r := range p.dc.Requests() {
		if r.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}
