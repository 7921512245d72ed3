package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// output is the bot.Output of one event: where the answer goes (a channel,
// a thread, a DM) and how private messages reach the one user.
//
// Private messages are ephemeral (chat.postEphemeral). Slack cannot edit an
// ephemeral message, so a private message that is still streaming is held
// and posted once, finished. postEphemeral is used rather than the slash
// command's response_url because it has no budget (response_url: 5 uses in
// 30 minutes), works for mentions and buttons alike and can go into a
// thread; response_url is the fallback for channels the bot cannot post in
// (a private channel it was not invited to, a DM between other people),
// where it carries the finished message only.
type output struct {
	a       *Adapter
	team    string
	channel string
	user    string // the user who asked: private messages go to them
	thread  string // thread_ts to answer in; "" for the top level
	// dm: the event came from the user's DM with the bot, which is private
	// already, so private messages are ordinary (editable) messages there.
	dm bool
	// private: every message of this event is private (a private command).
	private     bool
	responseURL string
	intro       string      // shown above each message's first part (slash commands)
	vote        *voteTarget // the compare message a vote button was on

	mu        sync.Mutex
	seq       int
	held      map[string]*heldMessage
	introTS   map[string]bool    // the messages that carry the intro
	noChannel bool               // the bot cannot post in the channel: use response_url
	extrasTS  map[string]bool    // the messages whose thinking and files were posted
	streams   map[string]*stream // natively streamed answers, by ts
	status    bool               // the thread shows a status to clear at the end
}

// voteTarget is the compare message whose button was clicked, as Slack
// sent it with the click.
type voteTarget struct {
	channel string
	ts      string
	text    string
	blocks  []slackapi.Block
}

// heldMessage is a message that cannot be edited once posted (ephemeral,
// or through response_url): it is posted when it is finished.
type heldMessage struct {
	msg       bot.Message
	ephemeral bool
	sent      bool
}

var (
	_ bot.Output  = (*output)(nil)
	_ bot.Limiter = (*output)(nil)
)

func (a *Adapter) newOutput(team, channel, user string) *output {
	return &output{a: a, team: team, channel: channel, user: user, held: map[string]*heldMessage{}, introTS: map[string]bool{}, extrasTS: map[string]bool{}, streams: map[string]*stream{}}
}

// Limits: one message holds textLimit characters of Markdown, shown in
// several section blocks of at most 3,000 characters each; the engine's
// edit pace per message is kept (the adapter adds the workspace's pace).
func (o *output) Limits() bot.Limits { return bot.Limits{Text: textLimit} }

// Post sends a new message and returns its ts (or, for a message held
// until it is finished, an id of its own).
func (o *output) Post(ctx context.Context, m bot.Message) (string, error) {
	if o.private {
		m.Private = true
	}
	if m.Vote != nil {
		o.updateTally(ctx, m.Vote)
	}
	if m.Private && !o.dm {
		return o.hold(ctx, m, true)
	}
	o.mu.Lock()
	noChannel := o.noChannel
	o.mu.Unlock()
	if noChannel {
		return o.hold(ctx, m, false)
	}
	if o.canStream(m) {
		ts, ok, err := o.startStream(ctx, m)
		if ok || err != nil {
			return ts, err
		}
	}
	ts, err := o.postMessage(ctx, m)
	if cannotPost(err) && o.responseURL != "" {
		o.mu.Lock()
		o.noChannel = true
		o.mu.Unlock()
		return o.hold(ctx, m, false)
	}
	if err == nil {
		o.extras(ctx, ts, m)
		if m.Status != bot.StatusStreaming {
			o.clearStatus(ctx)
		}
	}
	return ts, err
}

// Edit replaces a message: chat.update, paced per workspace. Held
// messages are posted once they are finished.
func (o *output) Edit(ctx context.Context, id string, m bot.Message) error {
	if o.private {
		m.Private = true
	}
	o.mu.Lock()
	h, held := o.held[id]
	o.mu.Unlock()
	if held {
		return o.finishHeld(ctx, h, m)
	}
	o.mu.Lock()
	st := o.streams[id]
	o.mu.Unlock()
	if st != nil {
		return o.editStream(ctx, id, st, m)
	}
	return o.update(ctx, id, m)
}

func (o *output) introFor(ts string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.introTS[ts] {
		return o.intro
	}
	return ""
}

// postMessage posts m in the channel (or thread) and remembers the thread
// as one the bot takes part in.
func (o *output) postMessage(ctx context.Context, m bot.Message) (string, error) {
	intro := ""
	if m.Part == 0 {
		intro = o.intro
	}
	r := render(m, intro)
	opts := append(r.options(), slackapi.MsgOptionDisableLinkUnfurl(), slackapi.MsgOptionDisableMediaUnfurl())
	if o.thread != "" {
		opts = append(opts, slackapi.MsgOptionTS(o.thread))
	}
	var ts string
	err := o.a.call(ctx, o.team, false, func() error {
		var err error
		_, ts, err = o.a.api.PostMessageContext(ctx, o.channel, opts...)
		return err
	})
	if err != nil {
		return "", err
	}
	if intro != "" {
		o.mu.Lock()
		o.introTS[ts] = true
		o.mu.Unlock()
	}
	switch {
	case o.thread != "":
		o.a.threads.Put(threadKey(o.channel, o.thread), struct{}{})
	case !o.dm:
		// A top-level answer (a slash command's) starts a thread one can
		// reply in.
		o.a.threads.Put(threadKey(o.channel, ts), struct{}{})
	}
	return ts, nil
}

