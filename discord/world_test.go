package discord_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/stack/stacktest"
)

// compareModels are /compare's default models in the tests.
var compareModels = []string{"google/gemini-2.5-flash", "openai/gpt-5-mini"}

// world is one orchat on Discord: the fake Discord, the test stack (the
// upstream simulator, a real SQLite ledger, the real commands and engine)
// and the adapter under test, connected over loopback.
type world struct {
	t       *testing.T
	dc      *discordtest.Server
	sim     *openroutertest.Server
	store   *accounts.Store
	catalog *router.Catalog
	engine  *bot.Engine
	adapter *discord.Adapter
	metrics *stacktest.Metrics
	logs    *stacktest.SyncBuffer

	guild, general string
	alice, bob     discordtest.User
	admin          discordtest.User

	mu        sync.Mutex
	canned    map[string]string                 // prompt marker → the upstream's answer
	requests  []*openroutertest.Request         // what the simulator was asked
	handled   map[string]int                    // event id → times the handler returned
	engineMs  map[string]map[string]bot.Message // event id → message id → the engine's last version
	stop      func()
	intercept func(bot.Event) // when set, events go here instead of the engine
}

// setup changes a world before it starts.
type setup struct {
	opts      discord.Options
	fake      discordtest.Options
	sim       openroutertest.Options
	token     string // the adapter's token, when not the fake's
	noConnect bool
}

// newWorld starts a world; it stops with the test, after checking that the
// bot token never reached the log.
func newWorld(t *testing.T, change ...func(*setup)) *world {
	t.Helper()
	s := setup{sim: openroutertest.Options{TokensPerSecond: 600}}
	for _, c := range change {
		c(&s)
	}
	w := &world{
		t: t, dc: discordtest.MustStart(t, s.fake), metrics: &stacktest.Metrics{Platform: bot.PlatformDiscord}, logs: &stacktest.SyncBuffer{},
		canned: map[string]string{}, handled: map[string]int{}, engineMs: map[string]map[string]bot.Message{},
	}
	w.guild = w.dc.NewGuild()
	w.general = w.dc.NewChannel(w.guild)
	w.alice, w.bob, w.admin = w.dc.NewUser("alice"), w.dc.NewUser("bob"), w.dc.NewUser("ada")
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	next := s.sim.FaultFunc
	s.sim.FaultFunc = func(r *openroutertest.Request) *openroutertest.Fault {
		w.mu.Lock()
		w.requests = append(w.requests, r)
		var canned string
		last := lastUser(r.Messages)
		for marker, text := range w.canned {
			if strings.Contains(last, marker) {
				canned = text
			}
		}
		w.mu.Unlock()
		if canned != "" {
			return &openroutertest.Fault{Body: completion(r.Model, canned)}
		}
		if next != nil {
			return next(r)
		}
		return nil
	}
	st := stacktest.MustOpen(t, stacktest.Options{
		Sim: s.sim, Admins: []bot.Identity{w.identity(w.admin)}, CompareModels: compareModels, Logger: log,
	})
	w.sim, w.store, w.catalog, w.engine = st.Sim, st.Store, st.Catalog, st.Engine
	for _, u := range []discordtest.User{w.alice, w.bob, w.admin} {
		if _, _, err := w.store.EnsureUser(context.Background(), w.identity(u)); err != nil {
			t.Fatal(err)
		}
	}

	opts := s.opts
	opts.Token, opts.APIURL = w.dc.Token, w.dc.APIURL
	// Attachments come from the fake's CDN: its host is the one allowed,
	// over https with a client that trusts its certificate.
	if opts.AttachmentHosts == nil {
		opts.AttachmentHosts = []string{w.dc.CDNHost()}
	}
	opts.AttachmentClient = w.dc.CDNClient()
	if s.token != "" {
		opts.Token = s.token
	}
	opts.Commands, opts.Catalog, opts.History, opts.Logger, opts.Metrics = st.Commands, w.catalog, stacktest.History, log, w.metrics
	opts.Handler = recorder{w: w, next: w.engine}
	var err error
	w.adapter, err = discord.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.noConnect {
		return w
	}
	stop := stacktest.Go(t, w.adapter.Run)
	w.stop = func() {
		stop()
		w.engine.Drain(context.Background())
	}
	t.Cleanup(func() {
		w.stop()
		w.checkTokenNotLogged()
	})
	w.eventually("the adapter connects", w.adapter.Connected)
	return w
}

func (w *world) identity(u discordtest.User) bot.Identity { return bot.Identity("discord:" + u.ID) }

// can makes the upstream answer text to any prompt holding marker.
func (w *world) can(marker, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.canned[marker] = text
}

// checkTokenNotLogged fails the test if the bot token (or the upstream
// key) appears in the log.
func (w *world) checkTokenNotLogged() {
	w.t.Helper()
	log := w.logs.String()
	for _, secret := range []string{w.dc.Token, stacktest.APIKey} {
		if strings.Contains(log, secret) {
			w.t.Errorf("the log holds a secret (%.6s…)", secret)
		}
	}
}

// eventually polls cond until it holds, failing the test after a while.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	w.dc.WaitFor(w.t, what, cond)
}

// waitHandled waits until the handler has answered an event n times in all.
func (w *world) waitHandled(eventID string) {
	w.t.Helper()
	w.eventually("the bot to answer "+eventID, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.handled[eventID] > 0
	})
}

