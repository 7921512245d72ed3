-- 0005: communities run their own orchat: settings per community and
-- channel with the audit of every change, community pools and their
-- append-only rows, the members an allowance refills, the daily spend a
-- budget counts, the alerts the scheduler sends, and blind compares.
-- Times are Unix nanoseconds (UTC). No message text is stored.

-- settings holds what a community (channel '') or one of its channels
-- set; a setting not set here comes from the host's config.
CREATE TABLE settings (
    community  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (community, channel, key)
) STRICT, WITHOUT ROWID;

-- setting_changes is the audit: who changed what, when, old → new.
CREATE TABLE setting_changes (
    id         INTEGER PRIMARY KEY,
    community  TEXT NOT NULL,
    channel    TEXT NOT NULL,
    key        TEXT NOT NULL,
    old_value  TEXT NOT NULL,
    new_value  TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX setting_changes_community ON setting_changes (community, id);

CREATE TRIGGER setting_changes_no_update BEFORE UPDATE ON setting_changes
BEGIN
    SELECT RAISE(ABORT, 'setting changes are append-only');
END;

CREATE TRIGGER setting_changes_no_delete BEFORE DELETE ON setting_changes
BEGIN
    SELECT RAISE(ABORT, 'setting changes are append-only');
END;

-- pools caches each pool's sums as users does; Verify checks them against
-- the rows. A pool is named by its community, in a table of its own: a
-- guild's pool never mixes with a user whose id has the same shape.
CREATE TABLE pools (
    community  TEXT PRIMARY KEY,
    balance    INTEGER NOT NULL DEFAULT 0, -- = SUM(pool_entries.amount)
    funded     INTEGER NOT NULL DEFAULT 0, -- = SUM of fund rows
    drawn      INTEGER NOT NULL DEFAULT 0, -- = -SUM of topup and allowance rows
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- pool_entries is append-only, as entries is. A topup or allowance row
-- names the member it credited and that member's grant row (entry_id),
-- whose key is "pool:" + this row's key.
CREATE TABLE pool_entries (
    id         INTEGER PRIMARY KEY,
    community  TEXT NOT NULL REFERENCES pools(community),
    kind       TEXT NOT NULL CHECK (kind IN ('fund', 'withdraw', 'topup', 'allowance')),
    amount     INTEGER NOT NULL,
    key        TEXT NOT NULL UNIQUE,
    actor      TEXT NOT NULL,
    member     TEXT NOT NULL DEFAULT '',
    entry_id   INTEGER,
    note       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX pool_entries_community ON pool_entries (community, id);

CREATE TRIGGER pool_entries_no_update BEFORE UPDATE ON pool_entries
BEGIN
    SELECT RAISE(ABORT, 'pool entries are append-only');
END;

CREATE TRIGGER pool_entries_no_delete BEFORE DELETE ON pool_entries
BEGIN
    SELECT RAISE(ABORT, 'pool entries are append-only');
END;

-- members are who used the bot in a community; refilled is the last
-- allowance period they were refilled in.
CREATE TABLE members (
    community  TEXT NOT NULL,
    identity   TEXT NOT NULL REFERENCES users(identity),
    first_seen INTEGER NOT NULL,
    refilled   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (community, identity)
) STRICT, WITHOUT ROWID;

-- spend counts, per free-tier day, what a community with a budget spent
-- and holds: identity '' is the community's total, a member's row theirs.
-- A hold counted here says so (holds.budget = 1), with its community and
-- day, so settling or releasing it moves its tokens from held to spent.
CREATE TABLE spend (
    community TEXT NOT NULL,
    identity  TEXT NOT NULL,
    period    TEXT NOT NULL,
    spent     INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
    held      INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    PRIMARY KEY (community, identity, period)
) STRICT, WITHOUT ROWID;

ALTER TABLE holds ADD COLUMN community TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN period TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN budget INTEGER NOT NULL DEFAULT 0;

-- A blind compare hid its models until each member voted: its votes are
-- blind votes.
ALTER TABLE compares ADD COLUMN blind INTEGER NOT NULL DEFAULT 0;

-- alerts waits for the scheduler to tell a community's admins; the key
-- makes each alert once ("<community>:budget:<day>").
CREATE TABLE alerts (
    key        TEXT PRIMARY KEY,
    community  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
) STRICT, WITHOUT ROWID;
