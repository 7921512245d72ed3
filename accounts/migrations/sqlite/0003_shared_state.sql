-- 0003: what several processes on one ledger share so that an answer
-- happens once: who owns each hold, the platform events already seen, and
-- per-identity rate-limit buckets. Times are Unix nanoseconds (UTC).

-- A hold's owner is the instance that reserved it and the boot (one run
-- of that instance) it was reserved in: at start an instance releases the
-- holds of its own previous boots at once, instead of waiting for their
-- expiry; holds of other instances are left to the expiry sweeper.
ALTER TABLE holds ADD COLUMN owner_instance TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN owner_boot TEXT NOT NULL DEFAULT '';

-- seen_events keeps the ids of the platform events of the last hour
-- (Slack event ids, Discord message and interaction ids), so a redelivery
-- is dropped across restarts and processes. Never message text.
CREATE TABLE seen_events (
    id      TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- rate_buckets is one token bucket per key, kept as the time at which the
-- bucket is full again (the "theoretical arrival time" of GCRA): one
-- integer, updated by one statement. A bucket whose tat has passed is
-- full and may be deleted.
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tat INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
