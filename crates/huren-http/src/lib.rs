//! The HTTP adapter (axum): DICOMweb under `/dicom-web` (STOW-RS today), the operators' API
//! under `/api/admin`, `/healthz` and Prometheus `/metrics`. Handlers are thin: authenticate →
//! capability → use case → map; errors become responses only in [`error`].

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod error;
pub mod fhir;
pub mod limits;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod opened;
pub mod patients;
pub mod qido;
pub mod quality;
pub mod recognition;
pub mod render;
pub mod revoke_link;
pub mod session;
pub mod stow;
pub mod uids;
pub mod wado;

use auth::Authenticated;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use error::ApiError;
use huren_archive::Archive;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub archive: Archive,
    /// SHA-256 of `HUREN_BOOTSTRAP_ADMIN_TOKEN`, when set.
    pub bootstrap_admin_hash: Option<String>,
    /// Largest STOW-RS request body.
    pub max_stow_bytes: u64,
    /// Public base URL (no trailing slash) for links; else from the Host header.
    pub public_url: Option<String>,
    /// Port the HTTP listener is bound to (for links when the Host header has none).
    pub listen_port: u16,
    /// Largest QIDO page (larger `limit`s are clamped, with a Warning header).
    pub max_query_limit: u32,
    /// Most instances one WADO-RS retrieve or metadata request covers.
    pub max_retrieve_instances: u32,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// Cross-Origin-Resource-Policy sent on every response (`same-site`, `same-origin`,
    /// `cross-origin`); a viewer page isolated with COEP needs `cross-origin` when on another site.
    pub cross_origin_resource_policy: String,
    /// Renders the Prometheus exposition text.
    pub render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Mark the session cookie `Secure` (HTTPS in front of huren).
    pub secure_cookies: bool,
    /// Per-principal request rate limits.
    pub rate_limiter: Arc<limits::RateLimiter>,
    /// Failed requests per source address (password spraying, token guessing).
    pub failure_budget: Arc<limits::FailureBudget>,
    /// OpenID Connect sign-in, when configured (docs/access.md).
    pub oidc: Option<Arc<OidcClient>>,
    /// The persons each doctor opened last in the web pages (the viewer's study browser).
    pub opened: Arc<opened::OpenedPersons>,
    /// The audit trail's integrity for the auditors' page; `None` when the chain has no key.
    pub audit_integrity: Option<Arc<dyn AuditIntegrity>>,
}

/// The audit trail's integrity as `huren audit verify` reports it: every chained event checked
/// with the chain's key, and the signed head checkpoints (docs/audit.md). The binary holds the
/// key and the checkpoint file, and implements this for the pages.
#[async_trait::async_trait]
pub trait AuditIntegrity: Send + Sync {
    /// `Ok(summary)` when the trail is intact, else every problem found; `Err` when it could
    /// not be read.
    async fn verify(&self) -> Result<Result<String, Vec<String>>, String>;
    /// The newest signed checkpoint: (the event sequence number it vouches for, when, unix
    /// seconds).
    fn last_checkpoint(&self) -> Option<(i64, i64)>;
}

/// The OpenID Connect client (the `oidc` feature).
#[cfg(feature = "oidc")]
pub type OidcClient = huren_oidc::Client;
/// Built without the `oidc` feature: there is no client to configure.
#[cfg(not(feature = "oidc"))]
pub enum OidcClient {}

#[cfg(feature = "oidc")]
fn oidc_routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/auth/oidc/login", get(oidc::login))
        .route("/auth/oidc/callback", get(oidc::callback))
}

#[cfg(not(feature = "oidc"))]
fn oidc_routes(r: Router<AppState>) -> Router<AppState> {
    r
}

pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The API's routes with `pages` (the web pages, huren-web) merged in, all behind the same
/// session, CSRF, refusal-audit, rate-limit and security-header layers.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let cors = cors_layer(&state.cors_allow_origins);
    let corp = axum::http::HeaderValue::from_str(&state.cross_origin_resource_policy)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("same-site"));
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_text))
        .route(
            "/dicom-web/studies",
            post(stow::store_studies).get(qido::studies),
        )
        .route(
            "/dicom-web/studies/{study}",
            post(stow::store_study).get(wado::retrieve_study),
        )
        .route("/dicom-web/series", get(qido::all_series))
        .route("/dicom-web/instances", get(qido::all_instances))
        .route(
            "/dicom-web/studies/{study}/metadata",
            get(wado::study_metadata),
        )
        .route("/dicom-web/studies/{study}/series", get(qido::study_series))
        .route(
            "/dicom-web/studies/{study}/instances",
            get(qido::study_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}",
            get(wado::retrieve_series),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/metadata",
            get(wado::series_metadata),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}",
            get(wado::retrieve_instance),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(wado::instance_metadata),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(wado::frames),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/bulk/{range}",
            get(wado::bulk),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(render::instance_rendered),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            get(render::instance_thumbnail),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
            get(render::frame_rendered),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/thumbnail",
            get(render::frame_thumbnail),
        )
        .route("/wado", get(render::wado_uri))
        .route("/fhir/metadata", get(fhir::metadata))
        .route(
            "/fhir/Patient",
            get(fhir::search)
                .post(fhir::register::create)
                .put(fhir::register::update),
        )
        .route("/fhir/Patient/$ihe-pix", get(fhir::pix))
        .route("/fhir/Patient/{id}", get(fhir::read))
        .route("/fhir", post(fhir::write::transaction))
        .route("/fhir/AuditEvent", get(fhir::audit::search))
        .route(
            "/fhir/Observation",
            get(fhir::results::search_observations).post(fhir::write::create_observation),
        )
        .route("/fhir/Observation/{id}", get(fhir::results::read_observation))
        .route(
            "/fhir/DiagnosticReport",
            get(fhir::results::search_reports).post(fhir::write::create_report),
        )
        .route("/fhir/DiagnosticReport/{id}", get(fhir::results::read_report))
        .route("/api/catalog/versions", get(catalog::versions))
        .route("/api/catalog/items", get(catalog::items))
        .route("/api/catalog/price", get(catalog::price))
        .route("/api/catalog/lookup", get(catalog::lookup))
        .route(
            "/api/session",
            get(session::whoami)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/api/encounters", post(session::register_encounter))
        .route("/api/launch", post(session::issue_launch))
        .route("/api/patient-contacts", post(session::register_contact))
        .route(
            "/api/patient-contacts/changes/{id}/confirm",
            post(session::confirm_contact_change),
        )
        .route(
            "/api/patient-authorizations",
            post(session::request_authorization),
        )
        .route(
            "/api/patient-authorizations/{id}/confirm",
            post(session::confirm_authorization),
        )
        .route(
            "/api/patient-authorizations/{id}/revoke",
            post(session::revoke_authorization),
        )
        .route(
            "/api/break-glass",
            get(session::break_glass_list).post(session::start_break_glass),
        )
        .route(
            "/api/break-glass/{id}/review",
            post(session::review_break_glass),
        )
        .route(
            "/patient/revoke",
            get(revoke_link::revoke_page).post(revoke_link::revoke),
        )
        .route("/api/recognition/reminders", post(recognition::reminders))
        .route("/api/recognition/reasons", get(recognition::reasons))
        .route("/api/recognition/decisions", post(recognition::decide))
        .route("/api/recognition/decisions/{id}", get(recognition::decision))
        .route("/api/recognition/statistics", get(recognition::statistics))
        .route("/api/quality/statistics", get(quality::statistics))
        .route("/api/quality/studies", get(quality::studies))
        .route("/api/quality/studies/{uid}", get(quality::study))
        .route("/api/patients", get(patients::search))
        .route("/api/patients/{person}/timeline", get(patients::timeline))
        .route(
            "/api/patients/{person}/recognition",
            get(recognition::person_recognition),
        )
        .nest("/api/admin", admin::router())
        .merge(pages);
    oidc_routes(routes)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::HeaderName::from_static("cross-origin-resource-policy"),
            corp,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::audit_refusals,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.secure_cookies,
            security_headers,
        ))
        .layer(cors)
        // Spans name the method and path only: query strings carry patient identifiers
        // (QIDO PatientID, FHIR identifier) and launch tickets, which must not reach logs.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    tracing::debug_span!("http", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(state)
}

/// Headers every response carries: no MIME sniffing, no framing by other sites, no referrer
/// (URLs can carry identifiers), no caching of patient data by shared caches, and HSTS when
/// huren is reached over HTTPS.
async fn security_headers(
    axum::extract::State(https): axum::extract::State<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let api = req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/fhir");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page with a Content-Security-Policy says who may frame it (`frame-ancestors`: the
    // order-time fragment a HIS embeds); everything else is for this origin's frames only.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if api {
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// CORS for browser viewers on another origin (OHIF): the listed origins, or any with `*`.
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::ETAG,
            header::WARNING,
            header::CONTENT_TYPE,
            HeaderName::from_static("content-location"),
        ])
}

async fn metrics_text(
    State(s): State<AppState>,
    Authenticated(_p): Authenticated,
) -> Result<String, ApiError> {
    if let Ok(c) = s.archive.counts().await {
        metrics::gauge!("huren_instances").set(c.instances as f64);
        metrics::gauge!("huren_studies").set(c.studies as f64);
        metrics::gauge!("huren_patients").set(c.patients as f64);
    }
    Ok((s.render_metrics)())
}
