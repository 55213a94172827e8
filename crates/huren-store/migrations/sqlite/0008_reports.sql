-- Imaging reports received over HL7 v2 (ORU^R01 with TX/FT observations), linked to the study
-- they report on: by Study Instance UID (ZDS-1 or an OBX coded 113014^Study Instance UID^DCM)
-- when sent, else by the performing institution's AccessionNumber (OBR-3 filler order).
CREATE TABLE report (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES hl7_message(id),
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    performing_institution_id INTEGER NOT NULL REFERENCES institution(id),
    study_id INTEGER REFERENCES study(id),
    study_uid TEXT,
    accession_number TEXT,
    procedure_code TEXT,
    procedure_text TEXT,
    text TEXT NOT NULL,
    status TEXT,
    reported_at TEXT,
    reported_instant INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX report_patient ON report(patient_id, reported_instant);
CREATE INDEX report_study ON report(study_id) WHERE study_id IS NOT NULL;
