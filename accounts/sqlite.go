package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/orchat/orchat/bot"
)

// openSQLite opens the file at path (creating its folder) with one writer
// connection and a pool of readers; Open then migrates it.
func openSQLite(path string, o Options) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", path, err)
	}
	if err := checkFile(abs, o.ReadOnly); err != nil {
		return nil, fmt.Errorf("accounts: open: %w", err)
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("accounts: open: %w", bot.Errorf(bot.EINVALID,
				"Cannot create the folder of database %s: %v.", abs, err))
		}
	}
	s := &Store{d: sqliteDialect, path: abs, opts: o, log: o.Logger, metrics: o.Metrics, locks: sqliteLocks.file(abs)}

	s.w, err = sql.Open("sqlite3", dsn(abs, o.ReadOnly || o.forceReadOnlyFile, true))
	if err != nil {
		return nil, fmt.Errorf("accounts: open %s: %w", abs, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	s.r, err = sql.Open("sqlite3", dsn(abs, true, false))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("accounts: open %s: %w", abs, err)
	}
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	s.r.SetConnMaxIdleTime(0)
	s.read = bound{s.r, s.d}
	return s, nil
}

// readers is the size of the read-only pool: enough for the reports and
// balance lookups that run beside the writer on a small machine.
const readers = 4

// dsn builds the go-sqlite3 data source name. Writers take the write lock
// when they begin (_txlock=immediate), so two transactions never deadlock
// upgrading a read lock; readers never write.
func dsn(file string, readOnly, writer bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("_foreign_keys", "on")
	q.Set("_stmt_cache_size", "48")
	if writer {
		q.Set("_txlock", "immediate")
		q.Set("_synchronous", "NORMAL")
		if !readOnly {
			q.Set("_journal_mode", "WAL")
		}
	}
	if readOnly {
		q.Set("mode", "ro")
	}
	return "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkFile refuses, before SQLite touches it, a path that is a folder or a
// file that is not an SQLite database, so a typo in the config cannot
// scribble -wal and -shm files beside someone's spreadsheet.
func checkFile(file string, readOnly bool) error {
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		if readOnly {
			return bot.Errorf(bot.EINVALID, "Database %s does not exist, and it was to be opened read-only.", file)
		}
		return nil
	} else if err != nil {
		return bot.Errorf(bot.EINVALID, "Cannot read database %s: %v.", file, err)
	}
	if fi.IsDir() {
		return bot.Errorf(bot.EINVALID, "Database %s is a folder; give the path of a database file inside it, such as %s.", file, filepath.Join(file, "orchat.db"))
	}
	if fi.Size() == 0 {
		return nil // SQLite treats an empty file as a new database
	}
	f, err := os.Open(file)
	if err != nil {
		return bot.Errorf(bot.EINVALID, "Cannot read database %s: %v.", file, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return notSQLite(file)
	}
	return nil
}

func notSQLite(file string) error {
	return bot.Errorf(bot.EINVALID, "%s is not an SQLite database; point the ledger at an orchat database file or at a new path.", file)
}

// sqliteOpenError turns what went wrong while opening a file into a
// sentence about the file for the operator.
func (s *Store) sqliteOpenError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrNotADB, sqlite3.ErrCorrupt:
			return fmt.Errorf("accounts: open: %w (%w)", notSQLite(s.path), se)
		case sqlite3.ErrReadonly, sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrAuth:
			return fmt.Errorf("accounts: open: %w", s.readOnlyError(se))
		}
	}
	var be *bot.Error
	if errors.As(err, &be) {
		return fmt.Errorf("accounts: open: %w", err)
	}
	return fmt.Errorf("accounts: open %s: %w", s.path, err)
}

func (s *Store) readOnlyError(cause error) error {
	return bot.Errorf(bot.EINVALID,
		"Database %s is read-only or cannot be opened for writing (%v): orchat writes the file and its -wal and -shm files beside it, so check the permissions of the file and its folder, and that the disk is mounted read-write.",
		s.path, cause)
}

// sqliteCode translates SQLite's errors into the codes callers act on, or
// returns nil.
func sqliteCode(err error) *bot.Error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch {
	case se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey:
		return bot.Errorf(bot.ECONFLICT, "That was already recorded.")
	case se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked:
		return bot.Errorf(bot.EUNAVAILABLE, "The ledger is busy; please try again in a moment.")
	case se.Code == sqlite3.ErrReadonly:
		return bot.Errorf(bot.EUNAVAILABLE, "The ledger is read-only right now, so balances cannot change; nothing was charged.")
	case se.Code == sqlite3.ErrFull:
		return bot.Errorf(bot.EUNAVAILABLE, "The ledger's disk is full; nothing was charged.")
	}
	return nil
}

// sqliteBusy reports whether err is SQLite's "database is locked".
func sqliteBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// IntegrityCheck returns SQLite's PRAGMA integrity_check report: "ok" for a
// sound file, else one line per problem. On PostgreSQL, which checks its
// pages itself (and offers the amcheck extension to operators), it is
// EINVALID.
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	if s.d.engine != SQLite {
		return "", s.fail("integrity_check", bot.Errorf(bot.EINVALID,
			"The integrity check is SQLite's; on PostgreSQL use the server's own tools (amcheck, pg_dump)."))
	}
	rows, err := s.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return "", s.fail("integrity_check", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", s.fail("integrity_check", err)
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		return "", s.fail("integrity_check", err)
	}
	return strings.Join(lines, "\n"), nil
}
