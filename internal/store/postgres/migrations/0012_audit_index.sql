-- 0012: the audit trail's agent and trace lookups become derived tables
-- built off the request path (ADR 0017). An event's row and its time and
-- id indexes (appended in seq order) are still written with the change it
-- records; the (agent_id, seq) and (trace_id, seq) entries, whose keys are
-- scattered over their B-trees, are written in batches by the indexer.
-- audit_index_state.upto is the highest seq whose entries are in both
-- tables; a query by agent or trace reads the tables up to it and scans
-- the events after it.

CREATE TABLE audit_by_agent (
    agent_id TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

CREATE TABLE audit_by_trace (
    trace_id TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (trace_id, seq)
);

CREATE TABLE audit_index_state (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    upto BIGINT NOT NULL
);

INSERT INTO audit_by_agent (agent_id, seq) SELECT agent_id, seq FROM audit_events WHERE agent_id <> '';
INSERT INTO audit_by_trace (trace_id, seq) SELECT trace_id, seq FROM audit_events WHERE trace_id <> '';
INSERT INTO audit_index_state (id, upto) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_events;

DROP INDEX audit_events_agent;
DROP INDEX audit_events_trace;
