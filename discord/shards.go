package discord

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/orchat/orchat/bot"
)

// This file splits the bot's gateway shards over the processes running
// it. A process serves the shards it is given (Options.Shards), or, with
// Options.OpenLocks, the shards it claims through locks every process on
// the database sees, or else every shard. Each shard is one discordgo
// session; every REST call goes through the adapter's own session.
//
// Claiming (Options.OpenLocks): each process holds one membership lock
// (discord-process/m, the lowest free m below the shard count) and its
// shards' locks (discord-shard/i). Every Rebalance it counts the live
// members (whose membership lock is held) and its rank among them, and
// aims at an even split: shard_count/members, one more for the first
// shard_count%members ranks. Above its share it stops its highest shards
// and gives their locks back; below it, it claims the lowest free ones.
// A newcomer is thus handed shards within two rounds, without
// configuration; a process that dies loses its database session, so its
// locks come free at once and the others' shares grow to take them over
// at their next round. Shard 0 (DMs) moves only when its owner dies.

// Locks is a session of named locks shared by every process on the
// database (accounts.Locks): a lock is held by at most one session, and
// all of a session's locks come free when it ends (its process died).
type Locks interface {
	// TryLock takes the lock called name if nobody holds it: true when
	// this session holds it now (or already did). An error once the
	// session is lost.
	TryLock(ctx context.Context, name string) (bool, error)
	// Unlock gives the lock called name back.
	Unlock(ctx context.Context, name string) error
	// Lost is closed when the session ends: its locks may be another's.
	Lost() <-chan struct{}
	// Close gives every lock back.
	Close() error
}

// LockHolders says who holds locks in any process (accounts.Store), in
// one question: the names held, mapped to their holders.
type LockHolders interface {
	WhoHoldsEach(ctx context.Context, names []string) (map[string]string, error)
}

// ShardMetrics is the optional power of a bot.Metrics to show the shards
// this process serves (ops.Metrics has it).
type ShardMetrics interface {
	// DiscordShards reports the shards this process serves, of count.
	DiscordShards(owned []int, count int)
}

// DefaultRebalance is how often a process claiming shards through locks
// looks for members that came or went.
const DefaultRebalance = 2 * time.Second

func memberLock(m int) string { return "discord-process/" + strconv.Itoa(m) }
func shardLock(i int) string  { return "discord-shard/" + strconv.Itoa(i) }

// shard is one gateway connection of the adapter.
type shard struct {
	id     int
	s      *discordgo.Session
	ctx    context.Context // ends when the shard is stopped
	cancel context.CancelFunc
	opened chan struct{} // closed when the first Open loop ends
}

// errShardStopped stops discordgo's own reconnect loop for a shard this
// process gave up: it returns when Open fails with ErrWSAlreadyOpen, and
// the gated dial of a stopped shard fails with it.
var errShardStopped = discordgo.ErrWSAlreadyOpen

// newShard builds the session of shard id of count: the adapter's
// settings, its HTTP client and state, and a dial that passes the
// identify gate.
func (a *Adapter) newShard(id, count int) (*shard, error) {
	s, err := discordgo.New("Bot " + a.opts.Token)
	if err != nil {
		return nil, fmt.Errorf("discord: session: %w", err)
	}
	base := a.session
	s.Client = base.Client
	s.Identify.Intents = base.Identify.Intents
	s.ShardID, s.ShardCount = id, count
	s.LogLevel = base.LogLevel
	s.SyncEvents = true
	s.State = base.State // one state for every shard: channels of any guild
	ctx, cancel := context.WithCancel(a.work)
	sh := &shard{id: id, s: s, ctx: ctx, cancel: cancel, opened: make(chan struct{})}
	// The gate waits before the dial, so no handshake timeout covers the
	// wait; the dial sets its own deadline, which the websocket library
	// clears once the handshake is done.
	s.Dialer = &websocket.Dialer{Proxy: websocket.DefaultDialer.Proxy, NetDialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Err() != nil {
			return nil, errShardStopped
		}
		if err := a.gate.wait(ctx, id); err != nil {
			return nil, errShardStopped
		}
		d := net.Dialer{Timeout: 15 * time.Second}
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			a.gate.finish(id)
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return c, nil
	}}
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Connect) { a.gate.finish(id) })
	s.AddHandler(a.onReady)
	s.AddHandler(a.onResumed)
	s.AddHandler(a.onMessageCreate)
	s.AddHandler(a.onInteractionCreate)
	return sh, nil
}

