//! `InstitutionIndex` on PostgreSQL: the SQL of `crate::institutions` in PostgreSQL's
//! dialect (`$n` parameters, `lower()` for codes, READ COMMITTED transactions whose unique
//! constraints settle races), sharing its row mapping.

use super::PgIndex;
use crate::institutions::{
    Hl7SenderRow, PEER_COLUMNS, PeerRow, TokenRow, fold_attributes, initial_attributes, peers,
    token_principal, token_scope, token_view,
};
use crate::sql::*;
use async_trait::async_trait;
use huren_access::Principal;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use sqlx::Row;
use std::net::IpAddr;

#[async_trait]
impl InstitutionIndex for PgIndex {
    async fn find_peer(&self, calling_ae: &str, addr: IpAddr) -> Result<Option<Peer>, StoreError> {
        let rows: Vec<PeerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PEER_COLUMNS} FROM ae JOIN institution i ON i.id = ae.institution_id WHERE ae.ae_title = $1"
        )))
        .bind(calling_ae)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let peers = peers(rows)?;
        Ok(match_peer(&peers, calling_ae, addr).cloned())
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.scope, t.institution_id, i.code, t.reads FROM token t
               LEFT JOIN institution i ON i.id = t.institution_id
              WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        token_principal(
            row.get("id"),
            row.get::<String, _>("scope").as_str(),
            row.get("institution_id"),
            row.get("code"),
            row.get::<String, _>("reads").as_str(),
        )
        .map(Some)
    }

    async fn map_performer(
        &self,
        sender_institution: i64,
        institution_name: &str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT performer_institution_id FROM send_for
              WHERE sender_institution_id = $1 AND institution_name = $2",
        )
        .bind(sender_institution)
        .bind(institution_name.trim())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn institution_code(&self, id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT code FROM institution WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn institution_identifier_system(
        &self,
        id: i64,
        on: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT value FROM institution_attribute
              WHERE institution_id = $1 AND attribute = 'identifier_system'
                AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)
              ORDER BY valid_from DESC LIMIT 1",
        )
        .bind(id)
        .bind(on)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn issuer_owner(&self, issuer: &str) -> Result<Option<i64>, StoreError> {
        // The rule of crate::numbering::issuer_owner.
        sqlx::query_scalar(
            "SELECT institution_id FROM (
               SELECT institution_id, 0 AS rank, valid_from FROM institution_attribute
                WHERE attribute = 'identifier_system' AND value = $1
               UNION ALL
               SELECT id, 1, '' FROM institution WHERE lower('urn:huren:institution:' || code) = lower($1)
               UNION ALL
               SELECT institution_id, 2, '' FROM issuer_claim WHERE issuer = $1) o
             ORDER BY rank, valid_from DESC LIMIT 1",
        )
        .bind(issuer)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn claim_issuer(
        &self,
        issuer: &str,
        institution: i64,
    ) -> Result<(i64, bool), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO issuer_claim (issuer, institution_id, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT (issuer) DO NOTHING",
        )
        .bind(issuer)
        .bind(institution)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected()
            == 1;
        let owner: i64 =
            sqlx::query_scalar("SELECT institution_id FROM issuer_claim WHERE issuer = $1")
                .bind(issuer)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok((owner, inserted))
    }

    async fn add_institution(&self, inst: NewInstitution) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let held: Option<String> =
            sqlx::query_scalar("SELECT code FROM institution WHERE lower(code) = lower($1)")
                .bind(inst.code.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if let Some(held) = held {
            return Err(StoreError::Conflict(format!(
                "institution {} is registered already as {held}",
                inst.code
            )));
        }
        // Two nodes registering the same code at once: the unique index on lower(code) lets
        // one commit and fails the other here.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO institution (code, created_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(inst.code.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let from = iso(inst.valid_from);
        for (k, v) in initial_attributes(&inst) {
            if let Some(v) = v {
                sqlx::query(
                    "INSERT INTO institution_attribute (institution_id, attribute, value, valid_from)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(k)
                .bind(v)
                .bind(&from)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn set_institution_attribute(
        &self,
        code: &str,
        change: AttributeChange,
    ) -> Result<(), StoreError> {
        let id = self.institution_id(code).await?;
        let from = iso(change.valid_from);
        let day_before = iso(change
            .valid_from
            .previous_day()
            .unwrap_or(change.valid_from));
        let mut tx = self.pool.begin().await.map_err(db)?;
        // One change to an institution at a time (SQLite's BEGIN IMMEDIATE serialises all
        // writers; here the institution's row is the lock).
        sqlx::query("SELECT id FROM institution WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "DELETE FROM institution_attribute
              WHERE institution_id = $1 AND attribute = $2 AND valid_from >= $3",
        )
        .bind(id)
        .bind(change.attribute.as_str())
        .bind(&from)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "UPDATE institution_attribute SET valid_to = $1
              WHERE institution_id = $2 AND attribute = $3 AND (valid_to IS NULL OR valid_to >= $4)",
        )
        .bind(&day_before)
        .bind(id)
        .bind(change.attribute.as_str())
        .bind(&from)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO institution_attribute (institution_id, attribute, value, valid_from)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(change.attribute.as_str())
        .bind(&change.value)
        .bind(&from)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn institution_as_of(
        &self,
        code: &str,
        date: time::Date,
    ) -> Result<Option<InstitutionView>, StoreError> {
        let Some((id, code)) = self.find_institution(code).await? else {
            return Ok(None);
        };
        let d = iso(date);
        let mut view = InstitutionView {
            id,
            code,
            as_of: d.clone(),
            ..Default::default()
        };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT attribute, value FROM institution_attribute
              WHERE institution_id = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)
              ORDER BY attribute, valid_from DESC",
        )
        .bind(id)
        .bind(&d)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        fold_attributes(&mut view, rows);
        view.consortia = sqlx::query_scalar(
            "SELECT c.code FROM consortium_member m JOIN consortium c ON c.id = m.consortium_id
              WHERE m.institution_id = $1 AND m.valid_from <= $2 AND (m.valid_to IS NULL OR m.valid_to >= $2)
              ORDER BY c.code",
        )
        .bind(id)
        .bind(&d)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(Some(view))
    }

    async fn list_institutions(
        &self,
        date: time::Date,
    ) -> Result<Vec<InstitutionView>, StoreError> {
        let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM institution ORDER BY code")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(codes.len());
        for c in codes {
            if let Some(v) = self.institution_as_of(&c, date).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    async fn add_consortium_membership(&self, m: NewMembership) -> Result<(), StoreError> {
        let id = self.institution_id(m.institution_code.as_str()).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let cid: i64 = sqlx::query_scalar(
            "INSERT INTO consortium (code, name, kind) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(&m.consortium_code)
        .bind(&m.consortium_name)
        .bind(&m.consortium_kind)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO consortium_member (consortium_id, institution_id, valid_from, valid_to)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(cid)
        .bind(id)
        .bind(iso(m.valid_from))
        .bind(m.valid_to.map(iso))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn add_ae(&self, ae: NewAe) -> Result<i64, StoreError> {
        let inst = self.institution_id(ae.institution_code.as_str()).await?;
        let performer = match &ae.default_performer_code {
            Some(c) => Some(self.institution_id(c.as_str()).await?),
            None => None,
        };
        sqlx::query_scalar(
            "INSERT INTO ae (institution_id, ae_title, network, port, assumed_charset, stable_after_secs,
                             default_performer_id, created_at, require_tls)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(inst)
        .bind(ae.ae_title.as_str())
        .bind(ae.network.to_string())
        .bind(ae.port.map(i64::from))
        .bind(&ae.assumed_charset)
        .bind(ae.stable_after_secs)
        .bind(performer)
        .bind(now())
        .bind(i64::from(ae.require_tls))
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn list_aes(&self) -> Result<Vec<Peer>, StoreError> {
        let rows: Vec<PeerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PEER_COLUMNS} FROM ae JOIN institution i ON i.id = ae.institution_id ORDER BY ae.ae_title"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        peers(rows)
    }

    async fn add_send_for(
        &self,
        sender_code: &str,
        performer_code: &str,
        institution_name: Option<&str>,
    ) -> Result<(), StoreError> {
        let s = self.institution_id(sender_code).await?;
        let p = self.institution_id(performer_code).await?;
        sqlx::query(
            "INSERT INTO send_for (sender_institution_id, performer_institution_id, institution_name)
             VALUES ($1, $2, $3)",
        )
        .bind(s)
        .bind(p)
        .bind(institution_name.map(str::trim))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn institution_history(
        &self,
        code: &str,
    ) -> Result<Option<Vec<(String, String, String, Option<String>)>>, StoreError> {
        let Some((id, _)) = self.find_institution(code).await? else {
            return Ok(None);
        };
        sqlx::query_as(
            "SELECT attribute, value, valid_from, valid_to FROM institution_attribute
              WHERE institution_id = $1 ORDER BY attribute, valid_from, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map(Some)
        .map_err(db)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenView>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT t.id, t.scope, i.code, t.reads, t.created_at, t.expires_at, t.revoked_at
               FROM token t LEFT JOIN institution i ON i.id = t.institution_id
              ORDER BY t.id DESC LIMIT 1000",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(token_view).collect())
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE token SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected();
        Ok(n == 1)
    }

    async fn create_token(
        &self,
        hash: &str,
        scope: TokenScope,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let (kind, code, reads) = token_scope(&scope);
        let inst = match code {
            Some(c) => Some(self.institution_id(c.as_str()).await?),
            None => None,
        };
        sqlx::query_scalar(
            "INSERT INTO token (hash, scope, institution_id, reads, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(hash)
        .bind(kind)
        .bind(inst)
        .bind(reads)
        .bind(now())
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn hl7_senders(&self) -> Result<Vec<Hl7Sender>, StoreError> {
        let rows: Vec<Hl7SenderRow> = sqlx::query_as(
            "SELECT s.id, s.institution_id, i.code, s.network, s.sending_facility, s.default_charset
               FROM hl7_sender s JOIN institution i ON i.id = s.institution_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(Hl7Sender::try_from).collect()
    }

    async fn add_hl7_sender(
        &self,
        institution_code: &str,
        network: ipnet::IpNet,
        sending_facility: Option<&str>,
        default_charset: Option<&str>,
    ) -> Result<i64, StoreError> {
        let institution = self.institution_id(institution_code).await?;
        sqlx::query_scalar(
            "INSERT INTO hl7_sender (institution_id, network, sending_facility, default_charset, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(institution)
        .bind(network.to_string())
        .bind(sending_facility)
        .bind(default_charset)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn own_institutions(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        sqlx::query_as(
            "SELECT id, code FROM institution WHERE id = $1
             UNION SELECT i.id, i.code FROM send_for f JOIN institution i ON i.id = f.performer_institution_id
              WHERE f.sender_institution_id = $1",
        )
        .bind(institution_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}
