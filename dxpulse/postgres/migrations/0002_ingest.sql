-- API tokens of the local systems: only a SHA-256 of each token is kept (dxpulse/tokens.py says why).
CREATE TABLE api_tokens (
    token_id    text        PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE,
    subject     text        NOT NULL,
    label       text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_by_subject ON api_tokens (subject);

-- Reports Kafka acknowledged, so a resend of the same event id is answered "duplicate" and not
-- published again. Keyed per reporter: one reporter's ids can never suppress another's reports.
CREATE TABLE accepted_events (
    reporter    text        NOT NULL,
    event_id    uuid        NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reporter, event_id)
);
