-- One audit chain per node: SQLite's 0046, in PostgreSQL's dialect.
ALTER TABLE audit_event ADD COLUMN chain TEXT NOT NULL DEFAULT 'main';
DROP INDEX audit_event_seq;
CREATE UNIQUE INDEX audit_event_seq ON audit_event(chain, seq) WHERE seq IS NOT NULL;
