-- The QC centre's statistics roll-up (issue #20): a year of a region's graded studies is
-- millions of rows, and a dashboard must answer in 200 ms. One row per month (of StudyDate),
-- institution and modalities, with the grades' counts, the scores' count and sum, and a
-- histogram of scores in 5-point bins (h0: 0-4.9 … h19: 95-99.9, h20: 100), from which the
-- percentiles are read. Derived data: written only by the triggers below, which add a study
-- when it is graded and move it when its grade, its date, modalities or institution change.
-- Each qc_study row remembers the cell it is counted in (rollup_*), so that a change takes it
-- out of the right one.
CREATE TABLE qc_rollup (
    month TEXT NOT NULL,
    institution_id INTEGER NOT NULL,
    modalities TEXT NOT NULL,
    studies INTEGER NOT NULL DEFAULT 0,
    a INTEGER NOT NULL DEFAULT 0,
    b INTEGER NOT NULL DEFAULT 0,
    c INTEGER NOT NULL DEFAULT 0,
    reject INTEGER NOT NULL DEFAULT 0,
    uncalibrated INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    scored INTEGER NOT NULL DEFAULT 0,
    score_sum REAL NOT NULL DEFAULT 0,
    h0 INTEGER NOT NULL DEFAULT 0,
    h1 INTEGER NOT NULL DEFAULT 0,
    h2 INTEGER NOT NULL DEFAULT 0,
    h3 INTEGER NOT NULL DEFAULT 0,
    h4 INTEGER NOT NULL DEFAULT 0,
    h5 INTEGER NOT NULL DEFAULT 0,
    h6 INTEGER NOT NULL DEFAULT 0,
    h7 INTEGER NOT NULL DEFAULT 0,
    h8 INTEGER NOT NULL DEFAULT 0,
    h9 INTEGER NOT NULL DEFAULT 0,
    h10 INTEGER NOT NULL DEFAULT 0,
    h11 INTEGER NOT NULL DEFAULT 0,
    h12 INTEGER NOT NULL DEFAULT 0,
    h13 INTEGER NOT NULL DEFAULT 0,
    h14 INTEGER NOT NULL DEFAULT 0,
    h15 INTEGER NOT NULL DEFAULT 0,
    h16 INTEGER NOT NULL DEFAULT 0,
    h17 INTEGER NOT NULL DEFAULT 0,
    h18 INTEGER NOT NULL DEFAULT 0,
    h19 INTEGER NOT NULL DEFAULT 0,
    h20 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, institution_id, modalities)
) WITHOUT ROWID;
CREATE INDEX qc_rollup_institution ON qc_rollup(institution_id, month);

ALTER TABLE qc_study ADD COLUMN rollup_month TEXT;
ALTER TABLE qc_study ADD COLUMN rollup_institution INTEGER;
ALTER TABLE qc_study ADD COLUMN rollup_modalities TEXT;

-- What is graded already.
INSERT INTO qc_rollup (month, institution_id, modalities, studies, a, b, c, reject, uncalibrated, incomplete, scored, score_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20)
SELECT substr(s.study_date, 1, 6), s.institution_id, s.modalities,
       SUM(1),
       SUM(q.grade IS 'A'),
       SUM(q.grade IS 'B'),
       SUM(q.grade IS 'C'),
       SUM(q.grade IS NOT NULL AND q.grade NOT IN ('A', 'B', 'C')),
       SUM(q.grade IS NOT NULL AND q.calibrated = 0),
       SUM(q.complete IS 0),
       SUM(q.score IS NOT NULL),
       SUM(COALESCE(q.score, 0)),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 0),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 1),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 2),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 3),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 4),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 5),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 6),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 7),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 8),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 9),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 10),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 11),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 12),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 13),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 14),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 15),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 16),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 17),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 18),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 19),
       SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 20)
  FROM qc_study q JOIN study s ON s.id = q.study_id
 WHERE q.aggregated_at IS NOT NULL AND length(s.study_date) >= 6
 GROUP BY 1, 2, 3;
UPDATE qc_study SET
    rollup_month = (SELECT substr(s.study_date, 1, 6) FROM study s WHERE s.id = qc_study.study_id),
    rollup_institution = (SELECT s.institution_id FROM study s WHERE s.id = qc_study.study_id),
    rollup_modalities = (SELECT s.modalities FROM study s WHERE s.id = qc_study.study_id)
 WHERE aggregated_at IS NOT NULL
   AND (SELECT length(s.study_date) FROM study s WHERE s.id = qc_study.study_id) >= 6;

