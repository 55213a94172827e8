//! SQL for people's accounts and sessions (issue #6).

use huren_access::{Role, User};
use huren_archive::model::{NewUser, SessionRecord, UserAccount};
use huren_types::InstitutionCode;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const ACCOUNT: &str =
    "SELECT u.id, u.username, u.role, u.institution_id, i.code, u.department, u.display_name,
        u.password_hash, u.failed_attempts, u.locked_until, u.disabled_at IS NOT NULL
   FROM app_user u JOIN institution i ON i.id = u.institution_id";

fn account(r: &SqliteRow, at: usize) -> Option<UserAccount> {
    Some(UserAccount {
        user: User {
            user_id: r.get(at),
            username: r.get(at + 1),
            role: Role::parse(r.get(at + 2))?,
            institution_id: r.get(at + 3),
            institution_code: InstitutionCode::parse(r.get::<&str, _>(at + 4)).ok()?,
            department: r.get(at + 5),
            via: None,
        },
        display_name: r.get(at + 6),
        password_hash: r.get(at + 7),
        failed_attempts: r.get(at + 8),
        locked_until: r.get(at + 9),
        disabled: r.get(at + 10),
    })
}

/// `Ok(Err(code))` names an institution that does not exist.
pub async fn add_user(
    pool: &SqlitePool,
    u: &NewUser,
    now: i64,
) -> Result<Result<i64, String>, sqlx::Error> {
    let inst: Option<i64> =
        sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
            .bind(&u.institution_code)
            .fetch_optional(pool)
            .await?;
    let Some(inst) = inst else {
        return Ok(Err(u.institution_code.clone()));
    };
    let id = sqlx::query_scalar(
        "INSERT INTO app_user (username, display_name, role, institution_id, department, password_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&u.username)
    .bind(&u.display_name)
    .bind(u.role.as_str())
    .bind(inst)
    .bind(&u.department)
    .bind(&u.password_hash)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(Ok(id))
}

pub async fn user_account(
    pool: &SqlitePool,
    username: &str,
) -> Result<Option<UserAccount>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ACCOUNT} WHERE u.username = ?"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().and_then(|r| account(r, 0)))
}

pub async fn login_failed(
    pool: &SqlitePool,
    user_id: i64,
    lock_until: Option<i64>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_user SET failed_attempts = failed_attempts + 1, locked_until = COALESCE(?, locked_until)
          WHERE id = ? RETURNING failed_attempts",
    )
    .bind(lock_until)
    .bind(user_id)
    .fetch_one(pool)
    .await
}

pub async fn login_succeeded(pool: &SqlitePool, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET failed_attempts = 0, locked_until = NULL WHERE id = ?")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn create_session(pool: &SqlitePool, s: &SessionRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_session (secret_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source_address)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.secret_hash)
    .bind(s.user_id)
    .bind(&s.csrf_token)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(&s.source_address)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn session(
    pool: &SqlitePool,
    secret_hash: &str,
) -> Result<Option<(SessionRecord, UserAccount)>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT s.secret_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.source_address,
                a.* FROM user_session s JOIN ({ACCOUNT}) a ON a.id = s.user_id
          WHERE s.secret_hash = ? AND s.ended_at IS NULL"
    )))
    .bind(secret_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| {
        let rec = SessionRecord {
            secret_hash: r.get(0),
            user_id: r.get(1),
            csrf_token: r.get(2),
            created_at: r.get(3),
            last_seen_at: r.get(4),
            expires_at: r.get(5),
            source_address: r.get(6),
        };
        Some((rec, account(&r, 7)?))
    }))
}

