//! The operators' configuration page (issue #20, part 4): the region's configuration as
//! versioned, effective-dated data — catalog versions and the recognition sets (qualification
//! records, scope rules, policy) with who imported each and when, the institutions as of a day
//! and the DICOM peers — and the import of a file of any of these kinds. An import is the
//! admin API's use case (`Archive::import_catalog`, `load_catalog_file`, `import_*`): every
//! line is checked first and a file with any bad line changes nothing; the page names each bad
//! line. Regional operators only (`grant_admin`).

use crate::pages::{Frame, framed, k, render, role_refused};
use crate::patient::local;
use crate::session::Doctor;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use huren_access::AdminGrant;
use huren_archive::catalog::{CatalogError, CatalogFile, InForce};
use huren_http::AppState;
use serde::Deserialize;

/// The kinds of file an operator imports, with their message keys.
const KINDS: &[(&str, &str)] = &[
    ("institutions", "config_kind_institutions"),
    ("aes", "config_kind_aes"),
    ("catalog", "config_kind_catalog"),
    ("prices", "config_kind_prices"),
    ("mappings", "config_kind_mappings"),
    ("study_rules", "config_kind_study_rules"),
    ("qualifications", "config_kind_qualifications"),
    ("scopes", "config_kind_scopes"),
    ("policy", "config_kind_policy"),
];

struct Version {
    label: String,
    effective_from: String,
    items: i64,
    imported: String,
    by: String,
    sha: String,
}

struct Set {
    id: i64,
    kind_key: &'static str,
    rows: i64,
    imported: String,
    by: String,
    sha: String,
    in_force: bool,
}

struct Institution {
    code: String,
    name: String,
    level: String,
    region: String,
    city: String,
}

struct Token {
    id: i64,
    whose: String,
    reads: String,
    created: String,
    expires: String,
    state_key: &'static str,
}

struct Peer {
    ae_title: String,
    institution: String,
    network: String,
    port: String,
}

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage {
    frame: Frame,
    kinds: Vec<(&'static str, &'static str)>,
    kind: String,
    kind_name: &'static str,
    done: String,
    error: String,
    bad_lines: Vec<(u64, String)>,
    /// What was submitted, kept in the form after a refusal so that it can be corrected.
    form: (String, String, String),
    versions: Vec<Version>,
    sets: Vec<Set>,
    institutions: Vec<Institution>,
    peers: Vec<Peer>,
    tokens: Vec<Token>,
    today: String,
}
framed!(ConfigPage);

fn operator(d: &Doctor) -> Result<AdminGrant, Box<Response>> {
    huren_access::grant_admin(&d.principal())
        .map_err(|e| Box::new(role_refused(d, k("config_only_operators"), e.to_string())))
}

fn kind_key(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(k("config_kind_policy"), |(_, key)| key)
}

/// What an import did, for the page.
#[derive(Default)]
struct Outcome {
    kind: String,
    done: String,
    error: String,
    bad_lines: Vec<(u64, String)>,
    /// (label, first day, text) as submitted, after a refusal.
    form: (String, String, String),
    /// The day the institutions are shown as of (today when `None`).
    as_of: Option<time::Date>,
}

