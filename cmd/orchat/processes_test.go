package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pgxconn "github.com/jackc/pgx/v5"

	"github.com/orchat/orchat/accounts/postgrestest"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/discord/discordtest"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack/slacktest"
	"github.com/orchat/orchat/stack/stacktest"
)

// proc is one orchat process of TestSeveralProcesses.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *stacktest.SyncBuffer
	addr   string // its health and metrics server
	conn   int    // its Slack Socket Mode connection's number
	exited chan error
}

var addrRE = regexp.MustCompile(`serving /healthz, /readyz and /metrics.*addr=(127\.0\.0\.1:[0-9]+)`)

// TestSeveralProcesses is issue 14's "Show it": three real orchat
// processes on one PostgreSQL ledger, one Slack Socket Mode connection
// each and one of a bot's three Discord shards each (claimed through the
// database, none configured), answer
// several hundred events with duplicates (Slack retries, which Slack sends
// to another connection, and Discord gateway replays) and upstream
// faults. The scheduler's leader is killed with SIGKILL with answers in
// flight while events keep coming: an envelope its dead connection did
// not acknowledge goes to another process. Every event is answered exactly
// once, except the few the killed process had acknowledged and was
// answering (never twice); another process takes the lead within
// seconds and its shard within a few more; the restarted instance
// releases the killed one's holds at once and is handed a shard;
// `orchat ledger verify` passes and the ledger charged exactly what the
// upstream billed.
func TestSeveralProcesses(t *testing.T) {
	dsn := postgrestest.DSN(t)
	bin := orchatBinary(t)
	const apiKey = "sk-or-v1-processes"

	var (
		mu      sync.Mutex
		served  []openroutertest.Served
		faulted = map[string]bool{}
	)
	sim := openroutertest.MustStart(t, openroutertest.Options{
		APIKey: apiKey, TokensPerSecond: 4000,
		FaultFunc: func(r *openroutertest.Request) *openroutertest.Fault {
			last := r.Messages[len(r.Messages)-1].Content
			switch {
			case strings.Contains(last, "slow"):
				return &openroutertest.Fault{TTFT: 4 * time.Second}
			case strings.Contains(last, "flaky"):
				// The first try of a flaky question fails upstream; the
				// router's retry or fallback answers it.
				mu.Lock()
				defer mu.Unlock()
				if !faulted[last] {
					faulted[last] = true
					return &openroutertest.Fault{Status: 502}
				}
			}
			return nil
		},
		OnServed: func(s openroutertest.Served) {
			mu.Lock()
			served = append(served, s)
			mu.Unlock()
		},
	})
	sl := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
	const discordToken = "discord-processes-token"
	// One bot of three shards; max_concurrency 3 lets each shard identify
	// in a bucket of its own, as a large bot's (16 and more) does.
	const shards = 3
	dc := discordtest.MustStart(t, discordtest.Options{Token: discordToken, NoEcho: true, Shards: shards, MaxConcurrency: shards})

	dir := t.TempDir()
	start := func(i int) *proc {
		t.Helper()
		p := &proc{name: fmt.Sprintf("p%d", i), stderr: &stacktest.SyncBuffer{}, exited: make(chan error, 1)}
		cfg := filepath.Join(dir, p.name+".toml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[openrouter]
base_url = %q
api = "openrouter"
[router]
catalog_cache = %q
[accounts]
database = %q
instance = %q
signup_bonus = 5000000
[scheduler]
hold_sweep = "1s"
[bot]
rate_limit_per_minute = 0
[discord]
api_url = %q
shard_count = %d
[slack]
api_url = %q
updates_per_minute = 6000
[http]
addr = "127.0.0.1:0"
`, sim.URL(), filepath.Join(dir, "models.json"), dsn, p.name, dc.APIURL, shards, sl.APIURL())), 0o600); err != nil {
			t.Fatal(err)
		}
		before := sl.OpenConnections()
		p.launch(t, bin, cfg, "OPENROUTER_API_KEY="+apiKey, "DISCORD_BOT_TOKEN="+discordToken,
			"SLACK_BOT_TOKEN="+sl.BotToken, "SLACK_APP_TOKEN="+sl.AppToken)
		waitUntil(t, p.name+" to connect to Slack", func() bool { return sl.OpenConnections() == before+1 })
		p.conn = sl.Connections()
		return p
	}
	began := time.Now()
	procs := []*proc{start(0), start(1), start(2)}
	// The processes split the shards between themselves, one each.
	split := func(ps []*proc, each int) bool {
		if got, n := dc.ConnectedShards(); len(got) != shards || n != shards {
			return false
		}
		for _, p := range ps {
			if shardsOwned(t, p) != each {
				return false
			}
		}
		return true
	}
	waitUntil(t, "the three shards split one to each process", func() bool { return split(procs, 1) })
	t.Logf("three shards split one to each process %s after the first started", time.Since(began).Round(time.Millisecond))
	if refused := dc.RefusedIdentifies(); len(refused) > 0 {
		t.Fatalf("the gateway refused %d identifies: %s", len(refused), refused[0].Refused)
	}

	// /readyz covers the PostgreSQL ledger; /metrics shows its pool.
	for _, p := range procs {
		waitUntil(t, p.name+"'s /readyz", func() bool { code, _ := get(t, "http://"+p.addr+"/readyz"); return code == 200 })
		if _, body := get(t, "http://"+p.addr+"/readyz"); !strings.Contains(body, `"database":"ok"`) {
			t.Fatalf("%s /readyz does not report the database: %s", p.name, body)
		}
		if _, body := get(t, "http://"+p.addr+"/metrics"); !strings.Contains(body, "orchat_db_connections_open") {
			t.Fatalf("%s /metrics has no pool metrics", p.name)
		}
	}

	// One leader.
	leaders := func(ps []*proc) []*proc {
		var out []*proc
		for _, p := range ps {
			if leads(p) {
				out = append(out, p)
			}
		}
		return out
	}
	waitUntil(t, "one leader", func() bool { return len(leaders(procs)) == 1 })
	victim := leaders(procs)[0]
	// Only the leader registers the slash commands, once.
	waitUntil(t, "the leader to register the slash commands", func() bool {
		_, ok := dc.Commands("")
		return ok && strings.Contains(victim.stderr.String(), "slash commands registered")
	})
	for _, p := range procs {
		if p != victim && strings.Contains(p.stderr.String(), "slash commands registered") {
			t.Errorf("%s registered the slash commands, but %s leads", p.name, victim.name)
		}
	}
	if n := dc.Registrations(); n != 1 {
		t.Errorf("%d bulk overwrites of the commands, want 1", n)
	}
	var rest []*proc
	for _, p := range procs {
		if p != victim {
			rest = append(rest, p)
		}
	}

	// The events. Slack: mentions from 12 people in 3 channels, every
	// fifth delivered again as Slack retries it (to the next connection,
	// another process). Discord: mentions on every shard, every third
	// replayed by the gateway.
	type slackAsk struct {
		d        *slacktest.Delivery
		channel  string
		sent     time.Time
		conn     int // the connection that acknowledged the first delivery
		attempts int // how often the first delivery was sent
	}
	var (
		asksMu sync.Mutex
		asks   []slackAsk
	)
	slackAsks := func(from, n int, gap time.Duration) {
		for k := from; k < from+n; k++ {
			text := fmt.Sprintf("question %d", k)
			if k%7 == 3 {
				text = fmt.Sprintf("flaky question %d", k)
			}
			channel := fmt.Sprintf("C0CHAN%02d", k%20)
			d := sl.Mention(slacktest.Post{User: fmt.Sprintf("U0USER%02d", k%12), Channel: channel, Text: text})
			asksMu.Lock()
			asks = append(asks, slackAsk{d, channel, time.Now(), d.Conn, d.Attempts})
			asksMu.Unlock()
			if k%5 == 0 {
				sl.Redeliver(d)
			}
			time.Sleep(gap)
		}
	}
	type discordAsk struct {
		shard int
		msg   discordtest.Message
	}
	var dasks []discordAsk
	var dmu sync.Mutex
	discordAsks := func(shard, from, n int) {
		guild := dc.NewGuild()
		for guildShard(t, guild, shards) != shard {
			guild = dc.NewGuild() // consecutive ids fall on consecutive shards
		}
		channel := dc.NewChannel(guild)
		users := []discordtest.User{dc.NewUser("ann"), dc.NewUser("bo"), dc.NewUser("cy")}
		for k := from; k < from+n; k++ {
			text := fmt.Sprintf("shard %d question %d", shard, k)
			if k%6 == 1 {
				text = fmt.Sprintf("shard %d flaky question %d", shard, k)
			}
			m := dc.Mention(users[k%3], channel, text)
			dmu.Lock()
			dasks = append(dasks, discordAsk{shard, m})
			dmu.Unlock()
			if k%3 == 0 {
				time.Sleep(5 * time.Millisecond)
				dc.Redeliver(m.ID)
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { slackAsks(0, 150, 0) })
	for i := range shards {
		wg.Go(func() { discordAsks(i, 0, 40) })
	}
	wg.Wait()
	answeredSlack := func(a slackAsk) int { return len(botReplies(sl.Thread(a.channel, a.d.TS))) }
	waitUntil(t, "the first wave answered", func() bool {
		asksMu.Lock()
		defer asksMu.Unlock()
		for _, a := range asks {
			if !finished(botReplies(sl.Thread(a.channel, a.d.TS))) {
				return false
			}
		}
		return true
	})

	// Slow questions until one is in flight at the leader, then kill it
	// with SIGKILL while more events keep coming.
	var slow []slackAsk
	for k := 0; pgOpenHolds(t, dsn, victim.name) == 0; k++ {
		if k > 12 {
			t.Fatalf("no slow question reached %s", victim.name)
		}
		channel := "C0SLOW"
		d := sl.Mention(slacktest.Post{User: fmt.Sprintf("U0USER%02d", k%12), Channel: channel, Text: fmt.Sprintf("slow question %d", k)})
		slow = append(slow, slackAsk{d, channel, time.Now(), d.Conn, d.Attempts})
		time.Sleep(300 * time.Millisecond)
	}
	waitUntil(t, victim.name+" to hold tokens for its slow answer", func() bool { return pgOpenHolds(t, dsn, victim.name) > 0 })
	// The leader freezes (SIGSTOP) while events keep coming: what Slack
	// sends over its connection is not acknowledged, so after 3 s Slack
	// sends it again over another. Then it is killed.
	var during sync.WaitGroup
	during.Go(func() { slackAsks(1000, 60, 15*time.Millisecond) })
	time.Sleep(200 * time.Millisecond)
	openBefore := sl.OpenConnectionNumbers()
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var frozen sync.WaitGroup
	for k := range 4 {
		frozen.Go(func() { slackAsks(2000+k, 1, 0) })
	}
	frozen.Wait()
	// Round robin puts at least one of every three deliveries on the
	// frozen connection; the concurrent ones above may all have gone to
	// the others while the wave took the frozen one's turns. A few more,
	// one at a time, until one was sent again over another connection.
	retriedYet := func() bool {
		asksMu.Lock()
		defer asksMu.Unlock()
		for _, a := range asks {
			if a.attempts > 1 {
				return true
			}
		}
		return false
	}
	for k := 0; k < 6 && !retriedYet(); k++ {
		slackAsks(3000+k, 1, 0)
	}
	killedAt := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-victim.exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s ended with %v, want killed", victim.name, err)
	}
	// Its connection is the one Slack lost.
	waitUntil(t, "Slack to lose the killed process's connection", func() bool { return sl.OpenConnections() == len(procs)-1 })
	victim.conn = 0
	for _, n := range openBefore {
		if !slices.Contains(sl.OpenConnectionNumbers(), n) {
			victim.conn = n
		}
	}
	// What the killed process had sent the server (a COMMIT) still lands.
	time.Sleep(500 * time.Millisecond)
	held := pgOpenHolds(t, dsn, victim.name)
	if held == 0 {
		t.Fatalf("%s left no hold open; the kill came too late to show anything", victim.name)
	}

	// Another process leads within a few seconds.
	waitUntil(t, "a new leader", func() bool { return len(leaders(rest)) == 1 })
	if took := time.Since(killedAt); took > 5*time.Second {
		t.Errorf("the new leader took over %s after the kill, want a few seconds", took)
	}
	during.Wait()
	// The survivors take the dead one's shard: its identify bucket was
	// freed by a death, so after waiting out Discord's 5 s.
	waitUntil(t, "the survivors to take the killed process's shard", func() bool {
		if !split(nil, 0) {
			return false
		}
		sum := 0
		for _, p := range rest {
			sum += shardsOwned(t, p)
		}
		return sum == shards
	})
	t.Logf("the killed process's shard served again %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	if took := time.Since(killedAt); took > 15*time.Second {
		t.Errorf("the killed process's shard was served again %s after the kill, want within the 5 s identify wait and a rebalance", took)
	}
	for i := range shards {
		wg.Go(func() { discordAsks(i, 100, 15) })
	}
	wg.Wait()

	// The killed instance starts again: it frees its holds at once.
	vi := int(victim.name[1] - '0')
	again := start(vi)
	waitUntil(t, "the restarted instance to release the killed one's holds", func() bool { return pgOpenHolds(t, dsn, victim.name) == 0 })
	if log := again.stderr.String(); !strings.Contains(log, "holds of a previous boot released") || !strings.Contains(log, fmt.Sprintf("holds=%d", held)) {
		t.Errorf("the restart did not log the %d holds it released:\n%s", held, log)
	}
	waitUntil(t, "the restarted instance to be handed a shard", func() bool { return split(append(slices.Clone(rest), again), 1) })
	for i := range shards {
		wg.Go(func() { discordAsks(i, 200, 15) })
	}
	wg.Wait()

	// Every event answered once; the killed process's unfinished ones at
	// most once.
	lostOK := func(a slackAsk) bool {
		// The first delivery or Slack's retry of it reached the killed
		// process, and it won the race to answer.
		return (a.conn == victim.conn || a.d.Conn == victim.conn) && a.sent.Before(killedAt) && killedAt.Sub(a.sent) < 10*time.Second
	}
	all := append(append([]slackAsk(nil), asks...), slow...)
	var pending []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pending = pending[:0]
		for _, a := range all {
			if answers := botReplies(sl.Thread(a.channel, a.d.TS)); !finished(answers) && !lostOK(a) {
				var msgs []string
				for _, m := range sl.Thread(a.channel, a.d.TS) {
					msgs = append(msgs, fmt.Sprintf("{%s bot=%s edits=%d %q}", m.TS, m.BotID, m.Edits, m.Text))
				}
				pending = append(pending, fmt.Sprintf("%s %s in %s (connection %d, attempts %d, sent %s before the kill): %s",
					a.d.EventID, a.d.TS, a.channel, a.conn, a.attempts, killedAt.Sub(a.sent), strings.Join(msgs, " ")))
			}
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d Slack events not answered (the killed process was connection %d), such as:\n%s", len(pending), victim.conn, strings.Join(pending[:min(5, len(pending))], "\n"))
		}
	}
	waitUntil(t, "every Discord event answered", func() bool {
		for _, a := range dasks {
			if len(discordReplies(dc, a.msg.ID)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // a second answer would be posted by now
	lost, retried := 0, 0
	for _, a := range all {
		n := answeredSlack(a)
		if n > 1 {
			var texts []string
			for _, m := range botReplies(sl.Thread(a.channel, a.d.TS)) {
				texts = append(texts, m.Text)
			}
			t.Errorf("Slack mention %q (%s) answered %d times: %q", a.d.TS, a.channel, n, texts)
		}
		if n == 0 {
			lost++
		}
		if a.attempts > 1 {
			retried++
		}
	}
	for _, a := range dasks {
		if n := len(discordReplies(dc, a.msg.ID)); n != 1 {
			t.Errorf("Discord message %s on shard %d answered %d times", a.msg.ID, a.shard, n)
		}
	}
	t.Logf("process connections: %v", func() (out []string) {
		for _, p := range procs {
			out = append(out, fmt.Sprintf("%s=%d", p.name, p.conn))
		}
		return out
	}())
	t.Logf("%d Slack mentions (%d redelivered by Slack, %d sent again over another connection), %d Discord messages; %d left unanswered by the killed process; %d holds it left released at restart",
		len(all), len(all)/5, retried, len(dasks), lost, held)
	if lost > 5 {
		t.Errorf("%d answers lost with the killed process, want only the few in flight", lost)
	}
	if retried == 0 {
		t.Error("no envelope was sent again over another connection: the frozen process's were never taken over")
	}

	// Stop everything, then the books: verify, nothing held, charged ==
	// billed.
	for _, p := range append(rest, again) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("%s exited with %v\n%s", p.name, err, p.stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in the log below
			<-p.exited
			t.Errorf("%s did not stop:\n%s", p.name, tail(p.stderr.String(), 20000))
		}
	}
	var out bytes.Buffer
	verify := exec.Command(bin, "ledger", "verify", "--json", "--db", dsn)
	verify.Env = append(os.Environ(), "ORCHAT_DATABASE_URL=")
	verify.Stdout, verify.Stderr = &out, &out
	if err := verify.Run(); err != nil {
		t.Fatalf("ledger verify: %v\n%s", err, out.String())
	}
	var rep struct {
		OK    bool `json:"ok"`
		Holds int  `json:"holds"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || rep.Holds != 0 {
		t.Fatalf("ledger verify: %s (%v)", out.String(), err)
	}
	// Every generation the upstream billed is charged its bill, except
	// one the killed process was streaming when it died: that one the
	// host pays and nobody is charged for.
	billing := bot.Billing{Mode: bot.BillingCost, USDPerToken: 0.000001}
	billed := map[string]int64{}
	ended := map[string]time.Time{}
	mu.Lock()
	for _, s := range served {
		if s.GenerationID != "" {
			billed[s.GenerationID] += billing.FromUSD(s.BilledUSD) + billing.FromUSD(s.PartialUSD)
			ended[s.GenerationID] = s.End
		}
	}
	mu.Unlock()
	charged := charges(t, dsn)
	var totalCharged, totalBilled, unsettled int64
	for gen, tokens := range charged {
		totalCharged += tokens
		if tokens != billed[gen] {
			t.Errorf("generation %s charged %d tokens, billed %d", gen, tokens, billed[gen])
		}
	}
	for gen, tokens := range billed {
		if _, ok := charged[gen]; ok {
			totalBilled += tokens
			continue
		}
		if tokens == 0 {
			continue
		}
		if ended[gen].After(killedAt.Add(time.Second)) {
			t.Errorf("generation %s billed %d tokens was never charged, and it ended %s after the kill", gen, tokens, ended[gen].Sub(killedAt))
		}
		unsettled++
	}
	// Each answer the killed process never settled is one of the holds
	// its restart released.
	if totalCharged != totalBilled || totalCharged == 0 || unsettled > int64(held) {
		t.Errorf("charged %d tokens, billed %d; %d billed generations never charged, %d holds the killed process left", totalCharged, totalBilled, unsettled, held)
	}
}

// launch starts `orchat run --config cfg` with env added (and no
// ORCHAT_DATABASE_URL from the test's own environment), stops it with
// SIGTERM when the test ends, and waits until it serves health and
// metrics (p.addr).
func (p *proc) launch(t *testing.T, bin, cfg string, env ...string) {
	t.Helper()
	p.cmd = exec.Command(bin, "run", "--config", cfg)
	p.cmd.Env = append(append(os.Environ(), "ORCHAT_DATABASE_URL="), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	})
	waitUntil(t, p.name+" to serve", func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited: %v\n%s", p.name, err, p.stderr.String())
		default:
		}
		if m := addrRE.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
		}
		return p.addr != ""
	})
}

