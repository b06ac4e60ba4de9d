-- 0020: the Shared Signals transmitter (ADR 0026 "Shared Signals
-- transmitter"). ssf_streams holds the event streams of receivers with
-- their delivery state (cursor, and the sequence numbers above it the
-- receiver acknowledged out of order); ssf_events is the outbox every
-- stream reads in sequence order. An event's seq is the sequence number of
-- the audit event recorded in the same transaction (supplied by the
-- caller, never generated here), so the outbox is in commit order.
-- receiver_id is the agent that manages the stream, '' for a stream an
-- administrator made; it has no foreign key, since '' is not an agent and
-- agents are never deleted.
-- Ids use the "C" collation so that their order is byte order, as on SQLite.
-- Times are TIMESTAMPTZ (microseconds).

CREATE TABLE ssf_streams (
    id               TEXT COLLATE "C" PRIMARY KEY,     -- ssf_…
    receiver_id      TEXT COLLATE "C" NOT NULL DEFAULT '',
    audience         TEXT NOT NULL DEFAULT '[]',       -- JSON array
    events_requested TEXT NOT NULL DEFAULT '[]',       -- JSON array of event type URIs
    events_delivered TEXT NOT NULL DEFAULT '[]',       -- JSON array of event type URIs
    delivery_method  TEXT NOT NULL,                    -- urn:ietf:rfc:8936 (poll) | urn:ietf:rfc:8935 (push)
    endpoint_url     TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    status           TEXT COLLATE "C" NOT NULL,        -- enabled | paused | disabled
    status_reason    TEXT NOT NULL DEFAULT '',
    cursor           BIGINT NOT NULL DEFAULT 0,
    acked            TEXT NOT NULL DEFAULT '[]',       -- JSON array of sequence numbers above cursor, ascending
    created_at       TIMESTAMPTZ NOT NULL,
    created_by       TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMPTZ NOT NULL,
    last_verification_at TIMESTAMPTZ,  -- NULL: never asked for a verification
    version          BIGINT NOT NULL
);
-- The streams of one receiver.
CREATE INDEX ssf_streams_receiver ON ssf_streams (receiver_id, id);

CREATE TABLE ssf_events (
    seq       BIGINT PRIMARY KEY,                      -- the audit event's seq
    stream_id TEXT COLLATE "C" REFERENCES ssf_streams (id) ON DELETE CASCADE, -- NULL: every stream
    type      TEXT NOT NULL,                           -- event type URI
    time      TIMESTAMPTZ NOT NULL,
    body      BYTEA NOT NULL                           -- JSON of the SET claims beyond iss, aud, iat and jti
);
-- Collection by age, and the events of one stream (which the cascade on
-- deleting the stream looks up).
CREATE INDEX ssf_events_time ON ssf_events (time);
CREATE INDEX ssf_events_stream ON ssf_events (stream_id, seq);
