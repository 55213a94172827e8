-- Results as both HL7 v2 and FHIR deliver them (issue #5 items 6–7). `lab_result` and `report`
-- are rebuilt (SQLite cannot drop NOT NULL in place) so that:
--  * a result may arrive without an HL7 message (`message_id` NULL, `source` 'fhir');
--  * every order — an HL7 OBR, a FHIR DiagnosticReport — is one `report` row: category LAB
--    (v2 table 0074) for lab orders, whose results point at it, RAD for imaging reports;
--  * the lab result model keeps the numeric value and comparator, the unit in UCUM beside the
--    unit as sent, the specimen, and collection and report times (string as sent + instant);
--  * a business identifier (FHIR `identifier`) can be kept and searched (conditional create).
-- Rows stored before this migration keep their ids; lab results stored before it have no order.
CREATE TABLE report_new (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES hl7_message(id),
    source TEXT NOT NULL DEFAULT 'hl7v2',
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    performing_institution_id INTEGER NOT NULL REFERENCES institution(id),
    category TEXT NOT NULL DEFAULT 'RAD',
    study_id INTEGER REFERENCES study(id),
    study_uid TEXT,
    accession_number TEXT,
    placer_order TEXT,
    filler_order TEXT,
    identifier_system TEXT,
    identifier_value TEXT,
    procedure_code TEXT,
    procedure_code_system TEXT,
    procedure_text TEXT,
    -- The report text (imaging) or conclusion (lab); NULL for a lab order without one.
    text TEXT,
    status TEXT,
    specimen TEXT,
    effective_at TEXT,
    effective_instant INTEGER,
    reported_at TEXT,
    reported_instant INTEGER,
    created_at INTEGER NOT NULL,
    superseded_by INTEGER REFERENCES report_new(id)
);
INSERT INTO report_new (id, message_id, patient_id, performing_institution_id, study_id, study_uid,
    accession_number, filler_order, procedure_code, procedure_text, text, status, effective_at,
    effective_instant, reported_at, reported_instant, created_at, superseded_by)
SELECT id, message_id, patient_id, performing_institution_id, study_id, study_uid, accession_number,
    accession_number, procedure_code, procedure_text, text, status, reported_at, reported_instant,
    reported_at, reported_instant, created_at, superseded_by
FROM report;
DROP TABLE report;
ALTER TABLE report_new RENAME TO report;
CREATE INDEX report_patient ON report(patient_id, effective_instant);
CREATE INDEX report_study ON report(study_id) WHERE study_id IS NOT NULL;
CREATE INDEX report_message ON report(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX report_identifier ON report(identifier_value, identifier_system) WHERE identifier_value IS NOT NULL;
CREATE INDEX report_effective ON report(effective_instant);

CREATE TABLE lab_result_new (
    id INTEGER PRIMARY KEY,
    message_id INTEGER REFERENCES hl7_message(id),
    source TEXT NOT NULL DEFAULT 'hl7v2',
    report_id INTEGER REFERENCES report(id),
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    performing_institution_id INTEGER NOT NULL REFERENCES institution(id),
    performing_lab TEXT,
    placer_order TEXT,
    filler_order TEXT,
    order_code TEXT,
    order_text TEXT,
    set_id INTEGER,
    identifier_system TEXT,
    identifier_value TEXT,
    value_type TEXT,
    code TEXT NOT NULL,
    code_text TEXT,
    code_system TEXT,
    value TEXT,
    value_num REAL,
    comparator TEXT,
    unit TEXT,
    unit_ucum TEXT,
    reference_range TEXT,
    abnormal_flag TEXT,
    status TEXT,
    specimen TEXT,
    observed_at TEXT,
    observed_instant INTEGER,
    reported_at TEXT,
    reported_instant INTEGER,
    created_at INTEGER NOT NULL,
    superseded_by INTEGER REFERENCES lab_result_new(id)
);
INSERT INTO lab_result_new (id, message_id, patient_id, performing_institution_id, performing_lab,
    placer_order, filler_order, order_code, order_text, set_id, value_type, code, code_text,
    code_system, value, unit, reference_range, abnormal_flag, status, observed_at,
    observed_instant, created_at, superseded_by)
SELECT id, message_id, patient_id, performing_institution_id, performing_lab, placer_order,
    filler_order, order_code, order_text, set_id, value_type, code, code_text, code_system, value,
    unit, reference_range, abnormal_flag, status, observed_at, observed_instant, created_at,
    superseded_by
FROM lab_result;
DROP TABLE lab_result;
ALTER TABLE lab_result_new RENAME TO lab_result;
CREATE INDEX lab_result_patient ON lab_result(patient_id, observed_instant);
CREATE INDEX lab_result_order ON lab_result(patient_id, filler_order, placer_order, code);
CREATE INDEX lab_result_message ON lab_result(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX lab_result_report ON lab_result(report_id) WHERE report_id IS NOT NULL;
-- FHIR search by code (newest first) and by date range across everyone.
CREATE INDEX lab_result_code ON lab_result(code, observed_instant);
CREATE INDEX lab_result_observed ON lab_result(observed_instant);
CREATE INDEX lab_result_identifier ON lab_result(identifier_value, identifier_system) WHERE identifier_value IS NOT NULL;
