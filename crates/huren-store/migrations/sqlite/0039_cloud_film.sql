-- The patient's cloud film (issue #20): sign-in codes sent to the registered mobile number,
-- patients' sessions, and studies shared by link. Codes and secrets are kept only as hashes.

-- person_id is NULL when the identity number named nobody with a mobile number: the row is
-- written all the same, so that the answer does not tell who is registered.
CREATE TABLE film_signin (
    id INTEGER PRIMARY KEY,
    person_id INTEGER REFERENCES person(id),
    code_hash TEXT NOT NULL,
    code_expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER,
    source_address TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX film_signin_person ON film_signin(person_id, created_at);
CREATE INDEX film_signin_source ON film_signin(source_address, created_at);

CREATE TABLE film_session (
    secret_hash TEXT PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
);

CREATE TABLE film_share (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES person(id),
    study_id INTEGER NOT NULL REFERENCES study(id),
    secret_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER
);
CREATE INDEX film_share_person ON film_share(person_id, id);
