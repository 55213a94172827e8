-- Master patient index (issue #5; ARCHITECTURE.md "Persons"). A patient record belongs to
-- exactly one person from its creation; linking moves records between persons and is
-- recorded as events, never by rewriting records or objects.
CREATE TABLE person (
    id INTEGER PRIMARY KEY,
    -- Opaque public id (UUIDv7 text): never a hospital's number.
    public_id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    -- Set when every record was moved to another person (a merge); kept for unmerge.
    merged_into INTEGER REFERENCES person(id)
);

ALTER TABLE patient ADD COLUMN person_id INTEGER REFERENCES person(id);

-- Records that existed before this migration get a person each.
INSERT INTO person (public_id, created_at)
    SELECT 'p-' || patient.id, unixepoch() FROM patient ORDER BY patient.id;
UPDATE patient SET person_id = (SELECT person.id FROM person WHERE person.public_id = 'p-' || patient.id);
CREATE INDEX patient_person ON patient(person_id);

-- Identifiers of a record other than its own (issuer, PatientID): (system, value) pairs.
-- Sensitive systems (identity numbers, phones) keep no clear value: `sealed` is SM4-GCM
-- (nonce ‖ ciphertext ‖ tag) under `key_id`, `blind` the HMAC-SM3 blind index for lookup.
-- `consistent`: the number agrees with this record's birth date and sex (GB 11643).
CREATE TABLE patient_identifier (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    system TEXT NOT NULL,
    value TEXT,
    blind TEXT,
    sealed BLOB,
    key_id TEXT,
    consistent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (patient_id, system)
);
CREATE INDEX patient_identifier_blind ON patient_identifier(system, blind);

-- Append-only history of which person each record belongs to.
CREATE TABLE person_link_event (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    from_person INTEGER REFERENCES person(id),
    to_person INTEGER NOT NULL REFERENCES person(id),
    -- created | same_national_id | score | steward_merge | steward_unmerge
    rule TEXT NOT NULL,
    score REAL,
    actor TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX person_link_event_patient ON person_link_event(patient_id);

-- Pairs of records a data steward must look at.
CREATE TABLE link_review (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    patient_a INTEGER NOT NULL REFERENCES patient(id),
    patient_b INTEGER NOT NULL REFERENCES patient(id),
    -- national_id_inconsistent | possible_match | conflicting_numbers
    reason TEXT NOT NULL,
    score REAL,
    state TEXT NOT NULL DEFAULT 'open',
    decided_by TEXT,
    decided_at INTEGER,
    UNIQUE (patient_a, patient_b)
);
CREATE INDEX link_review_open ON link_review(state) WHERE state = 'open';
