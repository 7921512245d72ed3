package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchat/orchat/bot"
)

// This file holds the locks that several processes on one ledger share:
// the scheduler leader's (behind TryLead on PostgreSQL), an instance's own
// (ReleasePreviousBoots), and numbered families of locks that processes
// split among themselves (Discord shards). On PostgreSQL each is a session
// advisory lock: the server keeps it while the session that took it
// lives, and releases it the moment the session ends, so a process that
// dies (kill -9 included) gives its locks back at once. On SQLite, where
// one process owns the file, locks are kept in the process.

// DefaultLockTTL is how long a Locks session may go unanswered before the
// server ends it and its locks are free: the longest a frozen or cut-off
// process keeps what it held.
const DefaultLockTTL = 15 * time.Second

// lockKey is the advisory lock number of a named lock: a hash of the
// ledger's schema and the name, so ledgers in two schemas of one database
// never collide.
func (s *Store) lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("orchat\x00"))
	if s.pg != nil {
		h.Write([]byte(s.pg.schema))
	}
	h.Write([]byte{0})
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Locks is a set of named locks taken by one holder: on PostgreSQL,
// session advisory locks on a connection of its own (never one of the
// pool's), which a watcher pings every third of its TTL; on SQLite, locks
// kept in this process. A lock is held by at most one Locks at a time,
// among all the processes sharing the database. Safe for concurrent use.
type Locks struct {
	s      *Store
	holder string
	ttl    time.Duration

	mu   sync.Mutex
	conn *pgx.Conn       // PostgreSQL: the session the locks live on
	held map[string]bool // names held
	err  error           // why the locks were lost, once they were
	lost chan struct{}   // closed when the locks are lost or closed
	stop chan struct{}   // closed by Close: ends the watcher
	done chan struct{}   // closed when the watcher has ended
}

// OpenLocks starts a session for holder (a name shown to operators and
// to other processes asking who holds a lock, such as "web-2/3f9a"). ttl
// bounds how long a holder that stops answering keeps its locks (0 means
// DefaultLockTTL): on PostgreSQL the server ends a session idle that long,
// and the watcher declares the locks lost when a ping fails. EINVALID for
// an empty or overlong holder; EUNAVAILABLE when PostgreSQL cannot be
// reached.
func (s *Store) OpenLocks(ctx context.Context, holder string, ttl time.Duration) (*Locks, error) {
	const op = "open_locks"
	if holder == "" || len(holder) > maxKeyLen {
		return nil, s.fail(op, bot.Errorf(bot.EINVALID, "A lock holder needs a name of 1 to %d bytes.", maxKeyLen))
	}
	if ttl < 0 {
		return nil, s.fail(op, bot.Errorf(bot.EINVALID, "A lock session lasts a positive time, not %s.", ttl))
	}
	if ttl == 0 {
		ttl = DefaultLockTTL
	}
	l := &Locks{s: s, holder: holder, ttl: ttl, held: map[string]bool{}, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if s.d.engine != Postgres {
		close(l.done)
		return l, nil
	}
	cfg := s.pg.conn.Copy()
	app := "orchat lock " + holder
	if len(app) > maxApplicationLength {
		app = app[:maxApplicationLength]
	}
	cfg.RuntimeParams["application_name"] = app
	// The server ends a session that says nothing for ttl: a stopped or
	// cut-off holder's locks come free even if its socket never closes.
	cfg.RuntimeParams["idle_session_timeout"] = strconv.FormatInt(ttl.Milliseconds(), 10)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail(op, err)
	}
	l.conn = conn
	go l.watch()
	return l, nil
}

// Holder returns the name the locks are held under.
func (l *Locks) Holder() string { return l.holder }

// watch pings the session every third of the TTL; the first failure
// loses every lock (the server may already have given them to another
// process).
func (l *Locks) watch() {
	defer close(l.done)
	every := max(l.ttl/3, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Check(context.Background()); err != nil {
				return
			}
		}
	}
}

// Lost is closed when the locks are lost (the session ended or stopped
// answering) or closed; Err then says why.
func (l *Locks) Lost() <-chan struct{} { return l.lost }

// Err returns why the locks were lost, or nil while they are held.
func (l *Locks) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Check proves the session is alive, so the locks are still held: nil,
// or EUNAVAILABLE once they are lost (after which every lock is gone and
// the Locks only closes).
func (l *Locks) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(l.ttl/3, 10*time.Millisecond))
	defer cancel()
	if _, err := l.conn.Exec(ctx, "SELECT 1"); err != nil {
		l.loseLocked(err)
		return l.err
	}
	return nil
}