CREATE TRIGGER qc_rollup_insert AFTER INSERT ON qc_study WHEN NEW.aggregated_at IS NOT NULL BEGIN
    INSERT INTO qc_rollup (month, institution_id, modalities, studies, a, b, c, reject, uncalibrated, incomplete, scored, score_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20)
    SELECT substr(s.study_date, 1, 6), s.institution_id, s.modalities,
           1,
           NEW.grade IS 'A',
           NEW.grade IS 'B',
           NEW.grade IS 'C',
           NEW.grade IS NOT NULL AND NEW.grade NOT IN ('A', 'B', 'C'),
           NEW.grade IS NOT NULL AND NEW.calibrated = 0,
           NEW.complete IS 0,
           NEW.score IS NOT NULL,
           COALESCE(NEW.score, 0),
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 0,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 1,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 2,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 3,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 4,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 5,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 6,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 7,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 8,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 9,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 10,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 11,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 12,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 13,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 14,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 15,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 16,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 17,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 18,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 19,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 20
      FROM study s WHERE s.id = NEW.study_id AND NEW.aggregated_at IS NOT NULL AND length(s.study_date) >= 6
    ON CONFLICT (month, institution_id, modalities) DO UPDATE SET
        studies = studies + excluded.studies,
        a = a + excluded.a,
        b = b + excluded.b,
        c = c + excluded.c,
        reject = reject + excluded.reject,
        uncalibrated = uncalibrated + excluded.uncalibrated,
        incomplete = incomplete + excluded.incomplete,
        scored = scored + excluded.scored,
        score_sum = score_sum + excluded.score_sum,
        h0 = h0 + excluded.h0,
        h1 = h1 + excluded.h1,
        h2 = h2 + excluded.h2,
        h3 = h3 + excluded.h3,
        h4 = h4 + excluded.h4,
        h5 = h5 + excluded.h5,
        h6 = h6 + excluded.h6,
        h7 = h7 + excluded.h7,
        h8 = h8 + excluded.h8,
        h9 = h9 + excluded.h9,
        h10 = h10 + excluded.h10,
        h11 = h11 + excluded.h11,
        h12 = h12 + excluded.h12,
        h13 = h13 + excluded.h13,
        h14 = h14 + excluded.h14,
        h15 = h15 + excluded.h15,
        h16 = h16 + excluded.h16,
        h17 = h17 + excluded.h17,
        h18 = h18 + excluded.h18,
        h19 = h19 + excluded.h19,
        h20 = h20 + excluded.h20;
    UPDATE qc_study SET
        rollup_month = (SELECT substr(s.study_date, 1, 6) FROM study s
                         WHERE s.id = NEW.study_id AND NEW.aggregated_at IS NOT NULL AND length(s.study_date) >= 6),
        rollup_institution = (SELECT s.institution_id FROM study s WHERE s.id = NEW.study_id),
        rollup_modalities = (SELECT s.modalities FROM study s WHERE s.id = NEW.study_id)
     WHERE study_id = NEW.study_id;
END;

