-- 0006: the tier the auto router classified a compare's prompt into
-- (fast, general, code, reasoning, long, vision, free; '' for compares
-- recorded before). Votes teach the router each tier's preferences in a
-- community, so a vote must know the tier of its prompt. The prompt itself
-- is still never stored.
ALTER TABLE compares ADD COLUMN tier TEXT NOT NULL DEFAULT '';
CREATE INDEX compares_community_tier ON compares (community, tier);