// startShard connects shard id (of count) in the background; a refusal
// that retrying cannot help is sent to a.fatal.
func (a *Adapter) startShard(id, count int) error {
	sh, err := a.newShard(id, count)
	if err != nil {
		return err
	}
	a.shardMu.Lock()
	a.shards[id] = sh
	owned := a.ownedLocked()
	a.shardMu.Unlock()
	a.reportShards(owned, count)
	go func() {
		defer close(sh.opened)
		wait := time.Second
		for {
			err := sh.s.Open()
			a.gate.finish(id)
			if err == nil {
				a.log.Info("connected to the Discord gateway", "shard", id, "shards", count)
				return
			}
			if sh.ctx.Err() != nil {
				return
			}
			err = a.redact(err)
			if hint := fatalOpenError(err); hint != "" {
				a.fail(fmt.Errorf("discord: connect shard %d: %s: %w", id, hint, err))
				return
			}
			a.log.Warn("gateway connection failed; retrying", "shard", id, "err", err, "in", wait)
			select {
			case <-sh.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, time.Minute)
		}
	}()
	return nil
}

// stopShards closes the given shards' sessions (all at once: discordgo
// waits a second in each close).
func (a *Adapter) stopShards(ids []int) {
	var wg sync.WaitGroup
	a.shardMu.Lock()
	for _, id := range ids {
		sh := a.shards[id]
		if sh == nil {
			continue
		}
		delete(a.shards, id)
		sh.cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-sh.opened
			if err := sh.s.Close(); err != nil {
				a.log.Debug("close shard", "shard", sh.id, "err", a.redact(err))
			}
			a.gate.finish(sh.id)
		}()
	}
	owned, count := a.ownedLocked(), a.shardCount
	a.shardMu.Unlock()
	wg.Wait()
	a.reportShards(owned, count)
}