// loseLocked records that the locks are gone; l.mu is held.
func (l *Locks) loseLocked(cause error) {
	if l.err != nil {
		return
	}
	names := make([]string, 0, len(l.held))
	for n := range l.held {
		names = append(names, n)
	}
	slices.Sort(names)
	l.err = fmt.Errorf("accounts: locks of %s: %w (%w)", l.holder, bot.Errorf(bot.EUNAVAILABLE,
		"The database session holding these locks ended, so they may belong to another process now."), l.s.scrub(cause))
	l.held = map[string]bool{}
	if l.conn != nil {
		l.conn.Close(context.Background())
	}
	close(l.lost)
	if len(names) > 0 {
		l.s.log.Warn("locks lost", slog.String("holder", l.holder), slog.String("locks", strings.Join(names, ",")), slog.Any("error", l.s.scrub(cause)))
	}
}

// TryLock takes the lock called name if no one holds it: true when this
// Locks holds it now (or held it already), false when another holder
// does. EUNAVAILABLE once the locks are lost.
func (l *Locks) TryLock(ctx context.Context, name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return false, l.err
	}
	if l.held[name] {
		return true, nil
	}
	var ok bool
	if l.conn == nil {
		ok = l.s.locks.try(name, l)
	} else if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, l.s.lockKey(name)).Scan(&ok); err != nil {
		l.loseLocked(err)
		return false, l.err
	}
	if ok {
		l.held[name] = true
	}
	return ok, nil
}

// Unlock gives the lock called name back; unlocking a lock not held is a
// no-op.
func (l *Locks) Unlock(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || !l.held[name] {
		return nil
	}
	delete(l.held, name)
	if l.conn == nil {
		l.s.locks.release(name, l)
		return nil
	}
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.s.lockKey(name)); err != nil {
		l.loseLocked(err)
		return l.err
	}
	return nil
}

// Held reports whether this Locks holds the lock called name.
func (l *Locks) Held(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[name]
}

// numbered is the name of lock i of the family name.
func numbered(name string, i int) string { return name + "/" + strconv.Itoa(i) }

// Claim takes free locks of the numbered family name (name/0 … name/n-1)
// until this Locks holds want of them (want ≤ 0 or > n: all that are
// free), trying the lowest numbers first, and returns every number of
// the family it holds, sorted. Run it again to take over what a dead
// process gave back; Unlock(Numbered(name, i)) gives one back. EINVALID
// for n < 1; EUNAVAILABLE once the locks are lost.
func (l *Locks) Claim(ctx context.Context, name string, n, want int) ([]int, error) {
	if n < 1 {
		return nil, bot.Errorf(bot.EINVALID, "A family of locks has at least one lock, not %d.", n)
	}
	if want <= 0 || want > n {
		want = n
	}
	have := len(l.Numbers(name, n))
	for i := 0; i < n && have < want; i++ {
		if l.Held(numbered(name, i)) {
			continue
		}
		ok, err := l.TryLock(ctx, numbered(name, i))
		if err != nil {
			return nil, err
		}
		if ok {
			have++
		}
	}
	return l.Numbers(name, n), nil
}

// Numbered returns the name of lock i of the family name, for Unlock.
func Numbered(name string, i int) string { return numbered(name, i) }

// Numbers returns the numbers of the family name (of n locks) this Locks
// holds, sorted.
func (l *Locks) Numbers(name string, n int) []int {
	var out []int
	for i := range n {
		if l.Held(numbered(name, i)) {
			out = append(out, i)
		}
	}
	return out
}

