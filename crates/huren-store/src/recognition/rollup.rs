//! The recognition statistics roll-up in SQL: units rebuilt and priced, and statistics read
//! over any day range as whole years, months and at most half a month of days at each end.

use crate::sql::iso;
use sqlx::SqlitePool;

/// The units by definition (docs/recognition.md, "Units"; `refresh_unit` keeps them one by
/// one), for a rebuild: decided units from the latest non-superseded decision per (institution,
/// visit, item), then units only reminders know.
pub(crate) const CURRENT_UNITS: &str = "
    WITH listed AS (
        SELECT r.institution_id, r.visit, COALESCE(r.ordered_item, x.item, '') AS item,
               MIN(r.shown_at) AS first_at, MAX(r.id) AS last_reminder, MAX(r.shown_on) AS last_on,
               MAX(x.engine_verdict = 'recognizable') AS eligible,
               MAX(x.opened_at IS NOT NULL) AS opened
          FROM recognition_reminder r JOIN recognition_reminder_result x ON x.reminder_id = r.id
         WHERE COALESCE(r.ordered_item, x.item, '') <> ''
         GROUP BY 1, 2, 3),
    latest AS (
        SELECT d.*, COALESCE(d.visit_number, 'decision:' || d.id) AS visit,
               COALESCE(d.ordered_item, d.item, '') AS item_key,
               ROW_NUMBER() OVER (PARTITION BY d.institution_id,
                                    COALESCE(d.visit_number, 'decision:' || d.id),
                                    COALESCE(d.ordered_item, d.item, '')
                                  ORDER BY d.decided_at DESC, d.id DESC) AS rn
          FROM recognition_decision d
         WHERE d.superseded_by IS NULL)
    SELECT l.institution_id, l.visit, l.item_key AS item, l.id AS decision_id, NULL AS reminder_id,
           l.decided_on, substr(l.decided_on, 1, 7) AS month, COALESCE(l.department, '') AS department,
           l.decision, COALESCE(l.reason, '') AS reason, l.counted,
           l.engine_verdict = 'recognizable' AS eligible,
           COALESCE(s.first_at <= l.decided_at, 0) AS shown, 0 AS opened
      FROM latest l
      LEFT JOIN listed s ON s.institution_id = l.institution_id AND s.visit = l.visit AND s.item = l.item_key
     WHERE l.rn = 1
    UNION ALL
    SELECT s.institution_id, s.visit, s.item, NULL, s.last_reminder, s.last_on, substr(s.last_on, 1, 7),
           COALESCE((SELECT department FROM recognition_reminder WHERE id = s.last_reminder), ''),
           'none', '', 1, s.eligible, 1, s.opened
      FROM listed s
     WHERE NOT EXISTS (SELECT 1 FROM latest l WHERE l.rn = 1 AND l.institution_id = s.institution_id
                          AND l.visit = s.visit AND l.item_key = s.item)";

/// What a rebuild has to price: (institution code, item, day) of every recognized unit.
pub async fn rebuild_price_keys(
    pool: &SqlitePool,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT i.code, u.item, u.decided_on FROM ({CURRENT_UNITS}) AS u
           JOIN institution i ON i.id = u.institution_id
          WHERE u.decision = 'recognize' AND u.item <> ''"
    )))
    .fetch_all(pool)
    .await
}

/// Rebuilds every statistics unit from the stored decisions and reminders, with the prices
/// given for (institution code, item, day); the roll-up follows through its triggers. For
/// restores and bulk loads. Returns the units.
pub async fn rebuild_units(
    pool: &SqlitePool,
    prices: &[(String, String, String, Option<i64>)],
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for sql in [
        "DELETE FROM recognition_unit",
        "DELETE FROM recognition_rollup",
        "CREATE TEMP TABLE IF NOT EXISTS unit_price (code TEXT, item TEXT, day TEXT,
             price_fen INTEGER, PRIMARY KEY (code, item, day))",
        "DELETE FROM unit_price",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    for (code, item, day, price) in prices {
        sqlx::query("INSERT OR REPLACE INTO unit_price VALUES (?, ?, ?, ?)")
            .bind(code)
            .bind(item)
            .bind(day)
            .bind(price)
            .execute(&mut *tx)
            .await?;
    }
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recognition_unit (institution_id, visit, item, decision_id, reminder_id,
             decided_on, month, department, decision, reason, counted, eligible, shown, opened,
             price_fen, priced)
         SELECT u.institution_id, u.visit, u.item, u.decision_id, u.reminder_id, u.decided_on,
                u.month, u.department, u.decision, u.reason, u.counted, u.eligible, u.shown,
                u.opened, CASE WHEN u.decision = 'recognize' THEN p.price_fen END,
                u.decision <> 'recognize' OR u.item = '' OR p.code IS NOT NULL
           FROM ({CURRENT_UNITS}) AS u
           JOIN institution i ON i.id = u.institution_id
           LEFT JOIN unit_price p ON p.code = i.code AND p.item = u.item AND p.day = u.decided_on"
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM unit_price")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// One piece of a statistics range: whole months or single days, added or taken away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) grain: &'static str,
    /// Inclusive, as stored: YYYY for years, YYYY-MM for months, YYYY-MM-DD for days.
    pub(crate) from: String,
    pub(crate) until: String,
    pub(crate) sign: i64,
}

