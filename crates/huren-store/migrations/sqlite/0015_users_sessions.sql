-- People who sign in (issue #6): one account per person and role, in one institution and
-- department. Passwords only as argon2id PHC strings; failed attempts lock the account for a
-- while. Sessions are stored by the SHA-256 of their secret (a leaked table opens nothing),
-- with idle and absolute expiry and a CSRF token for state-changing requests.
CREATE TABLE app_user (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('doctor', 'technician', 'qc_officer', 'data_steward',
        'institution_admin', 'regional_operator', 'auditor')),
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    department TEXT,
    password_hash TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    disabled_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE user_session (
    id INTEGER PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES app_user(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    source_address TEXT
);
CREATE INDEX user_session_user ON user_session(user_id);

-- System tokens expire (NULL: never, for the ones issued before).
ALTER TABLE token ADD COLUMN expires_at INTEGER;
