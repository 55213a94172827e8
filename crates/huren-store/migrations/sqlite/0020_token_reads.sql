-- Whose data a hospital system's token reads (issue #6, docs/access.md): its own institution's
-- (the default) or, granted explicitly by an operator, the whole region's.
ALTER TABLE token ADD COLUMN reads TEXT NOT NULL DEFAULT 'institution'
    CHECK (reads IN ('institution', 'region'));
