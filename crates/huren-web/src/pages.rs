//! The frame every page shares, sign-in and the start page (find a patient), the language
//! switch, and the message page.

use crate::i18n::{LANG_COOKIE, Lang, T};
use crate::session::Doctor;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use huren_access::Role;
use huren_archive::PatientLookup;
use huren_http::AppState;
use serde::Deserialize;

/// What the base template shows around every page.
#[derive(Debug, Clone)]
pub struct Frame {
    pub t: T,
    /// The session's CSRF token (empty when nobody is signed in).
    pub csrf: String,
    /// Who is signed in, for the header (empty: nobody).
    pub user: String,
    /// This page's path, for the language switch to come back to.
    pub back: String,
    /// htmx is in the binary (else forms post and the page reloads).
    pub htmx: bool,
    /// Where the sign-out form posts (a patient's session has its own).
    pub signout: &'static str,
}

impl Frame {
    pub fn anonymous(lang: Lang, back: &str) -> Frame {
        Frame {
            t: T { lang },
            csrf: String::new(),
            user: String::new(),
            back: back.to_owned(),
            htmx: crate::assets::has_htmx(),
            signout: "/signout",
        }
    }
}

/// Page structs embed a [`Frame`] and reach its fields through `Deref`, as the base template
/// expects (`t`, `csrf`, `user`, `back`, `htmx`).
macro_rules! framed {
    ($($ty:ty),*) => {$(
        impl std::ops::Deref for $ty {
            type Target = Frame;
            fn deref(&self) -> &Frame {
                &self.frame
            }
        }
    )*};
}
pub(crate) use framed;

