//! The patient's cloud film (云胶片, issue #20 part 2), laid out for a phone first: `/me` signs
//! the patient in with their identity number and a code sent to their registered mobile
//! number (huren_archive::film), then shows their own reports, lab results and images (rendered
//! frames, or the viewer on a computer), their shares and the authorizations they gave, and
//! `/me/access` who read their data. `/s/{secret}` is a study shared by link: that study's
//! images and report, nothing else, each opening audited.
//!
//! A patient's session has its own cookie (`huren_film`), never the staff's; its forms carry
//! its own CSRF token. The API accepts the cookie for reading only (the viewer).

use crate::i18n::{Lang, T};
use crate::pages::{Frame, framed, k, message, render};
use crate::patient::local;
use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::{FilmGrant, PatientSelf, Principal};
use huren_archive::AdminError;
use huren_archive::film::SHARE_MAX_DAYS;
use huren_http::AppState;
use huren_http::auth::{Actor, FILM_COOKIE, film_cookie};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The patient at a page.
pub struct Patient {
    me: PatientSelf,
    csrf: String,
    secret: String,
    lang: Lang,
}

impl Patient {
    fn frame(&self, back: &str) -> Frame {
        Frame {
            user: T { lang: self.lang }.t("film_me").to_owned(),
            csrf: self.csrf.clone(),
            signout: "/me/signout",
            ..Frame::anonymous(self.lang, back)
        }
    }

    fn grant(&self) -> Result<FilmGrant, huren_access::Denied> {
        huren_access::grant_film(&Principal::Patient(self.me.clone()))
    }

    fn principal(&self) -> Principal {
        Principal::Patient(self.me.clone())
    }

    /// A state-changing form came with the session's token.
    fn csrf_ok(&self, field: &str) -> bool {
        // Both random 64-hex-digit strings (see huren_http::auth).
        !field.is_empty() && field == self.csrf
    }
}

