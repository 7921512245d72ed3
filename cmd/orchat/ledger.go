package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/commands"
	"github.com/orchat/orchat/stack"
)

// hostNote marks ledger rows written by the host from the command line;
// their actor is the system.
const hostNote = "host (command line)"

// openStore opens (and migrates) the ledger named by the config, alone:
// the host's ledger commands need no router or engine.
func (m *Main) openStore() (*accounts.Store, error) {
	return m.openStoreAt(m.Config.Accounts.Database, false)
}

// openStoreAt opens the ledger at database with the config's options;
// readOnly opens an existing ledger without writing to it.
func (m *Main) openStoreAt(database string, readOnly bool) (*accounts.Store, error) {
	a := m.Config.Stack().Accounts
	a.Database = database
	a.Options.ReadOnly = readOnly
	st, err := stack.OpenStore(a, m.deps())
	if err != nil {
		return nil, err
	}
	m.onClose(st.Close)
	return st, nil
}

func runMigrate(ctx context.Context, m *Main, args []string) error {
	pos, err := m.parse(m.flags("migrate"), args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate takes no arguments")
	}
	st, err := m.openStore()
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if m.JSON {
		return m.printJSON(map[string]any{"database": st.Path(), "schema_version": accounts.SchemaVersion()})
	}
	fmt.Fprintf(m.Stdout, "%s is at schema version %d.\n", st.Path(), accounts.SchemaVersion())
	return nil
}

func runBalance(ctx context.Context, m *Main, args []string) error {
	pos, err := m.parse(m.flags("balance"), args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: orchat balance IDENTITY|pool:COMMUNITY")
	}
	if community, ok, err := bot.ParsePool(pos[0]); ok || err != nil {
		if err != nil {
			return err
		}
		return poolBalance(ctx, m, community)
	}
	id, err := bot.ParseIdentity(pos[0])
	if err != nil {
		return err
	}
	st, err := m.openStore()
	if err != nil {
		return err
	}
	b, err := st.Balance(ctx, id)
	if bot.ErrorCode(err) == bot.ENOTFOUND {
		if err := notACommunity(ctx, st, id); err != nil {
			return err
		}
		return bot.Errorf(bot.ENOTFOUND, "%s is unknown: they have not used the bot yet (a top-up creates them).", id)
	} else if err != nil {
		return err
	}
	if m.JSON {
		return m.printJSON(map[string]any{
			"identity": string(id), "balance": b.Balance, "held": b.Held, "available": b.Available,
			"topped_up": b.ToppedUp, "blocked": b.Blocked,
			"free_used_today": b.Free.Used, "free_limit_today": b.Free.Limit, "free_resets_at": b.Free.ResetsAt.Format(time.RFC3339),
		})
	}
	fmt.Fprintf(m.Stdout, "%s: %s tokens (%s held, %s available); free requests today: %d of %d used, reset at %s",
		id, bot.FormatTokens(b.Balance), bot.FormatTokens(b.Held), bot.FormatTokens(b.Available),
		b.Free.Used, b.Free.Limit, b.Free.ResetsAt.In(m.Config.Location()).Format("2006-01-02 15:04 MST"))
	if b.Blocked {
		fmt.Fprint(m.Stdout, "; BLOCKED")
	}
	fmt.Fprintln(m.Stdout)
	return nil
}

func runTopUp(ctx context.Context, m *Main, args []string) error {
	fs := m.flags("topup")
	key := fs.String("key", "", "idempotency `key`: a repeated top-up with the same key changes nothing (default: a new key)")
	note := fs.String("note", "", "why, kept in the ledger")
	pos, err := m.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("usage: orchat topup IDENTITY|pool:COMMUNITY AMOUNT [--key K] [--note TEXT]")
	}
	community, isPool, err := bot.ParsePool(pos[0])
	if err != nil {
		return err
	}
	var id bot.Identity
	if !isPool {
		if id, err = bot.ParseIdentity(pos[0]); err != nil {
			return err
		}
	}
	amount, err := commands.ParseAmount(pos[1])
	if err != nil {
		return err
	}
	if *key == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		*key = "cli:" + hex.EncodeToString(b[:])
	}
	st, err := m.openStore()
	if err != nil {
		return err
	}
	if isPool {
		return fundPool(ctx, m, st, community, amount, *key, *note)
	}
	if _, err := st.Balance(ctx, id); bot.ErrorCode(err) == bot.ENOTFOUND {
		// A top-up creates a user; not one whose id is a server's.
		if err := notACommunity(ctx, st, id); err != nil {
			return err
		}
	}
	e, applied, err := st.TopUp(ctx, bot.Adjustment{Identity: id, Amount: amount, Key: *key, Actor: bot.ActorSystem, Note: joinNote(hostNote, *note)})
	if err != nil {
		return err
	}
	b, err := st.Balance(ctx, id)
	if err != nil {
		return err
	}
	if m.JSON {
		return m.printJSON(map[string]any{"identity": string(id), "applied": applied, "entry": e.ID, "balance": b.Balance})
	}
	if !applied {
		fmt.Fprintf(m.Stdout, "Already applied: key %q was used by entry #%d, nothing changed. %s has %s tokens.\n", *key, e.ID, id, bot.FormatTokens(b.Balance))
		return nil
	}
	fmt.Fprintf(m.Stdout, "Added %s tokens to %s (entry #%d). Balance: %s tokens.\n", bot.FormatTokens(amount), id, e.ID, bot.FormatTokens(b.Balance))
	return nil
}