/// The page with the configuration as it stands, and an import's outcome.
async fn page(
    state: &AppState,
    d: &Doctor,
    grant: &AdminGrant,
    status: StatusCode,
    outcome: Outcome,
) -> Response {
    let Outcome {
        kind,
        done,
        error,
        bad_lines,
        form,
        as_of,
    } = outcome;
    let today = as_of.unwrap_or_else(|| state.archive.today());
    let versions = match state
        .archive
        .catalog_versions(&huren_access::grant_catalog(&d.principal()))
        .await
    {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let sets = match state.archive.recognition_sets(grant).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let institutions = match state.archive.list_institutions(grant, today).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let peers = match state.archive.list_aes(grant).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let tokens = match state.archive.list_tokens(grant).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut seen = std::collections::HashSet::new();
    render(
        status,
        &ConfigPage {
            frame: d.frame("/config"),
            kinds: KINDS.to_vec(),
            kind_name: kind_key(&kind),
            kind,
            done,
            error,
            bad_lines,
            form,
            versions: versions
                .into_iter()
                .rev()
                .map(|v| Version {
                    label: v.label,
                    effective_from: v.effective_from,
                    items: v.items,
                    imported: local(state, Some(v.imported_at), true),
                    by: v.imported_by,
                    sha: v.source_sha256.chars().take(12).collect(),
                })
                .collect(),
            sets: sets
                .into_iter()
                .map(|s| Set {
                    id: s.id,
                    kind_key: kind_key(&s.kind),
                    rows: s.rows,
                    imported: local(state, Some(s.imported_at), true),
                    by: s.imported_by,
                    sha: s.source_sha256.chars().take(12).collect(),
                    // Newest first: the first of each kind is the one in force.
                    in_force: seen.insert(s.kind),
                })
                .collect(),
            institutions: institutions
                .into_iter()
                .map(|i| Institution {
                    code: i.code,
                    name: i.name.unwrap_or_default(),
                    level: i.level.unwrap_or_default(),
                    region: i.region.unwrap_or_default(),
                    city: i.city.unwrap_or_default(),
                })
                .collect(),
            peers: peers
                .into_iter()
                .map(|p| Peer {
                    ae_title: p.ae_title.to_string(),
                    institution: p.institution_code,
                    network: p.network.to_string(),
                    port: p.port.map(|p| p.to_string()).unwrap_or_default(),
                })
                .collect(),
            tokens: tokens
                .into_iter()
                .map(|t| Token {
                    id: t.id,
                    whose: t.institution.unwrap_or(t.scope),
                    reads: t.reads,
                    created: local(state, Some(t.created_at), true),
                    expires: local(state, t.expires_at, true),
                    state_key: if t.revoked_at.is_some() {
                        k("config_token_revoked")
                    } else if t.expires_at.is_some_and(|e| e <= now) {
                        k("film_expired")
                    } else {
                        k("film_live")
                    },
                })
                .collect(),
            today: crate::pages::day(today),
        },
    )
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "configuration page not built");
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    as_of: String,
}

/// `GET /config[?as_of=YYYY-MM-DD]`: the institutions as they were on that day.
pub async fn show(
    State(state): State<AppState>,
    d: Doctor,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let grant = match operator(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: ShowQuery = crate::pages::query(raw);
    let as_of = huren_types::day::parse_iso(&q.as_of);
    let outcome = Outcome {
        kind: "catalog".into(),
        as_of,
        ..Outcome::default()
    };
    page(&state, &d, &grant, StatusCode::OK, outcome).await
}

#[derive(Deserialize, Default)]
struct ImportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    effective_from: String,
    #[serde(default)]
    text: String,
}

