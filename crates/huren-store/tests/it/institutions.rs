//! `InstitutionIndex`: codes are kept as written and found in any case; issuers belong to one
//! institution.

use crate::institution;
use huren_archive::ports::*;
use huren_store::SqliteIndex;

#[tokio::test]
async fn codes_are_kept_as_written_and_found_in_any_case() {
    let dir = tempfile::tempdir().expect("dir");
    let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
        .await
        .expect("index");
    let id = index
        .add_institution(institution("H500002", Some("urn:oid:1.2.156.500002")))
        .await
        .expect("added");
    let day = time::macros::date!(2026 - 12 - 07);
    let view = index
        .institution_as_of("h500002", day)
        .await
        .expect("read")
        .expect("found in another case");
    assert_eq!((view.id, view.code.as_str()), (id, "H500002"));
    assert_eq!(
        index.institution_code(id).await.expect("read").as_deref(),
        Some("H500002")
    );
    // A second spelling is the same code: refused, naming the one held.
    match index.add_institution(institution("h500002", None)).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("H500002"), "{m}"),
        other => panic!("a second spelling was not refused: {other:?}"),
    }
    // The institution's issuers are its own, the URN form in any case too.
    for issuer in [
        "urn:oid:1.2.156.500002",
        "urn:huren:institution:H500002",
        "urn:huren:institution:h500002",
    ] {
        assert_eq!(
            index.issuer_owner(issuer).await.expect("read"),
            Some(id),
            "{issuer}"
        );
    }
    // An unknown issuer is claimed once, by the first institution to use it.
    let other = index
        .add_institution(institution("cq-rmyy", None))
        .await
        .expect("added");
    assert_eq!(
        index.claim_issuer("HIS-A", other).await.expect("claim"),
        (other, true)
    );
    assert_eq!(
        index.claim_issuer("HIS-A", id).await.expect("claim"),
        (other, false)
    );
}
