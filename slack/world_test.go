package slack_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

// People of the fake workspace.
const (
	alice = "UALICE"
	bob   = "UBOB"
	admin = "UADMIN"

	general = "CGENERAL"
	random  = "CRANDOM"
)

// compareModels are two catalog models a /compare in the tests uses.
var compareModels = []string{"google/gemini-2.5-flash", "openai/gpt-5-mini"}

// world is one running orchat on Slack: the fake Slack, the test stack (the
// upstream simulator, a real SQLite ledger, the real commands and engine)
// and the adapter under test.
type world struct {
	t       *testing.T
	slack   *slacktest.Server
	sim     *openroutertest.Server
	store   *accounts.Store
	engine  *bot.Engine
	st      *stacktest.Stack
	adapter *slack.Adapter
	metrics *stacktest.Metrics
	logs    *stacktest.SyncBuffer
	// endpoint is the adapter's HTTP handler in http mode.
	endpoint string

	mu       sync.Mutex
	requests []*openroutertest.Request // what the simulator was asked
	finals   map[string]bot.Message    // the engine's last version of each message, by id
	last     *slacktest.Delivery       // the last delivery a helper sent
}

// setup changes a world before it starts.
type setup struct {
	opts    slack.Options
	sim     openroutertest.Options
	handler func(w *world) bot.Handler // replaces the engine
	http    bool                       // http mode, served on loopback
}

// newWorld starts a world; it stops with the test, after checking that
// no token or secret reached the log.
func newWorld(t *testing.T, change ...func(*setup)) *world {
	t.Helper()
	w := &world{t: t, slack: slacktest.MustStart(t, slacktest.Options{}), metrics: &stacktest.Metrics{Platform: bot.PlatformSlack}, logs: &stacktest.SyncBuffer{}, finals: map[string]bot.Message{}}
	for _, name := range []struct{ id, name string }{{alice, "Alice"}, {bob, "Bob"}, {admin, "Ada Admin"}} {
		w.slack.SetUser(name.id, name.name)
	}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	s := setup{sim: openroutertest.Options{TokensPerSecond: 600}}
	for _, c := range change {
		c(&s)
	}
	s.sim.FaultFunc = func(r *openroutertest.Request) *openroutertest.Fault {
		w.mu.Lock()
		w.requests = append(w.requests, r)
		w.mu.Unlock()
		return nil
	}
	st := stacktest.MustOpen(t, stacktest.Options{
		Sim: s.sim, Admins: []bot.Identity{w.identity(admin)}, CompareModels: compareModels, Logger: log,
	})
	w.sim, w.store, w.engine, w.st = st.Sim, st.Store, st.Engine, st

	var handler bot.Handler = recorder{w: w, next: w.engine}
	if s.handler != nil {
		handler = s.handler(w)
	}
	opts := s.opts
	opts.BotToken, opts.AppToken, opts.APIURL = w.slack.BotToken, w.slack.AppToken, w.slack.APIURL()
	opts.Commands, opts.Handler, opts.History, opts.Logger, opts.Metrics = st.Commands, handler, stacktest.History, log, w.metrics
	if opts.UpdatesPerMinute == 0 {
		opts.UpdatesPerMinute = 6000
	}
	if s.http {
		opts.Mode, opts.SigningSecret = slack.ModeHTTP, slacktest.Secret
	}
	var err error
	w.adapter, err = slack.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.http {
		srv := httptest.NewServer(w.adapter.HTTPHandler())
		t.Cleanup(srv.Close)
		w.endpoint = srv.URL + "/slack/events"
		w.slack.UseHTTP(w.endpoint, slacktest.Secret)
	}

	stop := stacktest.Go(t, w.adapter.Run)
	t.Cleanup(func() {
		stop()
		w.adapter.Wait()
		w.engine.Drain(context.Background())
		w.checkNoSecretsLogged()
	})
	w.eventually("the adapter connects", w.adapter.Connected)
	return w
}

func (w *world) identity(user string) bot.Identity {
	return bot.Identity("slack:" + slacktest.TeamID + ":" + user)
}

