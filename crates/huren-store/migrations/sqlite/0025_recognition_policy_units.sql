-- Issue #7, the rest of the recognition configuration and statistics at a year's scale.
--
-- 1. The region's policy is versioned data like the other recognition sets: kind 'policy', its
--    parsed content kept as JSON in `document` (SQLite cannot widen a CHECK in place, so the
--    set table is rebuilt with its ids, and its rows' tables with it).
-- 2. Campuses: an institution may belong to a legal organization (attribute 'organization', the
--    organization's institution code); campuses of one organization are not "outside" each
--    other (national Measures 国卫医发〔2022〕6号 count results between institutions).
-- 3. Each decision keeps the policy set it used and whether its reason counts as a
--    non-recognition under that policy's reason list, so statistics need nothing but the
--    stored decisions.
-- 4. Statistics units are kept as decisions arrive (`recognition_unit`, one row per unit with
--    its current decision) and rolled up by day and month along each grouping by triggers
--    (`recognition_rollup`), so a year's query reads a few thousand rows, not every decision.
-- The sets' rows are set aside and put back, so that no row ever points at a missing set (a
-- dropped parent would count as a violation at commit even once the new table has its name).
CREATE TABLE qualification_record_copy AS SELECT * FROM qualification_record;
CREATE TABLE scope_rule_copy AS SELECT * FROM scope_rule;
DROP TABLE qualification_record;
DROP TABLE scope_rule;

CREATE TABLE recognition_set_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('qualifications', 'scopes', 'policy')),
    source_sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    imported_by TEXT NOT NULL,
    -- The parsed content of kinds without a table of their own (policy), as JSON.
    document TEXT
);
INSERT INTO recognition_set_new (id, kind, source_sha256, rows, imported_at, imported_by)
SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set;
DROP TABLE recognition_set;
ALTER TABLE recognition_set_new RENAME TO recognition_set;

CREATE TABLE qualification_record (
    set_id INTEGER NOT NULL REFERENCES recognition_set(id),
    record TEXT NOT NULL,
    institution TEXT NOT NULL,
    item TEXT NOT NULL,
    scope TEXT NOT NULL,
    evaluated_by TEXT NOT NULL CHECK (evaluated_by IN ('county', 'city', 'province', 'national')),
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    PRIMARY KEY (set_id, record)
);
INSERT INTO qualification_record SELECT set_id, record, institution, item, scope, evaluated_by,
    valid_from, valid_until FROM qualification_record_copy;
CREATE TABLE scope_rule (
    set_id INTEGER NOT NULL REFERENCES recognition_set(id),
    label TEXT NOT NULL,
    -- The area keys it covers, `;`-separated (city:…, consortium:…, national).
    covers TEXT NOT NULL,
    PRIMARY KEY (set_id, label)
);
INSERT INTO scope_rule SELECT set_id, label, covers FROM scope_rule_copy;
DROP TABLE qualification_record_copy;
DROP TABLE scope_rule_copy;

CREATE TABLE institution_attribute_new (
    id INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    attribute TEXT NOT NULL CHECK (attribute IN ('name','level','ownership','identifier_system','region','city','organization')),
    value TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT
);
INSERT INTO institution_attribute_new SELECT id, institution_id, attribute, value, valid_from, valid_to
  FROM institution_attribute;
DROP TABLE institution_attribute;
ALTER TABLE institution_attribute_new RENAME TO institution_attribute;
CREATE INDEX institution_attribute_lookup ON institution_attribute(institution_id, attribute, valid_from);

ALTER TABLE recognition_decision ADD COLUMN policy_set INTEGER REFERENCES recognition_set(id);
-- 1: a recognition, or a re-examination whose reason counts as a non-recognition.
ALTER TABLE recognition_decision ADD COLUMN counted INTEGER NOT NULL DEFAULT 1;
UPDATE recognition_decision SET counted = 0 WHERE decision = 're_examine' AND reason IN ('98', '99');
CREATE INDEX recognition_decision_visit ON recognition_decision(institution_id, visit_number)
    WHERE visit_number IS NOT NULL;

