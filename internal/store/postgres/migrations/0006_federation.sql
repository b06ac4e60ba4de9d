-- 0006: SPIFFE federation. The bundle of each foreign trust domain this
-- one federates with, as last fetched from its bundle endpoint (or seeded
-- from a configured initial bundle), and when to fetch it next; and the
-- foreign trust domains each agent federates with.
-- Trust domains use the "C" collation so that their order is byte order,
-- as on SQLite. Times are TIMESTAMPTZ (microseconds), NULL for "not set".

CREATE TABLE federated_bundles (
    trust_domain TEXT COLLATE "C" PRIMARY KEY,
    endpoint_url TEXT NOT NULL,
    bundle       BYTEA NOT NULL DEFAULT '',  -- the SPIFFE bundle JSON as fetched; empty: none yet
    sequence     BIGINT NOT NULL DEFAULT 0,  -- its spiffe_sequence (capped at 2^63-1)
    fetched_at   TIMESTAMPTZ,                -- NULL: never fetched (initial bundle only)
    refresh_at   TIMESTAMPTZ NOT NULL,       -- the next fetch is due
    last_error   TEXT NOT NULL DEFAULT '',   -- '' when the last fetch succeeded
    failures     INTEGER NOT NULL DEFAULT 0, -- failed fetches since the last success
    updated_at   TIMESTAMPTZ,
    version      BIGINT NOT NULL
);

ALTER TABLE agents ADD COLUMN federates_with TEXT NOT NULL DEFAULT '[]'; -- JSON array of trust domain names
