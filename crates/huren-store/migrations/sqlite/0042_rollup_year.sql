-- Recognition statistics over whole years (issue #20, docs/benchmarks.md): a region's year by
-- department is 20,000 groups read from 233,000 month rows, and SQLite's sums over them took
-- 140 ms of a dashboard's 200. The roll-up gains a year grain (period YYYY), kept by the
-- same triggers as the month rows: a span of whole calendar years is read from it, twelve
-- times fewer rows. The table is rebuilt for the grain's CHECK; year rows are made from the
-- month rows, their reasons' maps added up.
DROP TRIGGER recognition_unit_added;
DROP TRIGGER recognition_unit_removed;
DROP TRIGGER recognition_unit_changed;
ALTER TABLE recognition_rollup RENAME TO recognition_rollup_0033;

CREATE TABLE recognition_rollup (
    dim TEXT NOT NULL CHECK (dim IN ('item', 'institution', 'department', 'institution_item')),
    grain TEXT NOT NULL CHECK (grain IN ('day', 'month', 'year')),
    period TEXT NOT NULL,
    -- The day for day rows, '' for month and year rows: the first column of the key after the grain, so
    -- day rows are stored in day order (a span of days is one range read) and month rows in
    -- group order (a span of months is summed as it is read, without a sort).
    on_day TEXT NOT NULL,
    institution_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    units INTEGER NOT NULL DEFAULT 0,
    recognized INTEGER NOT NULL DEFAULT 0,
    reexamined INTEGER NOT NULL DEFAULT 0,
    not_counted INTEGER NOT NULL DEFAULT 0,
    opened INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    eligible INTEGER NOT NULL DEFAULT 0,
    eligible_recognized INTEGER NOT NULL DEFAULT 0,
    eligible_not_counted INTEGER NOT NULL DEFAULT 0,
    shown INTEGER NOT NULL DEFAULT 0,
    shown_decided INTEGER NOT NULL DEFAULT 0,
    uncatalogued INTEGER NOT NULL DEFAULT 0,
    uncatalogued_recognized INTEGER NOT NULL DEFAULT 0,
    savings_fen INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    -- Re-examinations by reason code, of eligible results and of the others: {"01": n, …}.
    reasons_eligible TEXT NOT NULL DEFAULT '{}',
    reasons_other TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (dim, grain, on_day, institution_id, key, period)
) WITHOUT ROWID;

INSERT INTO recognition_rollup SELECT * FROM recognition_rollup_0033;
DROP TABLE recognition_rollup_0033;

INSERT INTO recognition_rollup (dim, grain, period, on_day, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
        reasons_eligible, reasons_other)
SELECT r.dim, 'year', substr(r.period, 1, 4), '', r.institution_id, r.key, SUM(units), SUM(recognized), SUM(reexamined), SUM(not_counted), SUM(opened), SUM(ignored), SUM(eligible), SUM(eligible_recognized), SUM(eligible_not_counted), SUM(shown), SUM(shown_decided), SUM(uncatalogued), SUM(uncatalogued_recognized), SUM(savings_fen), SUM(unpriced),
       COALESCE((SELECT json_group_object(k, n) FROM (SELECT j.key AS k, SUM(j.value) AS n
              FROM recognition_rollup m, json_each(m.reasons_eligible) j
             WHERE m.dim = r.dim AND m.grain = 'month' AND m.on_day = '' AND m.institution_id = r.institution_id
               AND m.key = r.key AND substr(m.period, 1, 4) = substr(r.period, 1, 4)
             GROUP BY j.key HAVING SUM(j.value) <> 0)), '{}'),
       COALESCE((SELECT json_group_object(k, n) FROM (SELECT j.key AS k, SUM(j.value) AS n
              FROM recognition_rollup m, json_each(m.reasons_other) j
             WHERE m.dim = r.dim AND m.grain = 'month' AND m.on_day = '' AND m.institution_id = r.institution_id
               AND m.key = r.key AND substr(m.period, 1, 4) = substr(r.period, 1, 4)
             GROUP BY j.key HAVING SUM(j.value) <> 0)), '{}')
  FROM recognition_rollup r
 WHERE r.grain = 'month'
 GROUP BY r.dim, r.institution_id, r.key, substr(r.period, 1, 4);

CREATE TRIGGER recognition_unit_added AFTER INSERT ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, on_day, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
        reasons_eligible, reasons_other)
    SELECT v.*, (NEW.item <> ''),
        ((NEW.item <> '') AND NEW.decision = 'recognize'),
        ((NEW.item <> '') AND NEW.decision = 're_examine' AND NEW.counted = 1),
        ((NEW.item <> '') AND NEW.decision = 're_examine' AND NEW.counted = 0),
        ((NEW.item <> '') AND NEW.decision = 'none' AND NEW.opened = 1),
        ((NEW.item <> '') AND NEW.decision = 'none' AND NEW.opened = 0),
        ((NEW.item <> '') AND NEW.eligible = 1),
        ((NEW.item <> '') AND NEW.eligible = 1 AND NEW.decision = 'recognize'),
        ((NEW.item <> '') AND NEW.eligible = 1 AND NEW.decision = 're_examine' AND NEW.counted = 0),
        ((NEW.item <> '') AND NEW.shown = 1),
        ((NEW.item <> '') AND NEW.shown = 1 AND NEW.decision <> 'none'),
        (NEW.item = ''),
        (NEW.item = '' AND NEW.decision = 'recognize'),
        CASE WHEN (NEW.item <> '') AND NEW.decision = 'recognize' THEN COALESCE(NEW.price_fen, 0) ELSE 0 END,
        ((NEW.item <> '') AND NEW.decision = 'recognize' AND NEW.price_fen IS NULL),
        CASE WHEN NEW.decision = 're_examine' AND NEW.eligible = 1 THEN json_object(NEW.reason, 1) ELSE '{}' END,
        CASE WHEN NEW.decision = 're_examine' AND NEW.eligible = 0 THEN json_object(NEW.reason, 1) ELSE '{}' END
      FROM (SELECT 'item', 'day', NEW.decided_on, NEW.decided_on, 0, NEW.item
              UNION ALL SELECT 'item', 'month', NEW.month, '', 0, NEW.item
              UNION ALL SELECT 'item', 'year', substr(NEW.month, 1, 4), '', 0, NEW.item
              UNION ALL SELECT 'institution', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'month', NEW.month, '', NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, ''
              UNION ALL SELECT 'department', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'month', NEW.month, '', NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, NEW.department
              UNION ALL SELECT 'institution_item', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'month', NEW.month, '', NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, NEW.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        opened = opened + excluded.opened,
        ignored = ignored + excluded.ignored,
        eligible = eligible + excluded.eligible,
        eligible_recognized = eligible_recognized + excluded.eligible_recognized,
        eligible_not_counted = eligible_not_counted + excluded.eligible_not_counted,
        shown = shown + excluded.shown,
        shown_decided = shown_decided + excluded.shown_decided,
        uncatalogued = uncatalogued + excluded.uncatalogued,
        uncatalogued_recognized = uncatalogued_recognized + excluded.uncatalogued_recognized,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        reasons_eligible = CASE WHEN NOT (NEW.decision = 're_examine' AND NEW.eligible = 1) THEN reasons_eligible
            WHEN COALESCE(json_extract(reasons_eligible, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(reasons_eligible, '$."' || NEW.reason || '"')
            ELSE json_set(reasons_eligible, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(reasons_eligible, '$."' || NEW.reason || '"'), 0) + (1)) END,
        reasons_other = CASE WHEN NOT (NEW.decision = 're_examine' AND NEW.eligible = 0) THEN reasons_other
            WHEN COALESCE(json_extract(reasons_other, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(reasons_other, '$."' || NEW.reason || '"')
            ELSE json_set(reasons_other, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(reasons_other, '$."' || NEW.reason || '"'), 0) + (1)) END;
END;

CREATE TRIGGER recognition_unit_removed AFTER DELETE ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, on_day, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
        reasons_eligible, reasons_other)
    SELECT v.*, -(OLD.item <> ''),
        -((OLD.item <> '') AND OLD.decision = 'recognize'),
        -((OLD.item <> '') AND OLD.decision = 're_examine' AND OLD.counted = 1),
        -((OLD.item <> '') AND OLD.decision = 're_examine' AND OLD.counted = 0),
        -((OLD.item <> '') AND OLD.decision = 'none' AND OLD.opened = 1),
        -((OLD.item <> '') AND OLD.decision = 'none' AND OLD.opened = 0),
        -((OLD.item <> '') AND OLD.eligible = 1),
        -((OLD.item <> '') AND OLD.eligible = 1 AND OLD.decision = 'recognize'),
        -((OLD.item <> '') AND OLD.eligible = 1 AND OLD.decision = 're_examine' AND OLD.counted = 0),
        -((OLD.item <> '') AND OLD.shown = 1),
        -((OLD.item <> '') AND OLD.shown = 1 AND OLD.decision <> 'none'),
        -(OLD.item = ''),
        -(OLD.item = '' AND OLD.decision = 'recognize'),
        -CASE WHEN (OLD.item <> '') AND OLD.decision = 'recognize' THEN COALESCE(OLD.price_fen, 0) ELSE 0 END,
        -((OLD.item <> '') AND OLD.decision = 'recognize' AND OLD.price_fen IS NULL),
        CASE WHEN OLD.decision = 're_examine' AND OLD.eligible = 1 THEN json_object(OLD.reason, -1) ELSE '{}' END,
        CASE WHEN OLD.decision = 're_examine' AND OLD.eligible = 0 THEN json_object(OLD.reason, -1) ELSE '{}' END
      FROM (SELECT 'item', 'day', OLD.decided_on, OLD.decided_on, 0, OLD.item
              UNION ALL SELECT 'item', 'month', OLD.month, '', 0, OLD.item
              UNION ALL SELECT 'item', 'year', substr(OLD.month, 1, 4), '', 0, OLD.item
              UNION ALL SELECT 'institution', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'month', OLD.month, '', OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, ''
              UNION ALL SELECT 'department', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'month', OLD.month, '', OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, OLD.department
              UNION ALL SELECT 'institution_item', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'month', OLD.month, '', OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, OLD.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        opened = opened + excluded.opened,
        ignored = ignored + excluded.ignored,
        eligible = eligible + excluded.eligible,
        eligible_recognized = eligible_recognized + excluded.eligible_recognized,
        eligible_not_counted = eligible_not_counted + excluded.eligible_not_counted,
        shown = shown + excluded.shown,
        shown_decided = shown_decided + excluded.shown_decided,
        uncatalogued = uncatalogued + excluded.uncatalogued,
        uncatalogued_recognized = uncatalogued_recognized + excluded.uncatalogued_recognized,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        reasons_eligible = CASE WHEN NOT (OLD.decision = 're_examine' AND OLD.eligible = 1) THEN reasons_eligible
            WHEN COALESCE(json_extract(reasons_eligible, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(reasons_eligible, '$."' || OLD.reason || '"')
            ELSE json_set(reasons_eligible, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(reasons_eligible, '$."' || OLD.reason || '"'), 0) + (-1)) END,
        reasons_other = CASE WHEN NOT (OLD.decision = 're_examine' AND OLD.eligible = 0) THEN reasons_other
            WHEN COALESCE(json_extract(reasons_other, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(reasons_other, '$."' || OLD.reason || '"')
            ELSE json_set(reasons_other, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(reasons_other, '$."' || OLD.reason || '"'), 0) + (-1)) END;
END;

CREATE TRIGGER recognition_unit_changed AFTER UPDATE ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, on_day, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
        reasons_eligible, reasons_other)
    SELECT v.*, -(OLD.item <> ''),
        -((OLD.item <> '') AND OLD.decision = 'recognize'),
        -((OLD.item <> '') AND OLD.decision = 're_examine' AND OLD.counted = 1),
        -((OLD.item <> '') AND OLD.decision = 're_examine' AND OLD.counted = 0),
        -((OLD.item <> '') AND OLD.decision = 'none' AND OLD.opened = 1),
        -((OLD.item <> '') AND OLD.decision = 'none' AND OLD.opened = 0),
        -((OLD.item <> '') AND OLD.eligible = 1),
        -((OLD.item <> '') AND OLD.eligible = 1 AND OLD.decision = 'recognize'),
        -((OLD.item <> '') AND OLD.eligible = 1 AND OLD.decision = 're_examine' AND OLD.counted = 0),
        -((OLD.item <> '') AND OLD.shown = 1),
        -((OLD.item <> '') AND OLD.shown = 1 AND OLD.decision <> 'none'),
        -(OLD.item = ''),
        -(OLD.item = '' AND OLD.decision = 'recognize'),
        -CASE WHEN (OLD.item <> '') AND OLD.decision = 'recognize' THEN COALESCE(OLD.price_fen, 0) ELSE 0 END,
        -((OLD.item <> '') AND OLD.decision = 'recognize' AND OLD.price_fen IS NULL),
        CASE WHEN OLD.decision = 're_examine' AND OLD.eligible = 1 THEN json_object(OLD.reason, -1) ELSE '{}' END,
        CASE WHEN OLD.decision = 're_examine' AND OLD.eligible = 0 THEN json_object(OLD.reason, -1) ELSE '{}' END
      FROM (SELECT 'item', 'day', OLD.decided_on, OLD.decided_on, 0, OLD.item
              UNION ALL SELECT 'item', 'month', OLD.month, '', 0, OLD.item
              UNION ALL SELECT 'item', 'year', substr(OLD.month, 1, 4), '', 0, OLD.item
              UNION ALL SELECT 'institution', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'month', OLD.month, '', OLD.institution_id, ''
              UNION ALL SELECT 'institution', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, ''
              UNION ALL SELECT 'department', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'month', OLD.month, '', OLD.institution_id, OLD.department
              UNION ALL SELECT 'department', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, OLD.department
              UNION ALL SELECT 'institution_item', 'day', OLD.decided_on, OLD.decided_on, OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'month', OLD.month, '', OLD.institution_id, OLD.item
              UNION ALL SELECT 'institution_item', 'year', substr(OLD.month, 1, 4), '', OLD.institution_id, OLD.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        opened = opened + excluded.opened,
        ignored = ignored + excluded.ignored,
        eligible = eligible + excluded.eligible,
        eligible_recognized = eligible_recognized + excluded.eligible_recognized,
        eligible_not_counted = eligible_not_counted + excluded.eligible_not_counted,
        shown = shown + excluded.shown,
        shown_decided = shown_decided + excluded.shown_decided,
        uncatalogued = uncatalogued + excluded.uncatalogued,
        uncatalogued_recognized = uncatalogued_recognized + excluded.uncatalogued_recognized,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        reasons_eligible = CASE WHEN NOT (OLD.decision = 're_examine' AND OLD.eligible = 1) THEN reasons_eligible
            WHEN COALESCE(json_extract(reasons_eligible, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(reasons_eligible, '$."' || OLD.reason || '"')
            ELSE json_set(reasons_eligible, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(reasons_eligible, '$."' || OLD.reason || '"'), 0) + (-1)) END,
        reasons_other = CASE WHEN NOT (OLD.decision = 're_examine' AND OLD.eligible = 0) THEN reasons_other
            WHEN COALESCE(json_extract(reasons_other, '$."' || OLD.reason || '"'), 0) + (-1) = 0
            THEN json_remove(reasons_other, '$."' || OLD.reason || '"')
            ELSE json_set(reasons_other, '$."' || OLD.reason || '"',
                          COALESCE(json_extract(reasons_other, '$."' || OLD.reason || '"'), 0) + (-1)) END;
    INSERT INTO recognition_rollup (dim, grain, period, on_day, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
        reasons_eligible, reasons_other)
    SELECT v.*, (NEW.item <> ''),
        ((NEW.item <> '') AND NEW.decision = 'recognize'),
        ((NEW.item <> '') AND NEW.decision = 're_examine' AND NEW.counted = 1),
        ((NEW.item <> '') AND NEW.decision = 're_examine' AND NEW.counted = 0),
        ((NEW.item <> '') AND NEW.decision = 'none' AND NEW.opened = 1),
        ((NEW.item <> '') AND NEW.decision = 'none' AND NEW.opened = 0),
        ((NEW.item <> '') AND NEW.eligible = 1),
        ((NEW.item <> '') AND NEW.eligible = 1 AND NEW.decision = 'recognize'),
        ((NEW.item <> '') AND NEW.eligible = 1 AND NEW.decision = 're_examine' AND NEW.counted = 0),
        ((NEW.item <> '') AND NEW.shown = 1),
        ((NEW.item <> '') AND NEW.shown = 1 AND NEW.decision <> 'none'),
        (NEW.item = ''),
        (NEW.item = '' AND NEW.decision = 'recognize'),
        CASE WHEN (NEW.item <> '') AND NEW.decision = 'recognize' THEN COALESCE(NEW.price_fen, 0) ELSE 0 END,
        ((NEW.item <> '') AND NEW.decision = 'recognize' AND NEW.price_fen IS NULL),
        CASE WHEN NEW.decision = 're_examine' AND NEW.eligible = 1 THEN json_object(NEW.reason, 1) ELSE '{}' END,
        CASE WHEN NEW.decision = 're_examine' AND NEW.eligible = 0 THEN json_object(NEW.reason, 1) ELSE '{}' END
      FROM (SELECT 'item', 'day', NEW.decided_on, NEW.decided_on, 0, NEW.item
              UNION ALL SELECT 'item', 'month', NEW.month, '', 0, NEW.item
              UNION ALL SELECT 'item', 'year', substr(NEW.month, 1, 4), '', 0, NEW.item
              UNION ALL SELECT 'institution', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'month', NEW.month, '', NEW.institution_id, ''
              UNION ALL SELECT 'institution', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, ''
              UNION ALL SELECT 'department', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'month', NEW.month, '', NEW.institution_id, NEW.department
              UNION ALL SELECT 'department', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, NEW.department
              UNION ALL SELECT 'institution_item', 'day', NEW.decided_on, NEW.decided_on, NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'month', NEW.month, '', NEW.institution_id, NEW.item
              UNION ALL SELECT 'institution_item', 'year', substr(NEW.month, 1, 4), '', NEW.institution_id, NEW.item) AS v
     WHERE true
    ON CONFLICT DO UPDATE SET units = units + excluded.units,
        recognized = recognized + excluded.recognized,
        reexamined = reexamined + excluded.reexamined,
        not_counted = not_counted + excluded.not_counted,
        opened = opened + excluded.opened,
        ignored = ignored + excluded.ignored,
        eligible = eligible + excluded.eligible,
        eligible_recognized = eligible_recognized + excluded.eligible_recognized,
        eligible_not_counted = eligible_not_counted + excluded.eligible_not_counted,
        shown = shown + excluded.shown,
        shown_decided = shown_decided + excluded.shown_decided,
        uncatalogued = uncatalogued + excluded.uncatalogued,
        uncatalogued_recognized = uncatalogued_recognized + excluded.uncatalogued_recognized,
        savings_fen = savings_fen + excluded.savings_fen,
        unpriced = unpriced + excluded.unpriced,
        reasons_eligible = CASE WHEN NOT (NEW.decision = 're_examine' AND NEW.eligible = 1) THEN reasons_eligible
            WHEN COALESCE(json_extract(reasons_eligible, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(reasons_eligible, '$."' || NEW.reason || '"')
            ELSE json_set(reasons_eligible, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(reasons_eligible, '$."' || NEW.reason || '"'), 0) + (1)) END,
        reasons_other = CASE WHEN NOT (NEW.decision = 're_examine' AND NEW.eligible = 0) THEN reasons_other
            WHEN COALESCE(json_extract(reasons_other, '$."' || NEW.reason || '"'), 0) + (1) = 0
            THEN json_remove(reasons_other, '$."' || NEW.reason || '"')
            ELSE json_set(reasons_other, '$."' || NEW.reason || '"',
                          COALESCE(json_extract(reasons_other, '$."' || NEW.reason || '"'), 0) + (1)) END;
END;
