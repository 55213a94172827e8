-- Every grading of a study kept (issue #17), so a recognition decision can be re-checked with the
-- grade the study had on any date: a late image that re-grades a study does not rewrite what a
-- doctor saw before it.
CREATE TABLE qc_grade_history (
    study_id INTEGER NOT NULL REFERENCES study(id),
    graded_at INTEGER NOT NULL,
    grade TEXT,
    calibrated INTEGER NOT NULL,
    complete INTEGER,
    PRIMARY KEY (study_id, graded_at)
) WITHOUT ROWID;
INSERT INTO qc_grade_history (study_id, graded_at, grade, calibrated, complete)
SELECT study_id, aggregated_at, grade, calibrated, complete FROM qc_study WHERE aggregated_at IS NOT NULL;
