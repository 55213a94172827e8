-- A name wildcard that matches many studies (`Wang^12*` matched 22,000 of 1M) is answered by
-- reading studies newest first and stopping at the page (issue 22; huren-store query::Plan).
-- Testing each study against its patient's name cost a patient row read, about 7 µs a study
-- (71 ms for the ~9,000 studies that page needed); with the patient's name groups copied into
-- the study and carried by the newest-first index, the same page is read from the index alone
-- (1.1 ms, measured on the 1M-instance benchmark index).
--
-- A study takes its record's names when it is inserted (the ingest commit's INSERT … SELECT,
-- commit.rs: a trigger there would update the new row again and bump its person's revision
-- twice); triggers keep the copies true afterwards, whatever the write path: a study moved to
-- another record takes that record's names, and a record's new names reach all its studies.
ALTER TABLE study ADD COLUMN patient_name_alphabetic TEXT;
ALTER TABLE study ADD COLUMN patient_name_ideographic TEXT;
ALTER TABLE study ADD COLUMN patient_name_phonetic TEXT;

UPDATE study SET (patient_name_alphabetic, patient_name_ideographic, patient_name_phonetic) =
    (SELECT p.name_alphabetic, p.name_ideographic, p.name_phonetic FROM patient p WHERE p.id = study.patient_id);

-- Replaces study_date_time (its leading columns are the same, so every date-ordered or
-- date-range read it served is served by this one, now without a study row read).
DROP INDEX IF EXISTS study_date_time;
CREATE INDEX study_newest ON study(study_date DESC, study_time DESC, id DESC, num_instances,
    patient_id, institution_id, patient_name_alphabetic, patient_name_ideographic, patient_name_phonetic);

CREATE TRIGGER study_patient_names_moved AFTER UPDATE OF patient_id ON study
WHEN OLD.patient_id IS NOT NEW.patient_id BEGIN
    UPDATE study SET (patient_name_alphabetic, patient_name_ideographic, patient_name_phonetic) =
        (SELECT p.name_alphabetic, p.name_ideographic, p.name_phonetic FROM patient p WHERE p.id = NEW.patient_id)
     WHERE id = NEW.id;
END;

CREATE TRIGGER patient_names_changed AFTER UPDATE OF name_alphabetic, name_ideographic, name_phonetic ON patient
WHEN OLD.name_alphabetic IS NOT NEW.name_alphabetic OR OLD.name_ideographic IS NOT NEW.name_ideographic
  OR OLD.name_phonetic IS NOT NEW.name_phonetic BEGIN
    UPDATE study SET patient_name_alphabetic = NEW.name_alphabetic,
                     patient_name_ideographic = NEW.name_ideographic,
                     patient_name_phonetic = NEW.name_phonetic
     WHERE patient_id = NEW.id;
END;
