//! `InstitutionIndex`: codes are kept as written and found in any case; issuers belong to one
//! institution.

use crate::institution;
use huren_archive::ports::*;

crate::on_both_dialects!(on, "", super::institutions);

async fn institutions(index: &impl InstitutionIndex) {
    codes_are_kept_as_written_and_found_in_any_case(index).await;
    two_registrations_of_one_code_at_once_leave_one(index).await;
}

/// Two operators (or two nodes) registering one code in two spellings at the same moment:
/// exactly one registration stands, the other is told the code is taken.
async fn two_registrations_of_one_code_at_once_leave_one(index: &impl InstitutionIndex) {
    let (a, b) = tokio::join!(
        index.add_institution(institution("CQ-RACE", None)),
        index.add_institution(institution("cq-race", None))
    );
    let ok = [a.is_ok(), b.is_ok()];
    assert_eq!(ok.iter().filter(|x| **x).count(), 1, "{a:?} {b:?}");
    for r in [a, b] {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        }
    }
}

async fn codes_are_kept_as_written_and_found_in_any_case(index: &impl InstitutionIndex) {
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
