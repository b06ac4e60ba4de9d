-- 0001: owners, agents, admin tokens and the audit trail.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE owners (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    email        TEXT UNIQUE,   -- NULL when empty, so that empty is not unique
    subject      TEXT UNIQUE,   -- NULL when empty
    display_name TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER,
    updated_at   INTEGER,
    version      INTEGER NOT NULL
);
CREATE INDEX owners_state ON owners (state, id);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE, -- deprovisioned agents keep theirs
    spiffe_id      TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    action_classes TEXT NOT NULL, -- JSON array
    audiences      TEXT NOT NULL, -- JSON array
    max_ttl        INTEGER NOT NULL, -- nanoseconds
    labels         TEXT NOT NULL, -- JSON object
    expires_at     INTEGER,
    state          TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     INTEGER,
    updated_at     INTEGER,
    version        INTEGER NOT NULL
);
CREATE INDEX agents_state ON agents (state, id);

CREATE TABLE agent_owners (
    agent_id TEXT NOT NULL REFERENCES agents (id),
    owner_id TEXT NOT NULL REFERENCES owners (id),
    PRIMARY KEY (agent_id, owner_id)
);
CREATE INDEX agent_owners_owner ON agent_owners (owner_id, agent_id);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE, -- SHA-256 of the secret
    created_by TEXT NOT NULL,
    created_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER,
    version    INTEGER NOT NULL
);

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    time      INTEGER NOT NULL,
    family    TEXT NOT NULL,
    type      TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    agent_id  TEXT NOT NULL, -- '' when the event has no agent axis
    actor_id  TEXT NOT NULL,
    trace_id  TEXT NOT NULL,
    body      BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_events_trace ON audit_events (trace_id, seq);
-- No (family, seq) index: family has four values, so a family filter is
-- cheaper evaluated while scanning in seq order than maintained per append.
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    time      INTEGER,
    key_id    TEXT NOT NULL,
    signature BLOB NOT NULL
);

CREATE TABLE audit_keys (
    id         TEXT PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    public_key BLOB NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER
);