func runLedger(ctx context.Context, m *Main, args []string) error {
	fs := m.flags("ledger")
	limit := fs.Int("limit", 20, "how many rows, newest first")
	to := fs.String("to", "", "ledger copy: the empty `database` to copy into (a postgres:// URL or a file)")
	pos, err := m.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: orchat ledger IDENTITY [--limit N] | orchat ledger verify | orchat ledger copy --to DATABASE")
	}
	switch pos[0] {
	case "verify":
		return ledgerVerify(ctx, m)
	case "copy":
		return ledgerCopy(ctx, m, *to)
	}
	if *to != "" {
		return usagef("--to is for orchat ledger copy")
	}
	if *limit < 1 || *limit > 10000 {
		return usagef("--limit must be between 1 and 10000, not %d", *limit)
	}
	if community, ok, err := bot.ParsePool(pos[0]); ok || err != nil {
		if err != nil {
			return err
		}
		return poolLedger(ctx, m, community, *limit)
	}
	id, err := bot.ParseIdentity(pos[0])
	if err != nil {
		return err
	}
	st, err := m.openStore()
	if err != nil {
		return err
	}
	rows, err := st.History(ctx, id, *limit)
	if err != nil {
		return err
	}
	if m.JSON {
		out := make([]map[string]any, len(rows))
		for i, e := range rows {
			out[i] = map[string]any{
				"id": e.ID, "kind": e.Kind, "amount": e.Amount, "key": e.Key, "actor": string(e.Actor), "note": e.Note,
				"model": e.Model, "prompt_tokens": e.Usage.PromptTokens, "completion_tokens": e.Usage.CompletionTokens,
				"generation_id": e.GenerationID, "created_at": e.CreatedAt.Format(time.RFC3339Nano),
			}
		}
		return m.printJSON(out)
	}
	for _, e := range rows {
		fmt.Fprintln(m.Stdout, commands.EntryLine(e))
	}
	return nil
}

func ledgerVerify(ctx context.Context, m *Main) error {
	st, err := m.openStore()
	if err != nil {
		return err
	}
	r, err := st.Verify(ctx)
	if err != nil {
		return err
	}
	if m.JSON {
		if err := m.printJSON(map[string]any{"ok": r.OK(), "users": r.Users, "entries": r.Entries, "holds": r.Holds, "pools": r.Pools, "pool_entries": r.PoolEntries, "problems": r.Problems}); err != nil {
			return err
		}
	} else {
		for _, p := range r.Problems {
			fmt.Fprintln(m.Stdout, "PROBLEM:", p)
		}
	}
	if !r.OK() {
		return fmt.Errorf("ledger verify: %d problems in %s", len(r.Problems), st.Path())
	}
	if !m.JSON {
		fmt.Fprintf(m.Stdout, "ledger OK: %d users, %d entries, %d open holds, %d community pools with %d rows; every balance equals the sum of its rows.\n",
			r.Users, r.Entries, r.Holds, r.Pools, r.PoolEntries)
	}
	return nil
}

// notACommunity refuses a user identity that is a community the ledger
// knows (a Discord server's id has the shape of a user's): its pool is
// pool:<community>.
func notACommunity(ctx context.Context, st *accounts.Store, id bot.Identity) error {
	known, err := st.KnownCommunity(ctx, string(id))
	if err != nil {
		return err
	}
	if known {
		return bot.Errorf(bot.EINVALID, "%s is a community here, not a user: its pool is %s%s (orchat topup %s%s AMOUNT).", id, bot.PoolPrefix, id, bot.PoolPrefix, id)
	}
	return nil
}