// leads reports whether p's log says it is the scheduler leader now.
func leads(p *proc) bool {
	log := p.stderr.String()
	now := strings.LastIndex(log, "this instance is now the scheduler leader")
	lost := strings.LastIndex(log, "this instance is no longer the scheduler leader")
	return now >= 0 && now > lost && p.cmd.ProcessState == nil
}

// botReplies are the bot's answers in a Slack thread (not the welcome a
// new user gets once).
func botReplies(thread []slacktest.Message) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range thread {
		if m.BotID != "" && !m.Ephemeral && !strings.HasPrefix(m.Text, "Welcome to orchat") {
			out = append(out, m)
		}
	}
	return out
}

// finished reports whether every answer in a Slack thread is complete:
// its footer says what it charged.
func finished(answers []slacktest.Message) bool {
	for _, m := range answers {
		if !strings.Contains(string(m.Blocks), "charged") {
			return false
		}
	}
	return len(answers) > 0
}

// discordReplies are the bot's messages answering message id.
func discordReplies(dc *discordtest.Server, id string) []discordtest.Message {
	var out []discordtest.Message
	for _, m := range dc.Messages() {
		welcome := strings.HasPrefix(m.Content, "Welcome to orchat") || len(m.Embeds) > 0 && strings.HasPrefix(m.Embeds[0].Description, "Welcome to orchat")
		if m.Author.Bot && !welcome && m.MessageReference != nil && m.MessageReference.MessageID == id {
			out = append(out, m)
		}
	}
	return out
}

