-- The QC centre's worklist (issue #20): graded studies lowest score first, walked in score
-- order instead of sorting a year's studies for each page.
CREATE INDEX qc_study_graded_score ON qc_study(score, study_id) WHERE grade IS NOT NULL;