// ownedLocked is the shards this process serves, sorted; a.shardMu is held.
func (a *Adapter) ownedLocked() []int {
	out := make([]int, 0, len(a.shards))
	for id := range a.shards {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Shards returns the shards this process serves now, sorted, and the
// shard count (0 before Run has learnt it).
func (a *Adapter) Shards() (owned []int, count int) {
	a.shardMu.Lock()
	defer a.shardMu.Unlock()
	return a.ownedLocked(), a.shardCount
}

func (a *Adapter) reportShards(owned []int, count int) {
	if m, ok := a.metrics.(ShardMetrics); ok {
		m.DiscordShards(owned, count)
	}
}

// fail ends Run with err (the first one wins).
func (a *Adapter) fail(err error) {
	select {
	case a.fatal <- err:
	default:
	}
}

// gatewayInfo asks GET /gateway/bot for the recommended shard count and
// the identify concurrency, retrying with backoff until ctx ends; a
// refused token is final.
func (a *Adapter) gatewayInfo(ctx context.Context) (*discordgo.GatewayBotResponse, error) {
	wait := time.Second
	for {
		info, err := a.session.GatewayBot(discordgo.WithContext(ctx))
		if err == nil {
			return info, nil
		}
		err = a.redact(err)
		if hint := fatalOpenError(err); hint != "" {
			return nil, fmt.Errorf("discord: gateway: %s: %w", hint, err)
		}
		a.log.Warn("GET /gateway/bot failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
}

// planShards decides the shard count and starts the shards this process
// serves: the fixed ones, or all of them when no locks are given; with
// locks, claim runs the rounds.
func (a *Adapter) planShards(ctx context.Context) (claim bool, err error) {
	info, err := a.gatewayInfo(ctx)
	if err != nil {
		return false, err
	}
	count := a.opts.ShardCount
	if count == 0 {
		count = max(info.Shards, 1)
	}
	a.gate.setConcurrency(info.SessionStartLimit.MaxConcurrency)
	for _, id := range a.opts.Shards {
		if id >= count {
			return false, bot.Errorf(bot.EINVALID, "discord.shard_ids has shard %d, but Discord recommends %d shards (0..%d): set discord.shard_count, or shard ids below it.", id, count, count-1)
		}
	}
	a.shardMu.Lock()
	a.shardCount = count
	a.shardMu.Unlock()
	lim := info.SessionStartLimit
	a.log.Info("gateway sharding", "shards", count, "max_concurrency", max(lim.MaxConcurrency, 1), "session_starts_left", lim.Remaining)
	if lim.Total > 0 && lim.Remaining < count {
		a.log.Warn("few gateway session starts left today: Discord resets the token of a bot that identifies past its limit", "remaining", lim.Remaining, "reset_after", time.Duration(lim.ResetAfter)*time.Millisecond)
	}
	ids := a.opts.Shards
	switch {
	case len(ids) > 0:
		if a.opts.OpenLocks != nil {
			// Fixed shards still take turns with other processes to
			// identify: the locks first.
			l, err := a.openLocks(ctx)
			if err != nil {
				return false, err
			}
			a.lockFixed(ctx, l)
		}
	case a.opts.OpenLocks != nil:
		return true, nil
	default:
		for i := range count {
			ids = append(ids, i)
		}
	}
	for _, id := range ids {
		if err := a.startShard(id, count); err != nil {
			return false, err
		}
	}
	return false, nil
}

// lockFixed takes the locks of the fixed shards, so processes claiming
// shards on the same database leave them alone; a shard another process
// holds is served here all the same (the configuration says so), with a
// warning, since both then get its events.
func (a *Adapter) lockFixed(ctx context.Context, l Locks) {
	for _, id := range a.opts.Shards {
		ok, err := l.TryLock(ctx, shardLock(id))
		if err != nil || ok {
			continue
		}
		who, _ := a.opts.Holders.WhoHoldsEach(ctx, []string{shardLock(id)})
		a.log.Warn("another process also serves this fixed shard: both get its events", "shard", id, "holder", who[shardLock(id)])
	}
}

// keepLocks keeps the lock session of fixed shards open until ctx ends,
// opening a new one when it is lost (meanwhile the gate waits).
func (a *Adapter) keepLocks(ctx context.Context) {
	for {
		l := a.currentLocks()
		select {
		case <-ctx.Done():
			a.setLocks(nil)
			_ = l.Close()
			return
		case <-l.Lost():
			a.log.Warn("the identify locks were lost; opening new ones")
			_ = l.Close()
			l, err := a.openLocks(ctx)
			if err != nil {
				return
			}
			a.lockFixed(ctx, l)
		}
	}
}

// currentLocks is the lock session the gate and the claims use, or nil.
func (a *Adapter) currentLocks() Locks {
	a.locksMu.Lock()
	defer a.locksMu.Unlock()
	return a.locks
}

func (a *Adapter) setLocks(l Locks) {
	a.locksMu.Lock()
	defer a.locksMu.Unlock()
	a.locks = l
}

// openLocks opens the lock session (retrying until ctx ends).
func (a *Adapter) openLocks(ctx context.Context) (Locks, error) {
	wait := 500 * time.Millisecond
	for {
		l, err := a.opts.OpenLocks(ctx)
		if err == nil {
			a.setLocks(l)
			return l, nil
		}
		a.log.Warn("cannot open the shard locks; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// claim runs the rounds of claiming shards until ctx ends. When the lock
// session is lost (the database went away), every shard stops, as
// another process may have taken them, and a new session starts over.
func (a *Adapter) claim(ctx context.Context) {
	for ctx.Err() == nil {
		l, err := a.openLocks(ctx)
		if err != nil {
			return
		}
		a.claimWith(ctx, l)
		owned, _ := a.Shards()
		a.stopShards(owned)
		a.setLocks(nil)
		_ = l.Close()
	}
}

// claimWith runs rounds on lock session l until it is lost or ctx ends.
func (a *Adapter) claimWith(ctx context.Context, l Locks) {
	member := -1
	t := time.NewTicker(a.opts.Rebalance)
	defer t.Stop()
	for {
		var err error
		member, err = a.round(ctx, l, member)
		if err == nil {
			a.serving.Store(true) // this process's share is known
		} else {
			select {
			case <-l.Lost():
				a.log.Warn("the shard locks were lost: stopping this process's shards until it holds them again", "err", err)
				return
			default:
				a.log.Warn("shard rebalance failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-l.Lost():
			a.log.Warn("the shard locks were lost: stopping this process's shards until it holds them again")
			return
		case <-t.C:
		}
	}
}

// round is one round of claiming: membership, share, release, claim. It
// returns this process's membership number (-1: none, more processes
// than shards).
func (a *Adapter) round(ctx context.Context, l Locks, member int) (int, error) {
	_, count := a.Shards()
	if member < 0 {
		for m := range count {
			ok, err := l.TryLock(ctx, memberLock(m))
			if err != nil {
				return -1, err
			}
			if ok {
				member = m
				a.log.Info("joined the processes sharing the Discord shards", "member", m)
				break
			}
		}
	}
	names := make([]string, count)
	for m := range count {
		names[m] = memberLock(m)
	}
	held, err := a.opts.Holders.WhoHoldsEach(ctx, names)
	if err != nil {
		return member, err
	}
	live, rank := 0, -1
	for m := range count {
		if m == member {
			rank = live
			live++
		} else if _, ok := held[names[m]]; ok {
			live++
		}
	}
	want := 0
	if rank >= 0 {
		want = count / live
		if rank < count%live {
			want++
		}
	}
	owned, _ := a.Shards()
	if len(owned) > want {
		give := slices.Clone(owned[want:]) // the highest: shard 0 stays
		a.log.Info("handing Discord shards to other processes", "shards", give, "share", want, "processes", live)
		a.stopShards(give)
		for _, id := range give {
			if err := l.Unlock(ctx, shardLock(id)); err != nil {
				return member, err
			}
		}
		return member, nil
	}
	for id := 0; id < count && len(owned) < want; id++ {
		if slices.Contains(owned, id) {
			continue
		}
		ok, err := l.TryLock(ctx, shardLock(id))
		if err != nil {
			return member, err
		}
		if !ok {
			continue
		}
		a.log.Info("claimed a Discord shard", "shard", id, "share", want, "processes", live)
		if err := a.startShard(id, count); err != nil {
			_ = l.Unlock(ctx, shardLock(id))
			return member, err
		}
		owned = append(owned, id)
	}
	return member, nil
}

// connectedShards reports whether every shard this process serves is
// connected (a process with none, waiting for a share, is too).
func (a *Adapter) connectedShards() bool {
	a.shardMu.Lock()
	shards := make([]*shard, 0, len(a.shards))
	for _, sh := range a.shards {
		shards = append(shards, sh)
	}
	count := a.shardCount
	a.shardMu.Unlock()
	if count == 0 {
		return false
	}
	// Not under shardMu: Open holds the session's lock while its dial
	// waits at the gate.
	for _, sh := range shards {
		sh.s.RLock()
		ok := sh.s.DataReady
		sh.s.RUnlock()
		if !ok {
			return false
		}
	}
	return true
}

// registerWhenDue registers the slash commands once, from one process:
// the leader when one is elected (Options.Leader), else the process that
// serves shard 0. It waits for the first READY (the application id) and
// asks again every Rebalance until it is due or ctx ends: a process that
// is not the leader at its READY still registers if it becomes the
// leader before anyone has.
func (a *Adapter) registerWhenDue(ctx context.Context) {
	if len(a.opts.Commands) == 0 {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-a.firstReady:
	}
	wait := a.opts.Rebalance
	for !a.registered.Load() {
		due := false
		if a.opts.Leader != nil {
			due = a.opts.Leader()
		} else {
			owned, _ := a.Shards()
			due = slices.Contains(owned, 0)
		}
		if due {
			_, appID := a.ids()
			if a.register(appID); !a.registered.Load() {
				wait = min(wait*2, 5*time.Minute) // Discord refused: not every round
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
