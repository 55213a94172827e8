-- Recognition configuration as versioned data (issue #7, docs/recognition.md): every import of
-- qualification records or scope rules is a set; the newest set of each kind is in force, and
-- a decision keeps the ids of the sets it used, so it can be explained again later.
CREATE TABLE recognition_set (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('qualifications', 'scopes')),
    source_sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    imported_by TEXT NOT NULL
);
CREATE TABLE qualification_record (
    set_id INTEGER NOT NULL REFERENCES recognition_set(id),
    record TEXT NOT NULL,
    institution TEXT NOT NULL,
    item TEXT NOT NULL,
    scope TEXT NOT NULL,
    evaluated_by TEXT NOT NULL CHECK (evaluated_by IN ('county', 'city', 'province', 'national')),
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    PRIMARY KEY (set_id, record)
);
CREATE TABLE scope_rule (
    set_id INTEGER NOT NULL REFERENCES recognition_set(id),
    label TEXT NOT NULL,
    -- The area keys it covers, `;`-separated (city:…, consortium:…, national).
    covers TEXT NOT NULL,
    PRIMARY KEY (set_id, label)
);
