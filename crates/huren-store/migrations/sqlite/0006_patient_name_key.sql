-- The sound of a record's name (huren_mpi::name::PersonName::sound_key: first pinyin reading
-- of each character, or the Latin letters), for finding link candidates across institutions.
-- Computed at ingest; records from before this migration have none until they are sent again.
ALTER TABLE patient ADD COLUMN name_key TEXT;
CREATE INDEX patient_name_key ON patient(name_key) WHERE name_key IS NOT NULL;
