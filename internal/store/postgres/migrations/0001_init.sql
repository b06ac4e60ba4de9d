-- 0001: owners, agents, admin tokens and the audit trail.
-- Ids use the "C" collation so that their order is byte order, as on SQLite.
-- Times are TIMESTAMPTZ (microseconds), NULL for "not set".

CREATE TABLE owners (
    id           TEXT COLLATE "C" PRIMARY KEY,
    kind         TEXT NOT NULL,
    email        TEXT UNIQUE,   -- NULL when empty, so that empty is not unique
    subject      TEXT UNIQUE,   -- NULL when empty
    display_name TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ,
    version      BIGINT NOT NULL
);
CREATE INDEX owners_state ON owners (state, id);

CREATE TABLE agents (
    id             TEXT COLLATE "C" PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE, -- deprovisioned agents keep theirs
    spiffe_id      TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    action_classes TEXT NOT NULL, -- JSON array
    audiences      TEXT NOT NULL, -- JSON array
    max_ttl        BIGINT NOT NULL, -- nanoseconds
    labels         TEXT NOT NULL, -- JSON object
    expires_at     TIMESTAMPTZ,
    state          TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ,
    version        BIGINT NOT NULL
);
CREATE INDEX agents_state ON agents (state, id);

CREATE TABLE agent_owners (
    agent_id TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    owner_id TEXT COLLATE "C" NOT NULL REFERENCES owners (id),
    PRIMARY KEY (agent_id, owner_id)
);
CREATE INDEX agent_owners_owner ON agent_owners (owner_id, agent_id);

CREATE TABLE admin_tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE, -- SHA-256 of the secret
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    version    BIGINT NOT NULL
);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    time      TIMESTAMPTZ NOT NULL,
    family    TEXT NOT NULL,
    type      TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    agent_id  TEXT NOT NULL, -- '' when the event has no agent axis
    actor_id  TEXT NOT NULL,
    trace_id  TEXT NOT NULL,
    body      BYTEA NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_events_trace ON audit_events (trace_id, seq);
-- No (family, seq) index: family has four values, so a family filter is
-- cheaper evaluated while scanning in seq order than maintained per append.
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    time      TIMESTAMPTZ,
    key_id    TEXT NOT NULL,
    signature BYTEA NOT NULL
);

CREATE TABLE audit_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    algorithm  TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    sealed     BYTEA NOT NULL,
    created_at TIMESTAMPTZ
);
