package accounts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/accounts/accountstest"
	"github.com/orchat/orchat/bot"
)

// fillLedger writes a bit of everything a community's ledger holds.
func fillLedger(t *testing.T, s *accounts.Store, clock *accountstest.Clock) {
	t.Helper()
	ctx := t.Context()
	for i, id := range []bot.Identity{alice, bob, "discord:123456789012345678", "slack:T0123:U0456"} {
		ensure(t, s, id)
		if _, _, err := s.TopUp(ctx, bot.Adjustment{Identity: id, Amount: int64(1000 * (i + 1)), Key: fmt.Sprintf("topup-%d", i), Actor: "console:admin", Note: "thanks"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Grant(ctx, bot.Adjustment{Identity: bob, Amount: 77, Key: "grant-1", Actor: "console:admin"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Deduct(ctx, bot.Adjustment{Identity: bob, Amount: 33, Key: "deduct-1", Actor: "console:admin"}); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		clock.Add(time.Second)
		h, err := s.Reserve(ctx, alice, 500, fmt.Sprintf("event-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			_, err = s.Settle(ctx, h.ID, bot.Charge{Amount: int64(100 + i), Model: "openai/gpt-5", GenerationID: fmt.Sprintf("gen-%d", i),
				Usage: bot.Usage{PromptTokens: 420, CompletionTokens: int64(i), CachedTokens: 3, ReasoningTokens: 1, CostUSD: 0.000123456789 * float64(i), CostReported: true, IsBYOK: i%2 == 0, UpstreamCostUSD: 0.1}})
		case 1:
			err = s.Release(ctx, h.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Reserve(ctx, bob, 250, ""); err != nil { // open, no key
		t.Fatal(err)
	}
	if _, err := s.UseFree(ctx, alice, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBlocked(ctx, "slack:T0123:U0456", true, "console:admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDefaultModel(ctx, bob, "anthropic/claude-sonnet-4.5:nitro"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCompare(ctx, bot.CompareRecord{ID: "c1", Community: "discord:1", Requester: alice, Models: []string{"a/x", "b/y", "c/z"}, Tier: "code"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Vote(ctx, "c1", bob, "B"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFeedback(ctx, bot.AnswerVote{Answer: "slack:C1:1.000100", Voter: alice, Community: "slack:T0123", Model: "a/x", Up: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordReset(ctx, "2026-11-21", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeenEvent(ctx, "slack:event:Ev1", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeToken(ctx, string(alice), bot.RateLimit{PerMinute: 1, Burst: 2}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReleaseExpired(ctx, clock.Now()); err != nil { // raises SQLite's sweep mark
		t.Fatal(err)
	}
}

func TestCopy(t *testing.T) {
	for _, from := range engines {
		for _, to := range engines {
			t.Run(from.name+"To"+to.name, func(t *testing.T) {
				clock := accountstest.NewClock(accountstest.Start)
				opts := testOptions()
				opts.Now = clock.Now
				src := MustOpenPath(t, from.database(t), opts)
				fillLedger(t, src, clock)
				dst := MustOpenPath(t, to.database(t), opts)

				rep, err := accounts.Copy(t.Context(), src, dst)
				if err != nil {
					t.Fatal(err)
				}
				if !rep.From.OK() || !rep.To.OK() || rep.To.Users != 4 || rep.To.Entries != rep.From.Entries || rep.To.Holds != 11 {
					t.Fatalf("verify before %+v, after %+v", rep.From, rep.To)
				}
				rows := map[string]int{}
				for _, tc := range rep.Tables {
					rows[tc.Table] = tc.Rows
				}
				if rows["users"] != 4 || rows["holds"] != 31 || rows["votes"] != 1 || rows["answer_votes"] != 1 || rows["seen_events"] != 1 || rows["rate_buckets"] != 1 {
					t.Fatalf("copied %v", rows)
				}
				// The copy answers as the original does, and goes on from it.
				for _, id := range []bot.Identity{alice, bob, "slack:T0123:U0456"} {
					a, _ := src.Balance(t.Context(), id)
					b, err := dst.Balance(t.Context(), id)
					if err != nil || a != b {
						t.Fatalf("%s: balance %+v in the copy, %+v in the original (%v)", id, b, a, err)
					}
					ha, _ := src.History(t.Context(), id, 100)
					hb, _ := dst.History(t.Context(), id, 100)
					if fmt.Sprint(ha) != fmt.Sprint(hb) {
						t.Fatalf("%s: history differs:\n%v\n%v", id, hb, ha)
					}
				}
				if tr, err := dst.TierResults(t.Context(), "discord:1"); err != nil || len(tr) != 1 || tr[0].Tier != "code" || tr[0].Votes != 1 {
					t.Fatalf("the copy's votes by tier=%+v, %v; want the compare's code-tier vote", tr, err)
				}
				if m, err := dst.DefaultModel(t.Context(), bob); err != nil || m != "anthropic/claude-sonnet-4.5:nitro" {
					t.Fatalf("DefaultModel=%q, %v", m, err)
				}
				if seen, err := dst.SeenEvent(t.Context(), "slack:event:Ev1", clock.Now()); err != nil || seen {
					t.Fatalf("the copy forgot a seen event: new=%v, %v", seen, err)
				}
				h, err := dst.Reserve(t.Context(), alice, 10, "after-copy")
				if err != nil {
					t.Fatal(err)
				}
				e, err := dst.Settle(t.Context(), h.ID, bot.Charge{Amount: 5, Model: "m"})
				if err != nil {
					t.Fatal(err)
				}
				if last, _ := src.History(t.Context(), alice, 1); e.ID <= last[0].ID {
					t.Fatalf("the copy's next entry id %d does not follow the copied ones (last %d)", e.ID, last[0].ID)
				}
				if rep, err := dst.Verify(t.Context()); err != nil || !rep.OK() {
					t.Fatalf("Verify after writing to the copy=%+v, %v", rep, err)
				}

				_, err = accounts.Copy(t.Context(), src, dst)
				wantCode(t, err, bot.EINVALID)
				wantMessage(t, err, "not empty", "4 users", "nothing was copied")
			})
		}
	}

	t.Run("ErrSourceDoesNotVerify", func(t *testing.T) {
		e := engines[0]
		db := e.database(t)
		src := MustOpenPath(t, db, testOptions())
		ensure(t, src, alice)
		if _, err := e.raw(t, db).Exec(`UPDATE users SET balance = 1`); err != nil {
			t.Fatal(err)
		}
		dst := MustOpenPath(t, e.database(t), testOptions())
		_, err := accounts.Copy(t.Context(), src, dst)
		wantCode(t, err, bot.EINVALID)
		wantMessage(t, err, "does not verify", "nothing was copied")
		if rep, err := dst.Verify(t.Context()); err != nil || rep.Users != 0 {
			t.Fatalf("the target after a refused copy: %+v, %v", rep, err)
		}
	})
}

// notCopied are the tables Copy leaves out on purpose: the migrations
// record (each side has its own), the heartbeat row, and SQLite's leases
// (a lease belongs to a running process).
var notCopied = map[string]bool{"migrations": true, "heartbeat": true, "leases": true}

// TestCopyCoversSchema keeps ledger copy whole as the schema grows: every
// table of a migrated database is copied (or listed in notCopied), with
// every one of its columns. A migration that adds a column fails here
// until copy.go carries it.
func TestCopyCoversSchema(t *testing.T) {
	want := accounts.CopyColumns()
	eachEngine(t, func(t *testing.T, e engine) {
		db := e.database(t)
		MustOpenPath(t, db, testOptions())
		query := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
		if e.name == "PostgreSQL" {
			query = `SELECT table_name, column_name FROM information_schema.columns
				WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
		}
		rows, err := e.raw(t, db).Query(query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string][]string{}
		for rows.Next() {
			var table, column string
			if err := rows.Scan(&table, &column); err != nil {
				t.Fatal(err)
			}
			if !notCopied[table] {
				got[table] = append(got[table], column)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for table, columns := range got {
			if !sameSet(columns, want[table]) {
				t.Errorf("table %s has columns %v; ledger copy carries %v (add them to copyTables in copy.go)", table, columns, want[table])
			}
		}
		for table := range want {
			if got[table] == nil {
				t.Errorf("ledger copy carries table %s, which the schema does not have", table)
			}
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
