-- A DIMSE peer may be required to use DICOM TLS (issue #6): its plain associations are refused.
ALTER TABLE ae ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0;
