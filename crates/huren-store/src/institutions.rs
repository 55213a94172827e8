//! Peers and institutions in SQL: DIMSE senders, institutions and their effective-dated
//! attributes, consortia, tokens, HL7 senders, issuers' owners.

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_access::{Principal, Sender, SenderKind, SystemReads};
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_types::{AeTitle, InstitutionCode};
use sqlx::Row;
use std::net::IpAddr;
use std::str::FromStr;

pub(crate) const ATTR_AS_OF: &str = "SELECT value FROM institution_attribute WHERE institution_id = ? AND attribute = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?) ORDER BY valid_from DESC LIMIT 1";

#[async_trait]
impl InstitutionIndex for SqliteIndex {
    async fn find_peer(&self, calling_ae: &str, addr: IpAddr) -> Result<Option<Peer>, StoreError> {
        let rows: Vec<PeerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PEER_COLUMNS} FROM ae JOIN institution i ON i.id = ae.institution_id WHERE ae.ae_title = ?"
        )))
        .bind(calling_ae)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let peers = peers(rows)?;
        Ok(match_peer(&peers, calling_ae, addr).cloned())
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT t.id, t.scope, t.institution_id, i.code, t.reads FROM token t LEFT JOIN institution i ON i.id = t.institution_id WHERE t.hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > unixepoch())")
            .bind(token_hash)
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
        sqlx::query_scalar("SELECT performer_institution_id FROM send_for WHERE sender_institution_id = ? AND institution_name = ?")
            .bind(sender_institution)
            .bind(institution_name.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn institution_code(&self, id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT code FROM institution WHERE id = ?")
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
        sqlx::query_scalar(ATTR_AS_OF)
            .bind(id)
            .bind("identifier_system")
            .bind(on)
            .bind(on)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn issuer_owner(&self, issuer: &str) -> Result<Option<i64>, StoreError> {
        crate::numbering::issuer_owner(&self.pool, issuer)
            .await
            .map_err(db)
    }

    async fn claim_issuer(
        &self,
        issuer: &str,
        institution: i64,
    ) -> Result<(i64, bool), StoreError> {
        crate::numbering::claim_issuer(&self.pool, issuer, institution, now())
            .await
            .map_err(db)
    }

    async fn add_institution(&self, inst: NewInstitution) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // The code is unique without regard to case (migration 0043): name the spelling that
        // holds it, so `h500002` is told it is `H500002`, not a constraint name.
        let held: Option<String> =
            sqlx::query_scalar("SELECT code FROM institution WHERE code = ? COLLATE NOCASE")
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO institution (code, created_at) VALUES (?, ?) RETURNING id",
        )
        .bind(inst.code.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let from = iso(inst.valid_from);
        let attrs = initial_attributes(&inst);
        for (k, v) in attrs {
            if let Some(v) = v {
                sqlx::query("INSERT INTO institution_attribute (institution_id, attribute, value, valid_from) VALUES (?, ?, ?, ?)")
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // Periods starting on or after the new one are replaced; the one in force is closed.
        sqlx::query("DELETE FROM institution_attribute WHERE institution_id = ? AND attribute = ? AND valid_from >= ?")
            .bind(id)
            .bind(change.attribute.as_str())
            .bind(&from)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE institution_attribute SET valid_to = ? WHERE institution_id = ? AND attribute = ? AND (valid_to IS NULL OR valid_to >= ?)")
            .bind(&day_before)
            .bind(id)
            .bind(change.attribute.as_str())
            .bind(&from)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO institution_attribute (institution_id, attribute, value, valid_from) VALUES (?, ?, ?, ?)")
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
        // The code as the operator wrote it, whatever spelling the caller used.
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
        // Every attribute in force that day in one read (recognition asks for each result's
        // performer on the result's day): per attribute, the value from the latest start.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT attribute, value FROM institution_attribute
              WHERE institution_id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?)
              ORDER BY attribute, valid_from DESC",
        )
        .bind(id)
        .bind(&d)
        .bind(&d)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        fold_attributes(&mut view, rows);
        view.consortia = sqlx::query_scalar(
            "SELECT c.code FROM consortium_member m JOIN consortium c ON c.id = m.consortium_id
             WHERE m.institution_id = ? AND m.valid_from <= ? AND (m.valid_to IS NULL OR m.valid_to >= ?) ORDER BY c.code",
        )
        .bind(id)
        .bind(&d)
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let cid: i64 = sqlx::query_scalar(
            "INSERT INTO consortium (code, name, kind) VALUES (?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(&m.consortium_code)
        .bind(&m.consortium_name)
        .bind(&m.consortium_kind)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("INSERT INTO consortium_member (consortium_id, institution_id, valid_from, valid_to) VALUES (?, ?, ?, ?)")
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
            "INSERT INTO ae (institution_id, ae_title, network, port, assumed_charset, stable_after_secs, default_performer_id, created_at, require_tls)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(inst)
        .bind(ae.ae_title.as_str())
        .bind(ae.network.to_string())
        .bind(ae.port.map(i64::from))
        .bind(&ae.assumed_charset)
        .bind(ae.stable_after_secs)
        .bind(performer)
        .bind(now())
        .bind(ae.require_tls)
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
        sqlx::query("INSERT INTO send_for (sender_institution_id, performer_institution_id, institution_name) VALUES (?, ?, ?)")
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
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some(id) = id else {
            return Ok(None);
        };
        sqlx::query_as(
            "SELECT attribute, value, valid_from, valid_to FROM institution_attribute
              WHERE institution_id = ? ORDER BY attribute, valid_from, id",
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
        let n = sqlx::query("UPDATE token SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
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
        sqlx::query_scalar("INSERT INTO token (hash, scope, institution_id, reads, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id")
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
             VALUES (?, ?, ?, ?, ?) RETURNING id",
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
        crate::accounts::own_institutions(&self.pool, institution_id)
            .await
            .map_err(db)
    }
}
/// An `ae` row joined with its institution's code, as both dialects read it.
#[derive(sqlx::FromRow)]
pub(crate) struct PeerRow {
    id: i64,
    institution_id: i64,
    code: String,
    ae_title: String,
    network: String,
    port: Option<i64>,
    assumed_charset: Option<String>,
    stable_after_secs: Option<i64>,
    default_performer_id: Option<i64>,
    require_tls: i64,
}

/// The columns of [`PeerRow`], for `SELECT {PEER_COLUMNS} FROM ae JOIN institution i …`.
pub(crate) const PEER_COLUMNS: &str = "ae.id, ae.institution_id, i.code, ae.ae_title, ae.network, ae.port, ae.assumed_charset, ae.stable_after_secs, ae.default_performer_id, ae.require_tls";

impl TryFrom<PeerRow> for Peer {
    type Error = StoreError;

    fn try_from(r: PeerRow) -> Result<Peer, StoreError> {
        Ok(Peer {
            id: r.id,
            institution_id: r.institution_id,
            institution_code: r.code,
            ae_title: AeTitle::parse(&r.ae_title)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            network: ipnet::IpNet::from_str(&r.network)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            port: r.port.and_then(|p| u16::try_from(p).ok()),
            assumed_charset: r.assumed_charset,
            stable_after_secs: r.stable_after_secs,
            default_performer_id: r.default_performer_id,
            require_tls: r.require_tls != 0,
        })
    }
}

pub(crate) fn peers(rows: Vec<PeerRow>) -> Result<Vec<Peer>, StoreError> {
    rows.into_iter().map(Peer::try_from).collect()
}

/// A token row as the principal it stands for.
pub(crate) fn token_principal(
    id: i64,
    scope: &str,
    institution_id: Option<i64>,
    code: Option<String>,
    reads: &str,
) -> Result<Principal, StoreError> {
    Ok(match scope {
        "admin" => Principal::Admin { token_id: id },
        _ => {
            let code = code.ok_or_else(|| StoreError::broken("token without institution"))?;
            Principal::System(Sender {
                institution_id: institution_id
                    .ok_or_else(|| StoreError::broken("token without institution"))?,
                institution_code: InstitutionCode::parse(&code)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
                kind: SenderKind::Token { token_id: id },
                reads: if reads == "region" {
                    SystemReads::Region
                } else {
                    SystemReads::Institution
                },
            })
        }
    })
}

/// The attributes in force on a day, rows ordered by attribute and newest start first, into
/// the view: per attribute, the first row wins.
pub(crate) fn fold_attributes(view: &mut InstitutionView, rows: Vec<(String, String)>) {
    let mut seen = std::collections::HashSet::new();
    for (name, value) in rows {
        let Some(attr) = InstitutionAttribute::parse(&name) else {
            continue;
        };
        if !seen.insert(attr.as_str()) {
            continue;
        }
        let v = Some(value);
        match attr {
            InstitutionAttribute::Name => view.name = v,
            InstitutionAttribute::Level => view.level = v,
            InstitutionAttribute::Ownership => view.ownership = v,
            InstitutionAttribute::IdentifierSystem => view.identifier_system = v,
            InstitutionAttribute::Region => view.region = v,
            InstitutionAttribute::City => view.city = v,
            InstitutionAttribute::Organization => view.organization = v,
            InstitutionAttribute::Division => view.division = v,
        }
    }
}

/// A new institution's attributes, each valid from its registration day.
pub(crate) fn initial_attributes(inst: &NewInstitution) -> [(&'static str, Option<String>); 8] {
    [
        ("name", Some(inst.name.clone())),
        ("level", Some(inst.level.as_str().to_owned())),
        ("ownership", Some(inst.ownership.as_str().to_owned())),
        ("identifier_system", inst.identifier_system.clone()),
        ("region", inst.region.clone()),
        ("city", inst.city.clone()),
        ("organization", inst.organization.clone()),
        ("division", inst.division.clone()),
    ]
}

pub(crate) type TokenRow = (
    i64,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

pub(crate) fn token_view(
    (id, scope, institution, reads, created_at, expires_at, revoked_at): TokenRow,
) -> TokenView {
    TokenView {
        id,
        scope,
        institution,
        reads,
        created_at,
        expires_at,
        revoked_at,
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct Hl7SenderRow {
    id: i64,
    institution_id: i64,
    code: String,
    network: String,
    sending_facility: Option<String>,
    default_charset: Option<String>,
}

impl TryFrom<Hl7SenderRow> for Hl7Sender {
    type Error = StoreError;

    fn try_from(r: Hl7SenderRow) -> Result<Hl7Sender, StoreError> {
        Ok(Hl7Sender {
            id: r.id,
            institution_id: r.institution_id,
            institution_code: r.code,
            network: r
                .network
                .parse()
                .map_err(|_| StoreError::Invalid(format!("network {}", r.network)))?,
            sending_facility: r.sending_facility,
            default_charset: r.default_charset,
        })
    }
}

/// A token's scope as stored: (scope, whether it names an institution, reads).
pub(crate) fn token_scope(
    scope: &TokenScope,
) -> (&'static str, Option<&InstitutionCode>, &'static str) {
    match scope {
        TokenScope::Admin => ("admin", None, "institution"),
        TokenScope::Institution(code, reads) => (
            "institution",
            Some(code),
            match reads {
                SystemReads::Institution => "institution",
                SystemReads::Region => "region",
            },
        ),
    }
}
