//! OpenID Connect sign-in pages (issue #6; the `oidc` feature): `GET /auth/oidc/login` sends
//! the browser to the identity provider, `GET /auth/oidc/callback` takes it back, and the person
//! is signed in to their huren account as with a password (the same session cookie). The flow
//! and the token checks are in `huren-oidc`.

use crate::AppState;
use crate::error::{ApiError, ApiQuery};
use crate::session::cookie;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_archive::accounts::LoginError;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// Where to go after signing in: a path on this server.
    return_to: Option<String>,
}

/// Only a path on this server: never another site (an open redirect would lend huren's name
/// to phishing).
fn local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains("://")
}

fn client(state: &AppState) -> Result<&huren_oidc::Client, ApiError> {
    state
        .oidc
        .as_deref()
        .ok_or_else(|| ApiError::not_found("OpenID Connect sign-in is not configured"))
}

pub async fn login(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LoginQuery>,
) -> Result<Response, ApiError> {
    let c = client(&state)?;
    let url = c
        .begin(q.return_to.filter(|r| local_path(r)))
        .await
        .map_err(|e| ApiError::bad_gateway(e.to_string()))?;
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// The provider's redirect (OIDC Core §3.1.2.5/§3.1.2.6). Providers add their own parameters
/// (`session_state`, `iss`), so unknown ones are ignored here.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let c = client(&state)?;
    let source = Some(peer.ip().to_string());
    if let Some(e) = q.error {
        state
            .archive
            .note_auth_failure(source, "OpenID Connect: the provider refused")
            .await;
        return Err(ApiError::unauthorized(format!(
            "the identity provider refused the sign-in: {e}"
        )));
    }
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return Err(ApiError::bad_request("the callback needs code and state"));
    };
    let id = match c.finish(&code, &st).await {
        Ok(id) => id,
        Err(huren_oidc::Error::Provider(m)) => return Err(ApiError::bad_gateway(m)),
        Err(e) => {
            metrics::counter!("huren_http_auth_failures_total").increment(1);
            state
                .archive
                .note_auth_failure(source, "OpenID Connect: token or state refused")
                .await;
            return Err(ApiError::unauthorized(e.to_string()));
        }
    };
    let detail = serde_json::json!({ "issuer": id.issuer, "subject": id.subject });
    let start = state
        .archive
        .sign_in_verified(&id.username, "oidc", detail, source)
        .await
        .map_err(|e| match e {
            LoginError::Invalid => {
                ApiError::unauthorized("no active huren account has this identity's username")
            }
            LoginError::Locked { .. } => ApiError::locked(e.to_string()),
            LoginError::Store(s) => s.into(),
        })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let to = id.return_to.unwrap_or_else(|| "/".to_owned());
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Some(v) = cookie(&state, &start.secret, start.expires_at - now) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        for ok in ["/", "/api/patients/x/timeline", "/viewer?study=1"] {
            assert!(super::local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "",
        ] {
            assert!(!super::local_path(bad), "{bad}");
        }
    }
}
