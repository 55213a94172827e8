//! `ConsentIndex` on both dialects: a mobile number changed at once or by a code sent to the
//! old one (five attempts, once), a patient's authorization by SMS code, break-glass opened,
//! listed and reviewed once; two nodes confirming one authorization with the right code at the
//! same moment grant it once.

use huren_access::{Role, User};
use huren_archive::model::*;
use huren_archive::ports::*;
use huren_types::InstitutionCode;

/// A person and a doctor, written as the person and account ports would (not ported yet).
const FIXTURE: &str = "INSERT INTO person (public_id, created_at) VALUES ('person-1', 0);
     INSERT INTO app_user (username, display_name, role, institution_id, password_hash, created_at)
          VALUES ('wangli', '王丽', 'doctor', 1, 'x', 0)";

fn doctor() -> User {
    User {
        user_id: 1,
        username: "wangli".into(),
        role: Role::Doctor,
        institution_id: 1,
        institution_code: InstitutionCode::parse("county").expect("code"),
        department: None,
        via: None,
    }
}

crate::on_both_dialects!(on, super::FIXTURE, super::consent_flows);

fn authorization(code: &str) -> NewAuthorization {
    NewAuthorization {
        person: "person-1".into(),
        institution_id: 1,
        requested_by: 1,
        scope: "all".into(),
        code_hash: code.into(),
        code_expires_at: 1_000,
        days: 30,
        now: 10,
    }
}

fn change(sealed: &[u8], code: Option<&str>) -> NewContactChange {
    NewContactChange {
        person: "person-1".into(),
        institution_id: 1,
        requested_by: "wangli".into(),
        contact: SealedContact {
            sealed: sealed.to_vec(),
            key_id: "k1".into(),
        },
        how: "first",
        verified_by: None,
        code_hash: code.map(str::to_owned),
        code_expires_at: code.map(|_| 1_000),
        now: 10,
    }
}

async fn consent_flows(index: &(impl ConsentIndex + InstitutionIndex)) {
    // Two nodes confirm one authorization with the right code at once: one grant.
    let id = index
        .create_authorization(authorization("code-race"))
        .await
        .expect("created");
    let (a, b) = tokio::join!(
        index.confirm_authorization(id, 1, "code-race", 100),
        index.confirm_authorization(id, 1, "code-race", 100)
    );
    let granted = [&a, &b].iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert_eq!(granted, 1, "{a:?} {b:?}");

    // A first number takes effect at once; no such person is None.
    assert!(
        index
            .record_contact_change(change(b"138-old", None))
            .await
            .expect("recorded")
            .is_some()
    );
    let mut nobody = change(b"x", None);
    nobody.person = "nobody".into();
    assert_eq!(
        index.record_contact_change(nobody).await.expect("read"),
        None
    );
    assert_eq!(
        index
            .patient_contact("person-1")
            .await
            .expect("read")
            .map(|c| c.sealed),
        Some(b"138-old".to_vec())
    );
    // A change by code: wrong codes count, the right one applies once.
    let pending = index
        .record_contact_change(change(b"139-new", Some("c1")))
        .await
        .expect("recorded")
        .expect("person");
    assert_eq!(
        index
            .confirm_contact_change(pending, 1, "nope", 20)
            .await
            .expect("checked"),
        None
    );
    assert_eq!(
        index
            .patient_contact("person-1")
            .await
            .expect("read")
            .map(|c| c.sealed),
        Some(b"138-old".to_vec()),
        "a wrong code changed the number"
    );
    let confirmed = index
        .confirm_contact_change(pending, 1, "c1", 21)
        .await
        .expect("checked")
        .expect("confirmed");
    assert_eq!(confirmed.person, "person-1");
    assert_eq!(
        index
            .patient_contact("person-1")
            .await
            .expect("read")
            .map(|c| c.sealed),
        Some(b"139-new".to_vec())
    );
    assert_eq!(
        index
            .confirm_contact_change(pending, 1, "c1", 22)
            .await
            .expect("checked"),
        None,
        "a change confirmed twice"
    );
    // An authorization: five wrong codes spend it, even the right one after.
    let spent = index
        .create_authorization(authorization("right"))
        .await
        .expect("created");
    for _ in 0..5 {
        assert!(
            index
                .confirm_authorization(spent, 1, "wrong", 20)
                .await
                .expect("checked")
                .is_none()
        );
    }
    assert!(
        index
            .confirm_authorization(spent, 1, "right", 20)
            .await
            .expect("checked")
            .is_none(),
        "granted after five wrong codes"
    );
    // Another institution cannot confirm this one's request; the right code grants for the
    // requested days, and a revocation ends it once.
    let id = index
        .create_authorization(authorization("right"))
        .await
        .expect("created");
    assert!(
        index
            .confirm_authorization(id, 2, "right", 20)
            .await
            .expect("checked")
            .is_none()
    );
    let granted = index
        .confirm_authorization(id, 1, "right", 20)
        .await
        .expect("checked")
        .expect("granted");
    assert_eq!(
        (granted.scope.as_str(), granted.expires_at),
        ("all", 20 + 30 * 86_400)
    );
    assert_eq!(
        index
            .authorization_requests_since("person-1", 1, 0)
            .await
            .expect("counted"),
        (3, 3)
    );
    assert!(
        index
            .revoke_authorization(id, 1, 30)
            .await
            .expect("revoked")
    );
    assert!(!index.revoke_authorization(id, 1, 31).await.expect("again"));
    // Break-glass: opened, listed while open, reviewed once.
    let bg = index
        .start_break_glass(&doctor(), "person-1", "急诊抢救", 40, 40 + 3600)
        .await
        .expect("started")
        .expect("person");
    let open = index.break_glass_list(1, true).await.expect("listed");
    assert_eq!(
        open.iter()
            .map(|b| (b.id, b.doctor.as_str(), b.person.as_str()))
            .collect::<Vec<_>>(),
        vec![(bg, "wangli", "person-1")]
    );
    assert!(
        index
            .review_break_glass(bg, &doctor(), "justified", "ok", 50)
            .await
            .expect("reviewed")
    );
    assert!(
        !index
            .review_break_glass(bg, &doctor(), "justified", "again", 51)
            .await
            .expect("reviewed")
    );
    assert!(
        index
            .break_glass_list(1, true)
            .await
            .expect("listed")
            .is_empty()
    );
    let all = index.break_glass_list(1, false).await.expect("listed");
    assert_eq!(all[0].verdict.as_deref(), Some("justified"));
    assert_eq!(all[0].reviewed_by.as_deref(), Some("wangli"));
}
