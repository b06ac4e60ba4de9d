-- 0006: SPIFFE federation. The bundle of each foreign trust domain this
-- one federates with, as last fetched from its bundle endpoint (or seeded
-- from a configured initial bundle), and when to fetch it next; and the
-- foreign trust domains each agent federates with.
-- Times are INTEGER unix microseconds (UTC), NULL for "not set".

CREATE TABLE federated_bundles (
    trust_domain TEXT PRIMARY KEY,
    endpoint_url TEXT NOT NULL,
    bundle       BLOB NOT NULL DEFAULT X'',  -- the SPIFFE bundle JSON as fetched; empty: none yet
    sequence     INTEGER NOT NULL DEFAULT 0, -- its spiffe_sequence (capped at 2^63-1)
    fetched_at   INTEGER,                    -- NULL: never fetched (initial bundle only)
    refresh_at   INTEGER NOT NULL,           -- the next fetch is due
    last_error   TEXT NOT NULL DEFAULT '',   -- '' when the last fetch succeeded
    failures     INTEGER NOT NULL DEFAULT 0, -- failed fetches since the last success
    updated_at   INTEGER,
    version      INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE agents ADD COLUMN federates_with TEXT NOT NULL DEFAULT '[]'; -- JSON array of trust domain names
