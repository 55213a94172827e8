-- Encounters registered by the HIS, and launch tickets (issue #6).
-- An encounter is a patient (a record number of the HIS's institution) seen in a department,
-- by a doctor when named, open until the HIS closes it. The patient is kept as the record's
-- natural key: the HIS may register a visit before huren holds any of the patient's data.
CREATE TABLE encounter (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    visit_number TEXT NOT NULL,
    patient_issuer TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    doctor_user_id INTEGER REFERENCES app_user(id),
    department TEXT,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    UNIQUE (institution_id, visit_number)
);
CREATE INDEX encounter_patient ON encounter(patient_issuer, patient_id) WHERE closed_at IS NULL;

-- A short-lived, single-use ticket the HIS mints for one doctor and patient; opening huren's
-- launch URL with it starts the doctor's session. Stored as the SHA-256 of its secret.
CREATE TABLE launch_ticket (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    issued_by TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES app_user(id),
    encounter_id INTEGER REFERENCES encounter(id),
    patient_issuer TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
