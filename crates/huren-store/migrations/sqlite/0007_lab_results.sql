-- HL7 v2 senders (lab and report systems) and the results they send (issue #5).
-- A sender is identified by source network and, when set, MSH-4 sending facility; it belongs
-- to one institution (the default performer).
CREATE TABLE hl7_sender (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    network TEXT NOT NULL,
    sending_facility TEXT,
    -- MSH-18 to assume when a message declares none (e.g. "GB 18030-2000").
    default_charset TEXT,
    created_at INTEGER NOT NULL
);

-- One row per accepted message: the same MSH-10 from the same sender is stored once.
CREATE TABLE hl7_message (
    id INTEGER PRIMARY KEY,
    sender_id INTEGER NOT NULL REFERENCES hl7_sender(id),
    control_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    version TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    UNIQUE (sender_id, control_id)
);

-- One observation (OBX) of an order (OBR). Values keep what was sent; times keep the original
-- HL7 string and an instant in the region's zone.
CREATE TABLE lab_result (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES hl7_message(id),
    patient_id INTEGER NOT NULL REFERENCES patient(id),
    performing_institution_id INTEGER NOT NULL REFERENCES institution(id),
    -- OBX-23 performing organization name when sent.
    performing_lab TEXT,
    placer_order TEXT,
    filler_order TEXT,
    order_code TEXT,
    order_text TEXT,
    set_id INTEGER,
    value_type TEXT,
    code TEXT NOT NULL,
    code_text TEXT,
    code_system TEXT,
    value TEXT,
    unit TEXT,
    reference_range TEXT,
    abnormal_flag TEXT,
    status TEXT,
    observed_at TEXT,
    observed_instant INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX lab_result_patient ON lab_result(patient_id, observed_instant);
