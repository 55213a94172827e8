//! In-process test harness for the adapter crates' `tests/it` binaries (dev-only, never in the
//! binary): one archive per test — a temporary data directory with its SQLite index and object
//! files, an operator's token, an institution `H500002` with a system token — and the real
//! router (API, and the web pages when given) over them, driven with `tower::oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use huren_access::{Principal, SystemReads, grant_admin};
use huren_archive::accounts::AccountPolicy;
use huren_archive::model::{NewInstitution, TokenScope};
use huren_archive::{Archive, ArchiveConfig};
use huren_http::AppState;
use huren_store::{LocalBlobs, SqliteIndex};
use huren_types::{InstitutionCode, InstitutionLevel, Ownership};
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN: &str = "it-admin-token";

pub struct Harness {
    pub app: Router,
    /// The use cases behind the router, for setting up what a test needs.
    pub archive: Archive,
    /// The system token of institution `H500002`.
    pub system: String,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The API alone.
pub async fn harness() -> Harness {
    harness_with(Router::new()).await
}

/// The API with `pages` (huren-web's routes) merged in, as the binary serves them.
pub async fn harness_with(pages: Router<AppState>) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let index = Arc::new(
        SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index"),
    );
    let blobs = Arc::new(LocalBlobs::open(dir.path()).expect("objects"));
    let config = ArchiveConfig {
        zone: time_tz::timezones::db::asia::SHANGHAI,
        stable_after_secs: 60,
        max_object_bytes: 64 << 20,
        spool_memory_bytes: 1 << 20,
        identity: None,
        accounts: AccountPolicy::default(),
        read_audit_window: std::time::Duration::from_secs(600),
    };
    let archive = Archive::new(index.clone(), blobs, index.clone(), index, config);
    let grant = grant_admin(&Principal::Console).expect("console administers");
    let code = InstitutionCode::parse("H500002").expect("code");
    archive
        .add_institution(
            &grant,
            NewInstitution {
                code: code.clone(),
                name: "县人民医院".into(),
                level: InstitutionLevel::Secondary,
                ownership: Ownership::Public,
                identifier_system: None,
                region: None,
                city: None,
                organization: None,
                division: None,
                valid_from: time::macros::date!(2020 - 01 - 01),
            },
        )
        .await
        .expect("institution");
    let system = archive
        .create_token(
            &grant,
            TokenScope::Institution(code, SystemReads::Institution),
            None,
        )
        .await
        .expect("token")
        .secret;
    let state = AppState {
        archive: archive.clone(),
        bootstrap_admin_hash: Some(huren_access::hash_token(ADMIN)),
        max_stow_bytes: 64 << 20,
        public_url: Some("http://huren.test".into()),
        listen_port: 0,
        max_query_limit: 1000,
        max_retrieve_instances: 1000,
        cors_allow_origins: Vec::new(),
        cross_origin_resource_policy: "same-site".into(),
        render_metrics: Arc::new(String::new),
        secure_cookies: false,
        rate_limiter: Arc::new(huren_http::limits::RateLimiter::new(10_000, 10_000)),
        failure_budget: Arc::new(huren_http::limits::FailureBudget::new(10_000)),
        oidc: None,
        opened: Arc::default(),
        audit_integrity: None,
    };
    Harness {
        app: huren_http::router_with(state, pages),
        archive,
        system,
        _dir: dir,
    }
}

impl Harness {
    /// Sends one request as if from 127.0.0.1 (handlers that audit the source address read it
    /// from the connection, which `oneshot` does not have).
    pub async fn send(&self, mut req: Request<Body>) -> Reply {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
        let resp = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers every request");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET uri` with these headers.
    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    /// `GET uri`, with a bearer token when given.
    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        match token {
            Some(t) => {
                self.get_with(uri, &[("authorization", &format!("Bearer {t}"))])
                    .await
            }
            None => self.get_with(uri, &[]).await,
        }
    }
}
