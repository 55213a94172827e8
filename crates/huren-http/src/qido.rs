//! QIDO-RS (PS3.18 §10.6): studies, series and instances, top-level and nested. One SQL
//! statement per request; pages are bounded (`limit` ≤ the server maximum, with a Warning
//! header when clamped, PS3.18 §8.3.4.4).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiQuery};
use crate::uids::Uids;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use huren_access::grant_read;
use huren_archive::query::{Condition, Key, Level, Query, matcher, to_json, write_json};
use serde_json::Value;

pub const DEFAULT_LIMIT: u32 = 100;

type Params = ApiQuery<Vec<(String, String)>>;

pub async fn studies(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, a, h, p, Level::Study, Vec::new()).await
}

pub async fn all_series(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, a, h, p, Level::Series, Vec::new()).await
}

pub async fn study_series(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([study]): Uids<1>,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(
        s,
        a,
        h,
        p,
        Level::Series,
        vec![(Key::StudyInstanceUid, study.into())],
    )
    .await
}

pub async fn all_instances(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, a, h, p, Level::Instance, Vec::new()).await
}

pub async fn study_instances(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([study]): Uids<1>,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(
        s,
        a,
        h,
        p,
        Level::Instance,
        vec![(Key::StudyInstanceUid, study.into())],
    )
    .await
}

pub async fn series_instances(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([study, series]): Uids<2>,
    ApiQuery(p): Params,
) -> Result<Response, ApiError> {
    search(
        s,
        a,
        h,
        p,
        Level::Instance,
        vec![
            (Key::StudyInstanceUid, study.into()),
            (Key::SeriesInstanceUid, series.into()),
        ],
    )
    .await
}

/// Builds a query from QIDO parameters; shared with WADO-RS metadata, which queries instances.
pub fn parse_query(
    level: Level,
    params: &[(String, String)],
    scope: Vec<(Key, String)>,
    max_limit: u32,
) -> Result<(Query, bool, bool), ApiError> {
    let mut q = Query {
        level,
        conditions: Vec::new(),
        limit: DEFAULT_LIMIT.min(max_limit),
        offset: 0,
        after_key: None,
        person: None,
        persons_in: None,
        institutions_or: None,
    };
    let mut include_all = false;
    let mut clamped = false;
    for (k, v) in scope {
        let m = huren_archive::query::Matcher::Single(v);
        q.conditions.push(Condition { key: k, matcher: m });
    }
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("limit must be a non-negative integer"))?;
                if n > max_limit {
                    clamped = true;
                }
                q.limit = n.min(max_limit);
            }
            "offset" => {
                q.offset = value
                    .parse()
                    .map_err(|_| ApiError::bad_request("offset must be a non-negative integer"))?
            }
            // Accepted; names are matched case-insensitively and across component groups anyway.
            "fuzzymatching" => {}
            "includefield" => {
                if value.split(',').any(|f| f.trim() == "all") {
                    include_all = true;
                }
            }
            other => {
                let Some((key, _tag, vr, _)) = Key::lookup(other) else {
                    return Err(ApiError::bad_request(format!(
                        "{other} is not a matching key huren supports"
                    )));
                };
                let keyword = huren_archive::query::KEYS
                    .iter()
                    .find(|k| k.0 == key)
                    .map_or("attribute", |k| k.2);
                if let Some(m) =
                    matcher(keyword, vr, value).map_err(|e| ApiError::bad_request(e.to_string()))?
                {
                    q.conditions.push(Condition { key, matcher: m });
                }
            }
        }
    }
    Ok((q, include_all, clamped))
}

/// The DICOMweb base URL for links in responses: `http.public_url` when configured; else the
/// request's Host (and X-Forwarded-Proto). A Host without a port while huren listens on
/// another port and no proxy header is present gets the listening port: some clients
/// (dicomweb-client) send `Host: 127.0.0.1` for `http://127.0.0.1:8080`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/dicom-web", origin_url(state, headers))
}

