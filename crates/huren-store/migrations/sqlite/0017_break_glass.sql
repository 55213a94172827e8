-- Break-glass (issue #6): a doctor without a relationship opens a patient in an emergency with
-- a mandatory reason; the access is short and waits for the institution admin's review.
CREATE TABLE break_glass (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES app_user(id),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    person_id INTEGER NOT NULL REFERENCES person(id),
    reason TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    reviewed_by INTEGER REFERENCES app_user(id),
    reviewed_at INTEGER,
    -- justified | unjustified
    verdict TEXT,
    review_note TEXT
);
CREATE INDEX break_glass_user ON break_glass(user_id, expires_at);
CREATE INDEX break_glass_review ON break_glass(institution_id, reviewed_at);
