package accounts

import (
	"context"
	"fmt"
)

// ForceReadOnlyFile returns o set to make SQLite open the file read-only,
// exactly as it does by itself when the operating system refuses writes.
// Tests running as root, where chmod refuses nothing, use it.
func ForceReadOnlyFile(o Options) Options {
	o.forceReadOnlyFile = true
	return o
}

// SetQueryOnly turns PRAGMA query_only on or off on the writer connection,
// making a healthy file refuse writes as a remounted disk would.
func SetQueryOnly(s *Store, on bool) error {
	_, err := s.w.Exec(fmt.Sprintf("PRAGMA query_only = %t", on))
	return err
}

// WriterPragmas reads the settings of the writer connection.
func WriterPragmas(s *Store) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only"} {
		var v string
		if err := s.w.QueryRowContext(context.Background(), "PRAGMA "+p).Scan(&v); err != nil {
			return nil, err
		}
		out[p] = v
	}
	return out, nil
}

// WriterDSN is the data source name Open gives its writer: the same
// pragmas, for raw access in tests and benchmarks.
func WriterDSN(path string) string { return dsn(path, false, true) }

// LockSessionPID is the server process of a PostgreSQL Locks session, for
// tests that end it as a crash or a network cut would.
func LockSessionPID(l *Locks) uint32 { return l.conn.PgConn().PID() }

// LockSessionSetting reads a setting of a PostgreSQL Locks session.
func LockSessionSetting(l *Locks, name string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v string
	err := l.conn.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// LeaseSessionPID is the server process of the session holding this
// Store's lease called name on PostgreSQL.
func LeaseSessionPID(s *Store, name string) uint32 {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	return LockSessionPID(s.leases.m[name].locks)
}

// CopyColumns is what Copy carries: each table's columns.
func CopyColumns() map[string][]string {
	out := map[string][]string{}
	for _, t := range copyTables {
		out[t.name] = t.columns
	}
	return out
}
