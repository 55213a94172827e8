//! Bearer-token authentication: every request but `/healthz` names its principal.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use huren_access::{Principal, hash_token};

pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
        let hash = hash_token(token);
        if state.bootstrap_admin_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Authenticated(Principal::BootstrapAdmin));
        }
        match state.archive.index.principal_for_token(&hash).await? {
            Some(p) => Ok(Authenticated(p)),
            None => {
                metrics::counter!("huren_http_auth_failures_total").increment(1);
                Err(ApiError::unauthorized("unknown or revoked token"))
            }
        }
    }
}
