-- QIDO/C-FIND by PatientID without an issuer, and by name with wildcards: SQLite uses an index
-- for `LIKE 'prefix%'` only on a NOCASE-collated column (the query compares names NOCASE).
CREATE INDEX patient_id_only ON patient(patient_id);
CREATE INDEX patient_name_raw_nocase ON patient(name_raw COLLATE NOCASE);
CREATE INDEX patient_name_alphabetic_nocase ON patient(name_alphabetic COLLATE NOCASE);
CREATE INDEX patient_name_ideographic_nocase ON patient(name_ideographic COLLATE NOCASE);
CREATE INDEX patient_name_phonetic_nocase ON patient(name_phonetic COLLATE NOCASE);
CREATE INDEX study_date_time ON study(study_date DESC, study_time DESC, id DESC);
