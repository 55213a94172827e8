//! SQL for people's accounts and sessions (issue #6).

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_access::{Role, User};
use huren_archive::model::*;
use huren_archive::model::{NewUser, SessionRecord, UserAccount};
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_types::InstitutionCode;
use sqlx::SqlitePool;

/// Integers from the index itself, never from a request: safe to write into a statement.
pub(crate) fn id_list(keys: &[i64]) -> String {
    keys.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A person's account with their institution's code, as both dialects read it (columns named
/// as in [`ACCOUNT`]).
#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: i64,
    username: String,
    role: String,
    institution_id: i64,
    code: String,
    department: Option<String>,
    display_name: String,
    password_hash: String,
    failed_attempts: i64,
    locked_until: Option<i64>,
    disabled: bool,
}

pub(crate) const ACCOUNT: &str =
    "SELECT u.id, u.username, u.role, u.institution_id, i.code, u.department, u.display_name,
        u.password_hash, u.failed_attempts, u.locked_until, u.disabled_at IS NOT NULL AS disabled
   FROM app_user u JOIN institution i ON i.id = u.institution_id";

impl AccountRow {
    /// `None` for a role or code this build does not know (a row written by a newer one).
    pub(crate) fn account(self) -> Option<UserAccount> {
        Some(UserAccount {
            user: User {
                user_id: self.id,
                username: self.username,
                role: Role::parse(&self.role)?,
                institution_id: self.institution_id,
                institution_code: InstitutionCode::parse(&self.code).ok()?,
                department: self.department,
                via: None,
            },
            display_name: self.display_name,
            password_hash: self.password_hash,
            failed_attempts: self.failed_attempts,
            locked_until: self.locked_until,
            disabled: self.disabled,
        })
    }
}

/// A session with its person's account.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    secret_hash: String,
    user_id: i64,
    csrf_token: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    source_address: Option<String>,
    #[sqlx(flatten)]
    account: AccountRow,
}

/// The columns of [`SessionRow`] over `user_session s JOIN ({ACCOUNT}) a`.
pub(crate) const SESSION_COLUMNS: &str = "s.secret_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.source_address, a.*";

impl SessionRow {
    pub(crate) fn session(self) -> Option<(SessionRecord, UserAccount)> {
        let rec = SessionRecord {
            secret_hash: self.secret_hash,
            user_id: self.user_id,
            csrf_token: self.csrf_token,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
            source_address: self.source_address,
        };
        Some((rec, self.account.account()?))
    }
}

/// A redeemed launch ticket's row.
#[derive(sqlx::FromRow)]
pub(crate) struct TicketRow {
    user_id: i64,
    encounter_id: Option<i64>,
    patient_issuer: String,
    patient_id: Option<String>,
    id_blind: Option<String>,
}

impl From<TicketRow> for huren_archive::model::RedeemedTicket {
    fn from(r: TicketRow) -> Self {
        huren_archive::model::RedeemedTicket {
            user_id: r.user_id,
            encounter_id: r.encounter_id,
            patient: huren_archive::model::PatientRef::from_columns(
                r.patient_issuer,
                r.patient_id,
                r.id_blind,
            ),
        }
    }
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
    let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ACCOUNT} WHERE u.username = ?"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(AccountRow::account))
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
    let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM user_session s JOIN ({ACCOUNT}) a ON a.id = s.user_id
          WHERE s.secret_hash = ? AND s.ended_at IS NULL"
    )))
    .bind(secret_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(SessionRow::session))
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
    let row: Option<AccountRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{ACCOUNT} WHERE u.id = ?")))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(AccountRow::account))
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
    let row: Option<TicketRow> = sqlx::query_as(
        "UPDATE launch_ticket SET used_at = ?
          WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?
          RETURNING user_id, encounter_id, patient_issuer, patient_id, id_blind",
    )
    .bind(now)
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Into::into))
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
    let (records, own) = (id_list(patient_keys), id_list(institutions));
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

#[async_trait]
impl AccountIndex for SqliteIndex {
    async fn add_user(&self, u: NewUser) -> Result<i64, StoreError> {
        match add_user(&self.pool, &u, now()).await.map_err(db)? {
            Ok(id) => Ok(id),
            Err(code) => Err(StoreError::NotFound(format!("institution {code}"))),
        }
    }

    async fn user_account(&self, username: &str) -> Result<Option<UserAccount>, StoreError> {
        user_account(&self.pool, username).await.map_err(db)
    }

    async fn login_failed(&self, user_id: i64, lock_until: Option<i64>) -> Result<i64, StoreError> {
        login_failed(&self.pool, user_id, lock_until)
            .await
            .map_err(db)
    }

    async fn login_succeeded(&self, user_id: i64) -> Result<(), StoreError> {
        login_succeeded(&self.pool, user_id).await.map_err(db)
    }

    async fn create_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        create_session(&self.pool, &s).await.map_err(db)
    }

    async fn session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRecord, UserAccount)>, StoreError> {
        session(&self.pool, secret_hash).await.map_err(db)
    }

    async fn touch_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        touch_session(&self.pool, secret_hash, at).await.map_err(db)
    }

    async fn end_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        end_session(&self.pool, secret_hash, at).await.map_err(db)
    }

    async fn upsert_encounter(&self, e: EncounterUpsert) -> Result<i64, StoreError> {
        upsert_encounter(&self.pool, &e, now()).await.map_err(db)
    }

    async fn create_launch_ticket(&self, t: NewLaunchTicket) -> Result<(), StoreError> {
        create_launch_ticket(&self.pool, &t).await.map_err(db)
    }

    async fn redeem_launch_ticket(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<RedeemedTicket>, StoreError> {
        redeem_launch_ticket(&self.pool, secret_hash, now)
            .await
            .map_err(db)
    }

    async fn user_account_by_id(&self, user_id: i64) -> Result<Option<UserAccount>, StoreError> {
        user_account_by_id(&self.pool, user_id).await.map_err(db)
    }

    async fn encounter_persons(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        encounter_persons(&self.pool, institution_id)
            .await
            .map_err(db)
    }

    async fn related_persons(
        &self,
        user: &huren_access::User,
        department_reach: bool,
    ) -> Result<Vec<(i64, String, bool, String)>, StoreError> {
        related_persons(&self.pool, user, department_reach)
            .await
            .map_err(db)
    }

    async fn records_with_data_at(
        &self,
        patient_keys: &[i64],
        institutions: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        records_with_data_at(&self.pool, patient_keys, institutions)
            .await
            .map_err(db)
    }
}