func (w *world) timesHandled(eventID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.handled[eventID]
}

// mention mentions the bot in a channel and waits until the answer is
// complete; it returns the mention and the bot's messages replying to it
// (a long answer's later parts reply to the part before).
func (w *world) mention(u discordtest.User, channel, text string, opts ...discordtest.MessageOption) (discordtest.Message, []discordtest.Message) {
	w.t.Helper()
	m := w.dc.Mention(u, channel, text, opts...)
	w.waitHandled("discord:message:" + m.ID)
	return m, w.repliesTo(m)
}

// repliesTo returns the bot's messages in a chain of replies to m.
func (w *world) repliesTo(m discordtest.Message) []discordtest.Message {
	chain := map[string]bool{m.ID: true}
	var out []discordtest.Message
	for _, b := range w.dc.BotMessages(m.ChannelID) {
		if b.MessageReference != nil && chain[b.MessageReference.MessageID] {
			chain[b.ID] = true
			out = append(out, b)
		}
	}
	return out
}

// command runs a slash command and waits until it is answered; it returns
// the interaction and the messages answering it.
func (w *world) command(u discordtest.User, channel, name string, opts ...discordtest.Option) (discordtest.Interaction, []discordtest.Message) {
	w.t.Helper()
	in := w.dc.RunCommand(u, channel, name, opts...)
	w.waitHandled("discord:interaction:" + in.ID)
	in, _ = w.dc.Interaction(in.ID)
	return in, w.dc.Responses(in.ID)
}

// click clicks a button and waits until the click is answered.
func (w *world) click(u discordtest.User, messageID, customID string) (discordtest.Interaction, []discordtest.Message) {
	w.t.Helper()
	in := w.dc.ClickButton(u, messageID, customID)
	w.waitHandled("discord:interaction:" + in.ID)
	in, _ = w.dc.Interaction(in.ID)
	return in, w.dc.Responses(in.ID)
}

// engineFinal returns the engine's last version of the messages of an
// event, in the order they were posted.
func (w *world) engineFinal(eventID string) []bot.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.engineMs[eventID]
	out := make([]bot.Message, 0, len(msgs))
	for i := 1; i <= len(msgs); i++ {
		out = append(out, msgs[fmt.Sprint(i)])
	}
	return out
}

func (w *world) balance(u discordtest.User) int64 {
	w.t.Helper()
	b, err := w.store.Balance(context.Background(), w.identity(u))
	if err != nil {
		w.t.Fatal(err)
	}
	return b.Balance
}

func (w *world) entries(u discordtest.User, kind bot.EntryKind) []bot.Entry {
	w.t.Helper()
	rows, err := w.store.History(context.Background(), w.identity(u), 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []bot.Entry
	for _, e := range rows {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// asked returns the simulator's requests whose last user message holds s.
func (w *world) asked(s string) []*openroutertest.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*openroutertest.Request
	for _, r := range w.requests {
		if strings.Contains(lastUser(r.Messages), s) {
			out = append(out, r)
		}
	}
	return out
}

// recorder is the handler the adapter sees: the engine, plus a record of
// which events it answered and the engine's own messages.
type recorder struct {
	w    *world
	next bot.Handler
}

func (r recorder) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	r.w.mu.Lock()
	intercept := r.w.intercept
	r.w.mu.Unlock()
	if intercept != nil {
		intercept(ev)
		return nil
	}
	// The engine's messages are kept by the order they were posted in
	// ("1", "2", …), each in its last version.
	order := map[string]string{} // adapter id → post order
	tap := &stacktest.Tap{Out: out, OnWrite: func(id string, m bot.Message, posted bool) {
		r.w.mu.Lock()
		defer r.w.mu.Unlock()
		if posted {
			order[id] = fmt.Sprint(len(order) + 1)
		}
		if r.w.engineMs[ev.ID] == nil {
			r.w.engineMs[ev.ID] = map[string]bot.Message{}
		}
		r.w.engineMs[ev.ID][order[id]] = m
	}}
	err := r.next.Handle(ctx, ev, tap)
	r.w.mu.Lock()
	r.w.handled[ev.ID]++
	r.w.mu.Unlock()
	return err
}

func lastUser(msgs []bot.ChatMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == bot.RoleUser {
			return msgs[i].Content
		}
	}
	return ""
}

// completion is an upstream answer holding text, as OpenRouter writes a
// non-streamed completion.
func completion(model, text string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "gen-canned", "provider": "Simulated", "model": model, "object": "chat.completion", "created": time.Now().Unix(),
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": text}}},
		"usage":   map[string]any{"prompt_tokens": 50, "completion_tokens": len(text) / 4, "total_tokens": 50 + len(text)/4, "cost": 0.0004},
	})
	return string(b)
}

// sentBodies returns the JSON bodies of every request that created or
// edited a message.
func sentBodies(dc *discordtest.Server) []map[string]any {
	var out []map[string]any
	for _, r := range dc.Requests() {
		msg := strings.Contains(r.Path, "/messages") || (strings.HasPrefix(r.Path, "/webhooks/") && r.Method == "POST")
		if (r.Method == "POST" || r.Method == "PATCH") && msg {
			if f := r.Fields(); f != nil {
				out = append(out, f)
			}
		}
	}
	return out
}
