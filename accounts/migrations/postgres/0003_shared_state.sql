-- 0003: what several processes on one ledger share so that an answer
-- happens once: who owns each hold, the platform events already seen, and
-- per-identity rate-limit buckets. The PostgreSQL twin of
-- sqlite/0003_shared_state.sql. Times are Unix nanoseconds (UTC).

ALTER TABLE holds ADD COLUMN owner_instance TEXT NOT NULL DEFAULT '';
ALTER TABLE holds ADD COLUMN owner_boot TEXT NOT NULL DEFAULT '';

CREATE TABLE seen_events (
    id      TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
