-- 0005: nodes. A node (`agentid node`, one per host) attests itself once
-- with a single-use join token and then holds an X.509-SVID of its own,
-- spiffe://<trust domain>/node/<id>. Only the SHA-256 of a join token's
-- secret is stored. A join token is consumed by one UPDATE … WHERE
-- used_at IS NULL AND expires_at > now, whose affected-row count says
-- whether this caller won (ADR 0010).
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE join_tokens (
    id         TEXT PRIMARY KEY,         -- njt_…
    hash       BLOB NOT NULL UNIQUE,     -- SHA-256 of the secret
    created_by TEXT NOT NULL,            -- the admin token that created it
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,                  -- NULL until a node attests with it
    node_id    TEXT NOT NULL DEFAULT ''  -- the node that used it; '' before
);
-- Collection of expired tokens.
CREATE INDEX join_tokens_expires ON join_tokens (expires_at);

CREATE TABLE nodes (
    id                 TEXT PRIMARY KEY,        -- nod_…
    spiffe_id          TEXT NOT NULL UNIQUE,
    attestation_method TEXT NOT NULL,           -- join_token
    attested_at        INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    svid_serial        TEXT NOT NULL,           -- the node's current X.509-SVID (lowercase hex)
    svid_key_id        TEXT NOT NULL,           -- the CA key that signed it
    svid_expires_at    INTEGER NOT NULL,
    evicted_at         INTEGER,                 -- NULL while the node is not evicted
    evicted_by         TEXT NOT NULL DEFAULT '',
    version            INTEGER NOT NULL
);
