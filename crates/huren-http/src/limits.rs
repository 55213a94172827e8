//! Per-principal rate limits (issue #6): a token bucket per credential (bearer token or
//! session cookie, by its hash) or, without one, per client address. Over the limit: 429 with
//! `Retry-After`. Kept in memory per process; generous defaults so a viewer loading a study's
//! frames is never throttled, low enough that one leaked token cannot hammer the archive.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_sec` 0 turns limiting off.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(per_sec)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds to wait)` when none is left.
    fn take(&self, key: &str) -> Result<(), u64> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let Ok(mut b) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if b.len() > 50_000 {
            // Forget buckets that have refilled (idle clients).
            let (rate, burst) = (self.per_sec, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

fn key(req: &Request) -> String {
    match credential(req) {
        Some(c) => c,
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default(),
    }
}

/// The budget of failed requests per source address (issue #16): a request refused for its
/// credentials (401: none, unknown, expired, revoked; a wrong password; a locked account)
/// takes one token. A source whose budget is spent gets 429 for every request that does not
/// carry a credential seen to work recently — so password spraying and token guessing are
/// throttled at the address, while a hospital's systems behind the same address, whose tokens
/// work, go on. Kept in memory per process.
pub struct FailureBudget {
    per_source: RateLimiter,
    /// Hashes of credentials that authenticated recently, with when.
    good: Mutex<HashMap<String, Instant>>,
}

impl FailureBudget {
    /// `per_min` failures a minute per address (0: no budget).
    pub fn new(per_min: u32) -> Self {
        FailureBudget {
            // A token bucket refilling `per_min` a minute, holding at most `per_min`.
            per_source: RateLimiter {
                per_sec: f64::from(per_min) / 60.0,
                burst: f64::from(per_min),
                buckets: Mutex::new(HashMap::new()),
            },
            good: Mutex::new(HashMap::new()),
        }
    }

    /// How long a working credential is remembered as such.
    const GOOD_FOR: std::time::Duration = std::time::Duration::from_secs(600);

    fn spent(&self, source: &str) -> Option<u64> {
        if self.per_source.per_sec <= 0.0 {
            return None;
        }
        let b = self.per_source.buckets.lock().ok()?;
        let (tokens, at) = b.get(source)?;
        let now = Instant::now();
        let t = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_source.per_sec)
            .min(self.per_source.burst);
        (t < 1.0).then(|| ((1.0 - t) / self.per_source.per_sec).ceil().max(1.0) as u64)
    }

    fn is_good(&self, credential: &str) -> bool {
        self.good
            .lock()
            .ok()
            .and_then(|g| g.get(credential).map(|at| at.elapsed() < Self::GOOD_FOR))
            .unwrap_or(false)
    }

    fn worked(&self, credential: String) {
        if let Ok(mut g) = self.good.lock() {
            if g.len() > 100_000 {
                g.retain(|_, at| at.elapsed() < Self::GOOD_FOR);
            }
            g.insert(credential, Instant::now());
        }
    }

    fn failed(&self, source: &str) {
        let _ = self.per_source.take(source);
    }
}

fn too_many(message: &str, wait: u64) -> Response {
    let mut resp = ApiError::too_many_requests(message).into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let credential = credential(&req);
    if let Some(wait) = state.failure_budget.spent(&source)
        && !credential
            .as_deref()
            .is_some_and(|c| state.failure_budget.is_good(c))
    {
        metrics::counter!("huren_http_rate_limited_total", "by" => "source").increment(1);
        state
            .archive
            .note_auth_failure(
                Some(source),
                "too many failed requests from this address (throttled)",
            )
            .await;
        return too_many(
            "too many failed requests from this address; try again later",
            wait,
        );
    }
    if let Err(wait) = state.rate_limiter.take(&key(&req)) {
        metrics::counter!("huren_http_rate_limited_total", "by" => "principal").increment(1);
        return too_many("too many requests; slow down", wait);
    }
    let actor = crate::auth::Actor::default();
    req.extensions_mut().insert(actor.clone());
    let resp = next.run(req).await;
    let failed = matches!(
        resp.status(),
        axum::http::StatusCode::UNAUTHORIZED | axum::http::StatusCode::LOCKED
    );
    if failed {
        state.failure_budget.failed(&source);
    } else if let (Some(c), Some(_)) = (credential, actor.get()) {
        state.failure_budget.worked(c);
    }
    resp
}

/// The hash of the request's credential (bearer token or session cookie), if it has one.
fn credential(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| crate::auth::session_cookie(req.headers()))
        .map(|c| huren_access::hash_token(&c))
}
