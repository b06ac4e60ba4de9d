-- 0010: approvals (ADR 0013 addendum). A conditional decision whose
-- obligations include "approval" creates (or reuses) an approval request;
-- a person or an admin approves or denies it; approved, it turns the same
-- request within its scope (scope_key: agent, person, action, resource,
-- obligations; limits: numeric context values not to exceed) into an allow
-- until it expires. Approvals are never deleted.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,                  -- apr_…
    state          TEXT NOT NULL,                     -- pending | approved | denied | expired
    scope_key      TEXT NOT NULL,                     -- hex SHA-256 of the scope
    agent_id       TEXT NOT NULL REFERENCES agents (id),
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
    version        INTEGER NOT NULL
);
-- The approvals of one scope (a decision looks for one that covers it),
-- of an agent, of a state, and those due to expire.
CREATE INDEX approvals_scope ON approvals (scope_key, id);
CREATE INDEX approvals_agent ON approvals (agent_id, id);
CREATE INDEX approvals_state ON approvals (state, id);
CREATE INDEX approvals_expires ON approvals (expires_at) WHERE state IN ('pending', 'approved');
