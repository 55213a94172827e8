//! STOW-RS (PS3.18 §10.5): `POST /dicom-web/studies[/{study}]` with
//! `multipart/related; type="application/dicom"`. Each part is streamed to a spool file and
//! ingested exactly like a C-STORE; the response is a DICOM JSON Store Instances Response.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use huren_access::{grant_ingest, grant_upload};
use huren_archive::{Expected, IngestRequest, IngestStatus, SenderSettings, SpoolError, Warning};
use serde_json::{Value, json};
use std::net::SocketAddr;

pub async fn store_studies(
    state: State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    store(state, auth, headers, None, peer, body).await
}

pub async fn store_study(
    state: State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: Authenticated,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let study = huren_types::Uid::parse_lenient(&study)
        .map_err(|e| ApiError::bad_request(format!("study UID in path: {e}")))?;
    store(
        state,
        auth,
        headers,
        Some(study.as_str().to_owned()),
        peer,
        body,
    )
    .await
}

/// Parses `multipart/related; type="application/dicom"; boundary=…` (parameters quoted or
/// not, any order, case-insensitive names — RFC 2387, RFC 9110 §5.6.6).
pub fn related_boundary(content_type: &str) -> Result<String, ApiError> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "multipart/related" {
        return Err(ApiError::unsupported_media_type(format!(
            "expected multipart/related, got {media:?}"
        )));
    }
    let mut boundary = None;
    let mut ty = None;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => boundary = Some(v),
            "type" => ty = Some(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    match ty.as_deref() {
        Some("application/dicom") => {}
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "type={other} is not supported; send type=\"application/dicom\" (PS3.18 §10.5.1.1)"
            )));
        }
        None => {
            return Err(ApiError::unsupported_media_type(
                "multipart/related needs type=\"application/dicom\"",
            ));
        }
    }
    boundary
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("multipart/related without a boundary"))
}

