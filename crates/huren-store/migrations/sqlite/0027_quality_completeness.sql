-- Whether every series of a study that can say is complete (no slice missing, even spacing):
-- recognition's "complete series" rule reads it (docs/quality.md). NULL: no series can say.
ALTER TABLE qc_study ADD COLUMN complete INTEGER;
