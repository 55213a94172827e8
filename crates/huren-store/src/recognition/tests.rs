//! Statistics equal a recount from the raw events (issues #7 and #17): random sequences of
//! decisions (on eligible and other results, catalog items or not, with or without a
//! visit), reminders listing results, and studies opened go through the store's own entry
//! points; every grouping over random day ranges is compared with a recount written from
//! the definitions in docs/recognition.md, supersession included, on the raw rows and the
//! list of events.
use crate::recognition::decisions::*;
use crate::recognition::rollup::*;
use crate::sql::*;
use huren_archive::model::{NewRecognitionDecision, NewReminder, ReminderListing};
use huren_archive::recognition::StatsBy;
use proptest::prelude::*;
use sqlx::SqlitePool;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Event {
    Decide {
        visit: Option<u8>,
        result: u8,
        /// `None`: a result outside the catalog.
        item: Option<u8>,
        ordered: Option<u8>,
        recognizable: bool,
        recognize: bool,
        reason: usize,
    },
    Remind {
        visit: Option<u8>,
        ordered: Option<u8>,
        /// (result, item, recognizable)
        listed: Vec<(u8, Option<u8>, bool)>,
    },
    Open {
        result: u8,
    },
}

#[derive(Debug, Clone)]
struct Op {
    institution: usize,
    department: u8,
    event: Event,
    /// The event's day; events are applied in day order.
    on: time::Date,
    /// Mark every unit to be priced again before this event (a price import).
    reprice: bool,
}

const INSTITUTIONS: [&str; 2] = ["city", "county"];
/// Platform reasons, and a region's own (07 not counted, 08 counted).
const REASONS: [(&str, bool); 6] = [
    ("01", true),
    ("06", true),
    ("98", false),
    ("99", false),
    ("07", false),
    ("08", true),
];

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        5 => (
            proptest::option::of(0..4u8),
            0..5u8,
            prop::option::weighted(0.9, 0..3u8),
            proptest::option::of(0..3u8),
            prop::bool::weighted(0.7),
            any::<bool>(),
            0..6usize,
        )
            .prop_map(|(visit, result, item, ordered, recognizable, recognize, reason)| {
                Event::Decide { visit, result, item, ordered, recognizable, recognize, reason }
            }),
        3 => (
            proptest::option::of(0..4u8),
            prop::option::weighted(0.2, 0..3u8),
            prop::collection::vec(
                (0..5u8, prop::option::weighted(0.9, 0..3u8), prop::bool::weighted(0.7)),
                1..4,
            ),
        )
            // A reminder lists a result once.
            .prop_map(|(visit, ordered, mut listed)| {
                let mut seen = Vec::new();
                listed.retain(|(r, _, _)| {
                    let first = !seen.contains(r);
                    seen.push(*r);
                    first
                });
                Event::Remind { visit, ordered, listed }
            }),
        2 => (0..5u8).prop_map(|result| Event::Open { result }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..2usize,
        0..2u8,
        event(),
        (0..4u8, 0..6u8),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(institution, department, event, (month, which), reprice)| Op {
                institution,
                department,
                event,
                on: edge_day(month, which),
                reprice,
            },
        )
}

/// The price in force: some items at some institutions have none.
fn price(institution: &str, item: &str, day: &str) -> Option<i64> {
    if institution == "county" && item == "I2" {
        return None;
    }
    let d: i64 = day[8..].parse().unwrap_or(0);
    Some(1000 * (item.as_bytes()[1] - b'0') as i64 + d)
}

/// A day at or next to a month's edge (1st, 2nd, second-to-last, last; or the 10th or 15th)
/// of a month of 2025, where off-by-one mistakes in splitting a range by month would show.
fn edge_day(month: u8, which: u8) -> time::Date {
    let m = time::Month::try_from(month % 12 + 1).unwrap_or(time::Month::January);
    let last = m.length(2025);
    let d = [1, 2, 15, last - 1, last, 10][usize::from(which % 6)];
    time::Date::from_calendar_date(2025, m, d).unwrap_or(time::macros::date!(2025 - 01 - 01))
}

async fn price_pending(pool: &SqlitePool) {
    loop {
        let pending = unpriced_units(pool).await.expect("unpriced");
        if pending.is_empty() {
            return;
        }
        let priced: Vec<_> = pending
            .into_iter()
            .map(|(i, it, d)| {
                let p = price(&i, &it, &d);
                (i, it, d, p)
            })
            .collect();
        set_unit_prices(pool, &priced).await.expect("price");
    }
}