-- A unit: one receiving institution's visit (or the decision itself when no visit was named) ×
-- catalog item (the ordered item, else the result's); its current decision is the latest
-- non-superseded decision on a result the engine judged recognizable.
CREATE TABLE recognition_unit (
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    visit TEXT NOT NULL,
    item TEXT NOT NULL,
    decision_id INTEGER NOT NULL REFERENCES recognition_decision(id),
    decided_on TEXT NOT NULL,
    month TEXT NOT NULL,
    department TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    counted INTEGER NOT NULL,
    -- The receiving institution's effective price of the item on the decision day (fen); NULL
    -- when none was in force. `priced` 0: not yet looked up (after a price import, say).
    price_fen INTEGER,
    priced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (institution_id, visit, item)
) WITHOUT ROWID;
CREATE INDEX recognition_unit_day ON recognition_unit(decided_on, institution_id, item, department,
    decision, reason, counted, price_fen, month);
CREATE INDEX recognition_unit_unpriced ON recognition_unit(priced) WHERE priced = 0;

-- Units rolled up by day and by month along each grouping the statistics offer (ARCHITECTURE.md:
-- derived data, written only by these triggers): `item` region-wide (institution_id 0);
-- `institution`; `department` and `institution_item` within an institution. One row holds a
-- group's counts for one period, re-examinations by reason included, so a year by department
-- is some twenty thousand rows. A query reads whole months, and days only at the ends of its
-- range.
CREATE TABLE recognition_rollup (
    dim TEXT NOT NULL CHECK (dim IN ('item', 'institution', 'department', 'institution_item')),
    grain TEXT NOT NULL CHECK (grain IN ('day', 'month')),
    -- YYYY-MM-DD or YYYY-MM.
    period TEXT NOT NULL,
    institution_id INTEGER NOT NULL,
    -- The item code, the department, or ''.
    key TEXT NOT NULL,
    units INTEGER NOT NULL DEFAULT 0,
    recognized INTEGER NOT NULL DEFAULT 0,
    reexamined INTEGER NOT NULL DEFAULT 0,
    not_counted INTEGER NOT NULL DEFAULT 0,
    savings_fen INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    -- Re-examinations by the platform's reasons, and by the region's own as JSON (code → count).
    r01 INTEGER NOT NULL DEFAULT 0,
    r02 INTEGER NOT NULL DEFAULT 0,
    r03 INTEGER NOT NULL DEFAULT 0,
    r04 INTEGER NOT NULL DEFAULT 0,
    r05 INTEGER NOT NULL DEFAULT 0,
    r06 INTEGER NOT NULL DEFAULT 0,
    r98 INTEGER NOT NULL DEFAULT 0,
    r99 INTEGER NOT NULL DEFAULT 0,
    regional TEXT NOT NULL DEFAULT '{}',
    -- In the order the statistics group by, so whole months are summed as they are read,
    -- without sorting; the days at the ends of a range are found by the index below.
    PRIMARY KEY (dim, grain, institution_id, key, period)
) WITHOUT ROWID;
CREATE INDEX recognition_rollup_day ON recognition_rollup(dim, period, institution_id, key, units,
    recognized, reexamined, not_counted, savings_fen, unpriced, r01, r02, r03, r04, r05, r06, r98, r99,
    regional) WHERE grain = 'day';

CREATE TRIGGER recognition_unit_added AFTER INSERT ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized,
        reexamined, not_counted, savings_fen, unpriced, r01, r02, r03, r04, r05, r06, r98, r99, regional)
    SELECT v.*, 1, (NEW.decision = 'recognize'),
        (NEW.decision <> 'recognize' AND NEW.counted = 1),
        (NEW.decision <> 'recognize' AND NEW.counted = 0),
        CASE WHEN NEW.decision = 'recognize' THEN COALESCE(NEW.price_fen, 0) ELSE 0 END,
        (NEW.decision = 'recognize' AND NEW.price_fen IS NULL),
        (NEW.reason = '01'), (NEW.reason = '02'), (NEW.reason = '03'), (NEW.reason = '04'), (NEW.reason = '05'), (NEW.reason = '06'), (NEW.reason = '98'), (NEW.reason = '99'),
        CASE WHEN NEW.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN '{}'
            ELSE json_object(NEW.reason, 1) END
      FROM (SELECT 'item', 'day', NEW.decided_on, 0, NEW.item
              UNION ALL SELECT 'item', 'month', NEW.month, 0, NEW.item
              UNION ALL SELECT 'institution', 'day', NEW.decided_on, NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'month', NEW.month, NEW.institution_id, ''
              UNION ALL SELECT 'department', 'day', NEW.decided_on, NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'month', NEW.month, NEW.institution_id, NEW.department
              UNION ALL SELECT 'institution_item', 'day', NEW.decided_on, NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'month', NEW.month, NEW.institution_id, NEW.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        r01 = r01 + excluded.r01,
        r02 = r02 + excluded.r02,
        r03 = r03 + excluded.r03,
        r04 = r04 + excluded.r04,
        r05 = r05 + excluded.r05,
        r06 = r06 + excluded.r06,
        r98 = r98 + excluded.r98,
        r99 = r99 + excluded.r99,
        regional = CASE WHEN NEW.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN regional
            WHEN COALESCE(json_extract(regional, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(regional, '$."' || NEW.reason || '"')
            ELSE json_set(regional, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(regional, '$."' || NEW.reason || '"'), 0) + (1)) END;
END;

CREATE TRIGGER recognition_unit_removed AFTER DELETE ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized,
        reexamined, not_counted, savings_fen, unpriced, r01, r02, r03, r04, r05, r06, r98, r99, regional)
    SELECT v.*, -1, -(OLD.decision = 'recognize'),
        -(OLD.decision <> 'recognize' AND OLD.counted = 1),
        -(OLD.decision <> 'recognize' AND OLD.counted = 0),
        -CASE WHEN OLD.decision = 'recognize' THEN COALESCE(OLD.price_fen, 0) ELSE 0 END,
        -(OLD.decision = 'recognize' AND OLD.price_fen IS NULL),
        -(OLD.reason = '01'), -(OLD.reason = '02'), -(OLD.reason = '03'), -(OLD.reason = '04'), -(OLD.reason = '05'), -(OLD.reason = '06'), -(OLD.reason = '98'), -(OLD.reason = '99'),
        CASE WHEN OLD.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN '{}'
            ELSE json_object(OLD.reason, -1) END
      FROM (SELECT 'item', 'day', OLD.decided_on, 0, OLD.item
              UNION ALL SELECT 'item', 'month', OLD.month, 0, OLD.item
              UNION ALL SELECT 'institution', 'day', OLD.decided_on, OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'month', OLD.month, OLD.institution_id, ''
              UNION ALL SELECT 'department', 'day', OLD.decided_on, OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'month', OLD.month, OLD.institution_id, OLD.department
              UNION ALL SELECT 'institution_item', 'day', OLD.decided_on, OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'month', OLD.month, OLD.institution_id, OLD.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        r01 = r01 + excluded.r01,
        r02 = r02 + excluded.r02,
        r03 = r03 + excluded.r03,
        r04 = r04 + excluded.r04,
        r05 = r05 + excluded.r05,
        r06 = r06 + excluded.r06,
        r98 = r98 + excluded.r98,
        r99 = r99 + excluded.r99,
        regional = CASE WHEN OLD.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN regional
            WHEN COALESCE(json_extract(regional, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(regional, '$."' || OLD.reason || '"')
            ELSE json_set(regional, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(regional, '$."' || OLD.reason || '"'), 0) + (-1)) END;
END;

CREATE TRIGGER recognition_unit_changed AFTER UPDATE ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized,
        reexamined, not_counted, savings_fen, unpriced, r01, r02, r03, r04, r05, r06, r98, r99, regional)
    SELECT v.*, -1, -(OLD.decision = 'recognize'),
        -(OLD.decision <> 'recognize' AND OLD.counted = 1),
        -(OLD.decision <> 'recognize' AND OLD.counted = 0),
        -CASE WHEN OLD.decision = 'recognize' THEN COALESCE(OLD.price_fen, 0) ELSE 0 END,
        -(OLD.decision = 'recognize' AND OLD.price_fen IS NULL),
        -(OLD.reason = '01'), -(OLD.reason = '02'), -(OLD.reason = '03'), -(OLD.reason = '04'), -(OLD.reason = '05'), -(OLD.reason = '06'), -(OLD.reason = '98'), -(OLD.reason = '99'),
        CASE WHEN OLD.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN '{}'
            ELSE json_object(OLD.reason, -1) END
      FROM (SELECT 'item', 'day', OLD.decided_on, 0, OLD.item
              UNION ALL SELECT 'item', 'month', OLD.month, 0, OLD.item
              UNION ALL SELECT 'institution', 'day', OLD.decided_on, OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'month', OLD.month, OLD.institution_id, ''
              UNION ALL SELECT 'department', 'day', OLD.decided_on, OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'month', OLD.month, OLD.institution_id, OLD.department
              UNION ALL SELECT 'institution_item', 'day', OLD.decided_on, OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'month', OLD.month, OLD.institution_id, OLD.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        r01 = r01 + excluded.r01,
        r02 = r02 + excluded.r02,
        r03 = r03 + excluded.r03,
        r04 = r04 + excluded.r04,
        r05 = r05 + excluded.r05,
        r06 = r06 + excluded.r06,
        r98 = r98 + excluded.r98,
        r99 = r99 + excluded.r99,
        regional = CASE WHEN OLD.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN regional
            WHEN COALESCE(json_extract(regional, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(regional, '$."' || OLD.reason || '"')
            ELSE json_set(regional, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(regional, '$."' || OLD.reason || '"'), 0) + (-1)) END;
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized,
        reexamined, not_counted, savings_fen, unpriced, r01, r02, r03, r04, r05, r06, r98, r99, regional)
    SELECT v.*, 1, (NEW.decision = 'recognize'),
        (NEW.decision <> 'recognize' AND NEW.counted = 1),
        (NEW.decision <> 'recognize' AND NEW.counted = 0),
        CASE WHEN NEW.decision = 'recognize' THEN COALESCE(NEW.price_fen, 0) ELSE 0 END,
        (NEW.decision = 'recognize' AND NEW.price_fen IS NULL),
        (NEW.reason = '01'), (NEW.reason = '02'), (NEW.reason = '03'), (NEW.reason = '04'), (NEW.reason = '05'), (NEW.reason = '06'), (NEW.reason = '98'), (NEW.reason = '99'),
        CASE WHEN NEW.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN '{}'
            ELSE json_object(NEW.reason, 1) END
      FROM (SELECT 'item', 'day', NEW.decided_on, 0, NEW.item
              UNION ALL SELECT 'item', 'month', NEW.month, 0, NEW.item
              UNION ALL SELECT 'institution', 'day', NEW.decided_on, NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'month', NEW.month, NEW.institution_id, ''
              UNION ALL SELECT 'department', 'day', NEW.decided_on, NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'month', NEW.month, NEW.institution_id, NEW.department
              UNION ALL SELECT 'institution_item', 'day', NEW.decided_on, NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'month', NEW.month, NEW.institution_id, NEW.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        r01 = r01 + excluded.r01,
        r02 = r02 + excluded.r02,
        r03 = r03 + excluded.r03,
        r04 = r04 + excluded.r04,
        r05 = r05 + excluded.r05,
        r06 = r06 + excluded.r06,
        r98 = r98 + excluded.r98,
        r99 = r99 + excluded.r99,
        regional = CASE WHEN NEW.reason IN ('', '01', '02', '03', '04', '05', '06', '98', '99') THEN regional
            WHEN COALESCE(json_extract(regional, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(regional, '$."' || NEW.reason || '"')
            ELSE json_set(regional, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(regional, '$."' || NEW.reason || '"'), 0) + (1)) END;
END;

-- The units of the decisions recorded before this migration, to be priced on first use.
INSERT INTO recognition_unit (institution_id, visit, item, decision_id, decided_on, month,
    department, decision, reason, counted, price_fen, priced)
SELECT institution_id, visit, item_key, id, decided_on, substr(decided_on, 1, 7),
       COALESCE(department, ''), decision, COALESCE(reason, ''), counted, NULL, 0
  FROM (SELECT d.*, COALESCE(d.visit_number, 'decision:' || d.id) AS visit,
               COALESCE(d.ordered_item, d.item) AS item_key,
               ROW_NUMBER() OVER (PARTITION BY d.institution_id,
                                    COALESCE(d.visit_number, 'decision:' || d.id),
                                    COALESCE(d.ordered_item, d.item)
                                  ORDER BY d.decided_at DESC, d.id DESC) AS rn
          FROM recognition_decision d
         WHERE d.superseded_by IS NULL AND d.engine_verdict = 'recognizable'
           AND COALESCE(d.ordered_item, d.item) IS NOT NULL) AS latest
 WHERE rn = 1;
