-- Every decision counted somewhere, reminders as events, and the region's choice of rate
-- (issue #17; docs/recognition.md has the definitions).
--
-- 1. Reminders shown are recorded: one `recognition_reminder` per answer, one
--    `recognition_reminder_result` per outside result it listed, with the engine's verdict then;
--    `opened_at` when a person of the receiving institution then opened that study.
-- 2. A statistics unit is one receiving institution's visit × catalog item, as before, but its
--    state is the latest decision on *any* result of that item at that visit (the engine's
--    verdict then says whether it was eligible), else — when a reminder showed the item and no
--    decision followed — "none": opened or ignored. Decisions on results outside the catalog are
--    kept under item '' (counted apart, never in a rate).
-- 3. The roll-up counts what both rate definitions need, and re-examinations by reason split by
--    whether the result was eligible, for every code (platform and regional alike, as JSON).
CREATE TABLE recognition_reminder (
    id INTEGER PRIMARY KEY,
    shown_at INTEGER NOT NULL,
    -- The day in the region's zone.
    shown_on TEXT NOT NULL,
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    department TEXT,
    user_id INTEGER REFERENCES app_user(id),
    actor TEXT NOT NULL,
    person_id INTEGER NOT NULL REFERENCES person(id),
    -- The visit (the encounter's number, else 'reminder:<id>').
    visit TEXT NOT NULL,
    moment TEXT NOT NULL CHECK (moment IN ('encounter', 'order')),
    ordered_item TEXT
);
CREATE INDEX recognition_reminder_visit ON recognition_reminder(institution_id, visit);
CREATE TABLE recognition_reminder_result (
    reminder_id INTEGER NOT NULL REFERENCES recognition_reminder(id),
    result_kind TEXT NOT NULL,
    result_ref TEXT NOT NULL,
    item TEXT,
    engine_verdict TEXT NOT NULL,
    opened_at INTEGER,
    PRIMARY KEY (reminder_id, result_kind, result_ref)
) WITHOUT ROWID;
CREATE INDEX recognition_reminder_result_ref ON recognition_reminder_result(result_ref)
    WHERE opened_at IS NULL;

DROP TRIGGER recognition_unit_added;
DROP TRIGGER recognition_unit_removed;
DROP TRIGGER recognition_unit_changed;
DROP TABLE recognition_rollup;
DROP TABLE recognition_unit;

CREATE TABLE recognition_unit (
    institution_id INTEGER NOT NULL REFERENCES institution(id),
    visit TEXT NOT NULL,
    -- The ordered item, else the result's; '' for a result outside the catalog.
    item TEXT NOT NULL,
    -- The current decision, or NULL for a unit known only from a reminder.
    decision_id INTEGER REFERENCES recognition_decision(id),
    reminder_id INTEGER REFERENCES recognition_reminder(id),
    -- The decision's day (or the reminder's).
    decided_on TEXT NOT NULL,
    month TEXT NOT NULL,
    department TEXT NOT NULL,
    -- recognize, re_examine, or none (a reminder not acted on by a decision).
    decision TEXT NOT NULL CHECK (decision IN ('recognize', 're_examine', 'none')),
    reason TEXT NOT NULL,
    counted INTEGER NOT NULL,
    -- The result met every condition (the engine said recognizable) when decided or shown.
    eligible INTEGER NOT NULL,
    -- A reminder at this visit showed the item (before the decision, for a decided unit).
    shown INTEGER NOT NULL,
    -- Not decided, but a person of the institution opened the study after the reminder.
    opened INTEGER NOT NULL,
    price_fen INTEGER,
    priced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (institution_id, visit, item)
) WITHOUT ROWID;
CREATE INDEX recognition_unit_unpriced ON recognition_unit(priced) WHERE priced = 0;

-- Units rolled up by day and by month along each grouping (derived data, written only by the
-- triggers below). See migration 0025 for the reading: whole months, and days at the ends.
CREATE TABLE recognition_rollup (
    dim TEXT NOT NULL CHECK (dim IN ('item', 'institution', 'department', 'institution_item')),
    grain TEXT NOT NULL CHECK (grain IN ('day', 'month')),
    period TEXT NOT NULL,
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
    -- In the order the statistics group by, so whole months are summed as they are read.
    PRIMARY KEY (dim, grain, institution_id, key, period)
) WITHOUT ROWID;
CREATE INDEX recognition_rollup_day ON recognition_rollup(dim, period, institution_id, key)
    WHERE grain = 'day';

CREATE TRIGGER recognition_unit_added AFTER INSERT ON recognition_unit BEGIN
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
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
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
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
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
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
    INSERT INTO recognition_rollup (dim, grain, period, institution_id, key, units, recognized, reexamined, not_counted, opened, ignored, eligible, eligible_recognized, eligible_not_counted, shown, shown_decided, uncatalogued, uncatalogued_recognized, savings_fen, unpriced,
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