pub async fn touch_session(
    pool: &SqlitePool,
    secret_hash: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_session SET last_seen_at = ? WHERE secret_hash = ?")
        .bind(at)
        .bind(secret_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn end_session(pool: &SqlitePool, secret_hash: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_session SET ended_at = ? WHERE secret_hash = ? AND ended_at IS NULL")
        .bind(at)
        .bind(secret_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn user_account_by_id(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<UserAccount>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{ACCOUNT} WHERE u.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().and_then(|r| account(r, 0)))
}

pub async fn upsert_encounter(
    pool: &SqlitePool,
    e: &huren_archive::model::EncounterUpsert,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO encounter (institution_id, visit_number, patient_issuer, patient_id, id_blind, doctor_user_id, department, opened_at, closed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN NULL ELSE ? END)
         ON CONFLICT (institution_id, visit_number) DO UPDATE SET
           patient_issuer = excluded.patient_issuer, patient_id = excluded.patient_id,
           id_blind = excluded.id_blind,
           doctor_user_id = COALESCE(excluded.doctor_user_id, doctor_user_id),
           department = COALESCE(excluded.department, department),
           closed_at = CASE WHEN ? THEN NULL ELSE COALESCE(closed_at, ?) END
         RETURNING id",
    )
    .bind(e.institution_id)
    .bind(&e.visit_number)
    .bind(e.patient.columns().0)
    .bind(e.patient.columns().1)
    .bind(e.patient.columns().2)
    .bind(e.doctor_user_id)
    .bind(&e.department)
    .bind(now)
    .bind(e.open)
    .bind(now)
    .bind(e.open)
    .bind(now)
    .fetch_one(pool)
    .await
}

pub async fn create_launch_ticket(
    pool: &SqlitePool,
    t: &huren_archive::model::NewLaunchTicket,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO launch_ticket (secret_hash, issued_by, user_id, encounter_id, patient_issuer, patient_id, id_blind, issued_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.secret_hash)
    .bind(&t.issued_by)
    .bind(t.user_id)
    .bind(t.encounter_id)
    .bind(t.patient.columns().0)
    .bind(t.patient.columns().1)
    .bind(t.patient.columns().2)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Single use: the UPDATE that marks the ticket used is also the check (one statement, so two
/// simultaneous redemptions cannot both succeed).
pub async fn redeem_launch_ticket(
    pool: &SqlitePool,
    secret_hash: &str,
    now: i64,
) -> Result<Option<huren_archive::model::RedeemedTicket>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE launch_ticket SET used_at = ?
          WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?
          RETURNING user_id, encounter_id, patient_issuer, patient_id, id_blind",
    )
    .bind(now)
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| huren_archive::model::RedeemedTicket {
        user_id: r.get(0),
        encounter_id: r.get(1),
        patient: huren_archive::model::PatientRef::from_columns(r.get(2), r.get(3), r.get(4)),
    }))
}

/// The persons a person reaches: open encounters at their institution assigned to them or their
/// department (by record number or by identity number), their break-glass accesses, and the
/// patient authorizations they asked for — or, with `department_reach`, that a doctor of their
/// department asked for, when they are a doctor (issue #16: the authorization is for care).
pub async fn related_persons(
    pool: &SqlitePool,
    user: &huren_access::User,
    department_reach: bool,
) -> Result<Vec<(i64, String, bool, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT pe.id, pe.public_id, 0, 'all'
           FROM encounter e
           JOIN patient p ON p.issuer = e.patient_issuer AND p.patient_id = e.patient_id
           JOIN person pe ON pe.id = p.person_id
          WHERE e.closed_at IS NULL AND e.institution_id = ?1
            AND (e.doctor_user_id = ?2 OR (e.department IS NOT NULL AND e.department = ?3))
         UNION
         SELECT pe.id, pe.public_id, 0, 'all'
           FROM encounter e
           JOIN patient_identifier i ON i.system = e.patient_issuer AND i.blind = e.id_blind AND i.consistent = 1
           JOIN patient p ON p.id = i.patient_id
           JOIN person pe ON pe.id = p.person_id
          WHERE e.closed_at IS NULL AND e.institution_id = ?1 AND e.id_blind IS NOT NULL
            AND (e.doctor_user_id = ?2 OR (e.department IS NOT NULL AND e.department = ?3))
         UNION
         SELECT pe.id, pe.public_id, 1, 'all' FROM break_glass b JOIN person pe ON pe.id = b.person_id
          WHERE b.user_id = ?2 AND b.expires_at > unixepoch()
         UNION
         SELECT pe.id, pe.public_id, 0, a.scope FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
          WHERE a.institution_id = ?1 AND a.granted_at IS NOT NULL AND a.revoked_at IS NULL
            AND a.expires_at > unixepoch()
            AND (a.requested_by = ?2
              OR (?4 AND ?5 = 'doctor' AND ?3 IS NOT NULL
                  AND EXISTS (SELECT 1 FROM app_user r WHERE r.id = a.requested_by AND r.department = ?3)))",
    )
    .bind(user.institution_id)
    .bind(user.user_id)
    .bind(&user.department)
    .bind(department_reach)
    .bind(user.role.as_str())
    .fetch_all(pool)
    .await
}

/// Of these patient records, those with a study, report or lab result performed by one of
/// `institutions`.
pub async fn records_with_data_at(
    pool: &SqlitePool,
    patient_keys: &[i64],
    institutions: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    if patient_keys.is_empty() || institutions.is_empty() {
        return Ok(Vec::new());
    }
    // Integers from the index itself, never from a request: safe to write inline.
    let list = |keys: &[i64]| {
        keys.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let (records, own) = (list(patient_keys), list(institutions));
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT p.id FROM patient p WHERE p.id IN ({records}) AND (
            EXISTS (SELECT 1 FROM study s WHERE s.patient_id = p.id AND s.institution_id IN ({own}))
         OR EXISTS (SELECT 1 FROM report r WHERE r.patient_id = p.id AND r.performing_institution_id IN ({own}))
         OR EXISTS (SELECT 1 FROM lab_result r WHERE r.patient_id = p.id AND r.performing_institution_id IN ({own})))"
    )))
    .fetch_all(pool)
    .await
}

