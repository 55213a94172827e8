-- Quality grades that cannot invert (issue #18, docs/quality.md):
-- 1. A study whose images were scored but none could be judged (fewer than two pixel scorers
--    assessable) is "not assessable": no grade, and not the same as "not scored yet". The flag is
--    kept with the study and in its grading history; recognition treats it by the region's
--    policy (`not_assessable_qc`).
-- 2. The scorers changed (a content check that rejects blank frames, floors where they divide
--    by a noise level, new estimators): every stored image is scored again, and its study graded
--    again, by the workers at their usual pace. The history keeps the grades before.
ALTER TABLE qc_study ADD COLUMN not_assessable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE qc_grade_history ADD COLUMN not_assessable INTEGER NOT NULL DEFAULT 0;

UPDATE qc_job SET state = 'queued', attempts = 0, lease_until = NULL, worker = NULL,
       finished_at = NULL, error = NULL, enqueued_at = CAST(strftime('%s', 'now') AS INTEGER)
 WHERE state IN ('done', 'failed');
