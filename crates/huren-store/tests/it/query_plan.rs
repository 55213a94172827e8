//! The two plans of a study query with a name wildcard (query::Plan): reading studies newest
//! first, interrupted or not, gives exactly the page that ranking every match gives.

use huren_archive::model::NewInstance;
use huren_archive::ports::*;
use huren_archive::query::{Condition, Key, Level, Matcher, Query};
use huren_dicom::attrs::PersonName;
use huren_store::SqliteIndex;

fn study(institution: i64, p: u32, k: u32) -> NewInstance {
    let (mut rec, _) = super::durable_gate::instance(institution, p * 10 + k);
    // Names alternate between two families; dates repeat so that ties are broken by key.
    let family = if p.is_multiple_of(3) { "Li" } else { "Wang" };
    rec.patient_id = format!("P{p:04}");
    rec.study_instance_uid = format!("1.2.826.0.1.3680043.10.1138.3.{p}.{k}");
    rec.series_instance_uid = format!("1.2.826.0.1.3680043.10.1138.4.{p}.{k}");
    rec.attrs.patient_name = Some(PersonName::parse(&format!("{family}^{p}={family}^{p}")));
    rec.attrs.study_date = Some(format!("2025{:02}{:02}", 1 + (p * 7 + k) % 12, 1 + p % 5));
    rec.attrs.study_time = Some(if k == 0 {
        "080000".into()
    } else {
        "090000".into()
    });
    rec
}

fn query(pattern: &str, limit: u32, offset: u32) -> Query {
    Query {
        level: Level::Study,
        conditions: vec![Condition {
            key: Key::PatientName,
            matcher: Matcher::Wildcard(pattern.into()),
        }],
        limit,
        offset,
        after_key: None,
        person: None,
        persons_in: None,
        institutions_or: None,
    }
}

#[tokio::test]
async fn newest_first_finds_the_page_that_ranking_finds() {
    let dir = tempfile::tempdir().expect("dir");
    let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
        .await
        .expect("index");
    let h = index
        .add_institution(super::institution("H500002", None))
        .await
        .expect("institution");
    for p in 0..60 {
        for k in 0..2 {
            let (_, audit) = super::durable_gate::instance(h, p * 10 + k);
            index
                .commit_instance(study(h, p, k), audit, BytesDurable::already())
                .await
                .expect("committed");
        }
    }
    // The page's studies under one plan: `many` records make a name common, `budget` bounds
    // the newest-first scan (u32::MAX: never ranked, never interrupted).
    let page = async |q: &Query, many: u32, budget: u32| -> Vec<String> {
        let found = index.find_planned(q, many, budget).await.expect("query");
        found.into_iter().map(|m| m.study_instance_uid).collect()
    };
    for (pattern, limit, offset) in [
        ("Wang*", 10, 0),
        ("Wang*", 7, 30),
        ("Wang^1*", 5, 0),
        ("Li*", 50, 0),
    ] {
        let q = query(pattern, limit, offset);
        let ranked = page(&q, u32::MAX, u32::MAX).await;
        let newest_first = page(&q, 2, u32::MAX).await;
        let interrupted = page(&q, 2, 1).await;
        assert!(!ranked.is_empty(), "{pattern}");
        assert_eq!(newest_first, ranked, "{pattern} {limit} {offset}");
        assert_eq!(interrupted, ranked, "{pattern} {limit} {offset}");
    }
    // A record renamed by a later instance: its studies follow (migration 0044's trigger),
    // in both plans.
    let mut renamed = study(h, 1, 2);
    renamed.attrs.patient_name = Some(PersonName::parse("Zhao^1=赵^1"));
    let (_, audit) = super::durable_gate::instance(h, 12);
    index
        .commit_instance(renamed, audit, BytesDurable::already())
        .await
        .expect("renamed");
    // A study moved to another record takes that record's names.
    sqlx::query(
        "UPDATE study SET patient_id = (SELECT id FROM patient WHERE patient_id = 'P0003')
          WHERE study_uid = '1.2.826.0.1.3680043.10.1138.3.2.0'",
    )
    .execute(index.pool())
    .await
    .expect("moved");
    // Li^3* names records 3, 30, 33, 36, 39: ten studies, and the one moved to record 3.
    for (pattern, n) in [("Zhao*", 3), ("赵*", 3), ("Li^3*", 11)] {
        let q = query(pattern, 50, 0);
        let ranked = page(&q, u32::MAX, u32::MAX).await;
        let newest_first = page(&q, 1, u32::MAX).await;
        assert_eq!(ranked.len(), n, "{pattern}: {ranked:?}");
        assert_eq!(newest_first, ranked, "{pattern}");
    }
    // Li* names 20 patients, 40 studies: fewer than the page.
    let li = index
        .find_planned(&query("Li*", 50, 0), 2, u32::MAX)
        .await
        .expect("li");
    assert_eq!(li.len(), 41, "Li's 40 studies and the one moved to Li^3");
}
