package discord_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/stack/stacktest"
)

// The processes of TestShardsAcrossProcesses are this test binary run
// again with these variables set.
const (
	shardChildDB    = "ORCHAT_DISCORD_SHARD_CHILD_DB"
	shardChildAPI   = "ORCHAT_DISCORD_SHARD_CHILD_API"
	shardChildToken = "ORCHAT_DISCORD_SHARD_CHILD_TOKEN"
	shardChildName  = "ORCHAT_DISCORD_SHARD_CHILD_NAME"
)

// The tests' identify window: Discord's is 5 s.
const testIdentifyWindow = 400 * time.Millisecond

func TestMain(m *testing.M) {
	if db := os.Getenv(shardChildDB); db != "" {
		os.Exit(shardChild(db))
	}
	os.Exit(m.Run())
}

// handlerFunc answers every event with a fixed function.
type handlerFunc func(ctx context.Context, ev bot.Event, out bot.Output) error

func (f handlerFunc) Handle(ctx context.Context, ev bot.Event, out bot.Output) error {
	return f(ctx, ev, out)
}

// storeLeader is the election of the processes on a store: the
// scheduler's lease, as orchat run uses it.
func storeLeader(st *accounts.Store, holder string) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return st.TryLead(ctx, "scheduler", holder, 3*time.Second) == nil
	}
}

// shardOptions are the adapter options of one process sharing st.
func shardOptions(st *accounts.Store, name, token, api string, log *slog.Logger, h bot.Handler) discord.Options {
	return discord.Options{
		Token: token, APIURL: api, ShardCount: 0, // as GET /gateway/bot recommends
		OpenLocks: func(ctx context.Context) (discord.Locks, error) {
			l, err := st.OpenLocks(ctx, name, 3*time.Second)
			if err != nil {
				return nil, err
			}
			return l, nil
		},
		Holders: st, Leader: storeLeader(st, name),
		IdentifyInterval: testIdentifyWindow, Rebalance: 300 * time.Millisecond,
		Commands: []*bot.Command{{Name: "ping", Summary: "Answers which process serves you."}},
		Handler:  h, Logger: log,
	}
}

// shardChild is one orchat process of TestShardsAcrossProcesses: it serves
// Discord shards it claims on the shared database, answering every
// mention with its name, until its stdin closes (or it is killed).
func shardChild(db string) int {
	name := os.Getenv(shardChildName)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("process", name)
	opts := accounts.DefaultOptions()
	opts.Instance, opts.Logger = name, log
	st, err := accounts.Open(db, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	h := handlerFunc(func(ctx context.Context, ev bot.Event, out bot.Output) error {
		_, err := out.Post(ctx, bot.Message{Kind: bot.KindNotice, Status: bot.StatusDone, Text: "answered by " + name})
		return err
	})
	a, err := discord.New(shardOptions(st, name, os.Getenv(shardChildToken), os.Getenv(shardChildAPI), log, h))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	fmt.Println("ready")
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// shardProcess is a running child.
type shardProcess struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *stacktest.SyncBuffer
}

func startShardProcess(t *testing.T, db string, dc *discordtest.Server, name string) *shardProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), shardChildDB+"="+db, shardChildAPI+"="+dc.APIURL, shardChildToken+"="+dc.Token, shardChildName+"="+name)
	p := &shardProcess{name: name, cmd: cmd, stderr: &stacktest.SyncBuffer{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, p.stderr)
		}
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("%s did not start: %q, %v\n%s", name, line, err, p.stderr)
	}
	return p
}

// holders maps each shard of count to the process holding its lock ("" for none).
func holders(t *testing.T, st *accounts.Store, count int) []string {
	out := make([]string, count)
	for i := range count {
		h, err := st.WhoHolds(context.Background(), "discord-shard/"+strconv.Itoa(i))
		if err == nil {
			out[i] = h
		} else if bot.ErrorCode(err) != bot.ENOTFOUND {
			t.Fatal(err)
		}
	}
	return out
}

// guildsOnShards returns a guild and a channel in it for each of count
// shards (Discord routes a guild's events by its id).
func guildsOnShards(dc *discordtest.Server, count int) (guilds, channels []string) {
	guilds, channels = make([]string, count), make([]string, count)
	for left := count; left > 0; {
		g := dc.NewGuild()
		if i := discordtest.ShardFor(g, count); guilds[i] == "" {
			guilds[i], channels[i] = g, dc.NewChannel(g)
			left--
		}
	}
	return guilds, channels
}

