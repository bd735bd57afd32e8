-- History as a gapless sequence of revisions per rollup, the current rollup per key, and the latest
-- value per reporter.
--
-- 0001 keyed rollup_history by (indicator, period, scope, revision): a figure that returns to an
-- earlier state (63/63 -> 62/63 -> 63/63 with the same newest observation) has the revision it had
-- before, so its third step was dropped. Rows are now numbered per rollup (seq 1, 2, 3, ...), and
-- the topic partition and offset they were read from make a replay of the topic insert nothing.
ALTER TABLE rollup_history
    ADD COLUMN seq integer,
    ADD COLUMN source_partition integer,
    ADD COLUMN source_offset bigint;

-- Rows written before this migration get their order from computed_at; they have no source offset.
UPDATE rollup_history AS h
SET seq = numbered.seq
FROM (
    SELECT indicator, period, scope, revision,
           row_number() OVER (PARTITION BY indicator, period, scope ORDER BY computed_at, revision) AS seq
    FROM rollup_history
) AS numbered
WHERE (h.indicator, h.period, h.scope, h.revision)
    = (numbered.indicator, numbered.period, numbered.scope, numbered.revision);

ALTER TABLE rollup_history ALTER COLUMN seq SET NOT NULL;
ALTER TABLE rollup_history DROP CONSTRAINT rollup_history_pkey;
ALTER TABLE rollup_history ADD PRIMARY KEY (indicator, period, scope, seq);
-- Time-range scans over years of history (e.g. "every change in 2027"); BRIN stays tiny because
-- rows arrive in computed_at order.
CREATE INDEX rollup_history_computed_brin ON rollup_history USING brin (computed_at);

-- The newest revision of every rollup, with rollup_history's columns: what the query API lists,
-- and the history writer's position per rollup (the last seq, revision and source offset written).
CREATE TABLE rollup_current (LIKE rollup_history INCLUDING DEFAULTS);
ALTER TABLE rollup_current ADD PRIMARY KEY (indicator, period, scope);
INSERT INTO rollup_current
SELECT DISTINCT ON (indicator, period, scope) *
FROM rollup_history
ORDER BY indicator, period, scope, seq DESC;

-- The latest accepted value of every reporter per (indicator, period): newest observed_at wins,
-- the event id breaks ties (as dxpulse.rollup.Snapshot.order), so replays and any delivery order
-- end in the same row. event_id is uuid so its order is the byte order of the canonical text.
CREATE TABLE reporter_latest (
    reporter    text        NOT NULL,
    indicator   text        NOT NULL,
    period      text        NOT NULL,
    observed_at timestamptz NOT NULL,
    event_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    value       jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reporter, indicator, period)
);
CREATE INDEX reporter_latest_by_figure ON reporter_latest (indicator, period);
