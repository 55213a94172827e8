//! Patients' mobile numbers and their changes (huren-archive::consent has the rules): every
//! change is a `contact_change` row; `patient_contact` holds the number in force.

use huren_archive::model::{ContactChangeView, NewContactChange};
use sqlx::{SqliteConnection, SqlitePool};

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
    if now >= expires || attempts >= 5 {
        return Ok(None);
    }
    if hash != code_hash {
        sqlx::query("UPDATE contact_change SET attempts = attempts + 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    apply(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(Some(ContactChangeView { id, person }))
}
