-- 0002: what the scheduler records in the shared ledger: the daily
-- free-tier resets it ran, and the lease that elects one scheduler leader
-- among several instances. Times are Unix nanoseconds (UTC).

-- free_resets has one row per finished free-tier period (a local date)
-- whose reset the scheduler ran. The primary key makes a reset happen once
-- per period: across restarts, instances and a repeated daylight-saving hour.
CREATE TABLE free_resets (
    period TEXT PRIMARY KEY,
    ran_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The reset looks up who used up a period's allowance. The index is written
-- only when a user's first free request of a day inserts the counter, never
-- when the counter goes up.
CREATE INDEX free_usage_period ON free_usage (period);

-- leases holds named leases: the scheduler's leader election. A holder
-- keeps its lease by renewing it before expires_at; anyone may take a
-- lease that has expired.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
