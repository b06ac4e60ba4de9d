-- 0014: agents scoped to nodes (ADR 0019). An agent's node scope (JSON
-- {"node_ids": [...], "rules": [{"attestor", "matchers"}]}; {} lets every
-- node), and what a node's attestation proved (its attestor and JSON
-- {"facts": {...}, "values": {...}}; '' and {} for a join token).
ALTER TABLE agents ADD COLUMN node_scope TEXT NOT NULL DEFAULT '{}';
ALTER TABLE nodes ADD COLUMN attestor TEXT NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN evidence TEXT NOT NULL DEFAULT '{}';
