-- 0001: users, the append-only ledger, holds, daily free-tier counters,
-- compares and their votes. Times are Unix nanoseconds (UTC). No message
-- text is ever stored: metadata only (DESIGN.md "Privacy").

-- users caches three sums so the hot path reads one row; Verify checks each
-- cache against the rows it summarises.
CREATE TABLE users (
    identity      TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    blocked       INTEGER NOT NULL DEFAULT 0,
    default_model TEXT NOT NULL DEFAULT '',
    balance       INTEGER NOT NULL DEFAULT 0, -- = SUM(entries.amount)
    held          INTEGER NOT NULL DEFAULT 0, -- = SUM(holds.amount) of open holds
    topped_up     INTEGER NOT NULL DEFAULT 0  -- = SUM(entries.amount) of topup rows
) STRICT, WITHOUT ROWID;

-- entries is append-only: every change of a balance is one row.
CREATE TABLE entries (
    id                INTEGER PRIMARY KEY,
    identity          TEXT NOT NULL REFERENCES users(identity),
    kind              TEXT NOT NULL CHECK (kind IN ('signup', 'topup', 'grant', 'deduct', 'charge', 'refund')),
    amount            INTEGER NOT NULL,
    key               TEXT NOT NULL UNIQUE,
    actor             TEXT NOT NULL,
    note              TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    cost_reported     INTEGER NOT NULL DEFAULT 0,
    byok              INTEGER NOT NULL DEFAULT 0,
    upstream_cost_usd REAL NOT NULL DEFAULT 0,
    generation_id     TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL
) STRICT;

-- key is the idempotency key: "signup:<identity>" for the bonus, the
-- admin's key for adjustments, and for charges "generation:<id>" (so a
-- generation is charged at most once, whichever hold settles it) or
-- "charge:<hold id>" when the upstream sent no generation id. One unique
-- index serves all of them: every index is a page written per commit.
CREATE INDEX entries_identity ON entries (identity, id);

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'entries are append-only');
END;

CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'entries are append-only');
END;

-- holds reserve tokens for calls in flight. key is NULL when the caller
-- asked for no idempotency. entry_id is the charge that settled the hold
-- (NULL when nothing was charged); charged is what this hold charged.
CREATE TABLE holds (
    id         INTEGER PRIMARY KEY,
    identity   TEXT NOT NULL REFERENCES users(identity),
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    key        TEXT UNIQUE,
    state      TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'settled', 'released')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    closed_at  INTEGER,
    entry_id   INTEGER,
    charged    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- No index on state or expiry: it would cost two page writes per call.
-- The sweeper instead scans holds from sweep.low_hold_id, below which no
-- hold is open (ids only grow), a range of minutes of traffic.
CREATE TABLE sweep (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    low_hold_id INTEGER NOT NULL
) STRICT;

-- free_usage counts free-tier requests per user and period (a local date),
-- so a missed reset never leaves a user stuck.
CREATE TABLE free_usage (
    identity TEXT NOT NULL REFERENCES users(identity),
    period   TEXT NOT NULL,
    used     INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (identity, period)
) STRICT, WITHOUT ROWID;

-- compares keep which models took part (a JSON array in panel order), never
-- the prompt or the answers.
CREATE TABLE compares (
    id         TEXT PRIMARY KEY,
    community  TEXT NOT NULL,
    requester  TEXT NOT NULL,
    models     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX compares_community ON compares (community);

CREATE TABLE votes (
    compare_id TEXT NOT NULL REFERENCES compares(id),
    voter      TEXT NOT NULL,
    choice     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (compare_id, voter)
) STRICT, WITHOUT ROWID;

-- heartbeat is the one row Writable rewrites to prove the file takes writes.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
) STRICT;
