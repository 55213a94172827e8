//! People's sessions and the relationships that let them read a patient (issue #6): signing
//! in and out (`POST /api/session` sets the HttpOnly, SameSite=Lax cookie — Secure behind
//! HTTPS — and answers the CSRF token; `GET` says who is signed in; `DELETE` signs out); the
//! HIS's encounters and one-click launch tickets; break-glass and its review; a patient's
//! mobile number and its changes; the patient's authorization by SMS code, and its revocation.

use crate::AppState;
use crate::auth::{Authenticated, SESSION_COOKIE, session_cookie};
use crate::error::{ApiError, ApiJson};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::Principal;
use huren_archive::accounts::LoginError;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

/// The session cookie's `Set-Cookie` value (an empty value with `max_age` 0 ends it).
pub fn cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let start = state
        .archive
        .login(&c.username, &c.password, Some(peer.ip().to_string()))
        .await
        .map_err(|e| match e {
            LoginError::Invalid => ApiError::unauthorized("wrong username or password"),
            LoginError::Locked { .. } => ApiError::locked(e.to_string()),
            LoginError::Store(s) => s.into(),
        })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = json!({
        "username": start.user.username,
        "display_name": start.display_name,
        "role": start.user.role,
        "institution": start.user.institution_code,
        "department": start.user.department,
        "csrf_token": start.csrf_token,
        "expires_at": start.expires_at,
    });
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Some(v) = cookie(&state, &start.secret, start.expires_at - now) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn whoami(Authenticated(p): Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(match p {
        Principal::User(u) => json!({
            "username": u.username,
            "role": u.role,
            "institution": u.institution_code,
            "department": u.department,
            "via": u.via,
        }),
        other => json!({ "principal": other.label() }),
    }))
}

pub async fn logout(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (Principal::User(user), Some(secret)) = (p, session_cookie(&headers)) else {
        return Err(ApiError::bad_request("no session to end"));
    };
    state.archive.logout(&secret, &user).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Some(v) = cookie(&state, "", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncounterBody {
    visit_number: String,
    /// The patient by the institution's own record number…
    patient_id: Option<String>,
    issuer: Option<String>,
    /// …or by identity number, `system|value` (with `patient_id`: registered on the record).
    identifier: Option<String>,
    /// Demographics registering the record at the first visit.
    name: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    doctor: Option<String>,
    department: Option<String>,
    /// `open` (default) or `closed`.
    status: Option<String>,
}

/// The patient fields of the encounter and launch bodies as the use case takes them.
fn named<'a>(
    patient_id: &'a Option<String>,
    issuer: &'a Option<String>,
    identifier: &'a Option<String>,
    name: &'a Option<String>,
    birth_date: &'a Option<String>,
    sex: &'a Option<String>,
) -> Result<huren_archive::registration::NamedPatient<'a>, ApiError> {
    let identifier = match identifier.as_deref() {
        Some(i) => Some(
            i.split_once('|')
                .ok_or_else(|| ApiError::bad_request("identifier is system|value"))?,
        ),
        None => None,
    };
    Ok(huren_archive::registration::NamedPatient {
        patient_id: patient_id.as_deref(),
        issuer: issuer.as_deref(),
        identifier,
        name: name.as_deref(),
        birth_date: birth_date.as_deref(),
        sex: match sex.as_deref() {
            Some(s) => Some(
                huren_archive::registration::sex_code(s)
                    .ok_or_else(|| ApiError::bad_request(format!("sex {s:?} is M, F, O or U")))?,
            ),
            None => None,
        },
    })
}

