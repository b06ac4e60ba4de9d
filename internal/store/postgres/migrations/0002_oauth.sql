-- 0002: OAuth. Agents' grants, token signing keys, leases for periodic jobs,
-- agents' client credentials, one-time identifiers and token revocations.
-- Ids use the "C" collation so that their order is byte order, as on SQLite.
-- Times are TIMESTAMPTZ (microseconds), NULL for "not set".

ALTER TABLE agents ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';      -- JSON array
ALTER TABLE agents ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]'; -- JSON array
ALTER TABLE agents ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE agents ADD COLUMN tokens_revoked_at TIMESTAMPTZ;

-- A handful of rows per purpose: no index beyond the key.
CREATE TABLE signing_keys (
    id          TEXT COLLATE "C" PRIMARY KEY, -- the JWS kid
    algorithm   TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    public_key  BYTEA NOT NULL,               -- PKIX DER
    sealed      BYTEA NOT NULL,               -- private key sealed under the root key
    publish_at  TIMESTAMPTZ,
    activate_at TIMESTAMPTZ,
    retire_at   TIMESTAMPTZ,
    remove_at   TIMESTAMPTZ,
    created_at  TIMESTAMPTZ,
    version     BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE client_keys (
    agent_id   TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    key_id     TEXT COLLATE "C" NOT NULL,
    algorithm  TEXT NOT NULL,
    jwk        BYTEA NOT NULL, -- the public JWK, JSON
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (agent_id, key_id)
);

CREATE TABLE client_secrets (
    id         TEXT COLLATE "C" PRIMARY KEY,
    agent_id   TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    hash       BYTEA NOT NULL UNIQUE, -- SHA-256 of the secret
    created_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);
CREATE INDEX client_secrets_agent ON client_secrets (agent_id, id);

-- One-time identifiers (assertion and DPoP proof jtis), written on every
-- token request.
CREATE TABLE used_once (
    ns         TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ns, id)
);
CREATE INDEX used_once_expires ON used_once (expires_at);

-- Revocations of tokens not yet expired; no foreign key, a jti is enough.
CREATE TABLE revoked_tokens (
    jti        TEXT COLLATE "C" PRIMARY KEY,
    agent_id   TEXT COLLATE "C" NOT NULL,
    revoked_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_by TEXT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
