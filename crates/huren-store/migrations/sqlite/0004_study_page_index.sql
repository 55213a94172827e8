-- QIDO pages are chosen first by key and sort columns only, then the page's rows are read
-- (crates/huren-store/src/query.rs). This index lets "studies of these patients, newest first"
-- be answered from the index alone: a name wildcard matching 10,000 patients no longer reads
-- 20,000 study rows to keep 101. It replaces study(patient_id), its prefix.
CREATE INDEX study_patient_page ON study(patient_id, study_date DESC, study_time DESC, id DESC, num_instances);
DROP INDEX study_patient;