async fn store(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    study: Option<String>,
    peer: SocketAddr,
    body: Body,
) -> Result<Response, ApiError> {
    // A hospital's system, or a person uploading for their own institution from the clinic
    // portal's page (the cookie session's CSRF token is checked by the auth layer).
    let grant = match &principal {
        huren_access::Principal::User(_) => grant_upload(&principal)?,
        _ => grant_ingest(&principal)?,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = related_boundary(content_type)?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > state.max_stow_bytes
    {
        return Err(ApiError::payload_too_large(format!(
            "request of {len} bytes exceeds the limit of {}",
            state.max_stow_bytes
        )));
    }
    let base = crate::qido::base_url(&state, &headers);
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut outcome = Outcome::default();
    let mut in_flight = FuturesOrdered::new();
    let mut total: u64 = 0;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if outcome.referenced.is_empty()
                    && outcome.failed.is_empty()
                    && in_flight.is_empty()
                {
                    return Err(ApiError::bad_request(format!(
                        "malformed multipart body: {e}"
                    )));
                }
                outcome.failed.push(failure(None, None, 0xC000));
                break;
            }
        };
        let part_type = field
            .content_type()
            .map(|m| m.essence_str().to_ascii_lowercase());
        if part_type
            .as_deref()
            .is_some_and(|t| t != "application/dicom")
        {
            // A part of another media type cannot be stored (PS3.18 §10.5.1.1 allows only
            // application/dicom here); drain it and report it failed.
            let mut field = field;
            while let Ok(Some(_)) = field.chunk().await {}
            outcome.failed.push(failure(None, None, 0xC000));
            continue;
        }
        let mut spool = state.archive.spool().await.map_err(|e| {
            tracing::error!(error = %e, "cannot create spool file");
            ApiError::insufficient_storage("cannot spool the object")
        })?;
        let mut field = field;
        let mut part_error: Option<u16> = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len() as u64;
                    if total > state.max_stow_bytes {
                        return Err(ApiError::payload_too_large(format!(
                            "request exceeds the limit of {} bytes",
                            state.max_stow_bytes
                        )));
                    }
                    if part_error.is_none()
                        && let Err(e) = spool.write(&chunk).await
                    {
                        part_error = Some(match e {
                            SpoolError::TooLarge(_) => 0xA700,
                            SpoolError::Io(_) => 0xA700,
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(error = %e, "STOW part ended abnormally");
                    part_error = Some(0xC000);
                    break;
                }
            }
        }
        if let Some(code) = part_error {
            outcome.failed.push(failure(None, None, code));
            continue;
        }
        let spooled = match spool.finish().await {
            Ok(s) => s,
            Err(_) => {
                outcome.failed.push(failure(None, None, 0xA700));
                continue;
            }
        };
        let req = IngestRequest {
            spooled,
            expected: Expected {
                study_instance_uid: study.clone(),
                ..Default::default()
            },
            source: Some(peer.ip()),
            settings: SenderSettings::default(),
        };
        let archive = state.archive.clone();
        let part_grant = grant.clone();
        in_flight.push_back(tokio::spawn(async move {
            archive.ingest(&part_grant, req).await
        }));
        while in_flight.len() >= STOW_PARTS_IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                outcome.record(done, &base);
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        outcome.record(done, &base);
    }
    let Outcome {
        referenced,
        failed,
        warned,
        not_authorized,
    } = outcome;
    if referenced.is_empty() && failed.is_empty() {
        return Err(ApiError::bad_request(
            "the multipart body contains no parts",
        ));
    }
    let mut body = serde_json::Map::new();
    if let Some(s) = &study {
        body.insert(
            "00081190".into(),
            json!({ "vr": "UR", "Value": [format!("{base}/studies/{s}")] }),
        );
    }
    if !referenced.is_empty() {
        body.insert(
            "00081199".into(),
            json!({ "vr": "SQ", "Value": referenced }),
        );
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    // PS3.18 Table 10.5.3-1: 200 all stored; 202 stored with warnings or some failures;
    // 409 none stored; 403 when every part was refused as another institution's patient
    // (FailureReason 0x0124 "Not Authorized" on each).
    let status = if referenced.is_empty() && not_authorized == failed.len() {
        StatusCode::FORBIDDEN
    } else if referenced.is_empty() {
        StatusCode::CONFLICT
    } else if !failed.is_empty() || warned {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut resp = (status, Value::Object(body).to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    Ok(resp)
}

/// Parts of one request stored at once: their fsyncs overlap and their index rows share group
/// commits, as several associations' would, while the next part is read. Bounded, so a
/// request holds at most this many in-memory parts besides the one arriving.
const STOW_PARTS_IN_FLIGHT: usize = 4;

#[derive(Default)]
struct Outcome {
    referenced: Vec<Value>,
    failed: Vec<Value>,
    warned: bool,
    /// Parts refused with 0x0124 (another institution's patient).
    not_authorized: usize,
}

impl Outcome {
    fn record(&mut self, done: Result<IngestStatus, tokio::task::JoinError>, base: &str) {
        let status = match done {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "STOW part task failed");
                // PS3.4 Annex C failure 0x0110: processing failure.
                self.failed.push(failure(None, None, 0x0110));
                return;
            }
        };
        match status {
            IngestStatus::Stored {
                warnings,
                sop_class_uid,
                sop_instance_uid,
                study_instance_uid,
                series_instance_uid,
                ..
            } => {
                let url = format!(
                    "{base}/studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}"
                );
                let mut item = json!({
                    "00081150": { "vr": "UI", "Value": [sop_class_uid] },
                    "00081155": { "vr": "UI", "Value": [sop_instance_uid] },
                    "00081190": { "vr": "UR", "Value": [url] },
                });
                if let Some(code) = warnings.first().map(Warning::status) {
                    self.warned = true;
                    item["00081196"] = json!({ "vr": "US", "Value": [code] });
                }
                self.referenced.push(item);
                metrics::counter!("huren_stow_instances_total", "result" => "stored").increment(1);
            }
            IngestStatus::Refused {
                refusal,
                sop_class_uid,
                sop_instance_uid,
            } => {
                tracing::info!(reason = refusal.message(), "STOW part refused");
                if refusal.status() == 0x0124 {
                    self.not_authorized += 1;
                }
                self.failed
                    .push(failure(sop_class_uid, sop_instance_uid, refusal.status()));
                metrics::counter!("huren_stow_instances_total", "result" => "failed").increment(1);
            }
        }
    }
}

fn failure(class: Option<String>, instance: Option<String>, code: u16) -> Value {
    let mut item = json!({ "00081197": { "vr": "US", "Value": [code] } });
    if let Some(c) = class {
        item["00081150"] = json!({ "vr": "UI", "Value": [c] });
    }
    if let Some(i) = instance {
        item["00081155"] = json!({ "vr": "UI", "Value": [i] });
    }
    item
}