// answeredBy mentions the bot in channel and returns the text of the bot's
// answer.
func answeredBy(t *testing.T, dc *discordtest.Server, u discordtest.User, channel string) string {
	t.Helper()
	m := dc.Mention(u, channel, "who serves this server?")
	var got string
	dc.WaitFor(t, "an answer in "+channel, func() bool {
		for _, b := range dc.BotMessages(channel) {
			if b.MessageReference != nil && b.MessageReference.MessageID == m.ID {
				got = b.Content
				for _, e := range b.Embeds {
					got += e.Description
				}
				return true
			}
		}
		return false
	})
	return got
}

// checkIdentifies fails t when the fake refused an IDENTIFY, or when two
// identifies of one rate-limit bucket came closer than the window.
func checkIdentifies(t *testing.T, dc *discordtest.Server, concurrency int) {
	t.Helper()
	if refused := dc.RefusedIdentifies(); len(refused) > 0 {
		t.Fatalf("the gateway refused %d identifies, first: shard %v: %s", len(refused), *refused[0].Shard, refused[0].Refused)
	}
	byBucket := map[int][]time.Time{}
	for _, id := range dc.Identifies() {
		byBucket[id.Shard[0]%concurrency] = append(byBucket[id.Shard[0]%concurrency], id.Time)
	}
	for b, times := range byBucket {
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < testIdentifyWindow {
				t.Fatalf("bucket %d identified twice %s apart (window %s)", b, gap, testIdentifyWindow)
			}
		}
	}
}

