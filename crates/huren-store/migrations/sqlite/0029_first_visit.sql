PRAGMA defer_foreign_keys = ON;
-- The first visit (issue #16): the HIS may name the patient of an encounter or a launch by the
-- person's identity number instead of its own record number. The number is never kept in the
-- clear: the encounter keeps its system (in patient_issuer) and its HMAC-SM3 blind index
-- (id_blind), and reaches the persons whose records carry that number consistently with their
-- birth date and sex. Exactly one of patient_id and id_blind is set.
CREATE TABLE encounter_new (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    visit_number TEXT NOT NULL,
    patient_issuer TEXT NOT NULL,
    patient_id TEXT,
    id_blind TEXT,
    doctor_user_id INTEGER REFERENCES app_user(id),
    department TEXT,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    UNIQUE (institution_id, visit_number),
    CHECK ((patient_id IS NULL) <> (id_blind IS NULL))
);
INSERT INTO encounter_new (id, institution_id, visit_number, patient_issuer, patient_id, doctor_user_id, department, opened_at, closed_at)
SELECT id, institution_id, visit_number, patient_issuer, patient_id, doctor_user_id, department, opened_at, closed_at
  FROM encounter;

CREATE TABLE launch_ticket_new (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    issued_by TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES app_user(id),
    encounter_id INTEGER REFERENCES encounter(id),
    patient_issuer TEXT NOT NULL,
    patient_id TEXT,
    id_blind TEXT,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    CHECK ((patient_id IS NULL) <> (id_blind IS NULL))
);
INSERT INTO launch_ticket_new (id, secret_hash, issued_by, user_id, encounter_id, patient_issuer, patient_id, issued_at, expires_at, used_at)
SELECT id, secret_hash, issued_by, user_id, encounter_id, patient_issuer, patient_id, issued_at, expires_at, used_at
  FROM launch_ticket;
DROP TABLE launch_ticket;
DROP TABLE encounter;
ALTER TABLE encounter_new RENAME TO encounter;
ALTER TABLE launch_ticket_new RENAME TO launch_ticket;
CREATE INDEX encounter_patient ON encounter(patient_issuer, patient_id) WHERE closed_at IS NULL;
CREATE INDEX encounter_identity ON encounter(patient_issuer, id_blind) WHERE closed_at IS NULL AND id_blind IS NOT NULL;
CREATE INDEX encounter_open ON encounter(institution_id) WHERE closed_at IS NULL;

-- A patient's mobile number changes only when the patient confirms it (issue #16): with a code
-- sent to the number registered before, or in person at the registering hospital (the member
-- of staff who checked is named). Every change, pending or done, is a row; the number asked
-- for is sealed like the registered one.
CREATE TABLE contact_change (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    requested_by TEXT NOT NULL,
    sealed BLOB NOT NULL,
    key_id TEXT NOT NULL,
    how TEXT NOT NULL CHECK (how IN ('first', 'old_number', 'in_person')),
    verified_by INTEGER REFERENCES app_user(id),
    code_hash TEXT,
    code_expires_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER
);
CREATE INDEX contact_change_person ON contact_change(person_id, created_at);

-- Authorization requests are capped per patient and per doctor per day (each one sends the
-- patient an SMS).
CREATE INDEX patient_authorization_person ON patient_authorization(person_id, created_at);
CREATE INDEX patient_authorization_requester ON patient_authorization(requested_by, created_at);
