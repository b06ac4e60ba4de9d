-- 0008: decisions (ADR 0013). The versions of the deployment's Cedar
-- policy set (immutable, numbered 1, 2, 3, …), the head naming the active
-- version, and the action classes with their risk tiers. The head's
-- generation counts every change that alters decisions (a version
-- activated, an action class created or changed); writers compare-and-
-- swap it, and decision points reload when it moves.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE policy_versions (
    version    INTEGER PRIMARY KEY,      -- 1, 2, 3, …
    text       TEXT NOT NULL,            -- the Cedar document as uploaded
    sha256     BLOB NOT NULL,            -- SHA-256 of text
    policy_ids TEXT NOT NULL,            -- JSON array of the policies' @id, sorted
    author     TEXT NOT NULL,            -- actor id
    comment    TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- One row: the active version (0: none) and the generation.
CREATE TABLE policy_head (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    active_version INTEGER NOT NULL,
    generation     INTEGER NOT NULL,
    updated_at     INTEGER,
    updated_by     TEXT NOT NULL DEFAULT ''
);
INSERT INTO policy_head (id, active_version, generation, updated_at, updated_by) VALUES (1, 0, 0, NULL, '');

CREATE TABLE action_classes (
    name        TEXT PRIMARY KEY,
    risk_tier   TEXT NOT NULL,           -- low | medium | high
    description TEXT NOT NULL DEFAULT '',
    actions     TEXT NOT NULL,           -- JSON array of the class's actions, sorted
    updated_at  INTEGER,
    updated_by  TEXT NOT NULL DEFAULT '',
    version     INTEGER NOT NULL
);
INSERT INTO action_classes (name, risk_tier, description, actions, updated_at, updated_by, version) VALUES
    ('read', 'low', 'Reads data', '[]', NULL, '', 1),
    ('write', 'medium', 'Creates or changes data', '[]', NULL, '', 1),
    ('delete', 'high', 'Deletes data', '[]', NULL, '', 1),
    ('payments', 'high', 'Moves money', '[]', NULL, '', 1),
    ('external-comms', 'high', 'Communicates outside the organisation', '[]', NULL, '', 1),
    ('admin', 'high', 'Administers systems or identities', '[]', NULL, '', 1);
