-- 0011: attestation (ADR 0015). An agent's attestation rules (which
-- configured attestor and which matchers prove an instance), and the
-- instances: one attested run of an agent, refreshed by each successful
-- attestation with the same (agent, attestor, key). The evidence is a
-- summary (namespace, service account, pod, repository, …), never the
-- raw token. Of two replicas creating one key, the unique constraint
-- lets exactly one win.
-- Ids use the "C" collation so that their order is byte order, as on SQLite.
-- Times are TIMESTAMPTZ (microseconds), NULL for "not set".

ALTER TABLE agents ADD COLUMN attestation_rules TEXT NOT NULL DEFAULT '[]'; -- JSON [{"attestor","matchers"}]

CREATE TABLE instances (
    id            TEXT COLLATE "C" PRIMARY KEY,                     -- ins_…
    agent_id      TEXT COLLATE "C" NOT NULL REFERENCES agents (id),
    method        TEXT NOT NULL,                                    -- kubernetes | oidc | …
    attestor      TEXT NOT NULL,                                    -- the configured attestor's name
    instance_key  TEXT NOT NULL,                                    -- pod uid, OIDC subject and run, …
    evidence      TEXT NOT NULL DEFAULT '{}',                       -- JSON object: the evidence summary
    source_ip     TEXT NOT NULL DEFAULT '',
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,                                      -- NULL while not revoked
    revoked_by    TEXT NOT NULL DEFAULT '',
    version       BIGINT NOT NULL,
    UNIQUE (agent_id, attestor, instance_key)
);
-- The instances of an agent, in id order.
CREATE INDEX instances_agent ON instances (agent_id, id);