/// `[from, until]` as roll-up pieces: months wholly inside are read by month. A month cut by
/// the range is read by day, unless the range covers more than half of it; then it is the month
/// less the days outside. No query reads more than about half a month of days at either end.
pub(crate) fn pieces(from: time::Date, until: time::Date) -> Vec<Piece> {
    let month = |d: time::Date| format!("{:04}-{:02}", d.year(), d.month() as u8);
    let days = |a: time::Date, b: time::Date, sign: i64| Piece {
        grain: "day",
        from: iso(a),
        until: iso(b),
        sign,
    };
    let mut months: Vec<Piece> = Vec::new();
    let mut out: Vec<Piece> = Vec::new();
    let mut first = from.replace_day(1).unwrap_or(from);
    while first <= until {
        let length = first.month().length(first.year());
        let last = first.replace_day(length).unwrap_or(first);
        let (a, b) = (from.max(first), until.min(last));
        let covered = (b - a).whole_days() + 1;
        if covered * 2 > i64::from(length) {
            // The month; months follow each other here, so it extends the previous run.
            let previous = month(first.previous_day().unwrap_or(first));
            match months.last_mut() {
                Some(p) if p.until == previous => p.until = month(first),
                _ => months.push(Piece {
                    grain: "month",
                    from: month(first),
                    until: month(first),
                    sign: 1,
                }),
            }
            if a > first {
                out.push(days(first, a.previous_day().unwrap_or(a), -1));
            }
            if b < last {
                out.push(days(b.next_day().unwrap_or(b), last, -1));
            }
        } else {
            out.push(days(a, b, 1));
        }
        first = match last.next_day() {
            Some(d) => d,
            None => break,
        };
    }
    months.extend(out);
    months
}

/// A run of whole months with its whole calendar years read from the year rows (migration
/// 0042): a year by department is 20,000 rows instead of 233,000.
pub(crate) fn with_years(p: Piece) -> Vec<Piece> {
    let ym = |s: &str| -> Option<(i32, u8)> {
        Some((s.get(..4)?.parse().ok()?, s.get(5..7)?.parse().ok()?))
    };
    let (Some((fy, fm)), Some((uy, um))) = (ym(&p.from), ym(&p.until)) else {
        return vec![p];
    };
    let first = if fm == 1 { fy } else { fy + 1 };
    let last = if um == 12 { uy } else { uy - 1 };
    if p.grain != "month" || p.sign != 1 || first > last {
        return vec![p];
    }
    let months = |from: String, until: String| Piece {
        grain: "month",
        from,
        until,
        sign: 1,
    };
    let mut out = Vec::new();
    if fm != 1 {
        out.push(months(p.from.clone(), format!("{fy:04}-12")));
    }
    out.push(Piece {
        grain: "year",
        from: format!("{first:04}"),
        until: format!("{last:04}"),
        sign: 1,
    });
    if um != 12 {
        out.push(months(format!("{uy:04}-01"), p.until.clone()));
    }
    out
}

/// The roll-up's counting columns, in [`huren_archive::model::StatsCell`]'s order.
pub(crate) const COUNTS: [&str; 15] = [
    "units",
    "recognized",
    "reexamined",
    "not_counted",
    "opened",
    "ignored",
    "eligible",
    "eligible_recognized",
    "eligible_not_counted",
    "shown",
    "shown_decided",
    "uncatalogued",
    "uncatalogued_recognized",
    "savings_fen",
    "unpriced",
];

