//! `AccountIndex` on both dialects: accounts and failed sign-ins, sessions, encounters opened
//! and closed by the HIS, single-use launch tickets, and the relationships that open a person
//! to a doctor (an open encounter, break-glass, an authorization); two nodes redeeming one
//! launch ticket at once, one succeeds.

use huren_access::{Role, User};
use huren_archive::model::*;
use huren_archive::ports::*;
use huren_types::InstitutionCode;

/// Two persons with a record each at the county hospital, and a study of the first there.
const FIXTURE: &str = "INSERT INTO person (public_id, created_at) VALUES ('person-1', 0), ('person-2', 0);
     INSERT INTO patient (issuer, patient_id, updated_at, person_id) VALUES ('county', 'MRN1', 0, 1), ('county', 'MRN2', 0, 2);
     INSERT INTO study (patient_id, study_uid, institution_id, last_instance_at, stable_after_secs)
          VALUES (1, '1.2.3', 1, 0, 60)";

crate::on_both_dialects!(on, super::FIXTURE, super::accounts);

fn ticket(secret: &str) -> NewLaunchTicket {
    NewLaunchTicket {
        secret_hash: secret.into(),
        issued_by: "his".into(),
        user_id: 1,
        encounter_id: None,
        patient: PatientRef::Record {
            issuer: "county".into(),
            patient_id: "MRN1".into(),
        },
        issued_at: 10,
        expires_at: 1_000,
    }
}

fn doctor(user_id: i64) -> User {
    User {
        user_id,
        username: "wangli".into(),
        role: Role::Doctor,
        institution_id: 1,
        institution_code: InstitutionCode::parse("county").expect("code"),
        department: Some("放射科".into()),
        via: None,
    }
}

async fn accounts(index: &(impl AccountIndex + ConsentIndex)) {
    let id = index
        .add_user(NewUser {
            username: "wangli".into(),
            display_name: "王丽".into(),
            role: Role::Doctor,
            institution_code: "COUNTY".into(),
            department: Some("放射科".into()),
            password_hash: "argon2-hash".into(),
        })
        .await
        .expect("user");
    let mut unknown = NewUser {
        username: "x".into(),
        display_name: "x".into(),
        role: Role::Doctor,
        institution_code: "nowhere".into(),
        department: None,
        password_hash: "h".into(),
    };
    assert!(matches!(
        index.add_user(unknown.clone()).await,
        Err(StoreError::NotFound(_))
    ));
    unknown.institution_code = "county".into();
    unknown.username = "wangli".into();
    assert!(
        index.add_user(unknown).await.is_err(),
        "a username taken twice"
    );
    let account = index
        .user_account("wangli")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (
            account.user.user_id,
            account.user.institution_code.as_str(),
            account.display_name.as_str(),
            account.disabled
        ),
        (id, "county", "王丽", false)
    );
    // Failed sign-ins count and lock; a success clears them.
    assert_eq!(index.login_failed(id, None).await.expect("counted"), 1);
    assert_eq!(index.login_failed(id, Some(500)).await.expect("counted"), 2);
    let locked = index
        .user_account_by_id(id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (locked.failed_attempts, locked.locked_until),
        (2, Some(500))
    );
    index.login_succeeded(id).await.expect("cleared");
    let clear = index
        .user_account_by_id(id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!((clear.failed_attempts, clear.locked_until), (0, None));
    // A session: read with its account, touched, ended.
    index
        .create_session(SessionRecord {
            secret_hash: "s1".into(),
            user_id: id,
            csrf_token: "csrf".into(),
            created_at: 10,
            last_seen_at: 10,
            expires_at: 10_000,
            source_address: Some("127.0.0.1".into()),
        })
        .await
        .expect("session");
    index.touch_session("s1", 20).await.expect("touched");
    let (rec, who) = index.session("s1").await.expect("read").expect("live");
    assert_eq!(
        (rec.last_seen_at, who.user.username.as_str()),
        (20, "wangli")
    );
    index.end_session("s1", 30).await.expect("ended");
    assert!(index.session("s1").await.expect("read").is_none());
    // No relationship yet; an open encounter for the doctor's department opens person-1.
    assert!(
        index
            .related_persons(&doctor(id), false)
            .await
            .expect("read")
            .is_empty()
    );
    let encounter = index
        .upsert_encounter(EncounterUpsert {
            institution_id: 1,
            visit_number: "V1".into(),
            patient: PatientRef::Record {
                issuer: "county".into(),
                patient_id: "MRN1".into(),
            },
            doctor_user_id: None,
            department: Some("放射科".into()),
            open: true,
        })
        .await
        .expect("encounter");
    let related = index
        .related_persons(&doctor(id), false)
        .await
        .expect("read");
    assert_eq!(
        related,
        vec![(1, "person-1".to_string(), false, "all".to_string())]
    );
    assert_eq!(
        index.encounter_persons(1).await.expect("read"),
        vec![(1, "person-1".to_string())]
    );
    // The HIS closes the visit: the same row, closed.
    let again = index
        .upsert_encounter(EncounterUpsert {
            institution_id: 1,
            visit_number: "V1".into(),
            patient: PatientRef::Record {
                issuer: "county".into(),
                patient_id: "MRN1".into(),
            },
            doctor_user_id: Some(id),
            department: None,
            open: false,
        })
        .await
        .expect("encounter");
    assert_eq!(again, encounter);
    assert!(index.encounter_persons(1).await.expect("read").is_empty());
    // Break-glass opens person-2, marked as such.
    index
        .start_break_glass(&doctor(id), "person-2", "抢救", 40, i64::MAX / 2)
        .await
        .expect("started")
        .expect("person");
    assert_eq!(
        index
            .related_persons(&doctor(id), false)
            .await
            .expect("read"),
        vec![(2, "person-2".to_string(), true, "all".to_string())]
    );
    // Launch tickets are single use and expire.
    index
        .create_launch_ticket(ticket("t1"))
        .await
        .expect("ticket");
    let redeemed = index
        .redeem_launch_ticket("t1", 20)
        .await
        .expect("read")
        .expect("redeemed");
    assert_eq!(redeemed.user_id, 1);
    assert!(matches!(
        redeemed.patient,
        PatientRef::Record { ref patient_id, .. } if patient_id == "MRN1"
    ));
    assert!(
        index
            .redeem_launch_ticket("t1", 21)
            .await
            .expect("read")
            .is_none()
    );
    index
        .create_launch_ticket(ticket("t2"))
        .await
        .expect("ticket");
    assert!(
        index
            .redeem_launch_ticket("t2", 1_000)
            .await
            .expect("read")
            .is_none()
    );
    // Records with data at an institution.
    assert_eq!(
        index
            .records_with_data_at(&[1, 2], &[1])
            .await
            .expect("read"),
        vec![1]
    );
    assert!(
        index
            .records_with_data_at(&[], &[1])
            .await
            .expect("read")
            .is_empty()
    );
    // Two nodes redeeming one launch ticket at once: one succeeds.
    index
        .create_launch_ticket(ticket("race"))
        .await
        .expect("ticket");
    let (a, b) = tokio::join!(
        index.redeem_launch_ticket("race", 100),
        index.redeem_launch_ticket("race", 100)
    );
    let redeemed = [&a, &b].iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    assert_eq!(redeemed, 1, "{a:?} {b:?}");
}
