//! `ConsentIndex` on PostgreSQL: the statements of `crate::consent` in PostgreSQL's dialect.
//! Where SQLite serialises a code check by `BEGIN IMMEDIATE` (one writer at a time), here the
//! change or authorization row is locked (`FOR UPDATE`) before its code is checked, so two
//! nodes checking codes for one request at once count both attempts and grant at most once.

use super::PgIndex;
use crate::consent::{BREAK_GLASS_COLUMNS, BreakGlassRow, CodeCheck, check_code};
use crate::sql::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use sqlx::PgConnection;

/// Sets the number in force from a change row (in the caller's transaction).
async fn apply(conn: &mut PgConnection, change: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patient_contact (person_id, channel, sealed, key_id, registered_by, created_at)
         SELECT person_id, 'sms', sealed, key_id, requested_by, $1 FROM contact_change WHERE id = $2
         ON CONFLICT (person_id, channel) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id,
           registered_by = excluded.registered_by, created_at = excluded.created_at",
    )
    .bind(now)
    .bind(change)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE contact_change SET confirmed_at = $1 WHERE id = $2")
        .bind(now)
        .bind(change)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl ConsentIndex for PgIndex {
    async fn record_contact_change(&self, c: NewContactChange) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO contact_change (person_id, institution_id, requested_by, sealed, key_id, how,
               verified_by, code_hash, code_expires_at, created_at)
             SELECT id, $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM person WHERE public_id = $10 RETURNING id",
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
        .await
        .map_err(db)?;
        let Some(id) = id else {
            return Ok(None);
        };
        if c.code_hash.is_none() {
            apply(&mut tx, id, c.now).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(id))
    }

    async fn confirm_contact_change(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<ContactChangeView>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row: Option<(Option<String>, Option<i64>, i64, String)> = sqlx::query_as(
            "SELECT c.code_hash, c.code_expires_at, c.attempts, pe.public_id
               FROM contact_change c JOIN person pe ON pe.id = c.person_id
              WHERE c.id = $1 AND c.institution_id = $2 AND c.confirmed_at IS NULL
                FOR UPDATE OF c",
        )
        .bind(id)
        .bind(institution_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((Some(hash), Some(expires), attempts, person)) = row else {
            return Ok(None);
        };
        match check_code(now, expires, attempts, &hash, code_hash) {
            CodeCheck::Spent => return Ok(None),
            CodeCheck::Wrong => {
                sqlx::query("UPDATE contact_change SET attempts = attempts + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                return Ok(None);
            }
            CodeCheck::Right => {}
        }
        apply(&mut tx, id, now).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(ContactChangeView { id, person }))
    }

    async fn authorization_requests_since(
        &self,
        person: &str,
        user_id: i64,
        since: i64,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
                      WHERE pe.public_id = $1 AND a.created_at >= $2),
                    (SELECT COUNT(*) FROM patient_authorization WHERE requested_by = $3 AND created_at >= $2)",
        )
        .bind(person)
        .bind(since)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn patient_contact(&self, person: &str) -> Result<Option<SealedContact>, StoreError> {
        let row: Option<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT c.sealed, c.key_id FROM patient_contact c JOIN person pe ON pe.id = c.person_id
              WHERE pe.public_id = $1 AND c.channel = 'sms'",
        )
        .bind(person)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(|(sealed, key_id)| SealedContact { sealed, key_id }))
    }

    async fn create_authorization(&self, a: NewAuthorization) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO patient_authorization (person_id, institution_id, requested_by, scope, code_hash,
               code_expires_at, days, created_at)
             SELECT id, $1, $2, $3, $4, $5, $6, $7 FROM person WHERE public_id = $8 RETURNING id",
        )
        .bind(a.institution_id)
        .bind(a.requested_by)
        .bind(&a.scope)
        .bind(&a.code_hash)
        .bind(a.code_expires_at)
        .bind(a.days)
        .bind(a.now)
        .bind(&a.person)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn confirm_authorization(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationView>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row: Option<(String, i64, i64, i64, String, String)> = sqlx::query_as(
            "SELECT a.code_hash, a.code_expires_at, a.attempts, a.days, pe.public_id, a.scope
               FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
              WHERE a.id = $1 AND a.institution_id = $2 AND a.granted_at IS NULL AND a.revoked_at IS NULL
                FOR UPDATE OF a",
        )
        .bind(id)
        .bind(institution_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((hash, code_expires, attempts, days, person, scope)) = row else {
            return Ok(None);
        };
        match check_code(now, code_expires, attempts, &hash, code_hash) {
            CodeCheck::Spent => return Ok(None),
            CodeCheck::Wrong => {
                sqlx::query(
                    "UPDATE patient_authorization SET attempts = attempts + 1 WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
                return Ok(None);
            }
            CodeCheck::Right => {}
        }
        let expires_at = now + days * 86_400;
        sqlx::query(
            "UPDATE patient_authorization SET granted_at = $1, expires_at = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(expires_at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(AuthorizationView {
            id,
            person,
            scope,
            granted_at: now,
            expires_at,
        }))
    }

    async fn revoke_authorization(
        &self,
        id: i64,
        institution_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE patient_authorization SET revoked_at = $1
              WHERE id = $2 AND institution_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(institution_id)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn start_break_glass(
        &self,
        user: &huren_access::User,
        person: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO break_glass (user_id, institution_id, person_id, reason, started_at, expires_at)
             SELECT $1, $2, id, $3, $4, $5 FROM person WHERE public_id = $6 RETURNING id",
        )
        .bind(user.user_id)
        .bind(user.institution_id)
        .bind(reason)
        .bind(now)
        .bind(expires_at)
        .bind(person)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn break_glass_list(
        &self,
        institution_id: i64,
        open_only: bool,
    ) -> Result<Vec<BreakGlass>, StoreError> {
        let rows: Vec<BreakGlassRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {BREAK_GLASS_COLUMNS}
               FROM break_glass b JOIN app_user u ON u.id = b.user_id JOIN person pe ON pe.id = b.person_id
               LEFT JOIN app_user r ON r.id = b.reviewed_by
              WHERE b.institution_id = $1 AND (NOT $2 OR b.reviewed_at IS NULL)
              ORDER BY b.id"
        )))
        .bind(institution_id)
        .bind(open_only)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn review_break_glass(
        &self,
        id: i64,
        reviewer: &huren_access::User,
        verdict: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE break_glass SET reviewed_by = $1, reviewed_at = $2, verdict = $3, review_note = $4
              WHERE id = $5 AND institution_id = $6 AND reviewed_at IS NULL",
        )
        .bind(reviewer.user_id)
        .bind(now)
        .bind(verdict)
        .bind(note)
        .bind(id)
        .bind(reviewer.institution_id)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n == 1)
    }
}
