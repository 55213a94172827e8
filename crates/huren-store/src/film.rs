//! SQL for the patient's cloud film (issue #20): sign-in codes, patients' sessions, shares,
//! and the patient's own view of the authorizations they gave. Each change is one statement,
//! so there is no read-then-write race between two requests with the same code or link.

use crate::sql::db;
use crate::sqlite::SqliteIndex;
use async_trait::async_trait;
use huren_access::PatientSelf;
use huren_archive::film::{
    FilmSession, FilmStore, NewFilmSession, NewFilmSignin, OpenShare, PersonAuthorization,
    ShareView,
};
use huren_archive::ports::StoreError;

#[async_trait]
impl FilmStore for SqliteIndex {
    async fn create_film_signin(&self, s: NewFilmSignin) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO film_signin (person_id, code_hash, code_expires_at, source_address, created_at)
             VALUES ((SELECT id FROM person WHERE public_id = ?), ?, ?, ?, ?) RETURNING id",
        )
        .bind(&s.person)
        .bind(&s.code_hash)
        .bind(s.code_expires_at)
        .bind(&s.source_address)
        .bind(s.now)
        .fetch_one(self.pool())
        .await
        .map_err(db)
    }

    async fn film_signins_since(
        &self,
        person: Option<&str>,
        source: Option<&str>,
        since: i64,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM film_signin f JOIN person p ON p.id = f.person_id
                      WHERE p.public_id = ?1 AND f.created_at >= ?3),
                    (SELECT COUNT(*) FROM film_signin WHERE source_address = ?2 AND created_at >= ?3)",
        )
        .bind(person)
        .bind(source)
        .bind(since)
        .fetch_one(self.pool())
        .await
        .map_err(db)
    }

    async fn confirm_film_signin(
        &self,
        id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        // The right code, in time, unused, within five attempts, for a person: used now.
        let ok: Option<(i64, String)> = sqlx::query_as(
            "UPDATE film_signin SET used_at = ?2
              WHERE id = ?1 AND used_at IS NULL AND attempts < 5 AND code_expires_at > ?2
                AND code_hash = ?3 AND person_id IS NOT NULL
             RETURNING person_id,
                       (SELECT p.public_id FROM person p WHERE p.id = film_signin.person_id)",
        )
        .bind(id)
        .bind(now)
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        if ok.is_none() {
            sqlx::query(
                "UPDATE film_signin SET attempts = attempts + 1
                  WHERE id = ? AND used_at IS NULL AND attempts < 5",
            )
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db)?;
        }
        Ok(ok)
    }

    async fn create_film_session(&self, s: NewFilmSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO film_session (secret_hash, person_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.secret_hash)
        .bind(s.person_key)
        .bind(&s.csrf_token)
        .bind(s.now)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn film_session(
        &self,
        secret_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<FilmSession>, StoreError> {
        let row: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT s.person_id, p.public_id, s.csrf_token, s.expires_at, s.last_seen_at
               FROM film_session s JOIN person p ON p.id = s.person_id
              WHERE s.secret_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2
                AND s.last_seen_at > ?2 - ?3 AND p.merged_into IS NULL",
        )
        .bind(secret_hash)
        .bind(now)
        .bind(idle_secs)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        let Some((key, person, csrf_token, expires_at, last_seen)) = row else {
            return Ok(None);
        };
        // A viewer makes hundreds of requests a minute: the idle clock moves once a minute.
        if now - last_seen >= 60 {
            sqlx::query("UPDATE film_session SET last_seen_at = ? WHERE secret_hash = ?")
                .bind(now)
                .bind(secret_hash)
                .execute(self.pool())
                .await
                .map_err(db)?;
        }
        Ok(Some(FilmSession {
            patient: PatientSelf {
                person_key: key,
                person,
                share: None,
            },
            csrf_token,
            expires_at,
        }))
    }

    async fn end_film_session(&self, secret_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE film_session SET ended_at = ? WHERE secret_hash = ? AND ended_at IS NULL",
        )
        .bind(now)
        .bind(secret_hash)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn create_share(
        &self,
        person_key: i64,
        study_uid: &str,
        secret_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO film_share (person_id, study_id, secret_hash, created_at, expires_at)
             SELECT ?1, s.id, ?3, ?4, ?5 FROM study s JOIN patient p ON p.id = s.patient_id
              WHERE s.study_uid = ?2 AND p.person_id = ?1
              LIMIT 1
             RETURNING id",
        )
        .bind(person_key)
        .bind(study_uid)
        .bind(secret_hash)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(self.pool())
        .await
        .map_err(db)
    }

    async fn shares(&self, person_key: i64) -> Result<Vec<ShareView>, StoreError> {
        let rows: Vec<(i64, String, i64, i64, Option<i64>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT f.id, s.study_uid, f.created_at, f.expires_at, f.revoked_at, f.uses, f.last_used_at
               FROM film_share f JOIN study s ON s.id = f.study_id
              WHERE f.person_id = ? ORDER BY f.id DESC LIMIT 200",
        )
        .bind(person_key)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, study_uid, created_at, expires_at, revoked_at, uses, last_used_at)| {
                    ShareView {
                        id,
                        study_uid,
                        created_at,
                        expires_at,
                        revoked_at,
                        uses,
                        last_used_at,
                    }
                },
            )
            .collect())
    }

    async fn end_share(&self, id: i64, person_key: i64, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE film_share SET revoked_at = ?3
              WHERE id = ?1 AND person_id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
        )
        .bind(id)
        .bind(person_key)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn open_share(
        &self,
        secret_hash: &str,
        now: i64,
        count: bool,
    ) -> Result<Option<OpenShare>, StoreError> {
        // A use of the link (its page) is counted; its images only read it: a shared CT's
        // hundreds of images must not each be a write.
        const COLUMNS: &str = "id, person_id,
                (SELECT p.public_id FROM person p WHERE p.id = film_share.person_id),
                -- Qualified: study has a column study_id of its own (DICOM StudyID).
                (SELECT s.study_uid FROM study s WHERE s.id = film_share.study_id),
                expires_at";
        let sql = if count {
            format!(
                "UPDATE film_share SET uses = uses + 1, last_used_at = ?2
                  WHERE secret_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2
                 RETURNING {COLUMNS}"
            )
        } else {
            format!(
                "SELECT {COLUMNS} FROM film_share
                  WHERE secret_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2"
            )
        };
        let row: Option<(i64, i64, String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(secret_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        Ok(row.map(
            |(id, person_key, person, study_uid, expires_at)| OpenShare {
                id,
                person_key,
                person,
                study_uid,
                expires_at,
            },
        ))
    }

    async fn person_authorizations(
        &self,
        person_key: i64,
    ) -> Result<Vec<PersonAuthorization>, StoreError> {
        let rows: Vec<(i64, String, String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT a.id, i.code, a.scope, a.granted_at, a.expires_at, a.revoked_at
               FROM patient_authorization a JOIN institution i ON i.id = a.institution_id
              WHERE a.person_id = ? AND a.granted_at IS NOT NULL
              ORDER BY a.id DESC LIMIT 100",
        )
        .bind(person_key)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, institution, scope, granted_at, expires_at, revoked_at)| {
                    PersonAuthorization {
                        id,
                        institution,
                        scope,
                        granted_at,
                        expires_at,
                        revoked_at,
                    }
                },
            )
            .collect())
    }

    async fn end_person_authorization(
        &self,
        id: i64,
        person_key: i64,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "UPDATE patient_authorization SET revoked_at = ?3
              WHERE id = ?1 AND person_id = ?2 AND granted_at IS NOT NULL AND revoked_at IS NULL
                AND expires_at > ?3
             RETURNING (SELECT i.code FROM institution i
                         WHERE i.id = patient_authorization.institution_id)",
        )
        .bind(id)
        .bind(person_key)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(db)
    }
}
