-- huren index, SQLite dialect. Keys are internal integers; DICOM UIDs and MRNs are attributes.
-- Dates of validity periods are ISO 'YYYY-MM-DD' text, inclusive; valid_to NULL = open-ended.

CREATE TABLE institution (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Effective-dated attributes: "what was this hospital on that date".
CREATE TABLE institution_attribute (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    attribute TEXT NOT NULL CHECK (attribute IN ('name','level','ownership','identifier_system','region','city')),
    value TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);
CREATE INDEX institution_attribute_lookup ON institution_attribute(institution_id, attribute, valid_from);

CREATE TABLE consortium (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL
);

CREATE TABLE consortium_member (
    consortium_id INTEGER NOT NULL REFERENCES consortium(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    PRIMARY KEY (consortium_id, institution_id, valid_from)
);

-- DIMSE peers: identified by AE title + source network, never by title alone.
CREATE TABLE ae (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    ae_title TEXT NOT NULL,
    network TEXT NOT NULL,
    port INTEGER,
    assumed_charset TEXT,
    stable_after_secs INTEGER,
    default_performer_id INTEGER REFERENCES institution(id),
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX ae_identity ON ae(ae_title, network);
-- C-MOVE destinations are named by AE title alone, so those titles are unique.
CREATE UNIQUE INDEX ae_destination ON ae(ae_title) WHERE port IS NOT NULL;

-- A sender's institution may send for others; with institution_name, objects whose
-- InstitutionName equals it are attributed to the performer.
CREATE TABLE send_for (
    id INTEGER PRIMARY KEY,
    sender_institution_id INTEGER NOT NULL REFERENCES institution(id),
    performer_institution_id INTEGER NOT NULL REFERENCES institution(id),
    institution_name TEXT
);
CREATE UNIQUE INDEX send_for_unique ON send_for(sender_institution_id, performer_institution_id, COALESCE(institution_name, ''));

CREATE TABLE token (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('admin','institution')),
    institution_id INTEGER REFERENCES institution(id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- A patient record as one issuer knows it; the master patient index links records later.
CREATE TABLE patient (
    id INTEGER PRIMARY KEY,
    issuer TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    name_raw TEXT,
    name_alphabetic TEXT,
    name_ideographic TEXT,
    name_phonetic TEXT,
    birth_date TEXT,
    sex TEXT,
    other_ids TEXT,
    updated_at INTEGER NOT NULL,
    UNIQUE (issuer, patient_id)
);
CREATE INDEX patient_name_ideographic ON patient(name_ideographic);
CREATE INDEX patient_name_alphabetic ON patient(name_alphabetic);

-- A study is owned by its performing institution: the same Study UID from two institutions
-- is two rows (a collision or a copy), never one merged study.
CREATE TABLE study (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    study_uid TEXT NOT NULL,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    study_date TEXT,
    study_time TEXT,
    study_instant INTEGER,
    accession_number TEXT,
    study_id TEXT,
    description TEXT,
    referring_physician TEXT,
    institution_name TEXT,
    modalities TEXT NOT NULL DEFAULT '',
    num_series INTEGER NOT NULL DEFAULT 0,
    num_instances INTEGER NOT NULL DEFAULT 0,
    last_instance_at INTEGER NOT NULL,
    stable_after_secs INTEGER NOT NULL,
    stable_at INTEGER,
    UNIQUE (study_uid, institution_id)
);
CREATE INDEX study_date_idx ON study(study_date);
CREATE INDEX study_patient ON study(patient_id);
-- Accession numbers are scoped by institution.
CREATE INDEX study_accession ON study(institution_id, accession_number);
CREATE INDEX study_unstable ON study(last_instance_at) WHERE stable_at IS NULL;

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES study(id),
    series_uid TEXT NOT NULL,
    modality TEXT,
    series_number INTEGER,
    description TEXT,
    body_part TEXT,
    series_date TEXT,
    series_time TEXT,
    station_name TEXT,
    manufacturer TEXT,
    model TEXT,
    num_instances INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study_id, series_uid)
);

CREATE TABLE instance (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series(id),
    study_id INTEGER NOT NULL REFERENCES study(id),
    sop_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    instance_number INTEGER,
    transfer_syntax_uid TEXT NOT NULL,
    lifecycle TEXT NOT NULL CHECK (lifecycle IN ('active','superseded','rejected','deleted')),
    version INTEGER NOT NULL,
    supersedes_id INTEGER REFERENCES instance(id),
    sender_institution_id INTEGER NOT NULL REFERENCES institution(id),
    sender_ae_id INTEGER REFERENCES ae(id),
    sender_token_id INTEGER REFERENCES token(id),
    performing_institution_id INTEGER NOT NULL REFERENCES institution(id),
    blob_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    number_of_frames INTEGER,
    rows INTEGER,
    columns INTEGER,
    bits_allocated INTEGER,
    photometric TEXT,
    lossy TEXT,
    image_type TEXT,
    content_date TEXT,
    content_time TEXT,
    pixel_layout TEXT NOT NULL,
    uid_conflict INTEGER NOT NULL DEFAULT 0,
    attributes TEXT NOT NULL
);
CREATE INDEX instance_sop ON instance(sop_uid);
CREATE INDEX instance_blob ON instance(blob_key);
CREATE INDEX instance_series ON instance(series_id, lifecycle);
CREATE INDEX instance_study ON instance(study_id, lifecycle);

-- DICOM JSON per instance, built once at ingest, deflate-compressed.
CREATE TABLE instance_json (
    instance_id INTEGER PRIMARY KEY REFERENCES instance(id),
    json BLOB NOT NULL
);

CREATE TABLE uid_conflict (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL,
    instance_id INTEGER NOT NULL REFERENCES instance(id),
    other_instance_id INTEGER NOT NULL REFERENCES instance(id),
    detected_at INTEGER NOT NULL,
    resolved_at INTEGER
);

CREATE TABLE audit_event (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    institution TEXT,
    patient TEXT,
    study_uid TEXT,
    object TEXT,
    source_address TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_event_at ON audit_event(at);

-- Events later work hangs on (study stable → metadata, QC, completeness).
CREATE TABLE study_event (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES study(id),
    kind TEXT NOT NULL,
    at INTEGER NOT NULL
);

CREATE TABLE setting (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