// hold keeps m until it is finished, then posts it once.
func (o *output) hold(ctx context.Context, m bot.Message, ephemeral bool) (string, error) {
	o.mu.Lock()
	o.seq++
	id := fmt.Sprintf("held:%d", o.seq)
	h := &heldMessage{ephemeral: ephemeral}
	o.held[id] = h
	o.mu.Unlock()
	return id, o.finishHeld(ctx, h, m)
}

func (o *output) finishHeld(ctx context.Context, h *heldMessage, m bot.Message) error {
	o.mu.Lock()
	if h.sent {
		o.mu.Unlock()
		o.a.log.Debug("slack: a private message changed after it was posted; the change is not shown")
		return nil
	}
	h.msg = m
	if m.Status == bot.StatusStreaming {
		o.mu.Unlock()
		return nil
	}
	h.sent = true
	o.mu.Unlock()
	if h.ephemeral {
		return o.postEphemeral(ctx, m)
	}
	return o.viaResponseURL(ctx, m, slackapi.ResponseTypeInChannel)
}

// postEphemeral shows m to the user only; where the bot cannot post, the
// response_url (when the event has one) does it.
func (o *output) postEphemeral(ctx context.Context, m bot.Message) error {
	r := render(m, "")
	opts := r.options()
	if o.thread != "" {
		opts = append(opts, slackapi.MsgOptionTS(o.thread))
	}
	err := o.a.call(ctx, o.team, false, func() error {
		_, err := o.a.api.PostEphemeralContext(ctx, o.channel, o.user, opts...)
		return err
	})
	if cannotPost(err) && o.responseURL != "" {
		return o.viaResponseURL(ctx, m, slackapi.ResponseTypeEphemeral)
	}
	return err
}

func (o *output) viaResponseURL(ctx context.Context, m bot.Message, responseType string) error {
	if o.responseURL == "" {
		return bot.Errorf(bot.EUNAVAILABLE, "I can't post in this channel: invite me with /invite and try again.")
	}
	r := render(m, o.intro)
	opts := append(r.options(), slackapi.MsgOptionResponseURL(o.responseURL, responseType))
	err := o.a.call(ctx, o.team, false, func() error {
		_, _, err := o.a.api.PostMessageContext(ctx, o.channel, opts...)
		return err
	})
	return redactURL(err, o.responseURL)
}

// redactURL removes a response_url from an error's text: net/http quotes
// the URL in its errors (a timeout, a reset connection), and for 30
// minutes anyone holding it can post into the channel.
func redactURL(err error, u string) error {
	if err == nil || u == "" || !strings.Contains(err.Error(), u) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), u, "[response_url]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// updateTally shows a vote's new tally on the compare message. Votes can
// arrive out of order; a tally with fewer votes than the one shown is
// skipped.
func (o *output) updateTally(ctx context.Context, v *bot.VoteResult) {
	t := o.vote
	if t == nil || t.ts == "" {
		return
	}
	blocks, ok := withTally(t.blocks, v.Tally)
	if !ok {
		return
	}
	total := 0
	for _, n := range v.Tally {
		total += n
	}
	key := threadKey(t.channel, t.ts)
	o.a.tallyMu.Lock()
	if shown, ok := o.a.tallies.Get(key); ok && shown > total {
		o.a.tallyMu.Unlock()
		return
	}
	o.a.tallies.Put(key, total)
	o.a.tallyMu.Unlock()
	err := o.a.call(ctx, o.team, true, func() error {
		_, _, _, err := o.a.api.UpdateMessageContext(ctx, t.channel, t.ts,
			slackapi.MsgOptionText(t.text, false), slackapi.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		o.a.log.Warn("slack: updating a compare's tally failed", "channel", t.channel, "err", err)
	}
}

// cannotPost reports whether Slack refused a post because the bot is not
// in the conversation.
func cannotPost(err error) bool {
	var se slackapi.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "not_in_channel", "channel_not_found", "user_not_in_channel":
		return true
	}
	return false
}

// maxRateLimitRetries bounds how often one call waits out a 429.
const maxRateLimitRetries = 5

// call makes one Web API call, waiting out 429s (Retry-After). update
// calls (chat.update) first take a slot of the workspace's pace, and a
// 429 on them closes the workspace's bucket for every answer.
func (a *Adapter) call(ctx context.Context, team string, update bool, fn func() error) error {
	for attempt := 0; ; attempt++ {
		if update {
			if err := a.pacer.wait(ctx, team); err != nil {
				return err
			}
		}
		err := fn()
		wait, limited := retryAfter(err)
		if !limited {
			return err
		}
		a.metrics.PlatformRateLimited(bot.PlatformSlack)
		if attempt >= maxRateLimitRetries {
			return bot.Errorf(bot.ERATELIMIT, "Slack is rate limiting this app; try again in %s.", bot.FormatWait(wait))
		}
		a.log.Warn("slack rate limited a call; waiting", "retry_after", wait, "update", update, "team", team)
		if update {
			a.pacer.block(team, wait)
			continue
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retryAfter reads a 429: slack-go returns *RateLimitedError when Slack
// sent Retry-After, a StatusCodeError 429 when it did not.
func retryAfter(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests {
		return time.Second, true
	}
	if strings.Contains(err.Error(), "ratelimited") {
		return time.Second, true
	}
	return 0, false
}
