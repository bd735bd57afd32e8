-- Each transition's deterministic id (fingerprint:episode:status). After a crash between publishing a
-- transition and saving the alert state, the transition is judged and published again; its
-- starts_at may differ from the first copy (when the hold-down is 0), its id does not. Rows stored
-- before ids existed keep NULL, which the unique index lets repeat.
ALTER TABLE alert_history ADD COLUMN transition_id text;

UPDATE alert_history SET transition_id = body->>'transition_id';

CREATE UNIQUE INDEX alert_history_once_per_transition ON alert_history (transition_id);