// WhoHolds returns the holder of the lock called name in any process
// sharing the database (as OpenLocks was given it; on PostgreSQL at most
// 51 bytes of it), or ENOTFOUND when nobody holds it.
func (s *Store) WhoHolds(ctx context.Context, name string) (string, error) {
	const op = "who_holds"
	if s.d.engine != Postgres {
		if h, ok := s.locks.holder(name); ok {
			return h, nil
		}
		return "", s.fail(op, bot.Errorf(bot.ENOTFOUND, "Nobody holds the %s lock.", name))
	}
	key := uint64(s.lockKey(name))
	var app string
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(a.application_name, '') FROM pg_locks l
		LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid::bigint = CAST(? AS BIGINT) AND l.objid::bigint = CAST(? AS BIGINT)
		LIMIT 1`, int64(key>>32), int64(key&0xffffffff)).Scan(&app)
	if errors.Is(err, sql.ErrNoRows) {
		return "", s.fail(op, bot.Errorf(bot.ENOTFOUND, "Nobody holds the %s lock.", name))
	} else if err != nil {
		return "", s.fail(op, err)
	}
	if h, ok := strings.CutPrefix(app, "orchat lock "); ok {
		return h, nil
	}
	return "another session (" + app + ")", nil
}

// Close gives every lock back and ends the session. Closing twice is a
// no-op.
func (l *Locks) Close() error {
	l.mu.Lock()
	select {
	case <-l.stop:
		l.mu.Unlock()
		return nil
	default:
	}
	close(l.stop)
	if l.conn == nil {
		for name := range l.held {
			l.s.locks.release(name, l)
		}
	}
	var err error
	if l.err == nil {
		if l.conn != nil {
			// Release before closing: the server frees a closed session's
			// locks only once its backend has exited, a moment after
			// Close returns, and a process taking over at once must
			// find them free.
			ctx, cancel := context.WithTimeout(context.Background(), max(l.ttl/3, time.Second))
			_, uerr := l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
			cancel()
			err = errors.Join(uerr, l.conn.Close(context.Background()))
		}
		l.err = bot.Errorf(bot.EUNAVAILABLE, "These locks were closed.")
		l.held = map[string]bool{}
		close(l.lost)
	}
	l.mu.Unlock()
	<-l.done
	if err != nil {
		return fmt.Errorf("accounts: close locks: %w", l.s.scrub(err))
	}
	return nil
}

// lockTable is the locks of one SQLite file in this process.
type lockTable struct {
	mu    sync.Mutex
	owner map[string]*Locks
}

// sqliteLockFiles has one lockTable per SQLite file, shared by every
// Store on that file in this process.
type sqliteLockFiles struct {
	mu    sync.Mutex
	files map[string]*lockTable
}

var sqliteLocks = &sqliteLockFiles{files: map[string]*lockTable{}}

func (f *sqliteLockFiles) file(path string) *lockTable {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.files[path]
	if t == nil {
		t = &lockTable{owner: map[string]*Locks{}}
		f.files[path] = t
	}
	return t
}

func (t *lockTable) try(name string, l *Locks) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.owner[name]; o != nil && o != l {
		return false
	}
	t.owner[name] = l
	return true
}

func (t *lockTable) release(name string, l *Locks) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owner[name] == l {
		delete(t.owner, name)
	}
}

func (t *lockTable) holder(name string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.owner[name]; o != nil {
		return o.holder, true
	}
	return "", false
}

// leases are the PostgreSQL advisory locks behind TryLead, one session
// per lease name.
type leases struct {
	mu sync.Mutex
	m  map[string]*lease
}

type lease struct {
	holder string
	locks  *Locks
}

func (ls *leases) closeAll() error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var errs []error
	for name, l := range ls.m {
		errs = append(errs, l.locks.Close())
		delete(ls.m, name)
	}
	return errors.Join(errs...)
}

// leaseLockName is the lock a lease is on.
func leaseLockName(name string) string { return "lease:" + name }

// tryLeadPostgres is TryLead on PostgreSQL: the lease is an advisory lock
// on a session of this Store's, held until the session ends or
// ResignLead. ttl bounds how long a leader that stops answering keeps it.
func (s *Store) tryLeadPostgres(ctx context.Context, name, holder string, ttl time.Duration) error {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if s.leases.m == nil {
		s.leases.m = map[string]*lease{}
	}
	ls := s.leases.m[name]
	if ls != nil && ls.holder != holder {
		if ls.locks.Held(leaseLockName(name)) {
			return bot.Errorf(bot.ECONFLICT, "The %s lease is held by %s.", name, ls.holder)
		}
		ls.locks.Close()
		ls = nil
	}
	if ls != nil {
		if ls.locks.Held(leaseLockName(name)) {
			if err := ls.locks.Check(ctx); err == nil {
				return nil
			}
		}
		if ls.locks.Err() != nil {
			ls.locks.Close()
			ls = nil
		}
	}
	if ls == nil {
		l, err := s.OpenLocks(ctx, holder, ttl)
		if err != nil {
			return err
		}
		ls = &lease{holder: holder, locks: l}
		s.leases.m[name] = ls
	}
	ok, err := ls.locks.TryLock(ctx, leaseLockName(name))
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	who, err := s.WhoHolds(ctx, leaseLockName(name))
	if err != nil {
		who = "another process"
	}
	return bot.Errorf(bot.ECONFLICT, "The %s lease is held by %s.", name, who)
}

// resignLeadPostgres gives holder's advisory lease up at once.
func (s *Store) resignLeadPostgres(ctx context.Context, name, holder string) error {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	ls := s.leases.m[name]
	if ls == nil || ls.holder != holder {
		return nil
	}
	delete(s.leases.m, name)
	return ls.locks.Close()
}

// LeaseLost returns a channel closed when this Store's lease called name
// is lost or resigned, so a leader can stop its work at once rather than
// at its next TryLead. On SQLite, where a lease is a row that expires,
// it is nil (a nil channel never fires): the next TryLead says. ENOTFOUND
// when this Store does not hold the lease.
func (s *Store) LeaseLost(name string) (<-chan struct{}, error) {
	if s.d.engine != Postgres {
		return nil, nil
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	ls := s.leases.m[name]
	if ls == nil || !ls.locks.Held(leaseLockName(name)) {
		return nil, s.fail("lease_lost", bot.Errorf(bot.ENOTFOUND, "This process does not hold the %s lease.", name))
	}
	return ls.locks.Lost(), nil
}
