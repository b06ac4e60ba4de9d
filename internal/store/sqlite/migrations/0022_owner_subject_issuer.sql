-- 0022: an owner's subject is tied to the trusted issuer that names the
-- person by it (ADR 0027). '' when not tied: such an owner's subject
-- matches a person's token only while one issuer is trusted, and its
-- deactivation revokes the grants of that subject under every issuer.

ALTER TABLE owners ADD COLUMN subject_issuer TEXT NOT NULL DEFAULT '';