func TestShards(t *testing.T) {
	t.Run("AllInOneProcess", func(t *testing.T) {
		// One process, no shared database: it serves every shard Discord
		// recommends, identifying two buckets at a time.
		w := newWorld(t, func(s *setup) {
			s.fake.Shards, s.fake.MaxConcurrency, s.fake.IdentifyWindow = 4, 2, testIdentifyWindow
			s.opts.ShardCount, s.opts.IdentifyInterval = 0, testIdentifyWindow
		})
		w.eventually("all four shards", func() bool {
			got, n := w.dc.ConnectedShards()
			return len(got) == 4 && n == 4
		})
		if owned, count := w.adapter.Shards(); !slices.Equal(owned, []int{0, 1, 2, 3}) || count != 4 {
			t.Fatalf("the adapter serves %v of %d, want [0 1 2 3] of 4", owned, count)
		}
		checkIdentifies(t, w.dc, 2)
		_, channels := guildsOnShards(w.dc, 4)
		for i, ch := range channels {
			if got := answeredBy(t, w.dc, w.alice, ch); got == "" {
				t.Fatalf("shard %d's guild got an empty answer", i)
			}
		}
		w.eventually("the commands registered", func() bool { return w.dc.Registrations() > 0 })
		if got := w.dc.Registrations(); got != 1 {
			t.Fatalf("%d bulk overwrites of the commands, want 1", got)
		}
	})

	t.Run("FixedShards", func(t *testing.T) {
		// discord.shard_ids: this process serves shards 1 and 3 of 4 only,
		// and, without shard 0, leaves the commands to the process that has it.
		w := newWorld(t, func(s *setup) {
			s.fake.MaxConcurrency, s.fake.IdentifyWindow = 1, testIdentifyWindow
			s.opts.ShardCount, s.opts.Shards, s.opts.IdentifyInterval = 4, []int{1, 3}, testIdentifyWindow
		})
		w.eventually("shards 1 and 3", func() bool {
			got, _ := w.dc.ConnectedShards()
			return slices.Equal(got, []int{1, 3})
		})
		checkIdentifies(t, w.dc, 1)
		_, channels := guildsOnShards(w.dc, 4)
		answeredBy(t, w.dc, w.alice, channels[3])
		if got := w.dc.Registrations(); got != 0 {
			t.Fatalf("a process without shard 0 registered the commands %d times", got)
		}
	})

	t.Run("RegisteredByTheLeaderOnly", func(t *testing.T) {
		// A process that is not the leader at READY registers nothing; once
		// it leads (the leader before it died unregistered), it does, once.
		var leads atomic.Bool
		w := newWorld(t, func(s *setup) {
			s.opts.Leader = leads.Load
			s.opts.Rebalance = 50 * time.Millisecond
		})
		time.Sleep(300 * time.Millisecond) // rounds in which it does not lead
		if got := w.dc.Registrations(); got != 0 {
			t.Fatalf("a follower registered the commands %d times", got)
		}
		leads.Store(true)
		w.eventually("the new leader to register", func() bool { return w.dc.Registrations() > 0 })
		time.Sleep(300 * time.Millisecond)
		if got := w.dc.Registrations(); got != 1 {
			t.Fatalf("%d bulk overwrites, want 1", got)
		}
	})

	t.Run("ErrFixedShardBeyondRecommended", func(t *testing.T) {
		// shard_count = 0 takes Discord's count (2 here): a fixed shard 3
		// cannot be served, and Run says which key to change.
		dc := discordtest.MustStart(t, discordtest.Options{Shards: 2})
		a, err := discord.New(discord.Options{Token: dc.Token, APIURL: dc.APIURL, ShardCount: 0, Shards: []int{3}, Handler: handlerFunc(nil),
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		err = a.Run(context.Background())
		if bot.ErrorCode(err) != bot.EINVALID || !strings.Contains(bot.ErrorMessage(err), "discord.shard_ids") {
			t.Fatalf("Run = %v, want EINVALID naming discord.shard_ids", err)
		}
		if got := dc.Identifies(); len(got) != 0 {
			t.Fatalf("%d identifies, want none", len(got))
		}
	})

	t.Run("ErrShardingRequired", func(t *testing.T) {
		// Discord closes a session that would hold too many guilds with
		// 4011: Run ends saying what to change, rather than retrying.
		dc := discordtest.MustStart(t, discordtest.Options{MinShards: 4})
		a, err := discord.New(discord.Options{Token: dc.Token, APIURL: dc.APIURL, ShardCount: 2, Handler: handlerFunc(nil),
			IdentifyInterval: testIdentifyWindow, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), discordtest.WaitTimeout)
		defer cancel()
		err = a.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "discord.shard_count") {
			t.Fatalf("Run = %v, want the refused sharding named", err)
		}
	})
}

// TestFakeRefusesFastIdentifies shows the fake would fail a naive client:
// two shards in one bucket identifying together get Invalid Session.
func TestFakeRefusesFastIdentifies(t *testing.T) {
	dc := discordtest.MustStart(t, discordtest.Options{MaxConcurrency: 1, IdentifyWindow: time.Minute})
	var sessions []*discordgo.Session
	for i := range 2 {
		s, err := discordgo.New("Bot " + dc.Token)
		if err != nil {
			t.Fatal(err)
		}
		s.ShardID, s.ShardCount, s.LogLevel = i, 2, -1
		s.ShouldReconnectOnError = false
		sessions = append(sessions, s)
	}
	// discordgo asks discord.com for the gateway: point it at the fake.
	api, err := url.Parse(dc.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		s.Client = &http.Client{Transport: toFake{api: api}}
		_ = s.Open()
		defer s.Close()
	}
	dc.WaitFor(t, "a refused identify", func() bool { return len(dc.RefusedIdentifies()) > 0 })
	if got := dc.RefusedIdentifies()[0].Refused; !strings.Contains(got, "rate limited") {
		t.Fatalf("refused for %q, want the rate limit", got)
	}
	if got, _ := dc.ConnectedShards(); len(got) != 1 {
		t.Fatalf("connected shards %v, want only the first", got)
	}
}

// TestShardsAcrossProcesses runs three orchat processes on one PostgreSQL
// database against one fake Discord: the first serves every shard; the
// next two take shares over without configuration; the commands are
// registered once; one process killed (SIGKILL) gives its shards back and
// the others pick them up.
func TestShardsAcrossProcesses(t *testing.T) {
	db := postgrestest.DSN(t)
	opts := accounts.DefaultOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	st, err := accounts.Open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const count = 4
	dc := discordtest.MustStart(t, discordtest.Options{Shards: count, MaxConcurrency: 2, IdentifyWindow: testIdentifyWindow})
	alice := dc.NewUser("alice")
	_, channels := guildsOnShards(dc, count)

	allConnected := func() bool {
		got, n := dc.ConnectedShards()
		return len(got) == count && n == count
	}
	procs := map[string]*shardProcess{}
	procs["proc-0"] = startShardProcess(t, db, dc, "proc-0")
	dc.WaitFor(t, "proc-0 to serve every shard", func() bool {
		return allConnected() && slices.Equal(holders(t, st, count), []string{"proc-0", "proc-0", "proc-0", "proc-0"})
	})

	procs["proc-1"] = startShardProcess(t, db, dc, "proc-1")
	procs["proc-2"] = startShardProcess(t, db, dc, "proc-2")
	split := func(live ...string) func() bool {
		return func() bool {
			if !allConnected() {
				return false
			}
			n := map[string]int{}
			for _, h := range holders(t, st, count) {
				n[h]++
			}
			for _, p := range live {
				if n[p] == 0 {
					return false
				}
			}
			return len(n) == len(live) && n[""] == 0
		}
	}
	dc.WaitFor(t, "three processes to share the shards", split("proc-0", "proc-1", "proc-2"))
	owners := holders(t, st, count)
	t.Logf("shards: %v", owners)
	for i, ch := range channels {
		if got, want := answeredBy(t, dc, alice, ch), "answered by "+owners[i]; !strings.Contains(got, want) {
			t.Fatalf("shard %d's guild: %q, want %q", i, got, want)
		}
	}
	if got := dc.Registrations(); got != 1 {
		t.Fatalf("%d bulk overwrites of the commands from three processes, want 1", got)
	}

	// Kill a process that is not the leader (the leader's successor would
	// register the commands again, as it should).
	leader, err := st.WhoHolds(context.Background(), "lease:scheduler")
	if err != nil {
		t.Fatal(err)
	}
	victim := ""
	for _, h := range owners {
		if h != leader {
			victim = h
		}
	}
	killed := time.Now()
	if err := procs[victim].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var live []string
	for name := range procs {
		if name != victim {
			live = append(live, name)
		}
	}
	dc.WaitFor(t, "the live processes to take "+victim+"'s shards", split(live...))
	t.Logf("%s killed: its shards served again after %s: %v", victim, time.Since(killed).Round(10*time.Millisecond), holders(t, st, count))
	owners = holders(t, st, count)
	for i, ch := range channels {
		if got, want := answeredBy(t, dc, alice, ch), "answered by "+owners[i]; !strings.Contains(got, want) {
			t.Fatalf("shard %d's guild after the kill: %q, want %q", i, got, want)
		}
	}
	checkIdentifies(t, dc, 2)
	if got := dc.Registrations(); got != 1 {
		t.Fatalf("%d bulk overwrites of the commands, want 1", got)
	}
}

// toFake sends discordgo's requests for discord.com to the fake.
type toFake struct{ api *url.URL }

func (f toFake) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = f.api.Scheme, f.api.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

// shardRecorder is a bot.Metrics with the ShardMetrics power.
type shardRecorder struct {
	bot.NopMetrics
	mu    sync.Mutex
	owned []int
	count int
}

func (r *shardRecorder) DiscordShards(owned []int, count int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owned, r.count = slices.Clone(owned), count
}

// TestShardMetrics: the adapter reports the shards it serves to metrics
// that can show them (ops.Metrics: orchat_discord_shards_owned).
func TestShardMetrics(t *testing.T) {
	dc := discordtest.MustStart(t, discordtest.Options{Shards: 2, MaxConcurrency: 2, IdentifyWindow: testIdentifyWindow})
	rec := &shardRecorder{}
	a, err := discord.New(discord.Options{Token: dc.Token, APIURL: dc.APIURL, ShardCount: 0, Handler: handlerFunc(nil),
		IdentifyInterval: testIdentifyWindow, Logger: slog.New(slog.DiscardHandler), Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	stop := stacktest.Go(t, a.Run)
	defer stop()
	dc.WaitFor(t, "two shards reported", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.Equal(rec.owned, []int{0, 1}) && rec.count == 2
	})
	dc.WaitFor(t, "the adapter to connect", a.Connected)
}

// TestFixedShardsTakeTurns: two processes with fixed shards (shard_ids
// [0 1] and [2 3]) on one PostgreSQL database, started together, still
// identify one at a time per bucket through the database, and only the
// leader registers the commands. (Each has its own store, so its own
// database sessions, as two processes would.)
func TestFixedShardsTakeTurns(t *testing.T) {
	db := postgrestest.DSN(t)
	dc := discordtest.MustStart(t, discordtest.Options{MaxConcurrency: 1, IdentifyWindow: testIdentifyWindow})
	h := handlerFunc(func(ctx context.Context, ev bot.Event, out bot.Output) error { return nil })
	var stops []func()
	var adapters []*discord.Adapter
	var st *accounts.Store
	for i, ids := range [][]int{{0, 1}, {2, 3}} {
		opts := accounts.DefaultOptions()
		opts.Logger = slog.New(slog.DiscardHandler)
		var err error
		st, err = accounts.Open(db, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o := shardOptions(st, "fixed-"+strconv.Itoa(i), dc.Token, dc.APIURL, slog.New(slog.DiscardHandler), h)
		o.ShardCount, o.Shards = 4, ids
		a, err := discord.New(o)
		if err != nil {
			t.Fatal(err)
		}
		adapters = append(adapters, a)
	}
	for _, a := range adapters {
		stops = append(stops, stacktest.Go(t, a.Run))
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	dc.WaitFor(t, "all four shards", func() bool {
		got, _ := dc.ConnectedShards()
		return len(got) == 4
	})
	checkIdentifies(t, dc, 1)
	// Their shard locks tell processes claiming shards to leave them be.
	if got, want := holders(t, st, 4), []string{"fixed-0", "fixed-0", "fixed-1", "fixed-1"}; !slices.Equal(got, want) {
		t.Fatalf("shard locks held by %v, want %v", got, want)
	}
	dc.WaitFor(t, "the commands registered", func() bool { return dc.Registrations() > 0 })
	time.Sleep(time.Second) // a second registration would come within a few rounds
	if got := dc.Registrations(); got != 1 {
		t.Fatalf("%d bulk overwrites from two processes, want 1", got)
	}
}
