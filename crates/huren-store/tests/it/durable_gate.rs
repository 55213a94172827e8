//! The writer's durability gate: instances sent together share a group; one whose object
//! fails to become durable leaves nothing in the index (not even its audit link), and the
//! others commit — after their objects report durable, never before.

use huren_access::{AuditAction, AuditEvent, Outcome};
use huren_archive::model::{CommitOutcome, NewInstance};
use huren_archive::ports::*;
use huren_seal::chain::ChainKey;
use huren_store::SqliteIndex;
use huren_store::audit::AuditReader;
use std::sync::Arc;
use std::time::Duration;

pub fn instance(institution: i64, n: u32) -> (NewInstance, AuditEvent) {
    let sop = format!("1.2.826.0.1.3680043.10.1138.9.{n}");
    let rec = NewInstance {
        sop_instance_uid: sop.clone(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
        study_instance_uid: "1.2.826.0.1.3680043.10.1138.1".into(),
        series_instance_uid: "1.2.826.0.1.3680043.10.1138.2".into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        sender_institution_id: institution,
        sender_ae_id: None,
        sender_token_id: None,
        performing_institution_id: institution,
        patient_issuer: "H500002".into(),
        patient_id: "P1".into(),
        attrs: Default::default(),
        study_instant: None,
        blob_key: format!("objects/2026/12/07/00/{n}.dcm"),
        size: 100,
        sha256: format!("{n:064}"),
        pixel_layout: "{}".into(),
        dicom_json_deflated: Vec::new(),
        received_unix: 1_796_000_000,
        stable_after_secs: 60,
        new_person_public_id: uuid::Uuid::now_v7().to_string(),
        name_key: None,
        identifiers: Vec::new(),
    };
    let audit = AuditEvent {
        action: AuditAction::InstanceStored,
        outcome: Outcome::Success,
        actor: "ae:IT".into(),
        institution: Some("H500002".into()),
        patient: Some("P1@H500002".into()),
        study_uid: Some(rec.study_instance_uid.clone()),
        object: Some(sop),
        source_address: None,
        detail: serde_json::json!({}),
    };
    (rec, audit)
}

#[tokio::test]
async fn an_object_that_is_not_durable_leaves_no_row_and_the_group_commits_without_it() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("index.sqlite");
    let key = Arc::new(ChainKey::from_hex(&"5a".repeat(32)).expect("key"));
    let index = Arc::new(
        SqliteIndex::open_chained(&path, Some(key.clone()))
            .await
            .expect("index"),
    );
    let h = index
        .add_institution(super::institution("H500002", None))
        .await
        .expect("institution");

    let (a, a_audit) = instance(h, 1);
    let (b, b_audit) = instance(h, 2);
    let (c, c_audit) = instance(h, 3);
    let (b_report, b_durable) = BytesDurable::pending();
    let (c_report, c_durable) = BytesDurable::pending();
    let commits = {
        let index = index.clone();
        tokio::spawn(async move {
            tokio::join!(
                index.commit_instance(a, a_audit, BytesDurable::already()),
                index.commit_instance(b, b_audit, b_durable),
                index.commit_instance(c, c_audit, c_durable),
            )
        })
    };
    // The rows are written, but nothing may be visible while an object is still syncing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        index
            .instances_by_sop_uid("1.2.826.0.1.3680043.10.1138.9.1")
            .await
            .expect("read")
            .is_empty(),
        "a row of the group was committed before every object in it was durable"
    );
    b_report
        .send(Err(StoreError::broken("disk gone")))
        .expect("waiting");
    c_report.send(Ok(())).expect("waiting");
    let (ra, rb, rc) = commits.await.expect("joined");
    assert!(matches!(ra, Ok(CommitOutcome::Stored { .. })), "{ra:?}");
    assert!(rb.is_err(), "{rb:?}");
    assert!(matches!(rc, Ok(CommitOutcome::Stored { .. })), "{rc:?}");
    for (n, kept) in [(1, true), (2, false), (3, true)] {
        let rows = index
            .instances_by_sop_uid(&format!("1.2.826.0.1.3680043.10.1138.9.{n}"))
            .await
            .expect("read");
        assert_eq!(rows.len(), usize::from(kept), "instance {n}");
    }
    // Two stored events, chained without a gap where the refused one was taken back.
    let reader = AuditReader::open(&path).await.expect("reader");
    let v = reader.verify(&key).await.expect("verified");
    assert_eq!((v.chained, v.problems.len()), (2, 0), "{:?}", v.problems);
}
