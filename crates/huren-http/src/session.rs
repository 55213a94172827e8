//! Signing in and out (issue #6): `POST /api/session` with a username and password sets the
//! session cookie (HttpOnly, SameSite=Lax, Secure behind HTTPS) and answers the CSRF token the
//! page sends with state-changing requests; `GET` says who is signed in; `DELETE` signs out.

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

fn cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
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
