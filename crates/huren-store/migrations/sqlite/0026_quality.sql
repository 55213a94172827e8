-- Image quality control (issue #8, docs/quality.md).
--
-- Every active instance stored gets a job in the same transaction that stores it (the trigger
-- below), so no image is missed however it arrived (DIMSE, STOW-RS, a later version) and
-- nothing delays its acknowledgment. Workers claim jobs with a lease; a job whose worker died
-- is claimed again when its lease runs out. Results are keyed by instance, so a job applied
-- twice writes the same row twice, never two rows.
CREATE TABLE qc_job (
    instance_id INTEGER PRIMARY KEY REFERENCES instance(id),
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at INTEGER NOT NULL,
    lease_until INTEGER,
    worker TEXT,
    finished_at INTEGER,
    error TEXT
);
CREATE INDEX qc_job_ready ON qc_job(state, instance_id) WHERE state IN ('queued', 'running');

CREATE TRIGGER qc_enqueue AFTER INSERT ON instance WHEN NEW.lifecycle = 'active' BEGIN
    INSERT OR IGNORE INTO qc_job (instance_id, enqueued_at) VALUES (NEW.id, NEW.received_at);
END;

-- One image's result: its scores (JSON, one entry per scorer), or why it was not scored.
CREATE TABLE qc_image (
    instance_id INTEGER PRIMARY KEY REFERENCES instance(id),
    study_id INTEGER NOT NULL REFERENCES study(id),
    series_id INTEGER NOT NULL REFERENCES series(id),
    scored_at INTEGER NOT NULL,
    excluded TEXT,
    score REAL,
    grade TEXT,
    calibrated INTEGER NOT NULL DEFAULT 0,
    scores TEXT NOT NULL
);
CREATE INDEX qc_image_study ON qc_image(study_id, series_id);

-- A study's grade, aggregated from its images when it is stable and again after late images
-- (`dirty` is set whenever one of its images is scored).
CREATE TABLE qc_study (
    study_id INTEGER PRIMARY KEY REFERENCES study(id),
    dirty INTEGER NOT NULL DEFAULT 1,
    changed_at INTEGER NOT NULL,
    aggregated_at INTEGER,
    score REAL,
    grade TEXT,
    calibrated INTEGER NOT NULL DEFAULT 0,
    images INTEGER NOT NULL DEFAULT 0,
    excluded INTEGER NOT NULL DEFAULT 0,
    -- The series' results and reasons, JSON (huren-quality StudyResult).
    detail TEXT
);
CREATE INDEX qc_study_dirty ON qc_study(changed_at) WHERE dirty = 1;

-- Images stored before this migration are scored too.
INSERT INTO qc_job (instance_id, enqueued_at)
SELECT id, received_at FROM instance WHERE lifecycle = 'active';
