-- 0004: which panels of a compare failed (a JSON array of panel letters,
-- such as ["C"]): the PostgreSQL twin of sqlite/0004_compare_failed.sql. A
-- vote may not go to a failed panel.
ALTER TABLE compares ADD COLUMN failed TEXT NOT NULL DEFAULT '[]';