/// No live session: to the sign-in page, or 401 for an image.
fn no_patient(image: bool) -> Response {
    let mut r = if image {
        StatusCode::UNAUTHORIZED.into_response()
    } else {
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/me")]).into_response()
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn source(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

impl FromRequestParts<AppState> for Patient {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_headers(&parts.headers);
        let image = parts.uri.path().contains("/images/") || parts.uri.path().ends_with("/thumb");
        let Some(secret) = film_cookie(&parts.headers) else {
            return Err(no_patient(image));
        };
        let s = match state.archive.film_session(&secret).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                state
                    .archive
                    .note_auth_failure(source(parts), "ended or unknown patient session")
                    .await;
                return Err(no_patient(image));
            }
            Err(e) => {
                tracing::error!(error = %e, "patient session not read");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        };
        if let Some(actor) = parts.extensions.get::<Actor>() {
            actor.set(Principal::Patient(s.patient.clone()));
        }
        Ok(Patient {
            me: s.patient,
            csrf: s.csrf_token,
            secret,
            lang,
        })
    }
}

fn film_cookie_header(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{FILM_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

#[derive(Template)]
#[template(path = "film_signin.html")]
struct SignInPage {
    frame: Frame,
    id: i64,
    error: &'static str,
}
framed!(SignInPage);

fn signin_page(lang: Lang, status: StatusCode, id: i64, error: &'static str) -> Response {
    let mut r = render(
        status,
        &SignInPage {
            frame: Frame::anonymous(lang, "/me"),
            id,
            error,
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize, Default)]
struct CodeRequest {
    #[serde(default)]
    identity: String,
}

/// `POST /me/code`: the identity number; a code goes to the registered mobile number.
pub async fn request_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let f: CodeRequest = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    match state
        .archive
        .film_request_code(&f.identity, Some(peer.ip().to_string()))
        .await
    {
        Ok(s) => signin_page(lang, StatusCode::OK, s.id, ""),
        Err(AdminError::Invalid(_)) => signin_page(
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            0,
            k("film_bad_identity"),
        ),
        Err(AdminError::TooMany(_)) => {
            signin_page(lang, StatusCode::TOO_MANY_REQUESTS, 0, k("film_too_many"))
        }
        Err(e) => {
            tracing::error!(error = %e, "cloud film code not sent");
            signin_page(lang, StatusCode::SERVICE_UNAVAILABLE, 0, k("error_title"))
        }
    }
}

#[derive(Deserialize, Default)]
struct SignInForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    code: String,
}

/// `POST /me/signin`: the code → the patient's session.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let f: SignInForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let id = f.id.trim().parse::<i64>().unwrap_or(0);
    match state
        .archive
        .film_sign_in(id, &f.code, Some(peer.ip().to_string()))
        .await
    {
        Ok(s) => {
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/me")]).into_response();
            if let Some(v) = film_cookie_header(&state, &s.secret, s.max_age) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(AdminError::Invalid(_)) => {
            signin_page(lang, StatusCode::UNAUTHORIZED, id, k("film_wrong_code"))
        }
        Err(e) => {
            tracing::error!(error = %e, "cloud film sign-in not checked");
            signin_page(lang, StatusCode::SERVICE_UNAVAILABLE, id, k("error_title"))
        }
    }
}

#[derive(Deserialize, Default)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
}

/// `POST /me/signout`.
pub async fn sign_out(
    State(state): State<AppState>,
    p: Patient,
    body: axum::body::Bytes,
) -> Response {
    let f: CsrfForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !p.csrf_ok(&f.csrf) {
        return csrf_refused(&p);
    }
    if let Ok(grant) = p.grant() {
        state.archive.film_sign_out(&grant, &p.secret).await;
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/me")]).into_response();
    if let Some(v) = film_cookie_header(&state, "", 0) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn csrf_refused(p: &Patient) -> Response {
    let mut r = message(
        &p.frame("/me"),
        StatusCode::FORBIDDEN,
        k("error_title"),
        k("forbidden_csrf"),
        "/me",
        k("back"),
    );
    r.extensions_mut().insert(huren_http::auth::RefusalReason(
        "a cloud film form without the session's CSRF token".into(),
    ));
    r
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "cloud film page not built");
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

struct Study {
    uid: String,
    when: String,
    institution: String,
    modality: String,
    description: String,
    images: i64,
}

struct Report {
    when: String,
    institution: String,
    procedure: String,
    text: String,
}

struct Lab {
    when: String,
    institution: String,
    item: String,
    value: String,
    range: String,
    flag: String,
}

struct Share {
    id: i64,
    study: String,
    expires: String,
    uses: i64,
    live: bool,
    state_key: &'static str,
}

struct Authorization {
    id: i64,
    institution: String,
    scope_key: &'static str,
    granted: String,
    expires: String,
    live: bool,
    state_key: &'static str,
}

#[derive(Template)]
#[template(path = "film_home.html")]
struct HomePage {
    frame: Frame,
    studies: Vec<Study>,
    reports: Vec<Report>,
    labs: Vec<Lab>,
    shares: Vec<Share>,
    authorizations: Vec<Authorization>,
    share_days: Vec<i64>,
    viewer: bool,
}
framed!(HomePage);

/// A share's or an authorization's state, as a message key.
fn state_key(revoked: bool, live: bool) -> &'static str {
    if revoked {
        k("film_ended")
    } else if live {
        k("film_live")
    } else {
        k("film_expired")
    }
}

/// A code's name from [`crate::patient::institution_names`] (else the code).
fn name_of(names: &HashMap<String, String>, code: &str) -> String {
    names.get(code).cloned().unwrap_or_else(|| code.to_owned())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `GET /me`: sign-in, or the patient's own results.
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Result<Patient, Response>,
) -> Response {
    let p = match p {
        Ok(p) => p,
        Err(_) => return signin_page(Lang::from_headers(&headers), StatusCode::OK, 0, ""),
    };
    let Ok(grant) = p.grant() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let read = match huren_access::grant_read(&p.principal()) {
        Ok(g) => g,
        Err(_) => return StatusCode::FORBIDDEN.into_response(),
    };
    let timeline = match state.archive.timeline(&read, &p.me.person, 500).await {
        Ok(Some(t)) => t,
        Ok(None) => huren_archive::model::Timeline {
            studies: Vec::new(),
            lab_results: Vec::new(),
            reports: Vec::new(),
        },
        Err(e) => return unavailable(e),
    };
    let shares = match state.archive.film_shares(&grant).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let given = match state.archive.film_authorizations(&grant).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let codes: Vec<&str> = timeline
        .studies
        .iter()
        .filter(|s| s.performing_institution_name.is_none())
        .map(|s| s.performing_institution.as_str())
        .chain(
            timeline
                .reports
                .iter()
                .map(|r| r.performing_institution.as_str()),
        )
        .chain(
            timeline
                .lab_results
                .iter()
                .map(|l| l.performing_institution.as_str()),
        )
        .chain(given.iter().map(|a| a.institution.as_str()))
        .collect();
    let names = crate::patient::institution_names(&state, &codes).await;
    let mut studies = Vec::new();
    let mut descriptions = HashMap::new();
    for s in timeline.studies {
        let institution = match &s.performing_institution_name {
            Some(n) => n.clone(),
            None => name_of(&names, &s.performing_institution),
        };
        let description = s.description.clone().unwrap_or_default();
        descriptions.insert(
            s.study_instance_uid.clone(),
            format!("{} {}", local(&state, s.study_instant, false), description),
        );
        studies.push(Study {
            uid: s.study_instance_uid,
            when: local(&state, s.study_instant, true),
            institution,
            modality: s.modalities.replace('\\', "/"),
            description,
            images: s.instances,
        });
    }
    let reports = timeline
        .reports
        .into_iter()
        .map(|r| Report {
            when: local(&state, r.reported_instant, true),
            institution: name_of(&names, &r.performing_institution),
            procedure: r.procedure_text.unwrap_or_default(),
            text: r.text,
        })
        .collect();
    let mut labs = Vec::new();
    for l in timeline.lab_results {
        labs.push(Lab {
            when: local(&state, l.observed_instant, true),
            institution: name_of(&names, &l.performing_institution),
            item: l.code_text.clone().unwrap_or_else(|| l.code.clone()),
            value: format!(
                "{} {}",
                l.value.as_deref().unwrap_or(""),
                l.unit.as_deref().unwrap_or("")
            )
            .trim()
            .to_owned(),
            range: l.reference_range.clone().unwrap_or_default(),
            flag: l
                .abnormal_flag
                .clone()
                .filter(|f| f != "N")
                .unwrap_or_default(),
        });
    }
    let t = now();
    let shares = shares
        .into_iter()
        .map(|s| {
            let live = s.revoked_at.is_none() && s.expires_at > t;
            Share {
                id: s.id,
                study: descriptions
                    .get(&s.study_uid)
                    .cloned()
                    .unwrap_or(s.study_uid),
                expires: local(&state, Some(s.expires_at), true),
                uses: s.uses,
                live,
                state_key: state_key(s.revoked_at.is_some(), live),
            }
        })
        .collect();
    let mut authorizations = Vec::new();
    for a in given {
        let live = a.revoked_at.is_none() && a.expires_at > t;
        authorizations.push(Authorization {
            id: a.id,
            institution: name_of(&names, &a.institution),
            scope_key: match a.scope.as_str() {
                "imaging" => k("scope_imaging"),
                "lab" => k("scope_lab"),
                _ => k("scope_all"),
            },
            granted: local(&state, Some(a.granted_at), true),
            expires: local(&state, Some(a.expires_at), true),
            live,
            state_key: state_key(a.revoked_at.is_some(), live),
        });
    }
    let mut r = render(
        StatusCode::OK,
        &HomePage {
            frame: p.frame("/me"),
            studies,
            reports,
            labs,
            shares,
            authorizations,
            share_days: vec![1, 7, SHARE_MAX_DAYS],
            viewer: crate::assets::has_viewer(),
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

struct Series {
    title: String,
    base: String,
    ids: String,
    count: usize,
    first: String,
}

#[derive(Template)]
#[template(path = "film_study.html")]
struct StudyPage {
    frame: Frame,
    title: String,
    series: Vec<Series>,
    report: Option<String>,
    /// Shown on a shared link: who shared it, until when.
    shared_until: String,
    viewer_url: String,
}
framed!(StudyPage);

/// A UID is digits and dots (PS3.5 §9.1).
fn uid(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .then_some(s)
}

/// The study's images grouped by series, each image's URL under `base`.
fn series_of(images: Vec<huren_http::render::StudyImage>, base: &str) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for i in images {
        match out.last_mut() {
            Some(s) if s.base.ends_with(&format!("/{}/", i.series_uid)) => {
                s.ids.push(' ');
                s.ids.push_str(&i.instance_uid);
                s.count += 1;
            }
            _ => {
                let title = format!(
                    "{} {} {}",
                    i.modality.as_deref().unwrap_or(""),
                    i.series_number.map(|n| n.to_string()).unwrap_or_default(),
                    i.series_description.as_deref().unwrap_or("")
                )
                .trim()
                .to_owned();
                let b = format!("{base}{}/", i.series_uid);
                out.push(Series {
                    title,
                    first: format!("{b}{}", i.instance_uid),
                    base: b,
                    ids: i.instance_uid.clone(),
                    count: 1,
                });
            }
        }
    }
    out
}

/// The report written for `study`, from the reader's timeline.
async fn study_report(
    state: &AppState,
    p: &Principal,
    person: &str,
    study: &str,
) -> Option<String> {
    let read = huren_access::grant_read(p).ok()?;
    let t = state.archive.timeline(&read, person, 500).await.ok()??;
    t.reports
        .into_iter()
        .find(|r| r.study_instance_uid.as_deref() == Some(study))
        .map(|r| r.text)
}

async fn study_page(
    state: &AppState,
    p: &Principal,
    person: &str,
    study: &str,
    frame: Frame,
    base: String,
    shared_until: String,
) -> Response {
    let (description, images) = match huren_http::render::study_images(state, p, study).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let report = study_report(state, p, person, study).await;
    let viewer_url = if shared_until.is_empty() && crate::assets::has_viewer() {
        format!("/viewer/viewer?StudyInstanceUIDs={study}")
    } else {
        String::new()
    };
    let mut r = render(
        StatusCode::OK,
        &StudyPage {
            frame,
            title: description.unwrap_or_default(),
            series: series_of(images, &base),
            report,
            shared_until,
            viewer_url,
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /me/studies/{study}`: the study's images, rendered, one series at a time.
pub async fn study(
    State(state): State<AppState>,
    p: Patient,
    Path(study): Path<String>,
) -> Response {
    let Some(study) = uid(&study) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let frame = p.frame(&format!("/me/studies/{study}"));
    study_page(
        &state,
        &p.principal(),
        &p.me.person,
        study,
        frame,
        format!("/me/studies/{study}/images/"),
        String::new(),
    )
    .await
}

#[derive(Deserialize, Default)]
struct SizeQuery {
    #[serde(default)]
    size: String,
}

fn size(q: Option<String>) -> u32 {
    let q: SizeQuery = crate::pages::query(q);
    q.size.parse::<u32>().unwrap_or(768).clamp(64, 1024)
}

/// `GET /me/studies/{study}/images/{series}/{instance}[?size=]`: one image as JPEG.
pub async fn image(
    State(state): State<AppState>,
    p: Patient,
    Path((study, series, instance)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    match huren_http::render::study_image(
        &state,
        &p.principal(),
        (&study, &series, &instance),
        size(q),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// `GET /me/studies/{study}/thumb`.
pub async fn thumbnail(
    State(state): State<AppState>,
    p: Patient,
    Path(study): Path<String>,
) -> Response {
    match huren_http::render::study_thumbnail(&state, &p.principal(), &study).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "film_shared.html")]
struct SharedPage {
    frame: Frame,
    link: String,
    expires: String,
}
framed!(SharedPage);

/// `POST /me/studies/{study}/share` (days): a link, shown once.
pub async fn share(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Patient,
    Path(study): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f: CsrfForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !p.csrf_ok(&f.csrf) {
        return csrf_refused(&p);
    }
    let Ok(grant) = p.grant() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let days = f.days.trim().parse::<i64>().unwrap_or(7);
    match state.archive.film_share(&grant, &study, days).await {
        Ok((_, secret)) => {
            let origin = huren_http::qido::origin_url(&state, &headers);
            let mut r = render(
                StatusCode::CREATED,
                &SharedPage {
                    frame: p.frame("/me"),
                    link: format!("{origin}/s/{secret}"),
                    expires: local(&state, Some(now() + days * 86_400), true),
                },
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(AdminError::Forbidden(m)) => {
            let mut r = message(
                &p.frame("/me"),
                StatusCode::FORBIDDEN,
                k("error_title"),
                k("film_not_yours"),
                "/me",
                k("back"),
            );
            r.extensions_mut()
                .insert(huren_http::auth::RefusalReason(m));
            r
        }
        Err(AdminError::Invalid(_)) => message(
            &p.frame("/me"),
            StatusCode::BAD_REQUEST,
            k("error_title"),
            k("film_share_days"),
            "/me",
            k("back"),
        ),
        Err(e) => unavailable(e),
    }
}

/// What a patient ends from their page.
enum Ending {
    Share,
    Authorization,
}

/// Ends a share or an authorization of the patient's, then back to its list. Ending what is
/// already over (a second click) is not an error.
async fn end(state: &AppState, p: Patient, id: i64, body: &[u8], what: Ending) -> Response {
    let f: CsrfForm = serde_urlencoded::from_bytes(body).unwrap_or_default();
    if !p.csrf_ok(&f.csrf) {
        return csrf_refused(&p);
    }
    let Ok(grant) = p.grant() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let (done, to) = match what {
        Ending::Share => (state.archive.film_end_share(&grant, id).await, "/me#shares"),
        Ending::Authorization => (
            state.archive.film_end_authorization(&grant, id).await,
            "/me#authorizations",
        ),
    };
    match done {
        Ok(())
        | Err(AdminError::Refused(
            huren_archive::refusal::Rule::ShareNotLive
            | huren_archive::refusal::Rule::AuthorizationNotLive,
            _,
        )) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
        Err(e) => unavailable(e),
    }
}

/// `POST /me/shares/{id}/end`.
pub async fn end_share(
    State(state): State<AppState>,
    p: Patient,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    end(&state, p, id, &body, Ending::Share).await
}

/// `POST /me/authorizations/{id}/end`.
pub async fn end_authorization(
    State(state): State<AppState>,
    p: Patient,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    end(&state, p, id, &body, Ending::Authorization).await
}

struct Access {
    when: String,
    institution: String,
    role_key: &'static str,
    action_key: &'static str,
    purpose_key: &'static str,
    refused: bool,
}

#[derive(Template)]
#[template(path = "film_access.html")]
struct AccessPage {
    frame: Frame,
    entries: Vec<Access>,
}
framed!(AccessPage);

fn role_key(role: &str) -> &'static str {
    match role {
        "doctor" => k("role_doctor"),
        "technician" => k("role_technician"),
        "qc_officer" => k("role_qc_officer"),
        "data_steward" => k("role_data_steward"),
        "institution_admin" => k("role_institution_admin"),
        "system" => k("film_role_system"),
        "patient" => k("film_role_patient"),
        "share" => k("film_role_share"),
        _ => k("film_role_platform"),
    }
}

fn action_key(action: &str) -> &'static str {
    match action {
        "patient_data_accessed" => k("film_act_read"),
        "recognition_decided" => k("film_act_decided"),
        "patient_authorization" => k("film_act_authorization"),
        "emergency_override" => k("film_act_emergency"),
        _ => k("film_act_shared"),
    }
}

fn purpose_key(purpose: Option<&str>) -> &'static str {
    match purpose {
        Some("treatment") => k("film_purpose_treatment"),
        Some("emergency") => k("film_purpose_emergency"),
        Some("operations") => k("film_purpose_operations"),
        Some("patient") => k("film_purpose_patient"),
        _ => k("film_purpose_none"),
    }
}

/// `GET /me/access`: who read the patient's data, when, from which institution, why.
pub async fn access(State(state): State<AppState>, p: Patient) -> Response {
    let Ok(grant) = p.grant() else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let log = match state.archive.film_access_log(&grant, 300).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let codes: Vec<&str> = log
        .iter()
        .filter_map(|e| e.institution.as_deref())
        .collect();
    let names = crate::patient::institution_names(&state, &codes).await;
    let mut entries = Vec::new();
    for e in log {
        let institution = match &e.institution {
            Some(c) => name_of(&names, c),
            None => String::new(),
        };
        entries.push(Access {
            when: local(&state, Some(e.at), true),
            institution,
            role_key: role_key(&e.role),
            action_key: action_key(&e.action),
            // A link's reads are the patient's own choice of reader.
            purpose_key: if e.role == "share" {
                k("film_purpose_shared")
            } else {
                purpose_key(e.purpose.as_deref())
            },
            refused: e.refused,
        });
    }
    let mut r = render(
        StatusCode::OK,
        &AccessPage {
            frame: p.frame("/me/access"),
            entries,
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /me/qr.svg`: a QR code of the cloud film's address (`{origin}/me`), for a hospital to
/// print on its reports and films. It names no patient: whoever scans it still signs in with
/// the code sent to the registered phone.
pub async fn qr(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let url = format!("{}/me", huren_http::qido::origin_url(&state, &headers));
    match qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build();
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "image/svg+xml"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                svg,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "QR code not made");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A share link's secret: 64 hex digits.
fn secret(s: &str) -> Option<&str> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

fn link_gone(lang: Lang) -> Response {
    let mut r = message(
        &Frame::anonymous(lang, "/"),
        StatusCode::GONE,
        k("film_link_gone_title"),
        k("film_link_gone"),
        "/me",
        k("film_title"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /s/{secret}`: a shared study (its images and report), for whoever holds the link.
pub async fn shared(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(s): Path<String>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let Some(s) = secret(&s) else {
        state
            .archive
            .note_auth_failure(Some(peer.ip().to_string()), "malformed share link")
            .await;
        return link_gone(lang);
    };
    let shared = match state
        .archive
        .film_open_share(s, true, Some(peer.ip().to_string()))
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => return link_gone(lang),
        Err(e) => return unavailable(e),
    };
    let frame = Frame::anonymous(lang, &format!("/s/{s}"));
    let mut r = study_page(
        &state,
        &shared.principal,
        &shared.person,
        &shared.study_uid,
        frame,
        format!("/s/{s}/images/"),
        local(&state, Some(shared.expires_at), true),
    )
    .await;
    // The link is the credential: keep it out of Referer headers and shared caches.
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /s/{secret}/images/{series}/{instance}`: an image of the shared study only.
pub async fn shared_image(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((s, series, instance)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(s) = secret(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let shared = match state
        .archive
        .film_open_share(s, false, Some(peer.ip().to_string()))
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => return StatusCode::GONE.into_response(),
        Err(e) => return unavailable(e),
    };
    // The study is the share's, never the caller's choice.
    let uids = (
        shared.study_uid.as_str(),
        series.as_str(),
        instance.as_str(),
    );
    match huren_http::render::study_image(&state, &shared.principal, uids, size(q)).await {
        Ok(mut r) => {
            r.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            r
        }
        Err(e) => e.into_response(),
    }
}
