//! Who is at the page: the session cookie (set by sign-in, by the HIS launch or by OpenID
//! Connect) read the way the API reads it. A page without a live session sends the browser to
//! sign-in (an htmx request is told with `HX-Redirect`), saying so when the session ended.
//! State-changing forms carry the session's CSRF token (field `csrf`, or htmx's
//! `X-CSRF-Token` header).

use crate::i18n::{Lang, T};
use crate::pages::{Frame, k, signin_page};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::{Principal, User};
use huren_archive::accounts::LoginError;
use huren_http::AppState;
use huren_http::auth::{Actor, session_cookie};
use huren_http::session::cookie;
use serde::Deserialize;
use std::net::SocketAddr;

/// A signed-in person at a page.
pub struct Doctor {
    pub user: User,
    pub csrf: String,
    /// The `X-CSRF-Token` header matched (htmx requests).
    header_ok: bool,
    secret: String,
    pub lang: Lang,
}

impl Doctor {
    pub fn principal(&self) -> Principal {
        Principal::User(self.user.clone())
    }

    /// The page frame (header, language switch, sign-out) for a page at `back`.
    pub fn frame(&self, back: &str) -> Frame {
        Frame {
            t: T { lang: self.lang },
            csrf: self.csrf.clone(),
            user: format!("{} · {}", self.user.username, self.user.institution_code),
            back: back.to_owned(),
            htmx: crate::assets::has_htmx(),
            signout: "/signout",
        }
    }

    /// A state-changing form came with the session's token (field or header).
    pub fn csrf_ok(&self, field: &str) -> bool {
        // Both random 64-hex-digit strings; see huren_http::auth for why a plain compare.
        self.header_ok || (!field.is_empty() && field == self.csrf)
    }

    /// The 403 for a form without the token (audited by the API's refusal layer).
    pub fn csrf_refused(&self) -> Response {
        let mut resp = crate::pages::message(
            &self.frame("/"),
            StatusCode::FORBIDDEN,
            k("error_title"),
            k("forbidden_csrf"),
            "/",
            k("back"),
        );
        resp.extensions_mut()
            .insert(huren_http::auth::RefusalReason(
                "a page form without the session's CSRF token".into(),
            ));
        resp
    }
}

/// Where to send a browser that has no session: sign-in, then back here.
fn to_sign_in(parts: &Parts, ended: bool) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let mut to = format!(
        "/?{}",
        serde_urlencoded::to_string([("next", &next)]).unwrap_or_default()
    );
    if ended {
        to.push_str("&m=session_ended");
    }
    if parts.headers.contains_key("hx-request") {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl FromRequestParts<AppState> for Doctor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_headers(&parts.headers);
        let Some(secret) = session_cookie(&parts.headers) else {
            return Err(to_sign_in(parts, false));
        };
        let active = match state.archive.active_session(&secret).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "session not read");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        };
        let Some(active) = active else {
            let source = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string());
            state
                .archive
                .note_auth_failure(source, "ended or unknown session")
                .await;
            return Err(to_sign_in(parts, true));
        };
        if let Some(actor) = parts.extensions.get::<Actor>() {
            actor.set(Principal::User(active.user.clone()));
        }
        let header_ok = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == active.csrf_token);
        Ok(Doctor {
            user: active.user,
            csrf: active.csrf_token,
            header_ok,
            secret,
            lang,
        })
    }
}

/// A path on this site (where sign-in and the language switch may send the browser back to),
/// never another site (`//host`, `/\\host` and `scheme://` would leave it).
pub(crate) fn local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains("://")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed() {
        for ok in ["/", "/patients/abc", "/order-reminder?item=X"] {
            assert!(super::local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
        ] {
            assert!(!super::local_path(bad), "{bad}");
        }
    }
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /signin` (form): the password sign-in of the API's `POST /api/session`.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let form: SignInForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return signin_page(
                &state,
                lang,
                StatusCode::BAD_REQUEST,
                Some(k("wrong_password")),
                "/",
            );
        }
    };
    let next = if local_path(&form.next) {
        form.next.clone()
    } else {
        "/".to_owned()
    };
    let start = match state
        .archive
        .login(&form.username, &form.password, Some(peer.ip().to_string()))
        .await
    {
        Ok(s) => s,
        Err(LoginError::Invalid) => {
            return signin_page(
                &state,
                lang,
                StatusCode::UNAUTHORIZED,
                Some(k("wrong_password")),
                &next,
            );
        }
        Err(LoginError::Locked { .. }) => {
            return signin_page(&state, lang, StatusCode::LOCKED, Some(k("locked")), &next);
        }
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "sign-in not checked");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    signed_in(&state, &start.secret, start.expires_at, &next)
}

/// The redirect that starts a session in the browser.
fn signed_in(state: &AppState, secret: &str, expires_at: i64, to: &str) -> Response {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Some(v) = cookie(state, secret, expires_at - now) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    // A launch ticket was in the URL: keep it out of any Referer the next page would send.
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /signout`: ends the session (audited) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    d: Doctor,
    body: axum::body::Bytes,
) -> Response {
    let form: CsrfForm = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfForm {
        csrf: String::new(),
    });
    if !d.csrf_ok(&form.csrf) {
        return d.csrf_refused();
    }
    if let Err(e) = state.archive.logout(&d.secret, &d.user).await {
        tracing::error!(error = %e, "sign-out not recorded");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut resp = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/?m=signed_out")],
    )
        .into_response();
    if let Some(v) = cookie(&state, "", 0) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize, Default)]
pub struct LaunchQuery {
    #[serde(default)]
    ticket: String,
}

/// `GET /launch?ticket=…` — the HIS launch: the one-time ticket starts the doctor's session
/// (with the encounter's relationship already recorded by the HIS) and the browser lands on the
/// patient's page.
pub async fn launch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let q: LaunchQuery = crate::pages::query(q);
    match state
        .archive
        .redeem_launch_ticket(q.ticket.trim(), Some(peer.ip().to_string()))
        .await
    {
        Ok((start, person)) => {
            let to = match person {
                Some(p) => format!("/patients/{p}"),
                None => "/".to_owned(),
            };
            signed_in(&state, &start.secret, start.expires_at, &to)
        }
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "launch ticket not read");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(_) => {
            let f = Frame::anonymous(lang, "/");
            let mut r = crate::pages::message(
                &f,
                StatusCode::UNAUTHORIZED,
                k("error_title"),
                k("launch_invalid"),
                "/",
                k("sign_in"),
            );
            r.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            r
        }
    }
}
