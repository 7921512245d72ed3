package accounts_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
)

// The tests in this file hold for both engines; each runs once per engine.

func TestMigrationsMatch(t *testing.T) {
	sqlite, pg := accounts.MigrationNames(accounts.SQLite), accounts.MigrationNames(accounts.Postgres)
	if len(sqlite) == 0 || !slices.Equal(sqlite, pg) {
		t.Fatalf("migrations differ between engines:\nsqlite   %v\npostgres %v\nevery version exists on both, under one name", sqlite, pg)
	}
	if got := accounts.SchemaVersion(); got != len(sqlite) {
		t.Fatalf("SchemaVersion=%d, want %d", got, len(sqlite))
	}
}

func TestMigrate(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		t.Run("Idempotent", func(t *testing.T) {
			db := e.database(t)
			s := MustOpenPath(t, db, testOptions())
			ensure(t, s, alice)
			for range 2 {
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			var n, version int
			if err := e.raw(t, db).QueryRow(`SELECT COUNT(*), MAX(version) FROM migrations`).Scan(&n, &version); err != nil {
				t.Fatal(err)
			}
			if n != accounts.SchemaVersion() || version != accounts.SchemaVersion() {
				t.Fatalf("migrations table has %d rows up to version %d, want %d", n, version, accounts.SchemaVersion())
			}
			if b, err := s.Balance(t.Context(), alice); err != nil || b.Balance != 15_000 {
				t.Fatalf("balance after migrating again=%+v, %v", b, err)
			}
		})

		// Processes that start together on a new database migrate it once.
		t.Run("ConcurrentFirstOpen", func(t *testing.T) {
			db := e.database(t)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					s, err := accounts.Open(db, testOptions())
					if err == nil {
						s.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
			}
			var n int
			if err := e.raw(t, db).QueryRow(`SELECT COUNT(*) FROM migrations`).Scan(&n); err != nil || n != accounts.SchemaVersion() {
				t.Fatalf("migrations table has %d rows (%v), want %d", n, err, accounts.SchemaVersion())
			}
		})

		t.Run("ErrNewerSchema", func(t *testing.T) {
			db := e.database(t)
			s := MustOpenPath(t, db, testOptions())
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := e.raw(t, db).Exec(`INSERT INTO migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 0)`); err != nil {
				t.Fatal(err)
			}
			for _, opts := range []accounts.Options{testOptions(), func() accounts.Options { o := testOptions(); o.ReadOnly = true; return o }()} {
				_, err := accounts.Open(db, opts)
				wantCode(t, err, bot.EINVALID)
				wantMessage(t, err, s.Path(), "newer orchat", "schema 99", fmt.Sprintf("knows %d", accounts.SchemaVersion()), "upgrade orchat")
			}
		})
	})
}

func TestVerify(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		// tamper changes the database behind the store's back, as a
		// broken disk or an operator's shell could, and verifies.
		tamper := func(t *testing.T, queries ...string) (*accounts.Store, bot.VerifyReport) {
			t.Helper()
			db := e.database(t)
			s := MustOpenPath(t, db, testOptions())
			ensure(t, s, alice)
			ensure(t, s, bob)
			ha, err := s.Reserve(t.Context(), alice, 100, "")
			if err != nil {
				t.Fatal(err)
			}
			ea, err := s.Settle(t.Context(), ha.ID, bot.Charge{Amount: 50, GenerationID: "gen-1"})
			if err != nil {
				t.Fatal(err)
			}
			hb, err := s.Reserve(t.Context(), bob, 100, "")
			if err != nil {
				t.Fatal(err)
			}
			raw := e.raw(t, db)
			for _, q := range queries {
				q = strings.NewReplacer("{bob_hold}", fmt.Sprint(hb.ID), "{alice_charge}", fmt.Sprint(ea.ID)).Replace(q)
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			rep, err := s.Verify(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return s, rep
		}
		wantProblem := func(t *testing.T, rep bot.VerifyReport, want string) {
			t.Helper()
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
				t.Fatalf("problems=%q, want one saying %q", rep.Problems, want)
			}
		}

		t.Run("OK", func(t *testing.T) {
			_, rep := tamper(t)
			if !rep.OK() || rep.Users != 2 || rep.Entries != 3 || rep.Holds != 1 {
				t.Fatalf("untouched ledger: %+v", rep)
			}
		})
		t.Run("ErrCachedBalanceDiffers", func(t *testing.T) {
			_, rep := tamper(t, `UPDATE users SET balance = balance + 1 WHERE identity = 'console:alice'`)
			wantProblem(t, rep, "console:alice: balance is 14951 but its ledger rows add up to 14950")
		})
		t.Run("ErrHeldDiffers", func(t *testing.T) {
			_, rep := tamper(t, `UPDATE holds SET amount = 90 WHERE id = {bob_hold}`)
			wantProblem(t, rep, "console:bob: held is 100 but its open holds add up to 90")
		})
		// A hold settled by another user's charge row (what a generation id
		// repeated across users once produced) is reported.
		t.Run("ErrHoldSettledByAnotherUsersCharge", func(t *testing.T) {
			_, rep := tamper(t, `UPDATE users SET held = 0 WHERE identity = 'console:bob'`,
				`UPDATE holds SET state = 'settled', entry_id = {alice_charge} WHERE id = {bob_hold}`)
			wantProblem(t, rep, "of console:bob: settled by a charge row that does not exist or is another user's")
		})
	})
}

func TestPoolStats(t *testing.T) {
	eachEngine(t, func(t *testing.T, e engine) {
		s := MustOpenPath(t, e.database(t), testOptions())
		ensure(t, s, alice)
		if _, err := s.Balance(t.Context(), alice); err != nil {
			t.Fatal(err)
		}
		p := s.PoolStats()
		want := map[string]int{"SQLite": 1 + 4, "PostgreSQL": 10}[e.name]
		if p.MaxOpen != want || p.Open < 1 || p.InUse != 0 || p.Idle != p.Open {
			t.Fatalf("idle store: PoolStats=%+v, want at most %d open, none in use", p, want)
		}
		if err := s.Writable(t.Context()); err != nil {
			t.Fatalf("Writable: %v", err)
		}
	})
}
