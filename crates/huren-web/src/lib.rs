//! The web pages (issue #19): the doctor's workstation, rendered on the server with askama
//! templates by handlers that call the same use cases, with the same session, as the JSON API
//! (huren-http merges [`routes`] into its router, behind its refusal audit, rate limits and
//! security headers). htmx swaps the fragments the same handlers render. Assets — htmx,
//! ECharts and the OHIF viewer — come from the binary ([`assets`]); nothing loads from another
//! origin, and every page carries a Content-Security-Policy with no inline script or style.
//!
//! URLs: `/` sign-in or the start page; `/launch?ticket=` the HIS launch; `/patients/{person}`
//! (huren's internal person id, never a PatientID); `/viewer/…` OHIF; `/static/…` assets;
//! `/order-reminder` the fragment a HIS embeds at order time; `/me…` the patient's cloud film
//! and `/s/{secret}` a study the patient shared ([`film`]). Chinese first ([`i18n`]).

pub mod assets;
pub mod audit;
pub mod config;
pub mod film;
pub mod i18n;
pub mod pages;
pub mod patient;
pub mod portal;
pub mod qc;
pub mod session;
pub mod stats;
pub mod steward;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use huren_http::AppState;
use std::sync::Arc;

/// What the pages need beyond the API's state.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Origins allowed to frame the order-time reminder (the HIS), as CSP `frame-ancestors`
    /// sources; `'self'` always.
    pub frame_ancestors: Vec<String>,
}

/// The page's policy: this origin only, no inline script or style, no plugins; frames only
/// from this origin (the order-time fragment adds the HIS origins).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'self'";

/// OHIF's policy: its own scripts and WebAssembly decoders (compiled in the page and in
/// workers), styles its components insert at run time, images and workers from blobs.
pub const VIEWER_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
     connect-src 'self' data: blob:; worker-src 'self' blob:; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

pub fn routes(cfg: WebConfig) -> Router<AppState> {
    let cfg = Arc::new(cfg);
    let pages = Router::new()
        .route("/", get(pages::start))
        .route("/signin", post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/launch", get(session::launch))
        .route("/lang/{code}", get(pages::switch_lang))
        .route("/patients", get(pages::find_patient))
        .route("/patients/{person}", get(patient::page))
        .route("/patients/{person}/decisions", post(patient::decide))
        .route("/patients/{person}/decide-form", get(patient::decide_form))
        .route("/patients/{person}/why", get(patient::why))
        .route(
            "/patients/{person}/studies/{study}/view",
            get(patient::open_study),
        )
        .route(
            "/patients/{person}/studies/{study}/thumbnail",
            get(patient::thumbnail),
        )
        .route("/authorizations", post(portal::ask))
        .route("/authorizations/{id}", post(portal::confirm))
        .route("/upload", get(portal::upload))
        .route("/audit", get(audit::trail))
        .route("/audit/export.csv", get(audit::export_csv))
        .route("/audit/verify", get(audit::verify))
        .route("/qc", get(qc::dashboard))
        .route("/qc/studies/{uid}", get(qc::study_page))
        .route("/qc/studies/{uid}/reviews", post(qc::review))
        .route("/qc/studies/{uid}/images/{sop}", get(qc::image))
        .route("/stats", get(stats::page))
        .route("/config", get(config::show))
        .route("/config/import", post(config::import))
        .route("/config/in-force/{kind}", get(config::in_force))
        .route("/config/institutions/{code}", get(config::institution))
        .route("/steward", get(steward::reviews))
        .route("/steward/reviews/{id}", post(steward::decide))
        .route("/steward/persons/{person}", get(steward::person))
        .route("/steward/persons/{person}/{what}", post(steward::change))
        .route("/me", get(film::home))
        .route("/me/qr.svg", get(film::qr))
        .route("/me/code", post(film::request_code))
        .route("/me/signin", post(film::sign_in))
        .route("/me/signout", post(film::sign_out))
        .route("/me/access", get(film::access))
        .route("/me/studies/{study}", get(film::study))
        .route("/me/studies/{study}/thumb", get(film::thumbnail))
        .route(
            "/me/studies/{study}/images/{series}/{instance}",
            get(film::image),
        )
        .route("/me/studies/{study}/share", post(film::share))
        .route("/me/shares/{id}/end", post(film::end_share))
        .route("/me/authorizations/{id}/end", post(film::end_authorization))
        .route("/s/{secret}", get(film::shared))
        .route(
            "/s/{secret}/images/{series}/{instance}",
            get(film::shared_image),
        )
        .route("/order-reminder", get(patient::order_reminder))
        .route("/order-reminder/decisions", post(patient::order_decide))
        .layer(axum::middleware::from_fn_with_state(cfg.clone(), page_csp))
        // A patient page repeats itself (one entry per result): 700 kB of HTML for 200 results
        // is 20 kB gzip'd, so pages go compressed, at the fastest level (it costs the server
        // about a millisecond).
        .layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .layer(axum::Extension(cfg));
    let viewer = Router::new()
        .route("/viewer", get(assets::viewer))
        .route("/viewer/", get(assets::viewer))
        .route("/viewer/{*path}", get(assets::viewer))
        .layer(axum::middleware::from_fn(viewer_csp));
    Router::new()
        .route("/static/{file}", get(assets::static_file))
        .merge(pages)
        .merge(viewer)
}

async fn viewer_csp(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(VIEWER_CSP),
    );
    resp
}

/// Sets the page policy on every page response; the order-time fragment may be framed by the
/// configured HIS origins.
async fn page_csp(
    axum::extract::State(cfg): axum::extract::State<Arc<WebConfig>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let order = req.uri().path().starts_with("/order-reminder");
    let mut resp = next.run(req).await;
    let csp = if order && !cfg.frame_ancestors.is_empty() {
        PAGE_CSP.replace(
            "frame-ancestors 'self'",
            &format!("frame-ancestors 'self' {}", cfg.frame_ancestors.join(" ")),
        )
    } else {
        PAGE_CSP.to_owned()
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
