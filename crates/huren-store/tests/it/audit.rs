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

fn key() -> Arc<ChainKey> {
    Arc::new(ChainKey::from_hex(&"5a".repeat(32)).expect("key"))
}

/// A chained SQLite index in `dir`: its path, its key, the index.
async fn chained(dir: &tempfile::TempDir) -> (std::path::PathBuf, Arc<ChainKey>, SqliteIndex) {
    let path = dir.path().join("index.sqlite");
    let key = key();
    let index = SqliteIndex::open_chained(&path, Some(key.clone()))
        .await
        .expect("index");
    (path, key, index)
}

#[tokio::test]
async fn events_are_chained_and_an_altered_one_is_found() {
    let dir = tempfile::tempdir().expect("dir");
    let (path, key, index) = chained(&dir).await;
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

/// Two nodes' chains in one table (migration 0046), their events interleaved: each verifies on
/// its own, and an event removed from one is reported with its chain's name.
#[tokio::test]
async fn every_chain_is_verified_on_its_own() {
    let dir = tempfile::tempdir().expect("dir");
    let (path, key, index) = chained(&dir).await;
    for n in 0..3 {
        index.record_audit(event(n)).await.expect("recorded");
        // Another node's chain: the same links under its own name, written in between.
        sqlx::query(
            "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac, chain)
             SELECT at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac, 'node-b'
               FROM audit_event WHERE chain = 'main' AND seq = ?",
        )
        .bind(i64::from(n) + 1)
        .execute(index.pool())
        .await
        .expect("node b");
    }
    let reader = AuditReader::open(&path).await.expect("reader");
    let v = reader.verify(&key).await.expect("verified");
    assert_eq!((v.chained, v.problems.len()), (6, 0), "{:?}", v.problems);
    // The head this node checkpoints is its own chain's.
    assert_eq!(reader.head().await.expect("head").map(|h| h.seq), Some(3));
    sqlx::query("DELETE FROM audit_event WHERE chain = 'node-b' AND seq = 2")
        .execute(index.pool())
        .await
        .expect("removed");
    let v = reader.verify(&key).await.expect("verified");
    assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
    assert!(
        v.problems.iter().all(|p| p.starts_with("chain node-b:")),
        "{:?}",
        v.problems
    );
}

/// On PostgreSQL two nodes append to their own chains at once: each chain is numbered without
/// gaps and every link recomputes from the stored fields, and the auditors' filters read both.
#[tokio::test]
async fn two_nodes_chain_their_events_side_by_side_on_postgres() {
    use huren_store::pg::PgIndex;
    use sqlx::Row;
    let Some(scratch) = crate::pg_schema::ScratchDb::create("audit").await else {
        return;
    };
    let key = key();
    let a = PgIndex::open(&scratch.url, 4)
        .await
        .expect("node a")
        .with_audit_chain("node-a", Some(key.clone()));
    let b = PgIndex::open(&scratch.url, 4)
        .await
        .expect("node b")
        .with_audit_chain("node-b", Some(key.clone()));
    let writes = (0..20u32).map(|n| {
        let node = if n % 2 == 0 { &a } else { &b };
        node.record_audit(event(n))
    });
    for r in futures::future::join_all(writes).await {
        r.expect("recorded");
    }
    for chain in ["node-a", "node-b"] {
        let rows = sqlx::query(
            "SELECT at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac
               FROM audit_event WHERE chain = $1 ORDER BY seq",
        )
        .bind(chain)
        .fetch_all(a.pool())
        .await
        .expect("rows");
        assert_eq!(rows.len(), 10, "{chain}");
        let mut prev = huren_seal::chain::GENESIS.to_vec();
        for (i, r) in rows.iter().enumerate() {
            let seq: i64 = r.get("seq");
            assert_eq!(seq, i as i64 + 1, "{chain}: numbered without gaps");
            let at: i64 = r.get("at");
            let fields: Vec<Option<String>> = std::iter::once(Some(at.to_string()))
                .chain((1..10).map(|c| r.get::<Option<String>, _>(c)))
                .collect();
            let want = key.link(
                &prev,
                seq,
                &fields.iter().map(Option::as_deref).collect::<Vec<_>>(),
            );
            let mac: Vec<u8> = r.get("mac");
            assert_eq!(want.as_slice(), mac.as_slice(), "{chain} seq {seq}");
            prev = mac;
        }
    }
    let mine = a
        .audit_events(
            &AuditFilter {
                actor: Some("user:it#4".into()),
                ..AuditFilter::default()
            },
            50,
        )
        .await
        .expect("read");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        a.audit_events(&AuditFilter::default(), 50)
            .await
            .expect("read")
            .len(),
        20
    );
    a.pool().close().await;
    b.pool().close().await;
    scratch.drop().await;
}