/// Adds `sign ×` the counts of comma-joined reason maps (`{"01":2},{"01":1,"07":3}`, as the
/// roll-up stores them) into `into`, allocating only for codes not seen before.
pub(crate) fn add_reason_maps(
    joined: &str,
    sign: i64,
    into: &mut std::collections::BTreeMap<String, i64>,
) -> Result<(), serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// A code, borrowed from the text unless it had escapes.
    struct Code<'de>(std::borrow::Cow<'de, str>);
    impl<'de> serde::Deserialize<'de> for Code<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Code<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a reason code")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Code<'de>, E> {
                    Ok(Code(std::borrow::Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Code<'de>, E> {
                    Ok(Code(std::borrow::Cow::Owned(v.to_owned())))
                }
            }
            d.deserialize_str(V)
        }
    }
    struct Maps<'m> {
        sign: i64,
        into: &'m mut std::collections::BTreeMap<String, i64>,
    }
    impl<'de> Visitor<'de> for Maps<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("reason maps")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Maps {
                    sign: self.sign,
                    into: &mut *self.into,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some((code, n)) = map.next_entry::<Code<'de>, i64>()? {
                match self.into.get_mut(code.0.as_ref()) {
                    Some(total) => *total += self.sign * n,
                    None => {
                        self.into.insert(code.0.into_owned(), self.sign * n);
                    }
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Maps<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let text = format!("[{joined}]");
    let mut de = serde_json::Deserializer::from_str(&text);
    Maps { sign, into }.deserialize(&mut de)?;
    de.end()
}

/// Statistics for decision days `[from, until]`, optionally of one receiving institution, one
/// cell per group. Each piece of the range is summed by SQLite in the roll-up's own order; the
/// pieces are added up here.
pub async fn statistics(
    pool: &SqlitePool,
    from: time::Date,
    until: time::Date,
    institution: Option<i64>,
    by: huren_archive::recognition::StatsBy,
) -> Result<Vec<huren_archive::model::StatsCell>, sqlx::Error> {
    use huren_archive::recognition::StatsBy;
    use std::collections::HashMap;
    let dim = match (by, institution) {
        (StatsBy::Item, None) => "item",
        (StatsBy::Item, Some(_)) => "institution_item",
        (StatsBy::Institution | StatsBy::Month, _) => "institution",
        (StatsBy::Department, _) => "department",
    };
    let only = if institution.is_some() {
        "AND institution_id = ?4"
    } else {
        "AND ?4 IS NULL"
    };
    // By month, each month is its own group; otherwise a group spans the months read.
    let (by_month, by_day) = if by == StatsBy::Month {
        (", period", ", substr(period, 1, 7)")
    } else {
        ("", "")
    };
    let sums: String = COUNTS
        .iter()
        .map(|c| format!(", SUM({c}) AS {c}"))
        .collect();
    let counts = COUNTS.join(", ");
    let codes: HashMap<i64, String> = sqlx::query_as("SELECT id, code FROM institution")
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
    let mut cells: HashMap<String, huren_archive::model::StatsCell> = HashMap::new();
    // Each piece is its own read, on its own connection: a ragged span is three (the month
    // run and the days at either end), and the cores read them side by side.
    // By month, each month is its own group: no year rows then.
    let pieces: Vec<Piece> = pieces(from, until)
        .into_iter()
        .flat_map(|p| {
            if by == StatsBy::Month {
                vec![p]
            } else {
                with_years(p)
            }
        })
        .collect();
    // The region by department (20,000 groups for 1,000 institutions) is the largest read: its
    // month run is read in two halves of the institutions, side by side on two connections.
    let split = if institution.is_none() && matches!(dim, "department" | "institution_item") {
        let mut ids: Vec<i64> = codes.keys().copied().collect();
        ids.sort_unstable();
        ids.get(ids.len() / 2).copied()
    } else {
        None
    };
    let parts: Vec<(&Piece, i64, i64)> = pieces
        .iter()
        .flat_map(|p| match split {
            Some(mid) if p.grain == "month" => vec![(p, i64::MIN, mid), (p, mid, i64::MAX)],
            _ => vec![(p, i64::MIN, i64::MAX)],
        })
        .collect();
    let reads = parts.iter().map(|&(p, lo, hi)| {
        // Months: `on_day = ''`, read in group order (no sort). Days: one range of the key in
        // day order, sorted by group (migration 0033). The reasons come as the rows' maps
        // joined by commas, added up here without building each map (a year by department
        // reads some 20,000 of them).
        let (range, grouped) = if p.grain != "day" {
            ("on_day = '' AND period >= ?2 AND period <= ?3", by_month)
        } else {
            ("on_day >= ?2 AND on_day <= ?3", by_day)
        };
        // The month is a group's key only by month.
        let month = if by == StatsBy::Month {
            "substr(MIN(period), 1, 7)"
        } else {
            "NULL"
        };
        // One row holding every group as JSON: a region by department is 20,000 groups, and
        // handing each row from SQLite's thread to this one cost more than the sums.
        let sql = format!(
            "SELECT json_group_array(json_array(institution_id, key, month, json_array({counts}),
                                                reasons_eligible, reasons_other))
               FROM (SELECT institution_id, key, {month} AS month{sums},
                            group_concat(reasons_eligible) FILTER (WHERE reasons_eligible <> '{{}}')
                                AS reasons_eligible,
                            group_concat(reasons_other) FILTER (WHERE reasons_other <> '{{}}')
                                AS reasons_other
                       FROM recognition_rollup
                      WHERE dim = ?1 AND grain = '{}' AND {range} {only}
                        AND institution_id >= ?5 AND institution_id < ?6
                      GROUP BY institution_id, key{grouped})",
            p.grain
        );
        async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                .bind(dim)
                .bind(&p.from)
                .bind(&p.until)
                .bind(institution)
                .bind(lo)
                .bind(hi)
                .fetch_one(pool)
                .await
        }
    });
    let read = futures::future::try_join_all(reads).await?;
    /// One group: institution, key, its first month, the counts in `COUNTS` order, and the
    /// reasons' maps joined by commas.
    type Group = (
        i64,
        String,
        Option<String>,
        [i64; 15],
        Option<String>,
        Option<String>,
    );
    for ((p, _, _), json) in parts.iter().zip(read) {
        let groups: Vec<Group> =
            serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        for (inst, key, month, counts, eligible, other) in groups {
            let code = || codes.get(&inst).cloned().unwrap_or_default();
            let shown = match by {
                StatsBy::Item => key,
                StatsBy::Institution => code(),
                StatsBy::Department => format!("{}/{key}", code()),
                StatsBy::Month => month.unwrap_or_default(),
            };
            let c = cells
                .entry(shown.clone())
                .or_insert_with(|| huren_archive::model::StatsCell {
                    key: shown,
                    ..Default::default()
                });
            c.add_counts(&counts.map(|n| p.sign * n));
            for (joined, map) in [
                (eligible, &mut c.reasons_eligible),
                (other, &mut c.reasons_other),
            ] {
                if let Some(joined) = joined {
                    add_reason_maps(&joined, p.sign, map)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                }
            }
        }
    }
    Ok(cells
        .into_values()
        .map(|mut c| {
            c.reasons_eligible.retain(|_, n| *n != 0);
            c.reasons_other.retain(|_, n| *n != 0);
            c
        })
        .collect())
}

