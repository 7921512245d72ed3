-- 0002: what the scheduler records in the shared ledger: the daily
-- free-tier resets it ran. The PostgreSQL twin of sqlite/0002_scheduler.sql,
-- without its leases table: on PostgreSQL the scheduler leader holds a
-- session advisory lock on its own connection (accounts.Store.TryLead),
-- which the server releases the moment the leader's session ends.

-- free_resets has one row per finished free-tier period (a local date)
-- whose reset the scheduler ran. The primary key makes a reset happen once
-- per period: across restarts, instances and a repeated daylight-saving hour.
CREATE TABLE free_resets (
    period TEXT PRIMARY KEY,
    ran_at BIGINT NOT NULL
);

CREATE INDEX free_usage_period ON free_usage (period);