// shardsOwned is the Discord shards p serves, from its /metrics (-1
// when it shows none).
func shardsOwned(t *testing.T, p *proc) int {
	t.Helper()
	_, body := get(t, "http://"+p.addr+"/metrics")
	m := shardsOwnedRE.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var shardsOwnedRE = regexp.MustCompile(`(?m)^orchat_discord_shards_owned ([0-9]+)$`)

// guildShard is the shard Discord sends a guild's events to:
// (guild_id >> 22) % shards.
func guildShard(t *testing.T, guild string, shards int) int {
	t.Helper()
	id, err := strconv.ParseUint(guild, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return int((id >> 22) % uint64(shards))
}

// pgOpenHolds counts instance's open holds in the PostgreSQL ledger.
func pgOpenHolds(t *testing.T, dsn, instance string) int {
	t.Helper()
	var n int
	pgQuery(t, dsn, `SELECT COUNT(*) FROM holds WHERE state = 'open' AND owner_instance = $1`, []any{instance}, &n)
	return n
}

// charges are the ledger's charges by generation.
func charges(t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgxconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT generation_id, -SUM(amount) FROM entries WHERE kind = 'charge' GROUP BY generation_id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var gen string
		var n int64
		if err := rows.Scan(&gen, &n); err != nil {
			t.Fatal(err)
		}
		out[gen] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func pgQuery(t *testing.T, dsn, q string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgxconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, q, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestSlackHTTPBehindLoadBalancer: two orchat processes in Slack's http
// mode on one PostgreSQL ledger behind a round-robin load balancer. Slack
// retries every event (X-Slack-Retry-Num), and the balancer sends each
// retry to the other process than the first delivery: every mention is
// answered once.
func TestSlackHTTPBehindLoadBalancer(t *testing.T) {
	dsn := postgrestest.DSN(t)
	bin := orchatBinary(t)
	const apiKey = "sk-or-v1-balanced"
	sim := openroutertest.MustStart(t, openroutertest.Options{APIKey: apiKey, TokensPerSecond: 4000})
	sl := slacktest.MustStart(t, slacktest.Options{NoEcho: true})
	dir := t.TempDir()
	var backends []*url.URL
	for i := range 2 {
		p := &proc{name: fmt.Sprintf("web-%d", i+1), stderr: &stacktest.SyncBuffer{}, exited: make(chan error, 1)}
		cfg := filepath.Join(dir, p.name+".toml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
[openrouter]
base_url = %q
api = "openrouter"
[router]
catalog_cache = %q
[accounts]
database = %q
instance = %q
[bot]
rate_limit_per_minute = 0
[slack]
api_url = %q
mode = "http"
updates_per_minute = 6000
[http]
addr = "127.0.0.1:0"
`, sim.URL(), filepath.Join(dir, "models.json"), dsn, p.name, sl.APIURL())), 0o600); err != nil {
			t.Fatal(err)
		}
		p.launch(t, bin, cfg, "OPENROUTER_API_KEY="+apiKey, "SLACK_BOT_TOKEN="+sl.BotToken, "SLACK_SIGNING_SECRET="+slacktest.Secret)
		u, _ := url.Parse("http://" + p.addr)
		backends = append(backends, u)
	}
	type hop struct{ backend, retry int }
	var (
		mu   sync.Mutex
		hops []hop
		next int
	)
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := next % len(backends)
		next++
		retry, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
		hops = append(hops, hop{i, retry})
		mu.Unlock()
		httputil.NewSingleHostReverseProxy(backends[i]).ServeHTTP(w, r)
	}))
	t.Cleanup(lb.Close)
	sl.UseHTTP(lb.URL+"/slack/events", slacktest.Secret)

	type ask struct {
		d       *slacktest.Delivery
		channel string
	}
	var asks []ask
	for k := range 30 {
		channel := fmt.Sprintf("C0LB%02d", k%10)
		d := sl.Mention(slacktest.Post{User: fmt.Sprintf("U0LB%02d", k%6), Channel: channel, Text: fmt.Sprintf("question %d", k)})
		sl.Redeliver(d)
		asks = append(asks, ask{d, channel})
	}
	waitUntil(t, "every mention answered", func() bool {
		for _, a := range asks {
			if !finished(botReplies(sl.Thread(a.channel, a.d.TS))) {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // a second answer would be posted by now
	for _, a := range asks {
		if n := len(botReplies(sl.Thread(a.channel, a.d.TS))); n != 1 {
			t.Errorf("mention %s answered %d times", a.d.TS, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	retries := 0
	for i, h := range hops {
		if h.retry == 0 {
			continue
		}
		retries++
		if i == 0 || hops[i-1].backend == h.backend {
			t.Fatalf("retry %d went to the process that had the first delivery: %+v", i, hops)
		}
	}
	if retries != len(asks) {
		t.Errorf("%d retries through the balancer, want %d", retries, len(asks))
	}
}
