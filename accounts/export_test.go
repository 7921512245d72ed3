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