// checkNoSecretsLogged fails the test if a token or the signing secret
// appears anywhere in the log.
func (w *world) checkNoSecretsLogged() {
	w.t.Helper()
	log := w.logs.String()
	for _, secret := range []string{slacktest.BotToken, slacktest.AppToken, slacktest.Secret, stacktest.APIKey} {
		if strings.Contains(log, secret) {
			w.t.Errorf("the log holds a secret (%.10s…)", secret)
		}
	}
}

// eventually polls cond until it holds, failing the test after a while.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mention mentions the bot and waits for the finished answer in the
// thread; it returns the mention's delivery and the answer.
func (w *world) mention(p slacktest.Post) (*slacktest.Delivery, slacktest.Message) {
	w.t.Helper()
	d := w.slack.Mention(p)
	w.setLast(d)
	thread := p.Thread
	if thread == "" {
		thread = d.TS
	}
	return d, w.answerAfter(p.Channel, thread, d.TS)
}

// say writes a message without a mention and waits for the answer after
// it in the thread (or at the top of a DM).
func (w *world) say(p slacktest.Post) slacktest.Message {
	w.t.Helper()
	d := w.slack.Say(p)
	w.setLast(d)
	return w.answerAfter(p.Channel, p.Thread, d.TS)
}

func (w *world) setLast(d *slacktest.Delivery) {
	w.mu.Lock()
	w.last = d
	w.mu.Unlock()
}

// answerAfter waits for the bot's finished answer after ts: in the thread
// when thread is set, else at the channel's top level.
func (w *world) answerAfter(channel, thread, ts string) slacktest.Message {
	w.t.Helper()
	var got slacktest.Message
	w.eventually("the bot answers after "+ts, func() bool {
		for _, m := range w.slack.BotMessages(channel) {
			if m.ThreadTS != thread || !after(m.TS, ts) {
				continue
			}
			if st := w.final(m.TS).Status; isAnswer(m) && finished(m) && (st == bot.StatusDone || st == bot.StatusFailed) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// isAnswer reports whether a message is a model's answer (not a notice).
func isAnswer(m slacktest.Message) bool {
	for _, id := range m.BlockIDs() {
		if strings.HasPrefix(id, "orchat.reply") {
			return true
		}
	}
	return false
}

// finished reports whether a message shows its footer (not the "…" of a
// message still streaming).
func finished(m slacktest.Message) bool {
	lines := strings.Split(m.Visible(), "\n")
	ids := m.BlockIDs()
	return len(ids) > 0 && ids[len(ids)-1] == "orchat.footer" && lines[len(lines)-1] != "…"
}

func after(ts, than string) bool { return than == "" || ts > than }

// balance returns a user's balance.
func (w *world) balance(user string) bot.Balance {
	w.t.Helper()
	b, err := w.store.Balance(context.Background(), w.identity(user))
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// charges returns the charge rows of a user's ledger.
func (w *world) charges(user string) []bot.Entry {
	w.t.Helper()
	rows, err := w.store.History(context.Background(), w.identity(user), 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []bot.Entry
	for _, e := range rows {
		if e.Kind == bot.EntryCharge {
			out = append(out, e)
		}
	}
	return out
}

// simRequests returns the chat requests the upstream simulator received.
func (w *world) simRequests() []*openroutertest.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*openroutertest.Request(nil), w.requests...)
}

// final returns the engine's last version of the message Slack knows as ts.
func (w *world) final(ts string) bot.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finals[ts]
}

// recorder sits between the adapter and the engine and remembers the last
// version of every message the engine wrote, so tests can compare what
// Slack shows with what the engine meant.
type recorder struct {
	w    *world
	next bot.Handler
}

func (r recorder) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	return r.next.Handle(ctx, ev, &stacktest.Tap{Out: out, OnWrite: func(id string, m bot.Message, _ bool) {
		r.w.mu.Lock()
		r.w.finals[id] = m
		r.w.mu.Unlock()
	}})
}