/// A sending institution and the performers it may send for.
pub async fn own_institutions(
    pool: &SqlitePool,
    institution_id: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, code FROM institution WHERE id = ?1
         UNION SELECT i.id, i.code FROM send_for f JOIN institution i ON i.id = f.performer_institution_id
          WHERE f.sender_institution_id = ?1",
    )
    .bind(institution_id)
    .fetch_all(pool)
    .await
}

/// The persons with an open encounter at an institution (any doctor or department).
pub async fn encounter_persons(
    pool: &SqlitePool,
    institution_id: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT pe.id, pe.public_id
           FROM encounter e
           JOIN patient p ON p.issuer = e.patient_issuer AND p.patient_id = e.patient_id
           JOIN person pe ON pe.id = p.person_id
          WHERE e.closed_at IS NULL AND e.institution_id = ?1
         UNION
         SELECT pe.id, pe.public_id
           FROM encounter e
           JOIN patient_identifier i ON i.system = e.patient_issuer AND i.blind = e.id_blind AND i.consistent = 1
           JOIN patient p ON p.id = i.patient_id
           JOIN person pe ON pe.id = p.person_id
          WHERE e.closed_at IS NULL AND e.institution_id = ?1 AND e.id_blind IS NOT NULL",
    )
    .bind(institution_id)
    .fetch_all(pool)
    .await
}

/// The visit number of the person's latest open encounter at an institution (by record or by
/// identity number).
pub async fn open_visit(
    pool: &SqlitePool,
    institution_id: i64,
    person: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT visit_number FROM (
           SELECT e.visit_number, e.opened_at, e.id FROM encounter e
             JOIN patient p ON p.issuer = e.patient_issuer AND p.patient_id = e.patient_id
             JOIN person pe ON pe.id = p.person_id
            WHERE e.closed_at IS NULL AND e.institution_id = ?1 AND pe.public_id = ?2
           UNION
           SELECT e.visit_number, e.opened_at, e.id FROM encounter e
             JOIN patient_identifier i ON i.system = e.patient_issuer AND i.blind = e.id_blind
                  AND i.consistent = 1
             JOIN patient p ON p.id = i.patient_id
             JOIN person pe ON pe.id = p.person_id
            WHERE e.closed_at IS NULL AND e.institution_id = ?1 AND e.id_blind IS NOT NULL
              AND pe.public_id = ?2)
         ORDER BY opened_at DESC, id DESC LIMIT 1",
    )
    .bind(institution_id)
    .bind(person)
    .fetch_optional(pool)
    .await
}

/// Opens a break-glass access to a person (by public id); its id, or None for no such person.
pub async fn start_break_glass(
    pool: &SqlitePool,
    user: &huren_access::User,
    person: &str,
    reason: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO break_glass (user_id, institution_id, person_id, reason, started_at, expires_at)
         SELECT ?, ?, id, ?, ?, ? FROM person WHERE public_id = ? RETURNING id",
    )
    .bind(user.user_id)
    .bind(user.institution_id)
    .bind(reason)
    .bind(now)
    .bind(expires_at)
    .bind(person)
    .fetch_optional(pool)
    .await
}

pub async fn break_glass_list(
    pool: &SqlitePool,
    institution_id: i64,
    open_only: bool,
) -> Result<Vec<huren_archive::model::BreakGlass>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.id, u.username, pe.public_id, b.reason, b.started_at, b.expires_at, r.username, b.reviewed_at,
                b.verdict, b.review_note
           FROM break_glass b JOIN app_user u ON u.id = b.user_id JOIN person pe ON pe.id = b.person_id
           LEFT JOIN app_user r ON r.id = b.reviewed_by
          WHERE b.institution_id = ? AND (? = 0 OR b.reviewed_at IS NULL)
          ORDER BY b.id",
    )
    .bind(institution_id)
    .bind(open_only)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| huren_archive::model::BreakGlass {
            id: r.get(0),
            doctor: r.get(1),
            person: r.get(2),
            reason: r.get(3),
            started_at: r.get(4),
            expires_at: r.get(5),
            reviewed_by: r.get(6),
            reviewed_at: r.get(7),
            verdict: r.get(8),
            review_note: r.get(9),
        })
        .collect())
}

