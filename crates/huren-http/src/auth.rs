//! Who is calling: a bearer token (systems, operators' tokens) or a person's session cookie.
//! Every request but `/healthz` and sign-in names its principal.
//!
//! A cookie is sent by the browser on its own, so a state-changing request authenticated by
//! one must also carry the session's CSRF token in `X-CSRF-Token` (a page of another site can
//! make the browser send the cookie, but cannot read the token). Bearer tokens need no such
//! check: a browser never adds them by itself.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use huren_access::{Principal, hash_token};

pub struct Authenticated(pub Principal);

pub const SESSION_COOKIE: &str = "huren_session";
/// A patient's cloud-film session (huren-web's `/me`), read by the API for GET requests only:
/// the viewer on a patient's screen reads their own studies through DICOMweb.
pub const FILM_COOKIE: &str = "huren_film";

/// The client's address, when the server recorded it.
fn peer(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// A system naming the person it acts for (the HIS calling for a doctor): authorization and
/// audit then use that person.
pub const ON_BEHALF_OF: &str = "x-huren-on-behalf-of";

/// A refusal raised while authenticating, with the principal already known (the system whose
/// On-Behalf-Of named nobody it may act for; the person whose request lacked the CSRF token),
/// so the refusal is audited with who was refused.
type AuthFailure = (ApiError, Option<Principal>);

async fn on_behalf(
    parts: &Parts,
    state: &AppState,
    system: Principal,
) -> Result<Authenticated, AuthFailure> {
    let Principal::System(sender) = &system else {
        return Err((
            ApiError::forbidden("only systems act for a person"),
            Some(system),
        ));
    };
    let name = parts
        .headers
        .get(ON_BEHALF_OF)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let person = state
        .archive
        .person_for_system(sender, name)
        .await
        .map_err(|e| (ApiError::from(e), None))?;
    match person {
        // A system acts only for its own institution's people (`Archive::person_for_system`).
        Some(user) => Ok(Authenticated(Principal::User(user))),
        _ => Err((
            ApiError::forbidden(format!(
                "X-Huren-On-Behalf-Of {:?} names no active user of this system's institution",
                name.chars().take(64).collect::<String>()
            )),
            Some(system),
        )),
    }
}

/// The session secret in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The patient's cloud-film session secret, if any.
pub fn film_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, FILM_COOKIE)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Who the request was authenticated as, filled in by [`Authenticated`] for the refusal audit
/// ([`audit_refusals`]) and the rate limits (`limits`): a 403 is recorded with the principal it
/// refused; a credential that authenticated is not throttled with failed ones.
#[derive(Clone, Default)]
pub struct Actor(std::sync::Arc<std::sync::OnceLock<Principal>>);

impl Actor {
    pub fn get(&self) -> Option<&Principal> {
        self.0.get()
    }

    /// Names who the request was authenticated as (the web pages' own session extractor).
    pub fn set(&self, p: Principal) {
        let _ = self.0.set(p);
    }
}

pub use crate::error::RefusalReason;

/// Records every 403 (a principal asking for what its role or relationship does not allow) as
/// an `access_denied` audit event, once per principal × endpoint per read-audit window, so the
/// refused cells of the authorization matrix are all in the trail.
pub async fn audit_refusals(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let actor = req.extensions().get::<Actor>().cloned().unwrap_or_default();
    req.extensions_mut().insert(actor.clone());
    let what = format!("{} {}", req.method(), req.uri().path());
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::FORBIDDEN {
        let reason = resp
            .extensions()
            .get::<RefusalReason>()
            .map(|r| r.0.as_str())
            .unwrap_or("");
        state
            .archive
            .note_refusal(actor.0.get(), &what, source, reason)
            .await;
    }
    resp
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let found = authenticate(parts, state).await;
        let known = match &found {
            Ok(Authenticated(p)) => Some(p),
            Err((_, p)) => p.as_ref(),
        };
        if let (Some(p), Some(actor)) = (known, parts.extensions.get::<Actor>()) {
            let _ = actor.0.set(p.clone());
        }
        found.map_err(|(e, _)| e)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Authenticated, AuthFailure> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return session(parts, state).await;
    };
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            (
                ApiError::unauthorized("Authorization must be 'Bearer <token>'"),
                None,
            )
        })?;
    let hash = hash_token(token);
    if state.bootstrap_admin_hash.as_deref() == Some(hash.as_str()) {
        return Ok(Authenticated(Principal::BootstrapAdmin));
    }
    let principal = state
        .archive
        .principal_for_token(&hash)
        .await
        .map_err(|e| (ApiError::from(e), None))?;
    match principal {
        Some(Principal::System(system)) if parts.headers.contains_key(ON_BEHALF_OF) => {
            on_behalf(parts, state, Principal::System(system)).await
        }
        Some(p) => Ok(Authenticated(p)),
        None => {
            metrics::counter!("huren_http_auth_failures_total").increment(1);
            state
                .archive
                .note_auth_failure(peer(parts), "unknown, expired or revoked token")
                .await;
            Err((
                ApiError::unauthorized("unknown, expired or revoked token"),
                None,
            ))
        }
    }
}

/// A patient's own session, for reading: their studies in the viewer. Nothing else the API
/// offers takes a patient (the grants refuse them), and no state-changing request is accepted
/// on this cookie (the pages' forms carry their own CSRF token).
async fn film_session(
    parts: &Parts,
    state: &AppState,
    secret: &str,
) -> Result<Authenticated, AuthFailure> {
    let found = state
        .archive
        .film_session(secret)
        .await
        .map_err(|e| (ApiError::from(e), None))?;
    let Some(s) = found else {
        metrics::counter!("huren_http_auth_failures_total").increment(1);
        state
            .archive
            .note_auth_failure(peer(parts), "ended or unknown patient session")
            .await;
        return Err((
            ApiError::unauthorized("the session has ended; sign in again"),
            None,
        ));
    };
    let p = Principal::Patient(s.patient);
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Err((
            ApiError::forbidden("a patient's session reads only"),
            Some(p),
        ));
    }
    Ok(Authenticated(p))
}

async fn session(parts: &Parts, state: &AppState) -> Result<Authenticated, AuthFailure> {
    let staff = session_cookie(&parts.headers);
    if staff.is_none()
        && let Some(secret) = film_cookie(&parts.headers)
    {
        return film_session(parts, state, &secret).await;
    }
    let Some(secret) = staff else {
        metrics::counter!("huren_http_auth_failures_total").increment(1);
        state
            .archive
            .note_auth_failure(peer(parts), "no credentials")
            .await;
        return Err((
            ApiError::unauthorized("a bearer token or a signed-in session is required"),
            None,
        ));
    };
    let active = state
        .archive
        .active_session(&secret)
        .await
        .map_err(|e| (ApiError::from(e), None))?;
    let Some(active) = active else {
        metrics::counter!("huren_http_auth_failures_total").increment(1);
        state
            .archive
            .note_auth_failure(peer(parts), "ended or unknown session")
            .await;
        return Err((
            ApiError::unauthorized("the session has ended; sign in again"),
            None,
        ));
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Both are random 64-hex-digit strings; equal length, so a plain compare leaks nothing
        // useful about a value the attacker cannot submit from another origin anyway.
        if sent != active.csrf_token {
            return Err((
                ApiError::forbidden(
                    "a state-changing request in a session needs the session's X-CSRF-Token",
                ),
                Some(Principal::User(active.user)),
            ));
        }
    }
    Ok(Authenticated(Principal::User(active.user)))
}
