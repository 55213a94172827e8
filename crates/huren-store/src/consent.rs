//! A patient's consent and emergencies in SQL (`ConsentIndex`): mobile-number changes and their
//! confirmation, authorization by SMS code, break-glass and its review.

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::model::{ContactChangeView, NewContactChange};
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use sqlx::SqliteConnection;
use sqlx::SqlitePool;

/// What a code sent by SMS is worth when a patient types it back: five attempts, until it
/// expires, once. Both dialects' adapters apply this to the row they locked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    /// Expired or out of attempts: refused without counting.
    Spent,
    /// Another code: refused, and the attempt counts.
    Wrong,
    Right,
}

pub(crate) fn check_code(
    now: i64,
    expires: i64,
    attempts: i64,
    stored: &str,
    given: &str,
) -> CodeCheck {
    if now >= expires || attempts >= 5 {
        CodeCheck::Spent
    } else if stored != given {
        CodeCheck::Wrong
    } else {
        CodeCheck::Right
    }
}

/// A break-glass row with its doctor's, person's and reviewer's names, as both dialects read it.
#[derive(sqlx::FromRow)]
pub(crate) struct BreakGlassRow {
    id: i64,
    doctor: String,
    person: String,
    reason: String,
    started_at: i64,
    expires_at: i64,
    reviewed_by: Option<String>,
    reviewed_at: Option<i64>,
    verdict: Option<String>,
    review_note: Option<String>,
}

/// The columns of [`BreakGlassRow`], for `SELECT {BREAK_GLASS_COLUMNS} FROM break_glass b …`.
pub(crate) const BREAK_GLASS_COLUMNS: &str = "b.id, u.username AS doctor, pe.public_id AS person, b.reason, b.started_at, b.expires_at, r.username AS reviewed_by, b.reviewed_at, b.verdict, b.review_note";

impl From<BreakGlassRow> for huren_archive::model::BreakGlass {
    fn from(r: BreakGlassRow) -> Self {
        huren_archive::model::BreakGlass {
            id: r.id,
            doctor: r.doctor,
            person: r.person,
            reason: r.reason,
            started_at: r.started_at,
            expires_at: r.expires_at,
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            verdict: r.verdict,
            review_note: r.review_note,
        }
    }
}

/// Sets the number in force from a change row (in the caller's transaction).
async fn apply(conn: &mut SqliteConnection, change: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patient_contact (person_id, channel, sealed, key_id, registered_by, created_at)
         SELECT person_id, 'sms', sealed, key_id, requested_by, ?1 FROM contact_change WHERE id = ?2
         ON CONFLICT (person_id, channel) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id,
           registered_by = excluded.registered_by, created_at = excluded.created_at",
    )
    .bind(now)
    .bind(change)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE contact_change SET confirmed_at = ? WHERE id = ?")
        .bind(now)
        .bind(change)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a change; one without a code takes effect in the same transaction. None: no such
/// person.
pub async fn record_change(
    pool: &SqlitePool,
    c: &NewContactChange,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO contact_change (person_id, institution_id, requested_by, sealed, key_id, how,
           verified_by, code_hash, code_expires_at, created_at)
         SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM person WHERE public_id = ? RETURNING id",
    )
    .bind(c.institution_id)
    .bind(&c.requested_by)
    .bind(&c.contact.sealed)
    .bind(&c.contact.key_id)
    .bind(c.how)
    .bind(c.verified_by)
    .bind(&c.code_hash)
    .bind(c.code_expires_at)
    .bind(c.now)
    .bind(&c.person)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    if c.code_hash.is_none() {
        apply(&mut tx, id, c.now).await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// A pending change confirmed with the code sent to the old number: five attempts, until the
/// code expires, once. `Ok(None)`: refused (an attempt used when the change was live).
pub async fn confirm_change(
    pool: &SqlitePool,
    id: i64,
    institution_id: i64,
    code_hash: &str,
    now: i64,
) -> Result<Option<ContactChangeView>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(Option<String>, Option<i64>, i64, String)> = sqlx::query_as(
        "SELECT c.code_hash, c.code_expires_at, c.attempts, pe.public_id
           FROM contact_change c JOIN person pe ON pe.id = c.person_id
          WHERE c.id = ? AND c.institution_id = ? AND c.confirmed_at IS NULL",
    )
    .bind(id)
    .bind(institution_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Some(hash), Some(expires), attempts, person)) = row else {
        return Ok(None);
    };
    match check_code(now, expires, attempts, &hash, code_hash) {
        CodeCheck::Spent => return Ok(None),
        CodeCheck::Wrong => {
            sqlx::query("UPDATE contact_change SET attempts = attempts + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        CodeCheck::Right => {}
    }
    apply(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(Some(ContactChangeView { id, person }))
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
    let rows: Vec<BreakGlassRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {BREAK_GLASS_COLUMNS}
           FROM break_glass b JOIN app_user u ON u.id = b.user_id JOIN person pe ON pe.id = b.person_id
           LEFT JOIN app_user r ON r.id = b.reviewed_by
          WHERE b.institution_id = ? AND (? = 0 OR b.reviewed_at IS NULL)
          ORDER BY b.id"
    )))
    .bind(institution_id)
    .bind(open_only)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
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
    match check_code(now, code_expires, attempts, &hash, code_hash) {
        CodeCheck::Spent => return Ok(None),
        CodeCheck::Wrong => {
            sqlx::query("UPDATE patient_authorization SET attempts = attempts + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        CodeCheck::Right => {}
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

#[async_trait]
impl ConsentIndex for SqliteIndex {
    async fn record_contact_change(&self, c: NewContactChange) -> Result<Option<i64>, StoreError> {
        record_change(&self.pool, &c).await.map_err(db)
    }

    async fn confirm_contact_change(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<ContactChangeView>, StoreError> {
        confirm_change(&self.pool, id, institution_id, code_hash, now)
            .await
            .map_err(db)
    }

    async fn authorization_requests_since(
        &self,
        person: &str,
        user_id: i64,
        since: i64,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
                      WHERE pe.public_id = ? AND a.created_at >= ?),
                    (SELECT COUNT(*) FROM patient_authorization WHERE requested_by = ? AND created_at >= ?)",
        )
        .bind(person)
        .bind(since)
        .bind(user_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn patient_contact(&self, person: &str) -> Result<Option<SealedContact>, StoreError> {
        patient_contact(&self.pool, person).await.map_err(db)
    }

    async fn create_authorization(&self, a: NewAuthorization) -> Result<i64, StoreError> {
        create_authorization(&self.pool, &a).await.map_err(db)
    }

    async fn confirm_authorization(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationView>, StoreError> {
        confirm_authorization(&self.pool, id, institution_id, code_hash, now)
            .await
            .map_err(db)
    }

    async fn revoke_authorization(
        &self,
        id: i64,
        institution_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        revoke_authorization(&self.pool, id, institution_id, now)
            .await
            .map_err(db)
    }

    async fn start_break_glass(
        &self,
        user: &huren_access::User,
        person: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        start_break_glass(&self.pool, user, person, reason, now, expires_at)
            .await
            .map_err(db)
    }

    async fn break_glass_list(
        &self,
        institution_id: i64,
        open_only: bool,
    ) -> Result<Vec<BreakGlass>, StoreError> {
        break_glass_list(&self.pool, institution_id, open_only)
            .await
            .map_err(db)
    }

    async fn review_break_glass(
        &self,
        id: i64,
        reviewer: &huren_access::User,
        verdict: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        review_break_glass(&self.pool, id, reviewer, verdict, note, now)
            .await
            .map_err(db)
    }
}
