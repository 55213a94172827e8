//! The patient's revocation link (issue #6): ending an authorization from the link in the
//! confirmation SMS (the patient's cloud film is huren-web's `/me`). No account: the link's
//! secret, sent only to the patient's phone, is the credential. `GET` only shows a button
//! (link previewers and scanners fetch links; they must not revoke); `POST` ends it. Chinese
//! first, with English.

use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub struct RevokeLink {
    #[serde(default)]
    t: String,
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>撤销授权 · Revoke access</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em\">{body}</body></html>"
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Only the characters a link secret has (hex), so nothing else reaches the page.
fn clean(t: &str) -> Option<&str> {
    let t = t.trim();
    (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then_some(t)
}

/// `GET /patient/revoke?t=…`: the confirmation button.
pub async fn revoke_page(
    crate::error::ApiQuery(q): crate::error::ApiQuery<RevokeLink>,
) -> Response {
    let Some(t) = clean(&q.t) else {
        return page(
            StatusCode::NOT_FOUND,
            "<p>链接无效。</p><p>This link is not valid.</p>",
        );
    };
    page(
        StatusCode::OK,
        &format!(
            "<h1>撤销授权</h1><p>撤销后，对方医疗机构将不能再查看您的检查检验结果。</p>\
             <p lang=\"en\">Revoke access: the clinic will no longer see your results.</p>\
             <form method=\"post\" action=\"/patient/revoke\"><input type=\"hidden\" name=\"t\" value=\"{t}\">\
             <button type=\"submit\">确认撤销 / Revoke</button></form>"
        ),
    )
}

/// `POST /patient/revoke` (form `t`): ends the authorization.
pub async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let form: RevokeLink =
        serde_urlencoded::from_bytes(&body).unwrap_or(RevokeLink { t: String::new() });
    let ended = match clean(&form.t) {
        Some(t) => {
            state
                .archive
                .revoke_by_patient(t, Some(peer.ip().to_string()))
                .await
        }
        None => false,
    };
    if ended {
        page(
            StatusCode::OK,
            "<h1>已撤销</h1><p>授权已结束，对方医疗机构不能再查看您的结果。</p>\
             <p lang=\"en\">Revoked: the clinic can no longer see your results.</p>",
        )
    } else {
        page(
            StatusCode::NOT_FOUND,
            "<p>该授权已结束、已撤销或链接无效。</p>\
             <p lang=\"en\">This access has already ended or been revoked, or the link is not valid.</p>",
        )
    }
}
