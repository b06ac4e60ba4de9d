-- 0004: SVIDs. Every X.509-SVID and JWT-SVID issued to an agent, kept until
-- CollectCredentials removes it after expiry, so that an operator can list
-- what an agent holds and the credentials a (tainted) CA key signed can be
-- found. Access tokens are not recorded here (ADR 0007).
-- Ids use the "C" collation so that their order is byte order, as on SQLite.
-- Times are TIMESTAMPTZ (microseconds).

CREATE TABLE credentials (
    kind        TEXT COLLATE "C" NOT NULL,              -- x509_svid or jwt_svid
    id          TEXT COLLATE "C" NOT NULL,              -- serial (lowercase hex) or jti
    agent_id    TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    instance_id TEXT COLLATE "C" NOT NULL DEFAULT '',   -- '' when not attested
    spiffe_id   TEXT NOT NULL,
    audience    TEXT NOT NULL DEFAULT '[]',             -- JSON array; JWT-SVIDs only
    key_id      TEXT COLLATE "C" NOT NULL,              -- the CA key or JWT signing key
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, id)
);
-- An agent's credentials in list order (issued_at, kind, id).
CREATE INDEX credentials_agent ON credentials (agent_id, issued_at, kind, id);
-- What a key signed that is still live.
CREATE INDEX credentials_key ON credentials (key_id, expires_at);
-- Collection of expired credentials.
CREATE INDEX credentials_expires ON credentials (expires_at);
