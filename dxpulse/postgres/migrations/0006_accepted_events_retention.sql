-- Accepted event ids older than the idempotency window are pruned by the ingest service
-- (DXPULSE_IDEMPOTENCY_RETENTION_DAYS); this index keeps that delete from scanning the table.
CREATE INDEX accepted_events_by_time ON accepted_events (accepted_at);