/// Units whose price is still to be looked up: (institution code, item, decision day).
pub async fn unpriced_units(
    pool: &SqlitePool,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT i.code, u.item, u.decided_on
           FROM recognition_unit u JOIN institution i ON i.id = u.institution_id
          WHERE u.priced = 0 AND u.item <> ''",
    )
    .fetch_all(pool)
    .await
}

/// Sets the price of the units of (institution code, item, decision day).
pub async fn set_unit_prices(
    pool: &SqlitePool,
    prices: &[(String, String, String, Option<i64>)],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (institution, item, day, price) in prices {
        sqlx::query(
            "UPDATE recognition_unit
                SET price_fen = CASE WHEN decision = 'recognize' THEN ? END, priced = 1
              WHERE institution_id = (SELECT id FROM institution WHERE code = ? COLLATE NOCASE) AND item = ?
                AND decided_on = ? AND priced = 0",
        )
        .bind(price)
        .bind(institution)
        .bind(item)
        .bind(day)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Marks units to be priced again: those of these items (a price import), or of this
/// institution (its price region or grade changed), or all.
pub async fn reprice_units(
    pool: &SqlitePool,
    items: Option<&[String]>,
    institution: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let items_json = items.map(|i| serde_json::json!(i).to_string());
    Ok(sqlx::query(
        "UPDATE recognition_unit SET priced = 0
          WHERE priced = 1 AND item <> ''
            AND (?1 IS NULL OR item IN (SELECT value FROM json_each(?1)))
            AND (?2 IS NULL OR institution_id = (SELECT id FROM institution WHERE code = ?2 COLLATE NOCASE))",
    )
    .bind(items_json)
    .bind(institution)
    .execute(pool)
    .await?
    .rows_affected())
}
