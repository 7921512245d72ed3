package accounts_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
)

// What the engine's event dedupe costs per event since it goes through the
// ledger (issue 12's "redelivery after a restart", issue 14's shared
// dedupe): one SeenEvent, a write transaction, per event id. Compare with
// BenchmarkReserveSettle's pairs/s in the same run: an answer is one
// SeenEvent and one pair.

func seenEvents(b *testing.B, s *accounts.Store) {
	ctx := context.Background()
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		if first, err := s.SeenEvent(ctx, "slack:event:Ev"+strconv.Itoa(i), now); err != nil || !first {
			b.Fatalf("SeenEvent=%v, %v", first, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSeenEvent is one new event id recorded per op on SQLite.
func BenchmarkSeenEvent(b *testing.B) {
	s, _ := benchStore(b, 1)
	seenEvents(b, s)
}

// BenchmarkSeenEventPostgres is the same on PostgreSQL.
func BenchmarkSeenEventPostgres(b *testing.B) {
	ss, _, _ := benchPostgres(b, 1, 1)
	seenEvents(b, ss[0])
}
