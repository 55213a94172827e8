PRAGMA defer_foreign_keys = ON;
-- Institutions are placed by GB/T 2260 administrative division code (issue #17): a new
-- effective-dated attribute 'division', which HR scopes are written in. SQLite cannot widen a
-- CHECK in place, so the attribute table is rebuilt with its ids.
CREATE TABLE institution_attribute_new (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    attribute TEXT NOT NULL CHECK (attribute IN ('name','level','ownership','identifier_system','region','city','organization','division')),
    value TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);
INSERT INTO institution_attribute_new SELECT id, institution_id, attribute, value, valid_from, valid_to
  FROM institution_attribute;
DROP TABLE institution_attribute;
ALTER TABLE institution_attribute_new RENAME TO institution_attribute;
CREATE INDEX institution_attribute_lookup ON institution_attribute(institution_id, attribute, valid_from);
CREATE INDEX institution_attribute_value ON institution_attribute(attribute, value);
