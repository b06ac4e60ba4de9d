-- 0017: SCIM provisioning of owners (ADR 0023). user_name is the SCIM
-- userName as the identity provider sent it ('' when none); user_name_key
-- is its case folding (store.FoldUserName), NULL when there is none, and
-- unique: RFC 7643 §4.1.1 makes userName unique and not case-exact.
-- external_id is the provisioning client's id of the owner ('' when none),
-- not unique, indexed for the SCIM filter externalId eq "…".
ALTER TABLE owners ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE owners ADD COLUMN user_name_key TEXT;
ALTER TABLE owners ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX owners_user_name_key ON owners (user_name_key);
CREATE INDEX owners_external_id ON owners (external_id, id) WHERE external_id <> '';
