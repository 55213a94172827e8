//! `PersonIndex` on both dialects: link candidates by name sound, a steward's review decided
//! once (two decisions at once: one stands), merges refused for conflicting identity numbers,
//! merge and unmerge, a score decision that becomes a review, searches by name prefix in any
//! case, by record and by identity number, and person revisions moved by the triggers.

use huren_archive::model::*;
use huren_archive::ports::*;

/// Four persons with a record each; records 1 and 3 hold different numbers of one document;
/// two open reviews (records 1–2 and 1–4).
const FIXTURE: &str = "INSERT INTO person (public_id, created_at) VALUES ('p-a', 0), ('p-b', 0), ('p-c', 0), ('p-d', 0);
     INSERT INTO patient (issuer, patient_id, updated_at, person_id, name_key, name_raw, birth_date, sex) VALUES
       ('county', 'A1', 0, 1, 'wangli', 'Wang^Li', '19800101', 'F'),
       ('town', 'B1', 0, 2, 'wangli', 'WANG^LI', '19800101', 'F'),
       ('city', 'C1', 0, 3, 'zhangsan', 'Zhang^San', '19700505', 'M'),
       ('clinic', 'D1', 0, 4, 'wangli', 'Wang^Li', '19800102', 'F');
     INSERT INTO patient_identifier (patient_id, system, blind, consistent) VALUES
       (1, 'urn:oid:2.16.156.10011.1.5', 'blind-one', 1), (3, 'urn:oid:2.16.156.10011.1.5', 'blind-two', 1);
     INSERT INTO link_review (created_at, patient_a, patient_b, reason, score) VALUES
       (1, 1, 2, 'possible_match', 0.8), (1, 1, 4, 'possible_match', 0.7)";

crate::on_both_dialects!(on, super::FIXTURE, super::persons);

async fn records_of(index: &impl PersonIndex, person: &str) -> Vec<String> {
    index
        .person(person)
        .await
        .expect("read")
        .expect("person")
        .records
        .into_iter()
        .map(|r| r.patient_id)
        .collect()
}

async fn persons(index: &impl PersonIndex) {
    // Candidates: the same sound with a birth date sharing the year or the day; how common.
    let (mine, others, count) = index
        .link_candidates("county", "A1", 10)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(mine.patient_key, 1);
    assert_eq!(mine.identifiers.len(), 1);
    assert!(mine.identifiers[0].2, "a consistent number");
    let mut keys: Vec<i64> = others.iter().map(|f| f.patient_key).collect();
    keys.sort();
    assert_eq!((keys, count), (vec![2, 4], 3));
    // The steward links records 1 and 2: the older person survives.
    let open = index.link_reviews("open", 10).await.expect("read");
    assert_eq!(open.len(), 2);
    let first = open[0].id;
    let decided = index
        .decide_link_review(first, true, "steward", "same mother's name")
        .await
        .expect("decided");
    assert_eq!(decided.state, "linked");
    assert_eq!(records_of(index, "p-a").await, vec!["A1", "B1"]);
    assert!(matches!(
        index
            .decide_link_review(first, false, "steward", "again")
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Two stewards decide the other review at the same moment: one decision stands.
    let second = open[1].id;
    let (x, y) = tokio::join!(
        index.decide_link_review(second, false, "steward-1", "different person"),
        index.decide_link_review(second, false, "steward-2", "different person")
    );
    assert_eq!(
        [&x, &y].iter().filter(|r| r.is_ok()).count(),
        1,
        "{x:?} {y:?}"
    );
    // Different numbers of one document: no merge.
    assert!(matches!(
        index.merge_persons("p-a", "p-c", "steward", "x").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        index.merge_persons("p-a", "p-a", "steward", "x").await,
        Err(StoreError::Invalid(_))
    ));
    // Merge and unmerge.
    assert_eq!(
        index
            .merge_persons("p-a", "p-d", "steward", "same card")
            .await
            .expect("merged"),
        1
    );
    let merged = index.person("p-d").await.expect("read").expect("person");
    assert_eq!(merged.merged_into.as_deref(), Some("p-a"));
    assert_eq!(records_of(index, "p-a").await, vec!["A1", "B1", "D1"]);
    assert_eq!(
        index
            .unmerge_person("p-d", "steward", "wrong card")
            .await
            .expect("unmerged"),
        1
    );
    assert_eq!(records_of(index, "p-d").await, vec!["D1"]);
    assert!(
        index
            .person("p-d")
            .await
            .expect("read")
            .expect("person")
            .merged_into
            .is_none()
    );
    assert!(matches!(
        index.unmerge_person("p-d", "steward", "again").await,
        Err(StoreError::Invalid(_))
    ));
    let history = index
        .person("p-a")
        .await
        .expect("read")
        .expect("person")
        .history;
    let rules: Vec<&str> = history.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(
        rules,
        vec!["steward_merge", "steward_merge", "steward_unmerge"]
    );
    // A score decision between persons with conflicting numbers becomes a review.
    index
        .apply_score_decision(1, 3, true, 0.9)
        .await
        .expect("applied");
    let open = index.link_reviews("open", 10).await.expect("read");
    assert_eq!(
        open.iter()
            .map(|r| (
                r.reason.as_str(),
                r.a.patient_id.as_str(),
                r.b.patient_id.as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("conflicting_numbers", "A1", "C1")]
    );
    // Searches: a name prefix in any case, a record, an identity number.
    let mut found: Vec<String> = index
        .find_persons(
            &PersonSearch::NamePrefix {
                prefix: "wang".into(),
                sound_prefix: String::new(),
            },
            10,
        )
        .await
        .expect("found")
        .into_iter()
        .map(|h| h.person)
        .collect();
    found.sort();
    assert_eq!(found, vec!["p-a", "p-d"]);
    let by_record = index
        .find_persons(
            &PersonSearch::Record {
                issuer: "town".into(),
                patient_id: "B1".into(),
            },
            10,
        )
        .await
        .expect("found");
    assert_eq!(by_record[0].person, "p-a");
    let by_number = index
        .find_persons(
            &PersonSearch::Identifier(huren_archive::query::PersonKey {
                system: "urn:oid:2.16.156.10011.1.5".into(),
                blind: "blind-two".into(),
            }),
            10,
        )
        .await
        .expect("found");
    assert_eq!(by_number[0].person, "p-c");
    assert!(index.identifier_domain_known("county").await.expect("read"));
    assert!(
        !index
            .identifier_domain_known("nowhere")
            .await
            .expect("read")
    );
    // Every move changed the persons' timelines: their revisions went up.
    assert!(
        index
            .person_revision("p-a")
            .await
            .expect("read")
            .unwrap_or(0)
            > 0
    );
    assert_eq!(index.person_revision("nobody").await.expect("read"), None);
}
