-- The recognition catalog (issue #5 item 8): versions of items loaded from CSV, effective-dated
-- prices, institutions' local codes mapped to items, and rules mapping imaging studies to items.
-- Item codes are stable across versions; prices and mappings refer to codes, not rows, so they
-- outlive a new catalog version.
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    -- YYYY-MM-DD in the region's zone: the version applies from that day.
    effective_from TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    imported_by TEXT NOT NULL
);

CREATE TABLE catalog_item (
    id INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES catalog_version(id),
    code TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('imaging', 'lab')),
    category TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    name_en TEXT,
    modality TEXT,
    body_part TEXT,
    method TEXT,
    loinc TEXT,
    validity_days INTEGER NOT NULL CHECK (validity_days > 0),
    hr_scope TEXT,
    -- Semicolon-separated codes of equivalent items (same version).
    equivalent TEXT NOT NULL DEFAULT '',
    UNIQUE (version_id, code)
);
CREATE INDEX catalog_item_loinc ON catalog_item(loinc, version_id) WHERE loinc IS NOT NULL;

-- Money in fen (0.01 yuan), never floating point.
CREATE TABLE catalog_price (
    id INTEGER PRIMARY KEY,
    item_code TEXT NOT NULL,
    price_region TEXT NOT NULL,
    institution_grade TEXT NOT NULL,
    price_fen INTEGER NOT NULL CHECK (price_fen >= 0),
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    UNIQUE (item_code, price_region, institution_grade, valid_from)
);

CREATE TABLE catalog_code_map (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    kind TEXT NOT NULL CHECK (kind IN ('order', 'lab')),
    -- As stored with results (HL7 name such as L, or a URI); '' matches any system.
    local_system TEXT NOT NULL DEFAULT '',
    local_code TEXT NOT NULL,
    item_code TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (institution_id, kind, local_code, local_system)
);

-- The whole rule set is replaced by each load (rules are read together; a partial set would
-- map studies differently from either the old or the new one).
CREATE TABLE catalog_study_rule (
    id INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    institution_code TEXT,
    modality TEXT NOT NULL,
    body_part TEXT,
    -- '|'-separated alternatives, matched case-insensitively inside StudyDescription.
    description TEXT NOT NULL DEFAULT '',
    procedure_code TEXT,
    item_code TEXT NOT NULL
);
