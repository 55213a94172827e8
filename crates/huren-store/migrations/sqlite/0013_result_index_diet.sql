-- Every index on the results tables is written by every HL7 message (20+ rows each); these
-- three are read by nothing since supersession finds new rows by id range and old rows by
-- `lab_result_patient` (EXPLAIN QUERY PLAN), and MLLP throughput is bound by the writer.
DROP INDEX IF EXISTS lab_result_order;
DROP INDEX IF EXISTS lab_result_message;
DROP INDEX IF EXISTS report_message;
