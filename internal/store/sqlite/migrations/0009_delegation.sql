-- 0009: delegation (ADR 0014). Grants that let an agent act for a subject
-- (a person named by a trusted issuer, or an agent), and a record of every
-- access token a token exchange issued, so that revoking a grant, an agent
-- of a chain or an upstream token makes every token under it inactive.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE grants (
    id                  TEXT PRIMARY KEY,                     -- grt_…
    subject_issuer      TEXT NOT NULL,
    subject             TEXT NOT NULL,
    subject_email       TEXT NOT NULL DEFAULT '',
    agent_id            TEXT NOT NULL REFERENCES agents (id),
    scopes              TEXT NOT NULL DEFAULT '[]',           -- JSON array
    action_classes      TEXT NOT NULL DEFAULT '[]',           -- JSON array
    audiences           TEXT NOT NULL DEFAULT '[]',           -- JSON array
    expires_at          INTEGER NOT NULL,
    max_depth           INTEGER NOT NULL CHECK (max_depth >= 1),
    allow_subdelegation INTEGER NOT NULL DEFAULT 0,           -- boolean
    created_by_type     TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER,
    revoked_by          TEXT NOT NULL DEFAULT '',
    revoke_reason       TEXT NOT NULL DEFAULT '',
    version             INTEGER NOT NULL
);
-- The grants of an agent, and of a subject, in id order (the exchange
-- looks up a subject's grants for one agent).
CREATE INDEX grants_agent ON grants (agent_id, id);
CREATE INDEX grants_subject ON grants (subject, subject_issuer, id);

CREATE TABLE exchanged_tokens (
    jti              TEXT PRIMARY KEY,
    grant_id         TEXT NOT NULL REFERENCES grants (id),
    agent_id         TEXT NOT NULL,                  -- the holder (client_id)
    chain            TEXT NOT NULL,                  -- JSON array of agent ids, the holder first
    subject          TEXT NOT NULL,
    parent_jti       TEXT NOT NULL DEFAULT '',       -- '' when the subject token was not agentid's
    parent_agent_id  TEXT NOT NULL DEFAULT '',
    parent_issued_at INTEGER,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;
-- Descendants of a token, tokens of a grant, and collection after expiry.
CREATE INDEX exchanged_tokens_parent ON exchanged_tokens (parent_jti);
CREATE INDEX exchanged_tokens_grant ON exchanged_tokens (grant_id, expires_at);
CREATE INDEX exchanged_tokens_expires ON exchanged_tokens (expires_at);
