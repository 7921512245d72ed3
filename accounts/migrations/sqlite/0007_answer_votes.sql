-- 0007: thumbs up and down on answers (Slack's feedback buttons under a
-- streamed answer). One row per member and answer; only metadata: which
-- answer (the platform's message reference), who voted, where, for which
-- model, up or down. The leaderboard counts an up as a win and a down as a
-- loss against a virtual average model; router learning may read it too.
CREATE TABLE answer_votes (
    answer     TEXT NOT NULL,
    voter      TEXT NOT NULL,
    community  TEXT NOT NULL,
    model      TEXT NOT NULL,
    up         INTEGER NOT NULL CHECK (up IN (0, 1)),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (answer, voter)
) STRICT, WITHOUT ROWID;

CREATE INDEX answer_votes_by_community ON answer_votes (community, model);
