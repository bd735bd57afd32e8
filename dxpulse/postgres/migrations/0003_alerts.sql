-- Alert history as operators query it: the alert's identity in columns, and one row per transition
-- of an alert episode (fingerprint, status, starts_at), so a transition sent again is stored once.
ALTER TABLE alert_history
    ADD COLUMN rule text,
    ADD COLUMN indicator text,
    ADD COLUMN period text,
    ADD COLUMN scope text,
    ADD COLUMN severity text,
    ADD COLUMN starts_at timestamptz;

UPDATE alert_history
   SET rule = body->>'rule', indicator = body->>'indicator', period = body->>'period',
       scope = body->>'scope', severity = body->>'severity', starts_at = (body->>'starts_at')::timestamptz;

-- Keep the first copy of a transition stored twice before this migration.
DELETE FROM alert_history a
 USING alert_history b
 WHERE a.fingerprint = b.fingerprint AND a.status = b.status AND a.starts_at = b.starts_at
   AND a.changed_at > b.changed_at;

ALTER TABLE alert_history
    ALTER COLUMN rule SET NOT NULL,
    ALTER COLUMN indicator SET NOT NULL,
    ALTER COLUMN period SET NOT NULL,
    ALTER COLUMN scope SET NOT NULL,
    ALTER COLUMN severity SET NOT NULL,
    ALTER COLUMN starts_at SET NOT NULL;

CREATE UNIQUE INDEX alert_history_once_per_episode ON alert_history (fingerprint, status, starts_at);
CREATE INDEX alert_history_by_figure ON alert_history (indicator, period, scope, changed_at);
