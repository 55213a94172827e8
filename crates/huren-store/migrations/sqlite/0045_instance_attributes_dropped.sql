-- Every instance row carried its index attributes again as JSON (patient, study and series
-- attributes repeated per instance, ~1.3 KB each), written at ingest and read by nothing: 60 %
-- of the instance table and about a third of the whole index at 1M instances (issue 23,
-- item 4, measured with dbstat). What queries need is in the patient, study and series rows
-- and the instance's own columns; the full header is in instance_json. Dropping the column
-- rewrites the instance table once, at this upgrade.
ALTER TABLE instance DROP COLUMN attributes;