/// Records a review; false when the access is not the institution's or was reviewed before.
pub async fn review_break_glass(
    pool: &SqlitePool,
    id: i64,
    reviewer: &huren_access::User,
    verdict: &str,
    note: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE break_glass SET reviewed_by = ?, reviewed_at = ?, verdict = ?, review_note = ?
          WHERE id = ? AND institution_id = ? AND reviewed_at IS NULL",
    )
    .bind(reviewer.user_id)
    .bind(now)
    .bind(verdict)
    .bind(note)
    .bind(id)
    .bind(reviewer.institution_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn audit_events(
    pool: &SqlitePool,
    f: &huren_archive::model::AuditFilter,
    limit: u32,
) -> Result<Vec<huren_archive::model::AuditRow>, sqlx::Error> {
    // A patient is named by person (`person:…` in the trail) or by one record (`PID@issuer`).
    let rows = sqlx::query(
        "SELECT id, at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq
           FROM audit_event
          WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) AND (?3 IS NULL OR id < ?3)
            AND (?4 IS NULL OR action = ?4) AND (?5 IS NULL OR institution = ?5)
            AND (?6 IS NULL OR patient = ?6 OR patient = 'person:' || ?6)
            AND (?7 IS NULL OR instr(actor, ?7) > 0)
          ORDER BY id DESC LIMIT ?8",
    )
    .bind(f.from)
    .bind(f.until)
    .bind(f.before)
    .bind(f.action.as_deref())
    .bind(f.institution.as_deref())
    .bind(f.patient.as_deref())
    .bind(f.actor.as_deref())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| huren_archive::model::AuditRow {
            id: r.get(0),
            at: r.get(1),
            action: r.get(2),
            outcome: r.get(3),
            actor: r.get(4),
            institution: r.get(5),
            patient: r.get(6),
            study_uid: r.get(7),
            object: r.get(8),
            source_address: r.get(9),
            detail: r.get(10),
            seq: r.get(11),
        })
        .collect())
}

pub async fn patient_contact(
    pool: &SqlitePool,
    person: &str,
) -> Result<Option<huren_archive::model::SealedContact>, sqlx::Error> {
    let row: Option<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT c.sealed, c.key_id FROM patient_contact c JOIN person pe ON pe.id = c.person_id
          WHERE pe.public_id = ? AND c.channel = 'sms'",
    )
    .bind(person)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(sealed, key_id)| huren_archive::model::SealedContact { sealed, key_id }))
}

pub async fn create_authorization(
    pool: &SqlitePool,
    a: &huren_archive::model::NewAuthorization,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO patient_authorization (person_id, institution_id, requested_by, scope, code_hash, code_expires_at, days, created_at)
         SELECT id, ?, ?, ?, ?, ?, ?, ? FROM person WHERE public_id = ? RETURNING id",
    )
    .bind(a.institution_id)
    .bind(a.requested_by)
    .bind(&a.scope)
    .bind(&a.code_hash)
    .bind(a.code_expires_at)
    .bind(a.days)
    .bind(a.now)
    .bind(&a.person)
    .fetch_one(pool)
    .await
}

pub async fn confirm_authorization(
    pool: &SqlitePool,
    id: i64,
    institution_id: i64,
    code_hash: &str,
    now: i64,
) -> Result<Option<huren_archive::model::AuthorizationView>, sqlx::Error> {
    // Reads, then writes: a deferred transaction could not upgrade to a writer once another
    // connection had committed since its read (SQLITE_BUSY at once, no busy wait), which the
    // quality workers' frequent commits made likely. Immediate takes the write lock first, and
    // waits for it.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(String, i64, i64, i64, String, String)> = sqlx::query_as(
        "SELECT a.code_hash, a.code_expires_at, a.attempts, a.days, pe.public_id, a.scope
           FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
          WHERE a.id = ? AND a.institution_id = ? AND a.granted_at IS NULL AND a.revoked_at IS NULL",
    )
    .bind(id)
    .bind(institution_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((hash, code_expires, attempts, days, person, scope)) = row else {
        return Ok(None);
    };
    if now >= code_expires || attempts >= 5 {
        return Ok(None);
    }
    if hash != code_hash {
        sqlx::query("UPDATE patient_authorization SET attempts = attempts + 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    let expires_at = now + days * 86_400;
    sqlx::query("UPDATE patient_authorization SET granted_at = ?, expires_at = ? WHERE id = ?")
        .bind(now)
        .bind(expires_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(huren_archive::model::AuthorizationView {
        id,
        person,
        scope,
        granted_at: now,
        expires_at,
    }))
}

pub async fn revoke_authorization(
    pool: &SqlitePool,
    id: i64,
    institution_id: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE patient_authorization SET revoked_at = ? WHERE id = ? AND institution_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(institution_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}
