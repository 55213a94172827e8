-- Institution codes are case-preserving and compared case-insensitively (ARCHITECTURE.md,
-- "Identifiers and their scope"): real codes — unified social credit codes, licence numbers —
-- are uppercase, and `H500002` and `h500002` must never be two institutions. The column keeps
-- what the operator wrote; this index makes the uniqueness case-blind and serves every
-- `code = ? COLLATE NOCASE` lookup.
CREATE UNIQUE INDEX institution_code_nocase ON institution(code COLLATE NOCASE);
