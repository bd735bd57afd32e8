-- Rollup history: every distinct published rollup, append-only; replaying the topic inserts nothing new.
CREATE TABLE rollup_history (
    indicator      text        NOT NULL,
    period         text        NOT NULL,
    scope          text        NOT NULL,
    revision       text        NOT NULL,
    value          double precision,
    numerator      double precision,
    denominator    double precision,
    attainment     double precision,
    reporters_reported integer NOT NULL,
    reporters_expected integer NOT NULL,
    computed_at    timestamptz NOT NULL,
    body           jsonb       NOT NULL,
    PRIMARY KEY (indicator, period, scope, revision)
);
CREATE INDEX rollup_history_by_time ON rollup_history (indicator, period, scope, computed_at);

-- Alert transitions as they were published.
CREATE TABLE alert_history (
    fingerprint text        NOT NULL,
    status      text        NOT NULL,
    changed_at  timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    PRIMARY KEY (fingerprint, status, changed_at)
);
