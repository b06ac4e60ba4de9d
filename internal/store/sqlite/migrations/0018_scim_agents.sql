-- 0018: SCIM provisioning of agents (ADR 0025). external_id is the
-- provisioning client's id of the agent, the SCIM externalId ('' when
-- none), case-exact and not unique, indexed for the SCIM filter
-- externalId eq "…".
ALTER TABLE agents ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
CREATE INDEX agents_external_id ON agents (external_id, id) WHERE external_id <> '';