/// Per group: the fifteen counts (in the roll-up's order), and the reasons of eligible and
/// of other results.
type Cells = BTreeMap<String, ([i64; 15], BTreeMap<String, i64>, BTreeMap<String, i64>)>;

/// One applied event, as the recount sees it (time = its order).
struct Applied<'a> {
    at: i64,
    day: String,
    institution: &'a str,
    department: String,
    event: &'a Event,
}

/// The statistics by definition, from the events as applied.
fn recount(applied: &[Applied], from: &str, until: &str, by: StatsBy) -> Cells {
    let visit_of =
        |v: &Option<u8>, fallback: String| v.map(|v| format!("V{v}")).unwrap_or(fallback);
    let item_of = |i: &Option<u8>| i.map(|i| format!("I{i}"));
    // Decisions: supersession (a later decision on the same result and visit at the same
    // institution), then the latest per unit.
    let mut decided: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (n, a) in applied.iter().enumerate() {
        let Event::Decide {
            visit,
            result,
            item,
            ordered,
            ..
        } = a.event
        else {
            continue;
        };
        let superseded = applied[n + 1..].iter().any(|l| {
            matches!(l.event, Event::Decide { visit: v, result: r, .. }
                if l.institution == a.institution && r == result && v == visit)
        });
        if superseded {
            continue;
        }
        let key = (
            a.institution.to_owned(),
            visit_of(visit, format!("decision:{n}")),
            item_of(ordered)
                .or_else(|| item_of(item))
                .unwrap_or_default(),
        );
        decided.insert(key, n);
    }
    // Reminders: per (institution, visit, item): the first time, the latest reminder,
    // eligible, opened since.
    #[derive(Default)]
    struct Listed {
        first: i64,
        latest: usize,
        eligible: bool,
        opened: bool,
    }
    let mut listed: BTreeMap<(String, String, String), Listed> = BTreeMap::new();
    for (n, a) in applied.iter().enumerate() {
        let Event::Remind {
            visit,
            ordered,
            listed: results,
        } = a.event
        else {
            continue;
        };
        for (result, item, recognizable) in results {
            let Some(key_item) = item_of(ordered).or_else(|| item_of(item)) else {
                continue;
            };
            let opened = applied[n + 1..].iter().any(|l| {
                matches!(l.event, Event::Open { result: r } if *r == *result)
                    && l.institution == a.institution
            });
            let e = listed
                .entry((
                    a.institution.to_owned(),
                    visit_of(visit, format!("reminder:{n}")),
                    key_item,
                ))
                .or_insert(Listed {
                    first: a.at,
                    latest: n,
                    ..Default::default()
                });
            e.first = e.first.min(a.at);
            e.latest = e.latest.max(n);
            e.eligible |= *recognizable;
            e.opened |= opened;
        }
    }
    let mut cells = Cells::new();
    let mut count = |institution: &str,
                     item: &str,
                     day: &str,
                     department: &str,
                     decision: &str,
                     reason: &str,
                     counted: bool,
                     eligible: bool,
                     shown: bool,
                     opened: bool| {
        if day < from || day > until {
            return;
        }
        let key = match by {
            StatsBy::Item => item.to_owned(),
            StatsBy::Institution => institution.to_owned(),
            StatsBy::Department => format!("{institution}/{department}"),
            StatsBy::Month => day[..7].to_owned(),
        };
        let c = cells.entry(key).or_default();
        let cat = !item.is_empty();
        let recognized = decision == "recognize";
        let p = if recognized && cat {
            price(institution, item, day)
        } else {
            None
        };
        let flags = [
            cat,
            cat && recognized,
            cat && decision == "re_examine" && counted,
            cat && decision == "re_examine" && !counted,
            cat && decision == "none" && opened,
            cat && decision == "none" && !opened,
            cat && eligible,
            cat && eligible && recognized,
            cat && eligible && decision == "re_examine" && !counted,
            cat && shown,
            cat && shown && decision != "none",
            !cat,
            !cat && recognized,
        ];
        for (k, f) in flags.iter().enumerate() {
            c.0[k] += i64::from(*f);
        }
        c.0[13] += p.unwrap_or(0);
        c.0[14] += i64::from(cat && recognized && p.is_none());
        if decision == "re_examine" {
            let map = if eligible { &mut c.1 } else { &mut c.2 };
            *map.entry(reason.to_owned()).or_default() += 1;
        }
    };
    for ((institution, visit, item), n) in &decided {
        let a = &applied[*n];
        let Event::Decide {
            recognizable,
            recognize,
            reason,
            ..
        } = a.event
        else {
            continue;
        };
        let (reason, counts) = REASONS[*reason];
        let shown = listed
            .get(&(institution.clone(), visit.clone(), item.clone()))
            .is_some_and(|l| l.first <= a.at);
        count(
            institution,
            item,
            &a.day,
            &a.department,
            if *recognize {
                "recognize"
            } else {
                "re_examine"
            },
            if *recognize { "" } else { reason },
            *recognize || counts,
            *recognizable,
            shown,
            false,
        );
    }
    for (key, l) in &listed {
        if decided.contains_key(key) {
            continue;
        }
        let a = &applied[l.latest];
        count(
            &key.0,
            &key.2,
            &a.day,
            &a.department,
            "none",
            "",
            true,
            l.eligible,
            true,
            l.opened,
        );
    }
    cells
}

