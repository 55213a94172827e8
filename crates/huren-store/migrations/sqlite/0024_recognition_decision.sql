-- The receiving doctor's decision on a prior result (issue #7): append-only; a later decision
-- on the same result by the same institution for the same visit supersedes the earlier one.
-- Each row keeps what the engine said and the configuration versions it used, so it can be
-- explained again; it refers to the result by its identifiers and survives the result's later
-- rejection.
CREATE TABLE recognition_decision (
    id INTEGER PRIMARY KEY,
    decided_at INTEGER NOT NULL,
    -- The decision's day in the region's zone (statistics count by it).
    decided_on TEXT NOT NULL,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    department TEXT,
    user_id INTEGER REFERENCES app_user(id),
    actor TEXT NOT NULL,
    person_id INTEGER NOT NULL REFERENCES person(id),
    visit_number TEXT,
    result_kind TEXT NOT NULL CHECK (result_kind IN ('imaging_study', 'lab_result')),
    result_ref TEXT NOT NULL,
    performing_institution TEXT NOT NULL,
    item TEXT,
    ordered_item TEXT,
    engine_verdict TEXT NOT NULL,
    engine_decision TEXT NOT NULL,
    catalog_version TEXT,
    qualification_set INTEGER,
    scope_set INTEGER,
    decision TEXT NOT NULL CHECK (decision IN ('recognize', 're_examine')),
    reason TEXT,
    note TEXT,
    record_sentence TEXT NOT NULL,
    superseded_by INTEGER REFERENCES recognition_decision(id)
);
CREATE INDEX recognition_decision_result
    ON recognition_decision(institution_id, person_id, result_kind, result_ref);
CREATE INDEX recognition_decision_day ON recognition_decision(decided_on, institution_id);
