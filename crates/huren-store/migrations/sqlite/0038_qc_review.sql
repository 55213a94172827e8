-- The QC centre's reviews of a study's quality (issue #20): a comment the hospital reads, by
-- whom and when. Appended, never edited: a second review adds to the first.
CREATE TABLE qc_review (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES study(id),
    reviewed_at INTEGER NOT NULL,
    user_id INTEGER REFERENCES app_user(id),
    actor TEXT NOT NULL,
    comment TEXT NOT NULL
);
CREATE INDEX qc_review_study ON qc_review(study_id, id);