/// The server's public origin (scheme, host, port; see [`base_url`]), under which the
/// DICOMweb and FHIR bases sit.
pub fn origin_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let proxied =
        headers.contains_key("x-forwarded-proto") || headers.contains_key("x-forwarded-host");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        && !host.ends_with(']');
    if !has_port && !proxied && state.listen_port != 80 {
        return format!("{proto}://{host}:{}", state.listen_port);
    }
    format!("{proto}://{host}")
}

/// The PatientID of a study-level query that names no issuer (a viewer's "other studies of
/// this patient" question).
fn patient_id_alone(q: &Query) -> Option<String> {
    use huren_archive::query::Matcher;
    if q.level != Level::Study || q.conditions.iter().any(|c| c.key == Key::IssuerOfPatientId) {
        return None;
    }
    q.conditions
        .iter()
        .find_map(|c| match (&c.key, &c.matcher) {
            (Key::PatientId, Matcher::Single(v)) => Some(v.clone()),
            _ => None,
        })
}

/// A person's PatientID-only study query (OHIF's study browser, issue #19): answered for the
/// person the doctor opened in the web pages — all their reached studies across institutions —
/// else as asked, unless the answer would mix records of several institutions under one
/// PatientID: then nothing, with a Warning (`true`).
async fn viewer_study_browser(
    state: &AppState,
    grant: &huren_access::ReadGrant,
    q: &Query,
    patient_id: &str,
    user: i64,
) -> Result<(Vec<huren_archive::query::Match>, bool), ApiError> {
    let opened = state.opened.of(user);
    if let Some(found) = state
        .archive
        .find_for_opened(grant, q, patient_id, &opened)
        .await?
    {
        return Ok((found, false));
    }
    let found = state.archive.find(grant, q).await?;
    let mut issuers = found.iter().map(|m| m.issuer_of_patient_id.as_str());
    let first = issuers.next();
    if issuers.any(|i| Some(i) != first) {
        return Ok((Vec::new(), true));
    }
    Ok((found, false))
}

async fn search(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    level: Level,
    scope: Vec<(Key, String)>,
) -> Result<Response, ApiError> {
    let grant = grant_read(&principal)?;
    let (q, include_all, clamped) = parse_query(level, &params, scope, state.max_query_limit)?;
    let (matches, ambiguous) = match (&principal, patient_id_alone(&q)) {
        (huren_access::Principal::User(u), Some(pid)) => {
            viewer_study_browser(&state, &grant, &q, &pid, u.user_id).await?
        }
        _ => (state.archive.find(&grant, &q).await?, false),
    };
    let base = base_url(&state, &headers);
    let body = if include_all && level == Level::Instance {
        let mut docs: Vec<serde_json::Map<String, Value>> =
            matches.iter().map(|m| to_json(m, level, &base)).collect();
        let full = state.archive.instance_metadata(&grant, &matches).await?;
        for (doc, stored) in docs.iter_mut().zip(full) {
            for (k, v) in stored {
                if v.get("BulkDataURI").is_none() && v.get("InlineBinary").is_none() {
                    doc.entry(k).or_insert(v);
                }
            }
        }
        Value::Array(docs.into_iter().map(Value::Object).collect())
            .to_string()
            .into_bytes()
    } else {
        let mut out = Vec::with_capacity(1024 * (matches.len() + 1));
        out.push(b'[');
        for (k, m) in matches.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_json(m, level, &base, &mut out);
        }
        out.push(b']');
        out
    };
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    if ambiguous {
        resp.headers_mut().insert(
            header::WARNING,
            HeaderValue::from_static("299 huren \"This PatientID names records at several institutions; add IssuerOfPatientID, or open the patient from huren's patient page.\""),
        );
    } else if clamped {
        resp.headers_mut().insert(
            header::WARNING,
            HeaderValue::from_static("299 huren \"The number of results exceeded the maximum supported by the server. Additional results can be requested.\""),
        );
    }
    Ok(resp)
}