-- (Setting rollup_* does not fire this: it is not in the column list.)
CREATE TRIGGER qc_rollup_update AFTER UPDATE OF aggregated_at, score, grade, calibrated, complete ON qc_study BEGIN
    UPDATE qc_rollup SET
        studies = studies - 1,
        a = a - (OLD.grade IS 'A'),
        b = b - (OLD.grade IS 'B'),
        c = c - (OLD.grade IS 'C'),
        reject = reject - (OLD.grade IS NOT NULL AND OLD.grade NOT IN ('A', 'B', 'C')),
        uncalibrated = uncalibrated - (OLD.grade IS NOT NULL AND OLD.calibrated = 0),
        incomplete = incomplete - (OLD.complete IS 0),
        scored = scored - (OLD.score IS NOT NULL),
        score_sum = score_sum - COALESCE(OLD.score, 0),
        h0 = h0 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 0),
        h1 = h1 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 1),
        h2 = h2 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 2),
        h3 = h3 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 3),
        h4 = h4 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 4),
        h5 = h5 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 5),
        h6 = h6 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 6),
        h7 = h7 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 7),
        h8 = h8 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 8),
        h9 = h9 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 9),
        h10 = h10 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 10),
        h11 = h11 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 11),
        h12 = h12 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 12),
        h13 = h13 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 13),
        h14 = h14 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 14),
        h15 = h15 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 15),
        h16 = h16 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 16),
        h17 = h17 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 17),
        h18 = h18 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 18),
        h19 = h19 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 19),
        h20 = h20 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 20)
     WHERE OLD.rollup_month IS NOT NULL AND month = OLD.rollup_month
       AND institution_id = OLD.rollup_institution AND modalities = OLD.rollup_modalities;
    INSERT INTO qc_rollup (month, institution_id, modalities, studies, a, b, c, reject, uncalibrated, incomplete, scored, score_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20)
    SELECT substr(s.study_date, 1, 6), s.institution_id, s.modalities,
           1,
           NEW.grade IS 'A',
           NEW.grade IS 'B',
           NEW.grade IS 'C',
           NEW.grade IS NOT NULL AND NEW.grade NOT IN ('A', 'B', 'C'),
           NEW.grade IS NOT NULL AND NEW.calibrated = 0,
           NEW.complete IS 0,
           NEW.score IS NOT NULL,
           COALESCE(NEW.score, 0),
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 0,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 1,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 2,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 3,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 4,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 5,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 6,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 7,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 8,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 9,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 10,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 11,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 12,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 13,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 14,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 15,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 16,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 17,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 18,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 19,
           NEW.score IS NOT NULL AND MIN(20, CAST(NEW.score / 5 AS INTEGER)) = 20
      FROM study s WHERE s.id = NEW.study_id AND NEW.aggregated_at IS NOT NULL AND length(s.study_date) >= 6
    ON CONFLICT (month, institution_id, modalities) DO UPDATE SET
        studies = studies + excluded.studies,
        a = a + excluded.a,
        b = b + excluded.b,
        c = c + excluded.c,
        reject = reject + excluded.reject,
        uncalibrated = uncalibrated + excluded.uncalibrated,
        incomplete = incomplete + excluded.incomplete,
        scored = scored + excluded.scored,
        score_sum = score_sum + excluded.score_sum,
        h0 = h0 + excluded.h0,
        h1 = h1 + excluded.h1,
        h2 = h2 + excluded.h2,
        h3 = h3 + excluded.h3,
        h4 = h4 + excluded.h4,
        h5 = h5 + excluded.h5,
        h6 = h6 + excluded.h6,
        h7 = h7 + excluded.h7,
        h8 = h8 + excluded.h8,
        h9 = h9 + excluded.h9,
        h10 = h10 + excluded.h10,
        h11 = h11 + excluded.h11,
        h12 = h12 + excluded.h12,
        h13 = h13 + excluded.h13,
        h14 = h14 + excluded.h14,
        h15 = h15 + excluded.h15,
        h16 = h16 + excluded.h16,
        h17 = h17 + excluded.h17,
        h18 = h18 + excluded.h18,
        h19 = h19 + excluded.h19,
        h20 = h20 + excluded.h20;
    UPDATE qc_study SET
        rollup_month = (SELECT substr(s.study_date, 1, 6) FROM study s
                         WHERE s.id = NEW.study_id AND NEW.aggregated_at IS NOT NULL AND length(s.study_date) >= 6),
        rollup_institution = (SELECT s.institution_id FROM study s WHERE s.id = NEW.study_id),
        rollup_modalities = (SELECT s.modalities FROM study s WHERE s.id = NEW.study_id)
     WHERE study_id = NEW.study_id;
END;

CREATE TRIGGER qc_rollup_delete AFTER DELETE ON qc_study BEGIN
    UPDATE qc_rollup SET
        studies = studies - 1,
        a = a - (OLD.grade IS 'A'),
        b = b - (OLD.grade IS 'B'),
        c = c - (OLD.grade IS 'C'),
        reject = reject - (OLD.grade IS NOT NULL AND OLD.grade NOT IN ('A', 'B', 'C')),
        uncalibrated = uncalibrated - (OLD.grade IS NOT NULL AND OLD.calibrated = 0),
        incomplete = incomplete - (OLD.complete IS 0),
        scored = scored - (OLD.score IS NOT NULL),
        score_sum = score_sum - COALESCE(OLD.score, 0),
        h0 = h0 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 0),
        h1 = h1 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 1),
        h2 = h2 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 2),
        h3 = h3 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 3),
        h4 = h4 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 4),
        h5 = h5 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 5),
        h6 = h6 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 6),
        h7 = h7 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 7),
        h8 = h8 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 8),
        h9 = h9 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 9),
        h10 = h10 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 10),
        h11 = h11 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 11),
        h12 = h12 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 12),
        h13 = h13 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 13),
        h14 = h14 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 14),
        h15 = h15 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 15),
        h16 = h16 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 16),
        h17 = h17 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 17),
        h18 = h18 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 18),
        h19 = h19 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 19),
        h20 = h20 - (OLD.score IS NOT NULL AND MIN(20, CAST(OLD.score / 5 AS INTEGER)) = 20)
     WHERE OLD.rollup_month IS NOT NULL AND month = OLD.rollup_month
       AND institution_id = OLD.rollup_institution AND modalities = OLD.rollup_modalities;
END;

-- A graded study whose date, modalities or institution change moves to its new cell.
CREATE TRIGGER qc_rollup_study_moved AFTER UPDATE OF study_date, modalities, institution_id ON study
WHEN OLD.study_date IS NOT NEW.study_date OR OLD.modalities IS NOT NEW.modalities
     OR OLD.institution_id IS NOT NEW.institution_id BEGIN
    UPDATE qc_study SET aggregated_at = aggregated_at WHERE study_id = NEW.id AND aggregated_at IS NOT NULL;
END;
