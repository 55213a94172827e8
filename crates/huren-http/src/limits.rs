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
    let cred = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| crate::auth::session_cookie(req.headers()));
    match cred {
        Some(c) => huren_access::hash_token(&c),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default(),
    }
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.rate_limiter.take(&key(&req)) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            metrics::counter!("huren_http_rate_limited_total").increment(1);
            let mut resp =
                ApiError::too_many_requests("too many requests; slow down").into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}
