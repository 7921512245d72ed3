package accounts

import (
	"context"
	"strconv"
	"strings"
)

// WhoHoldsEach returns, for each of names, the holder of that lock in
// any process sharing the database, as WhoHolds does, in one query: a
// map from the names held to their holders (a free lock is absent).
// Processes splitting Discord's shards count their peers with it every
// round, a lock per possible peer.
func (s *Store) WhoHoldsEach(ctx context.Context, names []string) (map[string]string, error) {
	const op = "who_holds_each"
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	if s.d.engine != Postgres {
		for _, n := range names {
			if h, ok := s.locks.holder(n); ok {
				out[n] = h
			}
		}
		return out, nil
	}
	byKey := make(map[uint64]string, len(names))
	hi, lo := make([]string, 0, len(names)), make([]string, 0, len(names))
	for _, n := range names {
		key := uint64(s.lockKey(n))
		byKey[key] = n
		hi = append(hi, strconv.FormatInt(int64(key>>32), 10))
		lo = append(lo, strconv.FormatInt(int64(key&0xffffffff), 10))
	}
	// The numbers travel as text arrays: database/sql has no array type
	// of its own here, and the dialect rewrites only placeholders.
	rows, err := s.read.QueryContext(ctx, `SELECT l.classid::bigint, l.objid::bigint, COALESCE(a.application_name, '')
		FROM pg_locks l
		LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		JOIN unnest(CAST(? AS bigint[]), CAST(? AS bigint[])) AS k(hi, lo) ON l.classid::bigint = k.hi AND l.objid::bigint = k.lo
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		"{"+strings.Join(hi, ",")+"}", "{"+strings.Join(lo, ",")+"}")
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h, l int64
		var app string
		if err := rows.Scan(&h, &l, &app); err != nil {
			return nil, s.fail(op, err)
		}
		name, ok := byKey[uint64(h)<<32|uint64(l)]
		if !ok {
			continue
		}
		if holder, ok := strings.CutPrefix(app, "orchat lock "); ok {
			out[name] = holder
		} else {
			out[name] = "another session (" + app + ")"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}
