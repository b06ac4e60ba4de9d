-- 0002: OAuth. Agents' grants, token signing keys, leases for periodic jobs,
-- agents' client credentials, one-time identifiers and token revocations.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

ALTER TABLE agents ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';      -- JSON array
ALTER TABLE agents ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]'; -- JSON array
ALTER TABLE agents ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0; -- boolean
ALTER TABLE agents ADD COLUMN tokens_revoked_at INTEGER;

-- A handful of rows per purpose: no index beyond the key.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY, -- the JWS kid
    algorithm   TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    public_key  BLOB NOT NULL,    -- PKIX DER
    sealed      BLOB NOT NULL,    -- private key sealed under the root key
    publish_at  INTEGER,
    activate_at INTEGER,
    retire_at   INTEGER,
    remove_at   INTEGER,
    created_at  INTEGER,
    version     INTEGER NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE client_keys (
    agent_id   TEXT NOT NULL REFERENCES agents (id),
    key_id     TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    jwk        BLOB NOT NULL, -- the public JWK, JSON
    created_at INTEGER,
    expires_at INTEGER,
    PRIMARY KEY (agent_id, key_id)
);

CREATE TABLE client_secrets (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id),
    hash       BLOB NOT NULL UNIQUE, -- SHA-256 of the secret
    created_at INTEGER,
    expires_at INTEGER
);
CREATE INDEX client_secrets_agent ON client_secrets (agent_id, id);

-- One-time identifiers (assertion and DPoP proof jtis), written on every
-- token request: WITHOUT ROWID keeps a row in one b-tree.
CREATE TABLE used_once (
    ns         TEXT NOT NULL,
    id         TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX used_once_expires ON used_once (expires_at);

-- Revocations of tokens not yet expired; no foreign key, a jti is enough.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL,
    revoked_at INTEGER,
    expires_at INTEGER NOT NULL,
    revoked_by TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
