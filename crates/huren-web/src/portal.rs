//! The clinic portal (issue #20): a clinic's doctor, finding nobody they may see by an identity
//! number, asks the patient's authorization (an SMS code the patient reads out) and then opens
//! the patient page; a clinic with a modality but no PACS uploads studies from the browser
//! (STOW-RS underneath, one file per request, so each file has its own answer).
//!
//! The use cases are the API's (`Archive::request_authorization`, `confirm_authorization`,
//! `ingest` behind STOW-RS); these pages only ask and show.

use crate::i18n::{Lang, T};
use crate::pages::{Frame, framed, k, render};
use crate::session::Doctor;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::{Role, User};
use huren_archive::consent::ConsentError;
use huren_http::AppState;
use serde::Deserialize;

/// Who may upload images from the browser (`huren_access::grant_upload`, which STOW-RS asks).
pub fn may_upload(u: &User) -> bool {
    matches!(u.role, Role::Technician | Role::Doctor)
}

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage {
    frame: Frame,
    /// The request waiting for its code (0: none, only the error is shown).
    id: i64,
    /// The masked number the code went to.
    sent_to: String,
    /// A message key, or empty.
    error: &'static str,
}
framed!(AuthorizePage);

#[derive(Deserialize, Default)]
struct AskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    days: String,
}

/// The message for a refused request, by the step and rule that refused it.
fn ask_error(e: &ConsentError) -> (StatusCode, &'static str) {
    use huren_archive::refusal::Rule;
    match e {
        ConsentError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, k("ask_too_many")),
        ConsentError::Refused(Rule::NoRegisteredMobile, _) => {
            (StatusCode::UNPROCESSABLE_ENTITY, k("ask_no_phone"))
        }
        ConsentError::Refused(Rule::PatientAmbiguous | Rule::PatientNotFound, _) => {
            (StatusCode::UNPROCESSABLE_ENTITY, k("ask_no_patient"))
        }
        e if e.is_internal() => (StatusCode::SERVICE_UNAVAILABLE, k("error_title")),
        _ => (StatusCode::BAD_REQUEST, k("ask_invalid")),
    }
}

fn authorize_page(
    d: &Doctor,
    status: StatusCode,
    id: i64,
    sent_to: &str,
    error: &'static str,
) -> Response {
    render(
        status,
        &AuthorizePage {
            frame: d.frame("/"),
            id,
            sent_to: sent_to.to_owned(),
            error,
        },
    )
}

/// `POST /authorizations` (form): sends the patient named by identity number an SMS code.
pub async fn ask(State(state): State<AppState>, d: Doctor, body: axum::body::Bytes) -> Response {
    let f: AskForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !d.csrf_ok(&f.csrf) {
        return d.csrf_refused();
    }
    let grant = match huren_access::grant_clinician(&d.principal()) {
        Ok(g) => g,
        Err(e) => {
            let mut r = authorize_page(&d, StatusCode::FORBIDDEN, 0, "", k("ask_not_doctor"));
            r.extensions_mut()
                .insert(huren_http::auth::RefusalReason(e.to_string()));
            return r;
        }
    };
    let identity = f.identity.trim().to_uppercase();
    let days = f.days.trim().parse::<i64>().unwrap_or(7);
    let scope = if f.scope.is_empty() {
        "all"
    } else {
        f.scope.as_str()
    };
    match state
        .archive
        .request_authorization(
            &grant,
            huren_archive::PatientLookup::Identifier {
                system: huren_mpi::id::RESIDENT,
                value: &identity,
            },
            days,
            scope,
        )
        .await
    {
        Ok(r) => authorize_page(&d, StatusCode::CREATED, r.id, &r.sent_to, ""),
        Err(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "authorization not requested");
            }
            let (status, key) = ask_error(&e);
            authorize_page(&d, status, 0, "", key)
        }
    }
}

#[derive(Deserialize, Default)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    sent_to: String,
}

/// `POST /authorizations/{id}` (form): the code the patient read out; right → the patient page.
pub async fn confirm(
    State(state): State<AppState>,
    d: Doctor,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let f: CodeForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !d.csrf_ok(&f.csrf) {
        return d.csrf_refused();
    }
    let grant = match huren_access::grant_clinician(&d.principal()) {
        Ok(g) => g,
        Err(_) => return authorize_page(&d, StatusCode::FORBIDDEN, 0, "", k("ask_not_doctor")),
    };
    let base = huren_http::qido::origin_url(&state, &headers);
    // The masked number is only shown again; it decides nothing.
    let sent_to: String = f.sent_to.chars().take(20).collect();
    match state
        .archive
        .confirm_authorization(&grant, id, &f.code, &base)
        .await
    {
        Ok(v) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/patients/{}", v.person))],
        )
            .into_response(),
        Err(e) if e.is_internal() => {
            tracing::error!(error = %e, "authorization not confirmed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(_) => authorize_page(
            &d,
            StatusCode::UNPROCESSABLE_ENTITY,
            id,
            &sent_to,
            k("code_wrong"),
        ),
    }
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    frame: Frame,
    /// The upload script's words in the page's language, as JSON (one message table).
    words: String,
}
framed!(UploadPage);

/// The words `static/upload.js` shows, by key.
const UPLOAD_WORDS: &[&str] = &[
    k("upload_file"),
    k("upload_result"),
    k("up_stored"),
    k("up_stored_warning"),
    k("up_refused"),
    k("up_skipped"),
    k("up_summary_stored"),
    k("up_summary_refused"),
    k("up_dicomdir"),
    k("up_zip_bad"),
    k("up_reason_c000"),
    k("up_reason_a900"),
    k("up_reason_a700"),
    k("up_reason_0124"),
    k("up_reason_0110"),
    k("up_reason_c409"),
    k("up_reason_other"),
    k("up_network"),
];

fn upload_words(lang: Lang) -> String {
    let t = T { lang };
    let map: serde_json::Map<String, serde_json::Value> = UPLOAD_WORDS
        .iter()
        .map(|key| ((*key).to_owned(), t.t(key).into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// `GET /upload`: the browser upload for technicians and doctors.
pub async fn upload(d: Doctor) -> Response {
    if !may_upload(&d.user) {
        return crate::pages::role_refused(
            &d,
            k("upload_no_role"),
            "the upload page is for technicians and doctors".into(),
        );
    }
    render(
        StatusCode::OK,
        &UploadPage {
            frame: d.frame("/upload"),
            words: upload_words(d.lang),
        },
    )
}
