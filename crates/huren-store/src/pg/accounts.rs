//! `AccountIndex` on PostgreSQL: people's accounts, sessions, encounters and launch tickets,
//! and the relationships that open a person's data to a reader, in PostgreSQL's dialect
//! (shared rows from `crate::accounts`).

use super::PgIndex;
use crate::accounts::{ACCOUNT, AccountRow, SESSION_COLUMNS, SessionRow, TicketRow, id_list};
use crate::sql::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;

#[async_trait]
impl AccountIndex for PgIndex {
    async fn add_user(&self, u: NewUser) -> Result<i64, StoreError> {
        let inst = self.institution_id(&u.institution_code).await?;
        sqlx::query_scalar(
            "INSERT INTO app_user (username, display_name, role, institution_id, department, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(u.role.as_str())
        .bind(inst)
        .bind(&u.department)
        .bind(&u.password_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn user_account(&self, username: &str) -> Result<Option<UserAccount>, StoreError> {
        let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{ACCOUNT} WHERE u.username = $1"
        )))
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.and_then(AccountRow::account))
    }

    async fn login_failed(&self, user_id: i64, lock_until: Option<i64>) -> Result<i64, StoreError> {
        // One statement: two nodes counting failures at once both count.
        sqlx::query_scalar(
            "UPDATE app_user SET failed_attempts = failed_attempts + 1,
                    locked_until = COALESCE($1, locked_until)
              WHERE id = $2 RETURNING failed_attempts",
        )
        .bind(lock_until)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn login_succeeded(&self, user_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE app_user SET failed_attempts = 0, locked_until = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn create_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_session (secret_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source_address)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.secret_hash)
        .bind(s.user_id)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.source_address)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRecord, UserAccount)>, StoreError> {
        let row: Option<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM user_session s JOIN ({ACCOUNT}) a ON a.id = s.user_id
              WHERE s.secret_hash = $1 AND s.ended_at IS NULL"
        )))
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.and_then(SessionRow::session))
    }

    async fn touch_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        // Never backwards: two nodes serving one session's requests write in any order.
        sqlx::query(
            "UPDATE user_session SET last_seen_at = GREATEST(last_seen_at, $1) WHERE secret_hash = $2",
        )
        .bind(at)
        .bind(secret_hash)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn end_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_session SET ended_at = $1 WHERE secret_hash = $2 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(secret_hash)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn upsert_encounter(&self, e: EncounterUpsert) -> Result<i64, StoreError> {
        let (issuer, patient_id, blind) = e.patient.columns();
        sqlx::query_scalar(
            "INSERT INTO encounter AS x (institution_id, visit_number, patient_issuer, patient_id, id_blind,
                                         doctor_user_id, department, opened_at, closed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN NULL ELSE $8 END)
             ON CONFLICT (institution_id, visit_number) DO UPDATE SET
               patient_issuer = excluded.patient_issuer, patient_id = excluded.patient_id,
               id_blind = excluded.id_blind,
               doctor_user_id = COALESCE(excluded.doctor_user_id, x.doctor_user_id),
               department = COALESCE(excluded.department, x.department),
               closed_at = CASE WHEN $9 THEN NULL ELSE COALESCE(x.closed_at, $8) END
             RETURNING id",
        )
        .bind(e.institution_id)
        .bind(&e.visit_number)
        .bind(issuer)
        .bind(patient_id)
        .bind(blind)
        .bind(e.doctor_user_id)
        .bind(&e.department)
        .bind(now())
        .bind(e.open)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn create_launch_ticket(&self, t: NewLaunchTicket) -> Result<(), StoreError> {
        let (issuer, patient_id, blind) = t.patient.columns();
        sqlx::query(
            "INSERT INTO launch_ticket (secret_hash, issued_by, user_id, encounter_id, patient_issuer,
                                        patient_id, id_blind, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.secret_hash)
        .bind(&t.issued_by)
        .bind(t.user_id)
        .bind(t.encounter_id)
        .bind(issuer)
        .bind(patient_id)
        .bind(blind)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn redeem_launch_ticket(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<RedeemedTicket>, StoreError> {
        // The UPDATE is the check (one statement; a row is updated once, so two nodes
        // redeeming one ticket at once cannot both succeed).
        let row: Option<TicketRow> = sqlx::query_as(
            "UPDATE launch_ticket SET used_at = $1
              WHERE secret_hash = $2 AND used_at IS NULL AND expires_at > $1
              RETURNING user_id, encounter_id, patient_issuer, patient_id, id_blind",
        )
        .bind(now)
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn user_account_by_id(&self, user_id: i64) -> Result<Option<UserAccount>, StoreError> {
        let row: Option<AccountRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{ACCOUNT} WHERE u.id = $1")))
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(row.and_then(AccountRow::account))
    }

    async fn encounter_persons(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        sqlx::query_as(
            "SELECT pe.id, pe.public_id
               FROM encounter e
               JOIN patient p ON p.issuer = e.patient_issuer AND p.patient_id = e.patient_id
               JOIN person pe ON pe.id = p.person_id
              WHERE e.closed_at IS NULL AND e.institution_id = $1
             UNION
             SELECT pe.id, pe.public_id
               FROM encounter e
               JOIN patient_identifier i ON i.system = e.patient_issuer AND i.blind = e.id_blind AND i.consistent = 1
               JOIN patient p ON p.id = i.patient_id
               JOIN person pe ON pe.id = p.person_id
              WHERE e.closed_at IS NULL AND e.institution_id = $1 AND e.id_blind IS NOT NULL",
        )
        .bind(institution_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn related_persons(
        &self,
        user: &huren_access::User,
        department_reach: bool,
    ) -> Result<Vec<(i64, String, bool, String)>, StoreError> {
        // The rule of crate::accounts::related_persons.
        sqlx::query_as(
            "SELECT DISTINCT pe.id, pe.public_id, false, 'all'
               FROM encounter e
               JOIN patient p ON p.issuer = e.patient_issuer AND p.patient_id = e.patient_id
               JOIN person pe ON pe.id = p.person_id
              WHERE e.closed_at IS NULL AND e.institution_id = $1
                AND (e.doctor_user_id = $2 OR (e.department IS NOT NULL AND e.department = $3))
             UNION
             SELECT pe.id, pe.public_id, false, 'all'
               FROM encounter e
               JOIN patient_identifier i ON i.system = e.patient_issuer AND i.blind = e.id_blind AND i.consistent = 1
               JOIN patient p ON p.id = i.patient_id
               JOIN person pe ON pe.id = p.person_id
              WHERE e.closed_at IS NULL AND e.institution_id = $1 AND e.id_blind IS NOT NULL
                AND (e.doctor_user_id = $2 OR (e.department IS NOT NULL AND e.department = $3))
             UNION
             SELECT pe.id, pe.public_id, true, 'all' FROM break_glass b JOIN person pe ON pe.id = b.person_id
              WHERE b.user_id = $2 AND b.expires_at > $6
             UNION
             SELECT pe.id, pe.public_id, false, a.scope FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
              WHERE a.institution_id = $1 AND a.granted_at IS NOT NULL AND a.revoked_at IS NULL
                AND a.expires_at > $6
                AND (a.requested_by = $2
                  OR ($4 AND $5 = 'doctor' AND $3::text IS NOT NULL
                      AND EXISTS (SELECT 1 FROM app_user r WHERE r.id = a.requested_by AND r.department = $3)))",
        )
        .bind(user.institution_id)
        .bind(user.user_id)
        .bind(&user.department)
        .bind(department_reach)
        .bind(user.role.as_str())
        .bind(now())
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn records_with_data_at(
        &self,
        patient_keys: &[i64],
        institutions: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
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
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}