async fn run(mut ops: Vec<Op>, ranges: Vec<(time::Date, time::Date)>) {
    ops.sort_by_key(|o| o.on);
    let dir = tempfile::tempdir().expect("tempdir");
    let index = crate::SqliteIndex::open(&dir.path().join("index.sqlite"))
        .await
        .expect("open");
    let pool = index.pool();
    for code in INSTITUTIONS {
        sqlx::query("INSERT INTO institution (code, created_at) VALUES (?, 0)")
            .bind(code)
            .execute(pool)
            .await
            .expect("institution");
    }
    sqlx::query("INSERT INTO person (public_id, created_at) VALUES ('p1', 0)")
        .execute(pool)
        .await
        .expect("person");
    let mut applied = Vec::new();
    for (k, o) in ops.iter().enumerate() {
        if o.reprice {
            reprice_units(pool, None, None).await.expect("reprice");
        }
        let on = iso(o.on);
        let at = 1_700_000_000 + k as i64;
        let institution = INSTITUTIONS[o.institution];
        let department = format!("dept{}", o.department);
        match &o.event {
            Event::Decide {
                visit,
                result,
                item,
                ordered,
                recognizable,
                recognize,
                reason,
            } => {
                let item = item.map(|i| format!("I{i}"));
                let ordered = ordered.map(|i| format!("I{i}"));
                let (reason, counts) = REASONS[*reason];
                let unit_item = ordered.clone().or_else(|| item.clone()).unwrap_or_default();
                let d = NewRecognitionDecision {
                    decided_at: at,
                    decided_on: on.clone(),
                    institution_id: o.institution as i64 + 1,
                    department: Some(department.clone()),
                    user_id: None,
                    actor: "doctor".into(),
                    person: "p1".into(),
                    visit_number: visit.map(|v| format!("V{v}")),
                    result_kind: "imaging_study".into(),
                    result_ref: format!("R{result}"),
                    performing_institution: "other".into(),
                    item,
                    ordered_item: ordered,
                    engine_verdict: if *recognizable {
                        "recognizable"
                    } else {
                        "reference_only"
                    }
                    .into(),
                    engine_decision: "{}".into(),
                    catalog_version: None,
                    qualification_set: None,
                    scope_set: None,
                    policy_set: None,
                    decision: if *recognize {
                        "recognize"
                    } else {
                        "re_examine"
                    }
                    .into(),
                    reason: (!recognize).then(|| reason.to_owned()),
                    note: None,
                    record_sentence: String::new(),
                    counted: *recognize || counts,
                    price_fen: if unit_item.is_empty() {
                        None
                    } else {
                        price(institution, &unit_item, &on).filter(|_| *recognize)
                    },
                };
                record_decision(pool, &d).await.expect("record");
            }
            Event::Remind {
                visit,
                ordered,
                listed,
            } => {
                let r = NewReminder {
                    shown_at: at,
                    shown_on: on.clone(),
                    institution_id: o.institution as i64 + 1,
                    department: Some(department.clone()),
                    user_id: None,
                    actor: "doctor".into(),
                    person: "p1".into(),
                    visit_number: visit.map(|v| format!("V{v}")),
                    moment: if ordered.is_some() {
                        "order"
                    } else {
                        "encounter"
                    }
                    .into(),
                    ordered_item: ordered.map(|i| format!("I{i}")),
                    results: listed
                        .iter()
                        .map(|(result, item, recognizable)| ReminderListing {
                            result_kind: "imaging_study".into(),
                            result_ref: format!("R{result}"),
                            item: item.map(|i| format!("I{i}")),
                            engine_verdict: if *recognizable {
                                "recognizable"
                            } else {
                                "not_recognizable"
                            }
                            .into(),
                        })
                        .collect(),
                };
                record_reminder(pool, &r).await.expect("reminder");
            }
            Event::Open { result } => {
                reminder_opened(pool, o.institution as i64 + 1, &format!("R{result}"), at)
                    .await
                    .expect("opened");
            }
        }
        applied.push((at, on, institution, department));
    }
    // The store numbers visitless decisions and reminders by their row ids; the recount by
    // event order. Map one onto the other.
    let decision_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM recognition_decision ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("ids");
    let reminder_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM recognition_reminder ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("ids");
    let applied: Vec<Applied> = ops
        .iter()
        .zip(&applied)
        .map(|(o, (at, day, institution, department))| Applied {
            at: *at,
            day: day.clone(),
            institution,
            department: department.clone(),
            event: &o.event,
        })
        .collect();
    price_pending(pool).await;
    let (mut decisions, mut reminders) = (decision_ids.iter(), reminder_ids.iter());
    let renumber: BTreeMap<String, String> = applied
        .iter()
        .enumerate()
        .filter_map(|(n, a)| match a.event {
            Event::Decide { .. } => decisions
                .next()
                .map(|id| (format!("decision:{n}"), format!("decision:{id}"))),
            Event::Remind { .. } => reminders
                .next()
                .map(|id| (format!("reminder:{n}"), format!("reminder:{id}"))),
            Event::Open { .. } => None,
        })
        .collect();
    let _ = &renumber; // visit names do not reach the cells; kept for failures' reading
    for (from, until) in ranges {
        for by in [
            StatsBy::Item,
            StatsBy::Institution,
            StatsBy::Department,
            StatsBy::Month,
        ] {
            let got: Cells = statistics(pool, from, until, None, by)
                .await
                .expect("statistics")
                .into_iter()
                .filter(|c| c.units != 0 || c.uncatalogued != 0)
                .map(|c| {
                    let n = [
                        c.units,
                        c.recognized,
                        c.reexamined,
                        c.not_counted,
                        c.opened,
                        c.ignored,
                        c.eligible,
                        c.eligible_recognized,
                        c.eligible_not_counted,
                        c.shown,
                        c.shown_decided,
                        c.uncatalogued,
                        c.uncatalogued_recognized,
                        c.savings_fen,
                        c.unpriced,
                    ];
                    (c.key, (n, c.reasons_eligible, c.reasons_other))
                })
                .collect();
            let want = recount(&applied, &iso(from), &iso(until), by);
            assert_eq!(got, want, "{by:?} over {from}..={until}");
        }
    }
    // Rebuilding from the decisions and reminders gives the same derived rows as keeping
    // them up to date.
    let derived = |pool: SqlitePool| async move {
        #[allow(clippy::type_complexity)]
        let units: Vec<(i64, String, String, Option<i64>, Option<i64>, String, i64, i64, i64, Option<i64>)> =
            sqlx::query_as(
                "SELECT institution_id, visit, item, decision_id, reminder_id,
                        decision || '/' || reason || '/' || counted, eligible, shown, opened, price_fen
                   FROM recognition_unit ORDER BY 1, 2, 3",
            )
            .fetch_all(&pool)
            .await
            .expect("units");
        let sums: String = COUNTS.iter().map(|c| format!("|| '/' || {c} ")).collect();
        let rollup: Vec<(String, String, String, i64, String, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT dim, grain, period, institution_id, key, ''{sums}
                    || (SELECT json_group_object(key, value)
                          FROM (SELECT key, value FROM json_each(reasons_eligible) ORDER BY key))
                    || (SELECT json_group_object(key, value)
                          FROM (SELECT key, value FROM json_each(reasons_other) ORDER BY key))
                   FROM recognition_rollup WHERE units <> 0 OR uncatalogued <> 0
                  ORDER BY 1, 2, 3, 4, 5"
            )))
            .fetch_all(&pool)
            .await
            .expect("rollup");
        (units, rollup)
    };
    let kept = derived(pool.clone()).await;
    let keys = rebuild_price_keys(pool).await.expect("keys");
    let prices: Vec<_> = keys
        .into_iter()
        .map(|(i, it, d)| {
            let p = price(&i, &it, &d);
            (i, it, d, p)
        })
        .collect();
    rebuild_units(pool, &prices).await.expect("rebuild");
    assert_eq!(derived(pool.clone()).await, kept);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn statistics_equal_a_recount_of_the_raw_events(
        ops in prop::collection::vec(op(), 1..120),
        ranges in prop::collection::vec((0..12u8, 0..6u8, 0..12u8, 0..6u8), 1..6),
    ) {
        let mut ranges: Vec<_> = ranges
            .into_iter()
            .map(|(m1, w1, m2, w2)| {
                let (a, b) = (edge_day(m1, w1), edge_day(m2, w2));
                (a.min(b), a.max(b))
            })
            .collect();
        // A whole calendar year is read from the year rows (migration 0042).
        ranges.push((time::macros::date!(2025 - 01 - 01), time::macros::date!(2025 - 12 - 31)));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run(ops, ranges));
    }
}