/// `POST /api/encounters` — the HIS (its institution's system token) opens or closes a visit.
pub async fn register_encounter(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<EncounterBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_ingest(&p)?;
    let open = match b.status.as_deref() {
        None | Some("open") => true,
        Some("closed") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status {other:?} is open or closed"
            )));
        }
    };
    let id = state
        .archive
        .register_encounter(
            &grant,
            huren_archive::accounts::EncounterRequest {
                visit_number: &b.visit_number,
                patient: named(
                    &b.patient_id,
                    &b.issuer,
                    &b.identifier,
                    &b.name,
                    &b.birth_date,
                    &b.sex,
                )?,
                doctor: b.doctor.as_deref(),
                department: b.department.as_deref(),
                open,
            },
        )
        .await?;
    Ok(Json(json!({ "encounter": id, "open": open })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    doctor: String,
    patient_id: Option<String>,
    issuer: Option<String>,
    identifier: Option<String>,
    name: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    visit_number: Option<String>,
    department: Option<String>,
}

/// `POST /api/launch` — the HIS, for one of its doctors, gets a one-time launch URL.
pub async fn issue_launch(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    ApiJson(b): ApiJson<LaunchBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let grant = huren_access::grant_ingest(&p)?;
    let t = state
        .archive
        .issue_launch_ticket(
            &grant,
            huren_archive::accounts::LaunchRequest {
                doctor: &b.doctor,
                patient: named(
                    &b.patient_id,
                    &b.issuer,
                    &b.identifier,
                    &b.name,
                    &b.birth_date,
                    &b.sex,
                )?,
                visit_number: b.visit_number.as_deref(),
                department: b.department.as_deref(),
            },
        )
        .await?;
    let url = format!(
        "{}/launch?ticket={}",
        crate::qido::origin_url(&state, &headers),
        t.secret
    );
    Ok((
        StatusCode::CREATED,
        Json(json!({ "url": url, "expires_at": t.expires_at })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// `system|value`: an identity number or a record number.
    identifier: String,
    reason: String,
}

/// `POST /api/break-glass` — a signed-in doctor opens a patient without a relationship.
pub async fn start_break_glass(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(b): ApiJson<BreakGlassBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let grant = huren_access::grant_break_glass(&p)?;
    let (system, value) = b
        .identifier
        .split_once('|')
        .ok_or_else(|| ApiError::bad_request("identifier is system|value"))?;
    let start = state
        .archive
        .start_break_glass(
            &grant,
            state.archive.lookup_by(system, value),
            &b.reason,
            Some(peer.ip().to_string()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": start.id, "person": start.person, "expires_at": start.expires_at })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Only accesses awaiting review (default true).
    open: Option<bool>,
}

/// `GET /api/break-glass` — the institution admin's review list.
pub async fn break_glass_list(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    crate::error::ApiQuery(q): crate::error::ApiQuery<ReviewQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_review(&p)?;
    let list = state
        .archive
        .break_glass_list(&grant, q.open.unwrap_or(true))
        .await?;
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    verdict: String,
    #[serde(default)]
    note: String,
}

/// `POST /api/break-glass/{id}/review`.
pub async fn review_break_glass(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    axum::extract::Path(id): axum::extract::Path<i64>,
    ApiJson(b): ApiJson<ReviewBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_review(&p)?;
    state
        .archive
        .review_break_glass(&grant, id, &b.verdict, &b.note)
        .await?;
    Ok(Json(json!({ "reviewed": id, "verdict": b.verdict })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    patient_id: String,
    issuer: Option<String>,
    phone: String,
    /// The member of staff (username) who saw the patient in person and checked a change.
    verified_in_person_by: Option<String>,
}

/// `POST /api/patient-contacts` — the HIS registers a patient's mobile number (sealed). A
/// first number: 200 `registered`; the same: `unchanged`; a different one: 202 `pending`
/// until the code sent to the old number is confirmed, or `changed` at once when the patient
/// was seen in person (`verified_in_person_by`).
pub async fn register_contact(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<ContactBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use huren_archive::consent::{ContactOutcome, ContactRequest};
    let grant = huren_access::grant_ingest(&p)?;
    let out = state
        .archive
        .register_contact(
            &grant,
            ContactRequest {
                patient_id: &b.patient_id,
                issuer: b.issuer.as_deref(),
                phone: &b.phone,
                verified_in_person_by: b.verified_in_person_by.as_deref(),
            },
        )
        .await?;
    Ok(match out {
        ContactOutcome::Registered => (StatusCode::OK, Json(json!({ "status": "registered" }))),
        ContactOutcome::Unchanged => (StatusCode::OK, Json(json!({ "status": "unchanged" }))),
        ContactOutcome::Changed => (StatusCode::OK, Json(json!({ "status": "changed" }))),
        ContactOutcome::Pending {
            change,
            code_sent_to,
            code_expires_at,
        } => (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "pending",
                "change": change,
                "code_sent_to": code_sent_to,
                "code_expires_at": code_expires_at,
            })),
        ),
    })
}

/// `POST /api/patient-contacts/changes/{id}/confirm {"code"}` — the code the patient received
/// at the old number.
pub async fn confirm_contact_change(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    axum::extract::Path(id): axum::extract::Path<i64>,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_ingest(&p)?;
    state
        .archive
        .confirm_contact_change(&grant, id, &b.code)
        .await?;
    Ok(Json(json!({ "status": "changed" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationBody {
    /// `system|value`: the patient's identity number or a record number.
    identifier: String,
    days: Option<i64>,
    /// `all` (default), `imaging` or `lab`: what the patient is asked to open.
    scope: Option<String>,
}

/// `POST /api/patient-authorizations` — a clinic's doctor asks the patient (code by SMS).
pub async fn request_authorization(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    ApiJson(b): ApiJson<AuthorizationBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let grant = huren_access::grant_clinician(&p)?;
    let (system, value) = b
        .identifier
        .split_once('|')
        .ok_or_else(|| ApiError::bad_request("identifier is system|value"))?;
    let r = state
        .archive
        .request_authorization(
            &grant,
            state.archive.lookup_by(system, value),
            b.days.unwrap_or(7),
            b.scope.as_deref().unwrap_or("all"),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": r.id, "sent_to": r.sent_to, "code_expires_at": r.code_expires_at })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

/// `POST /api/patient-authorizations/{id}/confirm` — the code the patient read out.
pub async fn confirm_authorization(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<i64>,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_clinician(&p)?;
    let base = crate::qido::origin_url(&state, &headers);
    let v = state
        .archive
        .confirm_authorization(&grant, id, &b.code, &base)
        .await?;
    Ok(Json(json!(v)))
}

/// `POST /api/patient-authorizations/{id}/revoke`.
pub async fn revoke_authorization(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<StatusCode, ApiError> {
    let grant = huren_access::grant_clinician(&p)?;
    state.archive.revoke_authorization(&grant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
