-- 0006: the tier the auto router classified a compare's prompt into: the
-- PostgreSQL twin of sqlite/0006_compare_tier.sql. Votes teach the router
-- each tier's preferences in a community.
ALTER TABLE compares ADD COLUMN tier TEXT NOT NULL DEFAULT '';
CREATE INDEX compares_community_tier ON compares (community, tier);
