-- Corrections and finals supersede (HL7 OBX-11 P → F → C): the newest result for the same
-- patient record, order and observation code is current; earlier ones are kept as history.
ALTER TABLE lab_result ADD COLUMN superseded_by INTEGER REFERENCES lab_result(id);
ALTER TABLE report ADD COLUMN superseded_by INTEGER REFERENCES report(id);
CREATE INDEX lab_result_order ON lab_result(patient_id, filler_order, placer_order, code);
