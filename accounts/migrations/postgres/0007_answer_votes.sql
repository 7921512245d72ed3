-- 0007: thumbs up and down on answers: the PostgreSQL twin of
-- sqlite/0007_answer_votes.sql. One row per member and answer, metadata
-- only; the leaderboard counts an up as a win and a down as a loss
-- against a virtual average model.
CREATE TABLE answer_votes (
    answer     TEXT NOT NULL,
    voter      TEXT NOT NULL,
    community  TEXT NOT NULL,
    model      TEXT NOT NULL,
    up         BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (answer, voter)
);

CREATE INDEX answer_votes_by_community ON answer_votes (community, model);
