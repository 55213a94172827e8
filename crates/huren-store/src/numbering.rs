//! Whose patient numbering an issuer is (huren-archive::numbering has the rule).

use sqlx::SqlitePool;

/// The institution whose numbering `issuer` is: an `identifier_system` it has or had (the
/// newest assignment first), its `urn:huren:institution:<code>`, or a first-use claim.
pub async fn issuer_owner(pool: &SqlitePool, issuer: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT institution_id FROM (
           SELECT institution_id, 0 AS rank, valid_from FROM institution_attribute
            WHERE attribute = 'identifier_system' AND value = ?1
           UNION ALL
           SELECT id, 1, '' FROM institution WHERE 'urn:huren:institution:' || code = ?1 COLLATE NOCASE
           UNION ALL
           SELECT institution_id, 2, '' FROM issuer_claim WHERE issuer = ?1)
         ORDER BY rank, valid_from DESC LIMIT 1",
    )
    .bind(issuer)
    .fetch_optional(pool)
    .await
}

/// Claims `issuer` for `institution` unless claimed already; (owner, whether this call claimed).
pub async fn claim_issuer(
    pool: &SqlitePool,
    issuer: &str,
    institution: i64,
    now: i64,
) -> Result<(i64, bool), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO issuer_claim (issuer, institution_id, claimed_at) VALUES (?, ?, ?)
         ON CONFLICT (issuer) DO NOTHING",
    )
    .bind(issuer)
    .bind(institution)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    let owner: i64 = sqlx::query_scalar("SELECT institution_id FROM issuer_claim WHERE issuer = ?")
        .bind(issuer)
        .fetch_one(pool)
        .await?;
    Ok((owner, inserted))
}
