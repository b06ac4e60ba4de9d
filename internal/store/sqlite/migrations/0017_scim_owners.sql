-- 0017: SCIM provisioning of owners (ADR 0023). user_name is the SCIM
-- userName as the identity provider sent it ('' when none). user_name_key
-- is the key of the userName the owner shows (store.OwnerUserNameKey): its
-- user name folded (store.FoldUserName), else its email folded, else NULL;
-- unique: RFC 7643 §4.1.1 makes userName unique and not case-exact, and an
-- owner without a user name shows its email as userName.
-- external_id is the provisioning client's id of the owner ('' when none),
-- not unique, indexed for the SCIM filter externalId eq "…".
ALTER TABLE owners ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE owners ADD COLUMN user_name_key TEXT;
ALTER TABLE owners ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX owners_user_name_key ON owners (user_name_key);
CREATE INDEX owners_external_id ON owners (external_id, id) WHERE external_id <> '';
-- Existing owners have no user name: their key is their email folded.
-- For an ASCII email (as many bytes as characters) FoldUserName is ASCII
-- upper case, which SQLite's upper() computes (ASCII only); a non-ASCII
-- email keeps NULL until the owner's next update (ADR 0023).
UPDATE owners SET user_name_key = upper(email)
	WHERE email IS NOT NULL AND length(CAST(email AS BLOB)) = length(email);
