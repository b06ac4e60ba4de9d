-- 0007: workload selectors. The selectors by which `agentid node` maps a
-- calling workload (its Unix peer credentials) to the agent it runs as,
-- canonical strings such as unix:uid:1000, sorted; an agent matches a
-- workload when every one of its selectors holds (ADR 0011).

ALTER TABLE agents ADD COLUMN selectors TEXT NOT NULL DEFAULT '[]'; -- JSON array of selector strings
