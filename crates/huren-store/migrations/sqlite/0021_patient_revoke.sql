-- The patient ends an authorization by themselves (issue #6): the confirmation SMS carries a
-- link with a secret only the patient's phone received; only its SHA-256 is kept.
ALTER TABLE patient_authorization ADD COLUMN revoke_hash TEXT;
CREATE UNIQUE INDEX patient_authorization_revoke ON patient_authorization(revoke_hash)
    WHERE revoke_hash IS NOT NULL;