/// `POST /config/import` (form: kind, the file's text, and for a catalog version its label and
/// first day): all lines checked, then all stored, or nothing and every bad line named.
pub async fn import(State(state): State<AppState>, d: Doctor, body: axum::body::Bytes) -> Response {
    let f: ImportForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !d.csrf_ok(&f.csrf) {
        return d.csrf_refused();
    }
    let grant = match operator(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let t = crate::i18n::T { lang: d.lang };
    let archive = &state.archive;
    let result: Result<String, CatalogError> = match f.kind.as_str() {
        "catalog" => match huren_types::day::parse_iso(&f.effective_from) {
            Some(from) => archive
                .import_catalog(&grant, &f.label, from, &f.text)
                .await
                .map(|v| {
                    format!(
                        "{} {} · {} {}",
                        v.label,
                        v.effective_from,
                        v.items,
                        t.t("config_items")
                    )
                }),
            None => Err(CatalogError::Invalid(t.t("config_bad_date").to_owned())),
        },
        "prices" | "mappings" | "study_rules" => {
            let file = match f.kind.as_str() {
                "prices" => CatalogFile::Prices,
                "mappings" => CatalogFile::Mappings,
                _ => CatalogFile::StudyRules,
            };
            archive
                .load_catalog_file(&grant, file, &f.text)
                .await
                .map(|n| format!("{n} {}", t.t("config_rows")))
        }
        "institutions" => archive.import_institutions(&grant, &f.text).await.map(|n| {
            format!(
                "{} {} · {} {}",
                n.added,
                t.t("config_added"),
                n.changed,
                t.t("config_changed")
            )
        }),
        "aes" => archive
            .import_aes(&grant, &f.text)
            .await
            .map(|n| format!("{n} {}", t.t("config_rows"))),
        "qualifications" => archive
            .import_qualifications(&grant, &f.text)
            .await
            .map(|s| format!("#{} · {} {}", s.id, s.rows, t.t("config_rows"))),
        "scopes" => archive
            .import_scopes(&grant, &f.text)
            .await
            .map(|s| format!("#{} · {} {}", s.id, s.rows, t.t("config_rows"))),
        "policy" => archive
            .import_policy(&grant, &f.text)
            .await
            .map(|s| format!("#{} · {} {}", s.id, s.rows, t.t("config_rows"))),
        _ => Err(CatalogError::Invalid(t.t("config_bad_kind").to_owned())),
    };
    let refused = |error: String, bad_lines: Vec<(u64, String)>| Outcome {
        kind: f.kind.clone(),
        error,
        bad_lines,
        form: (f.label.clone(), f.effective_from.clone(), f.text.clone()),
        ..Outcome::default()
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    match result {
        Ok(done) => {
            let outcome = Outcome {
                kind: f.kind.clone(),
                done,
                ..Outcome::default()
            };
            page(&state, &d, &grant, StatusCode::OK, outcome).await
        }
        Err(CatalogError::Lines(lines)) => {
            let bad = lines.into_iter().map(|l| (l.line, l.message)).collect();
            let outcome = refused(t.t("config_bad_lines").to_owned(), bad);
            page(&state, &d, &grant, unprocessable, outcome).await
        }
        Err(CatalogError::Invalid(m)) => {
            page(&state, &d, &grant, unprocessable, refused(m, Vec::new())).await
        }
        Err(CatalogError::Store(e)) => unavailable(e),
    }
}

#[derive(Template)]
#[template(path = "config_in_force.html")]
struct InForcePage {
    frame: Frame,
    kind: String,
    kind_name: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    document: String,
    empty: bool,
}
framed!(InForcePage);

#[derive(Deserialize, Default)]
struct InForceQuery {
    #[serde(default)]
    format: String,
}

/// `GET /config/in-force/{kind}[?format=csv]`: what is in force of one kind, as a table, or
/// as the CSV file to edit and import again (UTF-8 with a BOM, for spreadsheet programs).
pub async fn in_force(
    State(state): State<AppState>,
    d: Doctor,
    axum::extract::Path(kind): axum::extract::Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let grant = match operator(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let q: InForceQuery = crate::pages::query(raw);
    let found = match state.archive.configuration_in_force(&grant, &kind).await {
        Ok(f) => f,
        Err(e) => return unavailable(e),
    };
    if q.format == "csv" {
        let (body, ext) = match &found {
            Some(InForce::Table(t)) => (format!("\u{feff}{}", t.to_csv()), "csv"),
            Some(InForce::Document(doc)) => (doc.clone(), "json"),
            None => return StatusCode::NOT_FOUND.into_response(),
        };
        let ctype = if ext == "csv" {
            "text/csv; charset=utf-8"
        } else {
            "application/json"
        };
        let disposition = format!("attachment; filename=\"{kind}-in-force.{ext}\"");
        return (
            StatusCode::OK,
            [
                (axum::http::header::CONTENT_TYPE, ctype.to_owned()),
                (axum::http::header::CONTENT_DISPOSITION, disposition),
            ],
            body,
        )
            .into_response();
    }
    let (header, rows, document) = match &found {
        Some(InForce::Table(t)) => (t.header.to_vec(), t.rows.clone(), String::new()),
        Some(InForce::Document(doc)) => (Vec::new(), Vec::new(), doc.clone()),
        None => (Vec::new(), Vec::new(), String::new()),
    };
    render(
        StatusCode::OK,
        &InForcePage {
            frame: d.frame(&format!("/config/in-force/{kind}")),
            kind_name: kind_key(&kind),
            empty: found.is_none(),
            kind,
            header,
            rows,
            document,
        },
    )
}

struct Version2 {
    attribute: String,
    value: String,
    from: String,
    until: String,
}

#[derive(Template)]
#[template(path = "config_institution.html")]
struct InstitutionPage {
    frame: Frame,
    code: String,
    versions: Vec<Version2>,
}
framed!(InstitutionPage);

/// `GET /config/institutions/{code}`: every version of the institution's attributes.
pub async fn institution(
    State(state): State<AppState>,
    d: Doctor,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Response {
    let grant = match operator(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let history = match state.archive.institution_history(&grant, &code).await {
        Ok(Some(h)) => h,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return unavailable(e),
    };
    render(
        StatusCode::OK,
        &InstitutionPage {
            frame: d.frame(&format!("/config/institutions/{code}")),
            code,
            versions: history
                .into_iter()
                .map(|(attribute, value, from, until)| Version2 {
                    attribute,
                    value,
                    from,
                    until: until.unwrap_or_default(),
                })
                .collect(),
        },
    )
}
