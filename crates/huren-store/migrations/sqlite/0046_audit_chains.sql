-- One audit chain per node (ARCHITECTURE.md, "Several nodes on one index"): every event
-- belongs to a named chain, numbered and linked within it, so nodes sharing one index never
-- wait on each other to audit. A single node's chain is 'main', which every event written
-- before this migration belongs to. `huren audit verify` verifies every chain.
ALTER TABLE audit_event ADD COLUMN chain TEXT NOT NULL DEFAULT 'main';
DROP INDEX audit_event_seq;
CREATE UNIQUE INDEX audit_event_seq ON audit_event(chain, seq) WHERE seq IS NOT NULL;
