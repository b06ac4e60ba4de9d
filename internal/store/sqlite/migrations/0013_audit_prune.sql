-- 0013: audit retention (ADR 0018). Pruning deletes the lookup tables'
-- rows of the pruned events by seq.
CREATE INDEX audit_by_agent_seq ON audit_by_agent (seq);
CREATE INDEX audit_by_trace_seq ON audit_by_trace (seq);