/// A key of the message table, named where it is chosen, so that the i18n test finds and checks it.
pub const fn k(key: &'static str) -> &'static str {
    key
}

/// A page's query string, leniently: what is missing or malformed is left at its default
/// (pages show a form or a message; the JSON API answers such input with a 400 instead).
pub fn query<Q: Default + serde::de::DeserializeOwned>(raw: Option<String>) -> Q {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default()
}

/// A period from a form's `from` and `until` (YYYY-MM-DD): `until` is today when empty, `from`
/// is `default_from(until)` when empty; `None` when a day is malformed or `until` is before
/// `from`.
pub fn period(
    today: time::Date,
    from: &str,
    until: &str,
    default_from: impl Fn(time::Date) -> Option<time::Date>,
) -> Option<(time::Date, time::Date)> {
    let until = match until.trim() {
        "" => today,
        s => huren_types::day::parse_iso(s)?,
    };
    let from = match from.trim() {
        "" => default_from(until)?,
        s => huren_types::day::parse_iso(s)?,
    };
    (from <= until).then_some((from, until))
}

/// A day as the pages write it (YYYY-MM-DD).
pub use huren_types::day::iso as day;

/// The CSV of an aggregate API over the page's period and grouping.
pub fn csv_link(api: &str, from: &str, until: &str, by: &str) -> String {
    let q = serde_urlencoded::to_string([
        ("from", from),
        ("until", until),
        ("by", by),
        ("format", "csv"),
    ])
    .unwrap_or_default();
    format!("{api}?{q}")
}

pub fn render<Tpl: Template>(status: StatusCode, tpl: &Tpl) -> Response {
    // Room for a long patient page at once (askama's own estimate is the template's static
    // text, and growing a 300 kB string by doubling copies it many times).
    let mut html = String::with_capacity(Tpl::SIZE_HINT.max(16 * 1024));
    match tpl.render_into(&mut html) {
        Ok(()) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page not rendered");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    frame: Frame,
    title: &'a str,
    text: &'a str,
    link: &'a str,
    link_text: &'a str,
}

framed!(MessagePage<'_>);

/// A page saying one thing (title and text are message keys).
pub fn message(
    frame: &Frame,
    status: StatusCode,
    title: &str,
    text: &str,
    link: &str,
    link_text: &str,
) -> Response {
    render(
        status,
        &MessagePage {
            frame: frame.clone(),
            title,
            text,
            link,
            link_text,
        },
    )
}

/// The page refusing a role its page (`text`, a message key), with the reason for the refusal
/// audit (`huren_http::auth::audit_refusals`).
pub fn role_refused(d: &Doctor, text: &'static str, reason: String) -> Response {
    let mut r = message(
        &d.frame("/"),
        StatusCode::FORBIDDEN,
        k("error_title"),
        text,
        "/",
        k("back"),
    );
    r.extensions_mut()
        .insert(huren_http::auth::RefusalReason(reason));
    r
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    frame: Frame,
    message: Option<&'a str>,
    next: &'a str,
    oidc: bool,
}

framed!(SignInPage<'_>);

pub fn signin_page(
    state: &AppState,
    lang: Lang,
    status: StatusCode,
    message: Option<&str>,
    next: &str,
) -> Response {
    render(
        status,
        &SignInPage {
            frame: Frame::anonymous(lang, "/"),
            message,
            next,
            oidc: state.oidc.is_some(),
        },
    )
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    m: String,
}

/// The messages a redirect may name on the sign-in page.
const SIGN_IN_MESSAGES: &[&str] = &[k("session_ended"), k("signed_out")];

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    frame: Frame,
    identity: String,
    record: String,
    searched: bool,
    hits: Vec<Hit>,
    /// A doctor who found nobody they may see by an identity number may ask the patient's
    /// authorization (clinic portal: an SMS code the patient reads out).
    may_ask: bool,
    /// The pages of the reader's role beside patient search (as message keys and a path).
    tools: Vec<Tool>,
}

struct Tool {
    title: &'static str,
    intro: &'static str,
    href: &'static str,
    button: &'static str,
}

/// What a role opens from the start page: the QC dashboard, the audit trail, the identity
/// review queue, the browser upload.
fn tools(d: &Doctor) -> Vec<Tool> {
    let mut v = Vec::new();
    if huren_access::grant_quality(&d.principal()).is_ok() {
        v.push(Tool {
            title: k("qc_title"),
            intro: k("qc_open_intro"),
            href: "/qc",
            button: k("qc_title"),
        });
    }
    if huren_access::grant_stats(&d.principal()).is_ok() {
        v.push(Tool {
            title: k("stats_title"),
            intro: k("stats_open_intro"),
            href: "/stats",
            button: k("stats_title"),
        });
    }
    if huren_access::grant_admin(&d.principal()).is_ok() {
        v.push(Tool {
            title: k("config_title"),
            intro: k("config_open_intro"),
            href: "/config",
            button: k("config_title"),
        });
    }
    if d.user.role == Role::Auditor {
        v.push(Tool {
            title: k("audit_title"),
            intro: k("audit_open_intro"),
            href: "/audit",
            button: k("audit_title"),
        });
    }
    if d.user.role == Role::DataSteward {
        v.push(Tool {
            title: k("steward_open"),
            intro: k("steward_open_intro"),
            href: "/steward",
            button: k("steward_title"),
        });
    }
    if crate::portal::may_upload(&d.user) {
        v.push(Tool {
            title: k("upload_title"),
            intro: k("upload_intro"),
            href: "/upload",
            button: k("upload_open"),
        });
    }
    v
}

impl StartPage {
    fn new(d: &Doctor) -> StartPage {
        StartPage {
            frame: d.frame("/"),
            identity: String::new(),
            record: String::new(),
            searched: false,
            hits: Vec::new(),
            may_ask: false,
            tools: tools(d),
        }
    }
}
framed!(StartPage);

struct Hit {
    person: String,
    label: String,
}

/// `GET /`: the start page for a signed-in person, else sign-in.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    doctor: Result<Doctor, Response>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let q: StartQuery = query(q);
    match doctor {
        Ok(d) => render(StatusCode::OK, &StartPage::new(&d)),
        Err(_) => {
            let message = SIGN_IN_MESSAGES.iter().copied().find(|m| *m == q.m);
            let next = if crate::session::local_path(&q.next) {
                q.next.as_str()
            } else {
                "/"
            };
            signin_page(&state, lang, StatusCode::OK, message, next)
        }
    }
}

#[derive(Deserialize, Default)]
pub struct FindQuery {
    #[serde(default)]
    identity: String,
    #[serde(default)]
    record: String,
}

/// `GET /patients?identity=…|record=…`: the patients the doctor may see with that identity
/// number, or with that record number of the doctor's own institution. One hit opens at once.
pub async fn find_patient(
    State(state): State<AppState>,
    d: Doctor,
    RawQuery(q): RawQuery,
) -> Response {
    let q: FindQuery = query(q);
    let identity = q.identity.trim().to_uppercase();
    let record = q.record.trim().to_owned();
    let grant = match huren_access::grant_read(&d.principal()) {
        Ok(g) => g,
        Err(e) => return crate::patient::refused(&d, &e.to_string()),
    };
    let issuer;
    let lookup = if !identity.is_empty() {
        PatientLookup::Identifier {
            system: huren_mpi::id::RESIDENT,
            value: &identity,
        }
    } else if !record.is_empty() {
        issuer = match state.archive.own_issuer(d.user.institution_id).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "issuer not read");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        PatientLookup::Record {
            issuer: &issuer,
            patient_id: &record,
        }
    } else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    };
    // An invalid number finds nobody (the same answer as a number nobody holds).
    let hits = match state.archive.find_persons(&grant, lookup).await {
        Ok(h) => h,
        Err(huren_archive::AdminError::Invalid(_)) => Vec::new(),
        Err(e) => {
            tracing::error!(error = %e, "patients not searched");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if let [one] = hits.as_slice() {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/patients/{}", one.person))],
        )
            .into_response();
    }
    let hits: Vec<Hit> = hits
        .into_iter()
        .map(|h| Hit {
            label: h
                .records
                .iter()
                .map(|r| {
                    format!(
                        "{} {}@{}",
                        r.name.as_deref().unwrap_or("").replace('^', ""),
                        r.patient_id,
                        r.issuer
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
            person: h.person,
        })
        .collect();
    let may_ask = hits.is_empty() && !identity.is_empty() && d.user.role == Role::Doctor;
    render(
        StatusCode::OK,
        &StartPage {
            identity,
            record,
            searched: true,
            hits,
            may_ask,
            ..StartPage::new(&d)
        },
    )
}

#[derive(Deserialize, Default)]
pub struct LangQuery {
    #[serde(default)]
    back: String,
}

/// `GET /lang/{zh|en}?back=…`: sets the language cookie and returns to the page.
pub async fn switch_lang(Path(code): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q: LangQuery = query(q);
    let back = if crate::session::local_path(&q.back) {
        q.back
    } else {
        "/".to_owned()
    };
    let value = if code == "en" { "en" } else { "zh" };
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={value}; Path=/; SameSite=Lax; Max-Age=31536000"
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `/viewer` in a build without the OHIF assets.
pub fn viewer_missing(headers: &HeaderMap) -> Response {
    let f = Frame::anonymous(Lang::from_headers(headers), "/");
    message(
        &f,
        StatusCode::NOT_FOUND,
        k("error_title"),
        k("viewer_missing"),
        "/",
        k("back"),
    )
}
