-- Series metadata (WADO-RS) assembled once and served with an ETag. `version` changes whenever
-- the series' content changes (new, superseded, rejected or deleted instances); the patient's
-- `updated_at` covers demographic updates. A cached document is valid for one ETag only.
ALTER TABLE series ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE series_metadata (
    series_id INTEGER PRIMARY KEY REFERENCES series(id),
    etag TEXT NOT NULL,
    json BLOB NOT NULL
);
