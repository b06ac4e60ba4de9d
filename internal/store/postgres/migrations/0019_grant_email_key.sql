-- 0019: the grants a person gave, found by email (ADR 0014 addendum F).
-- Deactivating a person owner revokes the active grants whose
-- subject_email is the owner's email regardless of case; the match runs
-- inside the deactivation's write transaction, so it must be an index
-- lookup, not a scan of every active grant. subject_email_key is
-- subject_email with ASCII letters lowered (store.FoldEmail; translate,
-- not PostgreSQL's lower(), which also lowers other letters), '' when
-- there is no email.
ALTER TABLE grants ADD COLUMN subject_email_key TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE grants SET subject_email_key = translate(subject_email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
CREATE INDEX grants_subject_email_key ON grants (subject_email_key, id) WHERE subject_email_key <> '';