#[test]
fn whole_years_of_a_month_run_are_read_as_years() {
    let run = |from: &str, until: &str| Piece {
        grain: "month",
        from: from.into(),
        until: until.into(),
        sign: 1,
    };
    let show = |p: Piece| {
        with_years(p)
            .into_iter()
            .map(|p| format!("{} {}..{}", p.grain, p.from, p.until))
            .collect::<Vec<_>>()
    };
    assert_eq!(show(run("2025-01", "2025-12")), ["year 2025..2025"]);
    assert_eq!(
        show(run("2024-11", "2026-02")),
        [
            "month 2024-11..2024-12",
            "year 2025..2025",
            "month 2026-01..2026-02"
        ]
    );
    assert_eq!(show(run("2025-02", "2025-12")), ["month 2025-02..2025-12"]);
    assert_eq!(show(run("2024-01", "2025-12")), ["year 2024..2025"]);
}

#[test]
fn ranges_are_read_as_months_and_at_most_half_a_month_of_days_at_each_end() {
    use time::macros::date;
    let show = |a, b| {
        pieces(a, b)
            .into_iter()
            .map(|p| {
                format!(
                    "{}{}..{}",
                    if p.sign < 0 { "-" } else { "+" },
                    p.from,
                    p.until
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        show(date!(2025 - 01 - 01), date!(2025 - 12 - 31)),
        ["+2025-01..2025-12"]
    );
    assert_eq!(
        show(date!(2025 - 01 - 02), date!(2025 - 12 - 30)),
        [
            "+2025-01..2025-12",
            "-2025-01-01..2025-01-01",
            "-2025-12-31..2025-12-31"
        ]
    );
    assert_eq!(
        show(date!(2025 - 01 - 20), date!(2025 - 03 - 10)),
        [
            "+2025-02..2025-02",
            "+2025-01-20..2025-01-31",
            "+2025-03-01..2025-03-10"
        ]
    );
    assert_eq!(
        show(date!(2025 - 01 - 15), date!(2025 - 01 - 15)),
        ["+2025-01-15..2025-01-15"]
    );
    assert_eq!(
        show(date!(2024 - 02 - 01), date!(2024 - 02 - 29)),
        ["+2024-02..2024-02"]
    );
    // Every day of the range is counted once, whatever the range.
    let mut d = date!(2024 - 12 - 20);
    while d < date!(2025 - 03 - 05) {
        let until = d + time::Duration::days(70);
        for p in pieces(d, until) {
            let span = if p.grain == "day" {
                (p.from.clone(), p.until.clone())
            } else {
                (format!("{}-01", p.from), format!("{}-31", p.until))
            };
            assert!(span.0 <= span.1, "{p:?}");
        }
        let mut day = d - time::Duration::days(40);
        while day < until + time::Duration::days(40) {
            let s = iso(day);
            let weight: i64 = pieces(d, until)
                .iter()
                .filter(|p| {
                    if p.grain == "day" {
                        p.from <= s && s <= p.until
                    } else {
                        p.from.as_str() <= &s[..7] && &s[..7] <= p.until.as_str()
                    }
                })
                .map(|p| p.sign)
                .sum();
            assert_eq!(
                weight,
                i64::from(d <= day && day <= until),
                "{d}..{until} at {s}"
            );
            day = day.next_day().unwrap_or(day);
        }
        d = d.next_day().unwrap_or(d);
    }
}
