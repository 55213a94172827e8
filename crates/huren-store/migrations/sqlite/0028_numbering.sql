-- Whose patient numbering an issuer is (issue #16). An institution's numbering is its
-- identifier_system (institution_attribute), its urn:huren:institution:<code>, or an issuer it
-- used first (a free-text IssuerOfPatientID, an HL7 assigning authority), claimed here.
CREATE TABLE issuer_claim (
    issuer TEXT PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    claimed_at INTEGER NOT NULL
);

-- Issuers already in use: claimed by the institution that first performed data under them
-- (studies first, then reports, then lab results; the lowest row id within each), except
-- identity-number systems and issuers that are already someone's by the rules above.
INSERT OR IGNORE INTO issuer_claim (issuer, institution_id, claimed_at)
SELECT p.issuer, s.institution_id, unixepoch()
  FROM patient p JOIN study s ON s.patient_id = p.id
 WHERE p.issuer NOT LIKE 'urn:huren:%'
   AND NOT EXISTS (SELECT 1 FROM institution_attribute a WHERE a.attribute = 'identifier_system' AND a.value = p.issuer)
 ORDER BY s.id;
INSERT OR IGNORE INTO issuer_claim (issuer, institution_id, claimed_at)
SELECT p.issuer, r.performing_institution_id, unixepoch()
  FROM patient p JOIN report r ON r.patient_id = p.id
 WHERE p.issuer NOT LIKE 'urn:huren:%'
   AND NOT EXISTS (SELECT 1 FROM institution_attribute a WHERE a.attribute = 'identifier_system' AND a.value = p.issuer)
 ORDER BY r.id;
INSERT OR IGNORE INTO issuer_claim (issuer, institution_id, claimed_at)
SELECT p.issuer, l.performing_institution_id, unixepoch()
  FROM patient p JOIN lab_result l ON l.patient_id = p.id
 WHERE p.issuer NOT LIKE 'urn:huren:%'
   AND NOT EXISTS (SELECT 1 FROM institution_attribute a WHERE a.attribute = 'identifier_system' AND a.value = p.issuer)
 ORDER BY l.id;

-- Lookups of an identifier_system value (the index above is by institution).
CREATE INDEX institution_attribute_value ON institution_attribute(attribute, value);