// fundPool is orchat topup pool:COMMUNITY AMOUNT.
func fundPool(ctx context.Context, m *Main, st *accounts.Store, community string, amount int64, key, note string) error {
	e, applied, err := st.FundPool(ctx, bot.PoolAdjustment{Community: community, Amount: amount, Key: key, Actor: bot.ActorSystem, Note: joinNote(hostNote, note)})
	if err != nil {
		return err
	}
	p, err := st.Pool(ctx, community)
	if err != nil {
		return err
	}
	if m.JSON {
		return m.printJSON(map[string]any{"pool": community, "applied": applied, "entry": e.ID, "balance": p.Balance})
	}
	if !applied {
		fmt.Fprintf(m.Stdout, "Already applied: key %q was used by pool row #%d, nothing changed. The pool of %s holds %s tokens.\n", key, e.ID, community, bot.FormatTokens(p.Balance))
		return nil
	}
	fmt.Fprintf(m.Stdout, "Added %s tokens to the pool of %s (pool row #%d). It holds %s tokens.\n", bot.FormatTokens(amount), community, e.ID, bot.FormatTokens(p.Balance))
	return nil
}

// poolBalance is orchat balance pool:COMMUNITY.
func poolBalance(ctx context.Context, m *Main, community string) error {
	st, err := m.openStore()
	if err != nil {
		return err
	}
	p, err := st.Pool(ctx, community)
	if err != nil {
		return err
	}
	if m.JSON {
		return m.printJSON(map[string]any{"pool": community, "balance": p.Balance, "funded": p.Funded, "drawn": p.Drawn})
	}
	fmt.Fprintf(m.Stdout, "pool of %s: %s tokens (funded %s, given to members %s)\n", community, bot.FormatTokens(p.Balance), bot.FormatTokens(p.Funded), bot.FormatTokens(p.Drawn))
	return nil
}

// poolLedger is orchat ledger pool:COMMUNITY.
func poolLedger(ctx context.Context, m *Main, community string, limit int) error {
	st, err := m.openStore()
	if err != nil {
		return err
	}
	rows, err := st.PoolHistory(ctx, community, limit)
	if err != nil {
		return err
	}
	if m.JSON {
		out := make([]map[string]any, len(rows))
		for i, e := range rows {
			out[i] = map[string]any{"id": e.ID, "kind": e.Kind, "amount": e.Amount, "key": e.Key, "actor": string(e.Actor),
				"member": string(e.Member), "entry": e.EntryID, "note": e.Note, "created_at": e.CreatedAt.Format(time.RFC3339Nano)}
		}
		return m.printJSON(out)
	}
	for _, e := range rows {
		line := fmt.Sprintf("#%d %s %s %+d", e.ID, e.CreatedAt.UTC().Format("2006-01-02 15:04"), e.Kind, e.Amount)
		if e.Member != "" {
			line += fmt.Sprintf(" → %s (entry #%d)", e.Member, e.EntryID)
		}
		if e.Actor != bot.ActorSystem {
			line += " · by " + string(e.Actor)
		}
		if e.Note != "" {
			line += " · " + e.Note
		}
		fmt.Fprintln(m.Stdout, line)
	}
	return nil
}

// ledgerCopy copies the configured ledger (opened read-only) into the
// empty database to, proving the copy with ledger verify on both sides.
func ledgerCopy(ctx context.Context, m *Main, to string) error {
	if to == "" {
		return usagef("usage: orchat ledger copy --to DATABASE (an empty postgres:// database or a new file; the source is --db or accounts.database)")
	}
	from, err := m.openStoreAt(m.Config.Accounts.Database, true)
	if err != nil {
		return err
	}
	dst, err := m.openStoreAt(to, false)
	if err != nil {
		return err
	}
	if from.Path() == dst.Path() {
		return usagef("ledger copy: the source and the target are both %s", from.Path())
	}
	rep, err := accounts.Copy(ctx, from, dst)
	if err != nil {
		return err
	}
	if m.JSON {
		tables := map[string]int{}
		for _, t := range rep.Tables {
			tables[t.Table] = t.Rows
		}
		return m.printJSON(map[string]any{
			"from": from.Path(), "to": dst.Path(), "tables": tables,
			"verify": map[string]any{"ok": rep.To.OK(), "users": rep.To.Users, "entries": rep.To.Entries, "holds": rep.To.Holds},
		})
	}
	var parts []string
	for _, t := range rep.Tables {
		if t.Rows > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", bot.FormatTokens(int64(t.Rows)), strings.ReplaceAll(t.Table, "_", " ")))
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing: the ledger is empty"}
	}
	fmt.Fprintf(m.Stdout, "Copied %s to %s: %s.\n", from.Path(), dst.Path(), strings.Join(parts, ", "))
	fmt.Fprintf(m.Stdout, "ledger verify: OK on both, %d users, %d entries, %d open holds; every balance equals the sum of its rows.\n",
		rep.To.Users, rep.To.Entries, rep.To.Holds)
	return nil
}

func (m *Main) printJSON(v any) error {
	enc := json.NewEncoder(m.Stdout)
	return enc.Encode(v)
}

func joinNote(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}
