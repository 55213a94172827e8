-- A person's revision: bumped, in the same transaction, by every change to what a person's
-- judged timeline is made of (issue #19's patient page caches it per person and checks this
-- number on every page, so a cached verdict is never older than the person's data). Triggers
-- rather than calls from each write path: a path added later cannot forget it, and every node
-- sharing the database sees the same number.
--
-- Results join a study's encodings and QC grade by StudyInstanceUID (recognition.rs), so a
-- change to one study bumps every person holding a study of that UID (the same UID from two
-- institutions is possible and is kept apart elsewhere).
CREATE TABLE person_revision (
    person_id INTEGER PRIMARY KEY REFERENCES person(id),
    revision INTEGER NOT NULL
);

-- The one place a revision is bumped: the triggers below insert the persons a change touches.
CREATE VIEW person_touched AS SELECT person_id FROM person_revision;
CREATE TRIGGER person_touched_bump INSTEAD OF INSERT ON person_touched BEGIN
    INSERT INTO person_revision (person_id, revision) VALUES (NEW.person_id, 1)
    ON CONFLICT (person_id) DO UPDATE SET revision = revision + 1;
END;

CREATE TRIGGER study_revision_insert AFTER INSERT ON study BEGIN
    INSERT INTO person_touched (person_id)
    SELECT DISTINCT p.person_id FROM study s JOIN patient p ON p.id = s.patient_id
     WHERE s.study_uid = NEW.study_uid AND p.person_id IS NOT NULL;
END;

-- An instance stored, superseded, rejected or deleted always updates its study's counts.
CREATE TRIGGER study_revision_update AFTER UPDATE ON study BEGIN
    INSERT INTO person_touched (person_id)
    SELECT DISTINCT p.person_id FROM study s JOIN patient p ON p.id = s.patient_id
     WHERE s.study_uid IN (NEW.study_uid, OLD.study_uid) AND p.person_id IS NOT NULL;
    -- A study moved to another record: the one it left.
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p
     WHERE p.id = OLD.patient_id AND OLD.patient_id != NEW.patient_id AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER study_revision_delete AFTER DELETE ON study BEGIN
    INSERT INTO person_touched (person_id)
    SELECT DISTINCT p.person_id FROM study s JOIN patient p ON p.id = s.patient_id
     WHERE s.study_uid = OLD.study_uid AND p.person_id IS NOT NULL;
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p WHERE p.id = OLD.patient_id AND p.person_id IS NOT NULL;
END;

-- A QC grade (re)computed; the queue's bookkeeping columns (dirty, changed_at) do not count.
CREATE TRIGGER qc_revision_insert AFTER INSERT ON qc_study BEGIN
    INSERT INTO person_touched (person_id)
    SELECT DISTINCT p.person_id FROM study s JOIN patient p ON p.id = s.patient_id
     WHERE s.study_uid = (SELECT study_uid FROM study WHERE id = NEW.study_id)
       AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER qc_revision_update
AFTER UPDATE OF grade, calibrated, complete, not_assessable, aggregated_at ON qc_study BEGIN
    INSERT INTO person_touched (person_id)
    SELECT DISTINCT p.person_id FROM study s JOIN patient p ON p.id = s.patient_id
     WHERE s.study_uid = (SELECT study_uid FROM study WHERE id = NEW.study_id)
       AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER lab_revision_insert AFTER INSERT ON lab_result BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p WHERE p.id = NEW.patient_id AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER lab_revision_update AFTER UPDATE ON lab_result BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p
     WHERE p.id IN (NEW.patient_id, OLD.patient_id) AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER lab_revision_delete AFTER DELETE ON lab_result BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p WHERE p.id = OLD.patient_id AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER report_revision_insert AFTER INSERT ON report BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p WHERE p.id = NEW.patient_id AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER report_revision_update AFTER UPDATE ON report BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p
     WHERE p.id IN (NEW.patient_id, OLD.patient_id) AND p.person_id IS NOT NULL;
END;

CREATE TRIGGER report_revision_delete AFTER DELETE ON report BEGIN
    INSERT INTO person_touched (person_id)
    SELECT p.person_id FROM patient p WHERE p.id = OLD.patient_id AND p.person_id IS NOT NULL;
END;

-- A record linked to, moved between or unlinked from persons (MPI linking, merge, unmerge).
CREATE TRIGGER patient_revision_link AFTER UPDATE OF person_id ON patient BEGIN
    INSERT INTO person_touched (person_id)
    SELECT x.person_id FROM (SELECT NEW.person_id AS person_id UNION SELECT OLD.person_id) x
     WHERE x.person_id IS NOT NULL;
END;
