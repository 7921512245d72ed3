-- 0004: which panels of a compare failed (a JSON array of panel letters,
-- such as ["C"]). A vote may not go to a failed panel: a failure must not
-- win a head-to-head, though the others still win over it.
ALTER TABLE compares ADD COLUMN failed TEXT NOT NULL DEFAULT '[]';
