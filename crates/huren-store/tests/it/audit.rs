//! `AuditIndex` and the chain: events written through the group-commit writer are chained, a
//! verification finds them intact, and an altered event is reported as itself.

use huren_access::{AuditAction, AuditEvent, Outcome};
use huren_archive::model::AuditFilter;
use huren_archive::ports::*;
use huren_seal::chain::ChainKey;
use huren_store::SqliteIndex;
use huren_store::audit::AuditReader;
use std::sync::Arc;

fn event(n: u32) -> AuditEvent {
    AuditEvent {
        action: AuditAction::AccessDenied,
        outcome: Outcome::Failure,
        actor: format!("user:it#{n}"),
        institution: Some("H500002".into()),
        patient: None,
        study_uid: None,
        object: Some(format!("GET /it/{n}")),
        source_address: Some("127.0.0.1".into()),
        detail: serde_json::json!({ "n": n }),
    }
}

#[tokio::test]
async fn events_are_chained_and_an_altered_one_is_found() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("index.sqlite");
    let key = Arc::new(ChainKey::from_hex(&"5a".repeat(32)).expect("key"));
    let index = SqliteIndex::open_chained(&path, Some(key.clone()))
        .await
        .expect("index");
    for n in 0..5 {
        index.record_audit(event(n)).await.expect("recorded");
    }
    let rows = index
        .audit_events(&AuditFilter::default(), 10)
        .await
        .expect("read");
    assert_eq!(rows.len(), 5);
    let reader = AuditReader::open(&path).await.expect("reader");
    let v = reader.verify(&key).await.expect("verified");
    assert_eq!((v.chained, v.problems.len()), (5, 0), "{:?}", v.problems);

    sqlx::query("UPDATE audit_event SET actor = 'user:mallory#1' WHERE seq = 3")
        .execute(index.pool())
        .await
        .expect("altered");
    let v = reader.verify(&key).await.expect("verified");
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    assert!(v.problems[0].contains('3'), "{:?}", v.problems);
}
