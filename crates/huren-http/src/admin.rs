//! The operators' JSON API: institutions (effective-dated), senders, tokens, study lifecycle.
//! Every handler demands an [`huren_access::AdminGrant`].

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiJson, ApiQuery};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use huren_access::grant_admin;
use huren_archive::model::*;
use huren_types::{InstitutionCode, InstitutionLevel, Lifecycle, Ownership};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/institutions",
            get(list_institutions).post(add_institution),
        )
        .route("/institutions/{code}", get(show_institution))
        .route("/institutions/{code}/attributes", post(change_attribute))
        .route("/institutions/{code}/memberships", post(add_membership))
        .route("/aes", get(list_aes).post(add_ae))
        .route("/send-for", post(add_send_for))
        .route("/tokens", post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/studies/{study}/reject", post(reject_study))
        .route("/studies/{study}/delete", post(delete_study))
        .route("/link-reviews", get(list_link_reviews))
        .route("/link-reviews/{id}", post(decide_link_review))
        .route("/persons/merge", post(merge_persons))
        .route("/persons/unmerge", post(unmerge_person))
        .route("/persons/{id}", get(show_person))
        .route("/catalog/versions", post(crate::catalog::import_version))
        .route("/catalog/prices", post(crate::catalog::import_prices))
        .route("/catalog/mappings", post(crate::catalog::import_mappings))
        .route("/catalog/study-rules", post(crate::catalog::import_rules))
        .route(
            "/recognition/qualifications",
            post(crate::recognition::import_qualifications),
        )
        .route(
            "/recognition/scopes",
            post(crate::recognition::import_scopes),
        )
        .route(
            "/recognition/policy",
            post(crate::recognition::import_policy),
        )
        .route(
            "/catalog/unmapped-studies",
            get(crate::catalog::unmapped_studies),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewFilter {
    state: Option<String>,
    limit: Option<u32>,
}

async fn list_link_reviews(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(f): ApiQuery<ReviewFilter>,
) -> Result<Json<Value>, ApiError> {
    let grant = huren_access::grant_steward(&p)?;
    let list = s
        .archive
        .link_reviews(
            &grant,
            f.state.as_deref().unwrap_or("open"),
            f.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum ReviewDecision {
    Link,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: ReviewDecision,
    reason: String,
}

async fn decide_link_review(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<DecisionBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = huren_access::grant_steward(&p)?;
    let link = matches!(b.decision, ReviewDecision::Link);
    let review = s
        .archive
        .decide_link_review(&grant, id, link, &b.reason)
        .await?;
    Ok(Json(json!(review)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    survivor: String,
    merged: String,
    reason: String,
}

async fn merge_persons(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<MergeBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = huren_access::grant_steward(&p)?;
    let moved = s
        .archive
        .change_person(
            &grant,
            &b.merged,
            huren_archive::PersonChange::MergeInto(&b.survivor),
            &b.reason,
        )
        .await?;
    Ok(Json(json!({ "records_moved": moved })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnmergeBody {
    person: String,
    reason: String,
}

async fn unmerge_person(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<UnmergeBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = huren_access::grant_steward(&p)?;
    let moved = s
        .archive
        .change_person(
            &grant,
            &b.person,
            huren_archive::PersonChange::Unmerge,
            &b.reason,
        )
        .await?;
    Ok(Json(json!({ "records_moved": moved })))
}

async fn show_person(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let grant = huren_access::grant_steward(&p)?;
    match s.archive.person(&grant, &id).await? {
        Some(v) => Ok(Json(json!(v))),
        None => Err(ApiError::not_found(format!("no person {id}"))),
    }
}

pub(crate) fn parse_date(s: &str) -> Result<time::Date, ApiError> {
    huren_types::day::parse_day(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[derive(Deserialize)]
struct AsOf {
    date: Option<String>,
}

async fn list_institutions(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<AsOf>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    let date = q
        .date
        .as_deref()
        .map(parse_date)
        .transpose()?
        .unwrap_or_else(|| s.archive.today());
    Ok(Json(json!(
        s.archive.list_institutions(&grant, date).await?
    )))
}

async fn show_institution(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(code): Path<String>,
    ApiQuery(q): ApiQuery<AsOf>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    let date = q
        .date
        .as_deref()
        .map(parse_date)
        .transpose()?
        .unwrap_or_else(|| s.archive.today());
    match s.archive.institution_as_of(&grant, &code, date).await? {
        Some(v) => Ok(Json(json!(v))),
        None => Err(ApiError::not_found(format!("institution {code}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstitutionBody {
    code: String,
    name: String,
    level: String,
    ownership: Option<String>,
    identifier_system: Option<String>,
    region: Option<String>,
    city: Option<String>,
    organization: Option<String>,
    /// GB/T 2260 administrative division code.
    division: Option<String>,
    valid_from: Option<String>,
}

async fn add_institution(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<InstitutionBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let inst = NewInstitution {
        code: InstitutionCode::parse(&b.code).map_err(|e| ApiError::bad_request(e.to_string()))?,
        name: b.name,
        level: InstitutionLevel::parse(&b.level)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ownership: Ownership::parse(b.ownership.as_deref().unwrap_or("public"))
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        identifier_system: b.identifier_system,
        region: b.region,
        city: b.city,
        organization: b.organization,
        division: b.division,
        valid_from: b
            .valid_from
            .as_deref()
            .map(parse_date)
            .transpose()?
            .unwrap_or_else(|| s.archive.today()),
    };
    let id = s.archive.add_institution(&grant, inst).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "id": id, "code": b.code })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeBody {
    attribute: String,
    value: String,
    valid_from: String,
}

async fn change_attribute(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<AttributeBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    let attribute = InstitutionAttribute::parse(&b.attribute)
        .ok_or_else(|| ApiError::bad_request(format!("unknown attribute {:?}", b.attribute)))?;
    let value = b.value;
    let change = AttributeChange {
        attribute,
        value,
        valid_from: parse_date(&b.valid_from)?,
    };
    s.archive.change_institution(&grant, &code, change).await?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipBody {
    consortium_code: String,
    consortium_name: String,
    consortium_kind: String,
    valid_from: String,
    valid_to: Option<String>,
}

async fn add_membership(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<MembershipBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    if !matches!(
        b.consortium_kind.as_str(),
        "医联体" | "医共体" | "alliance" | "community"
    ) {
        return Err(ApiError::bad_request(
            "consortium_kind must be 医联体 or 医共体",
        ));
    }
    let m = NewMembership {
        institution_code: InstitutionCode::parse(&code)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        consortium_code: b.consortium_code,
        consortium_name: b.consortium_name,
        consortium_kind: b.consortium_kind,
        valid_from: parse_date(&b.valid_from)?,
        valid_to: b.valid_to.as_deref().map(parse_date).transpose()?,
    };
    s.archive.add_membership(&grant, m).await?;
    Ok(Json(json!({ "ok": true })))
}

async fn list_aes(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    Ok(Json(json!(s.archive.list_aes(&grant).await?)))
}

async fn add_ae(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<huren_archive::peers_file::AeFields>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let ae = b.check().map_err(ApiError::bad_request)?;
    let id = s.archive.add_ae(&grant, ae).await?;
    Ok((axum::http::StatusCode::CREATED, Json(json!({ "id": id }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendForBody {
    sender: String,
    performer: String,
    institution_name: Option<String>,
}

async fn add_send_for(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<SendForBody>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    s.archive
        .add_send_for(
            &grant,
            &b.sender,
            &b.performer,
            b.institution_name.as_deref(),
        )
        .await?;
    Ok(Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    institution: Option<String>,
    #[serde(default)]
    admin: bool,
    /// `read:region` for a regional service; by default the system reads its institution's.
    scope: Option<String>,
    /// The token stops working after this many days.
    expires_in_days: Option<u32>,
}

async fn create_token(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let reads =
        huren_archive::model::system_reads(b.scope.as_deref()).map_err(ApiError::bad_request)?;
    let scope = match (b.admin, b.institution) {
        (true, None) => TokenScope::Admin,
        (false, Some(code)) => TokenScope::Institution(
            InstitutionCode::parse(&code).map_err(|e| ApiError::bad_request(e.to_string()))?,
            reads,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of admin=true or institution",
            ));
        }
    };
    let t = s
        .archive
        .create_token(&grant, scope, b.expires_in_days)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "id": t.id, "token": t.secret, "expires_at": t.expires_at })),
    ))
}

async fn revoke_token(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    s.archive.revoke_token(&grant, id).await?;
    Ok(Json(json!({ "revoked": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleBody {
    reason: String,
    institution: Option<String>,
}

async fn reject_study(
    s: State<AppState>,
    a: Authenticated,
    study: Path<String>,
    b: ApiJson<LifecycleBody>,
) -> Result<Json<Value>, ApiError> {
    lifecycle(s, a, study, b, Lifecycle::Rejected).await
}

async fn delete_study(
    s: State<AppState>,
    a: Authenticated,
    study: Path<String>,
    b: ApiJson<LifecycleBody>,
) -> Result<Json<Value>, ApiError> {
    lifecycle(s, a, study, b, Lifecycle::Deleted).await
}

async fn lifecycle(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(study): Path<String>,
    ApiJson(b): ApiJson<LifecycleBody>,
    to: Lifecycle,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    let change = s
        .archive
        .set_study_lifecycle(&grant, &study, b.institution.as_deref(), to, &b.reason)
        .await?;
    Ok(Json(
        json!({ "studies": change.studies, "instances": change.instances }),
    ))
}
