-- 0015: approvals for user subjects (ADR 0020). An approval is for an
-- agent (agent_id, a foreign key to agents) or for a user subject (user_id,
-- the person's id as the PEP asserted it, ADR 0016): exactly one is set,
-- the other NULL. SQLite cannot drop a NOT NULL constraint, so the table is
-- rebuilt: created anew, filled from the old one, which is dropped, renamed
-- and indexed again. Nothing references approvals.

CREATE TABLE approvals_0015 (
    id             TEXT PRIMARY KEY,                  -- apr_…
    state          TEXT NOT NULL,                     -- pending | approved | denied | expired
    scope_key      TEXT NOT NULL,                     -- hex SHA-256 of the scope
    agent_id       TEXT REFERENCES agents (id),       -- NULL for a user's approval
    user_id        TEXT,                              -- NULL for an agent's approval
    agent_name     TEXT NOT NULL,
    person         TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    action_class   TEXT NOT NULL DEFAULT '',
    risk_tier      TEXT NOT NULL DEFAULT '',
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    obligations    TEXT NOT NULL DEFAULT '[]',        -- JSON array, sorted
    limits         TEXT NOT NULL DEFAULT '{}',        -- JSON object: key → decimal text
    policy_version INTEGER NOT NULL DEFAULT 0,
    policy_ids     TEXT NOT NULL DEFAULT '[]',        -- JSON array
    reason         TEXT NOT NULL DEFAULT '',
    requested_by   TEXT NOT NULL DEFAULT '',
    trace_id       TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    decider_type   TEXT NOT NULL DEFAULT '',
    decider        TEXT NOT NULL DEFAULT '',
    decide_reason  TEXT NOT NULL DEFAULT '',
    version        INTEGER NOT NULL,
    CHECK ((agent_id IS NULL) <> (user_id IS NULL))
);
INSERT INTO approvals_0015 (id, state, scope_key, agent_id, user_id, agent_name, person, action, action_class,
    risk_tier, resource_type, resource_id, obligations, limits, policy_version, policy_ids, reason, requested_by,
    trace_id, created_at, expires_at, decided_at, decider_type, decider, decide_reason, version)
SELECT id, state, scope_key, agent_id, NULL, agent_name, person, action, action_class,
    risk_tier, resource_type, resource_id, obligations, limits, policy_version, policy_ids, reason, requested_by,
    trace_id, created_at, expires_at, decided_at, decider_type, decider, decide_reason, version
FROM approvals;
DROP TABLE approvals;
ALTER TABLE approvals_0015 RENAME TO approvals;
-- The indexes of 0010, and the approvals of a user.
CREATE INDEX approvals_scope ON approvals (scope_key, id);
CREATE INDEX approvals_agent ON approvals (agent_id, id);
CREATE INDEX approvals_state ON approvals (state, id);
CREATE INDEX approvals_expires ON approvals (expires_at) WHERE state IN ('pending', 'approved');
CREATE INDEX approvals_user ON approvals (user_id, id) WHERE user_id IS NOT NULL;
