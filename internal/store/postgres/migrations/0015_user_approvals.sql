-- 0015: approvals for user subjects (ADR 0020). An approval is for an
-- agent (agent_id, a foreign key to agents) or for a user subject (user_id,
-- the person's id as the PEP asserted it, ADR 0016): exactly one is set,
-- the other NULL.
ALTER TABLE approvals ALTER COLUMN agent_id DROP NOT NULL;
ALTER TABLE approvals ADD COLUMN user_id TEXT COLLATE "C";
ALTER TABLE approvals ADD CONSTRAINT approvals_one_subject CHECK ((agent_id IS NULL) <> (user_id IS NULL));
-- The approvals of a user.
CREATE INDEX approvals_user ON approvals (user_id, id) WHERE user_id IS NOT NULL;
