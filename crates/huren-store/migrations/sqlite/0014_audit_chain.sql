-- The audit trail's keyed chain (issue #6): `seq` numbers chained events without gaps, `mac`
-- is HMAC-SM3(key, previous mac ‖ seq ‖ fields) with the key outside the database. Events
-- stored before the chain existed keep NULLs.
ALTER TABLE audit_event ADD COLUMN seq INTEGER;
ALTER TABLE audit_event ADD COLUMN mac BLOB;
CREATE UNIQUE INDEX audit_event_seq ON audit_event(seq) WHERE seq IS NOT NULL;
