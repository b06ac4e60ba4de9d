-- 0016: the audit lookup tables hold one row per agent (or trace) and
-- block of 64 sequence numbers instead of one per event (ADR 0017
-- addendum). A query by agent or trace reads the blocks that hold its
-- events and filters their events; the indexer writes a block's row once,
-- so an agent's run of events, or a request's several events under one
-- trace id, cost one row. audit_index_state.upto keeps its meaning.

CREATE TABLE audit_agent_blocks (
    agent_id TEXT NOT NULL,
    block    INTEGER NOT NULL, -- seq / 64
    PRIMARY KEY (agent_id, block)
) WITHOUT ROWID;

CREATE TABLE audit_trace_blocks (
    trace_id TEXT NOT NULL,
    block    INTEGER NOT NULL, -- seq / 64
    PRIMARY KEY (trace_id, block)
) WITHOUT ROWID;

INSERT INTO audit_agent_blocks (agent_id, block)
    SELECT DISTINCT agent_id, seq / 64 FROM audit_by_agent;
INSERT INTO audit_trace_blocks (trace_id, block)
    SELECT DISTINCT trace_id, seq / 64 FROM audit_by_trace;

DROP TABLE audit_by_agent;
DROP TABLE audit_by_trace;

-- Pruning deletes the blocks wholly pruned.
CREATE INDEX audit_agent_blocks_block ON audit_agent_blocks (block);
CREATE INDEX audit_trace_blocks_block ON audit_trace_blocks (block);
