-- 0003: certificate authority. A CA key (purpose "x509-ca") keeps its
-- certificate chain next to it, and any key can be tainted (found
-- compromised).
-- cert_chain is the chain's DER certificates, each preceded by its length
-- as a 4-byte big-endian integer, the key's own certificate first; empty for
-- keys without a certificate. tainted_at is NULL when the key is not tainted.

ALTER TABLE signing_keys ADD COLUMN cert_chain BYTEA NOT NULL DEFAULT '';
ALTER TABLE signing_keys ADD COLUMN tainted_at TIMESTAMPTZ;
