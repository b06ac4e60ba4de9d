-- 0021: push delivery of Shared Signals streams (RFC 8935; ADR 0026
-- addendum "push delivery"). authorization_sealed is the Authorization
-- header the receiver asked deliveries to carry, sealed under the root key
-- (NULL: none). The push_* columns are the delivery state of a push
-- stream: consecutive failures, the earliest next attempt, the last
-- failure's reason and the last success. Times are TIMESTAMPTZ; NULL when
-- never.

ALTER TABLE ssf_streams ADD COLUMN authorization_sealed BYTEA;
ALTER TABLE ssf_streams ADD COLUMN push_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ssf_streams ADD COLUMN next_push_at TIMESTAMPTZ;
ALTER TABLE ssf_streams ADD COLUMN last_push_error TEXT NOT NULL DEFAULT '';
ALTER TABLE ssf_streams ADD COLUMN last_push_at TIMESTAMPTZ;
