-- Patient authorization (issue #6): a patient lets an institution (a clinic) read their data by
-- telling it a one-time code sent to their own phone. Phone numbers are sensitive personal
-- information: sealed (SM4) like identity numbers; the code only as a hash.
CREATE TABLE patient_contact (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    channel TEXT NOT NULL CHECK (channel IN ('sms')),
    sealed BLOB NOT NULL,
    key_id TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (person_id, channel)
);

CREATE TABLE patient_authorization (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    requested_by INTEGER NOT NULL REFERENCES app_user(id),
    scope TEXT NOT NULL DEFAULT 'all',
    code_hash TEXT NOT NULL,
    code_expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    days INTEGER NOT NULL,
    granted_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX patient_authorization_grantee ON patient_authorization(institution_id, expires_at);
