//! WADO-RS (PS3.18 §10.4) as a formatter of the retrieval use case (`huren_archive::retrieve`):
//! metadata from the JSON built at ingest, instances streamed part by part as stored, frames
//! and bulk data by range reads at the offsets indexed at ingest — nothing is parsed or decoded
//! per request unless a client asks for another transfer syntax than the stored one: then the
//! use case re-encodes the object (compressed → native included) into a temporary copy, and the
//! request gets 406 when it cannot (huren encodes into no compressed syntax). This module
//! chooses the syntax from the Accept header and writes the multipart responses.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::qido::{base_url, parse_query};
use crate::uids::Uids;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use huren_access::{ReadGrant, grant_read};
use huren_archive::query::{Key, Level, Match};
use huren_archive::retrieve::Opened;
use huren_dicom::pixel::PixelLayout;
use huren_types::Uid;
use serde_json::Value;

use huren_archive::retrieve::EXPLICIT_VR_LE;
const BOUNDARY: &str = "huren-7b1c2d0e-boundary";

pub(crate) async fn instances(
    state: &AppState,
    principal: &huren_access::Principal,
    scope: Vec<(Key, String)>,
) -> Result<(huren_access::ReadGrant, Vec<Match>), ApiError> {
    let grant = grant_read(principal)?;
    let (q, _, _) = parse_query(Level::Instance, &[], scope, u32::MAX)?;
    let q = huren_archive::query::Query {
        limit: state.max_retrieve_instances,
        ..q
    };
    let found = state.archive.find(&grant, &q).await?;
    if found.is_empty() {
        // Out of reach and non-existent get the same answer; both are in the trail, so a
        // reader probing study UIDs (seen in the quality feedback, say) shows up.
        if let Some(study) = q
            .conditions
            .iter()
            .find_map(|c| match (&c.key, &c.matcher) {
                (Key::StudyInstanceUid, huren_archive::query::Matcher::Single(v)) => {
                    Some(v.clone())
                }
                _ => None,
            })
        {
            state.archive.note_study_not_found(&grant, &study).await;
        }
        return Err(ApiError::not_found("no such study, series or instance"));
    }
    if let Some(study) = found.first().map(|m| m.study_instance_uid.clone()) {
        state.archive.note_study_opened(&grant, &study).await;
    }
    Ok((grant, found))
}

/// Matching keys for the study, series and instance UIDs of a request path.
pub(crate) fn scope(study: Uid, series: Option<Uid>, instance: Option<Uid>) -> Vec<(Key, String)> {
    let mut v = vec![(Key::StudyInstanceUid, study.into())];
    if let Some(s) = series {
        v.push((Key::SeriesInstanceUid, s.into()));
    }
    if let Some(i) = instance {
        v.push((Key::SopInstanceUid, i.into()));
    }
    v
}

// ---- metadata ----

pub async fn study_metadata(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([study]): Uids<1>,
) -> Result<Response, ApiError> {
    metadata(s, a, h, scope(study, None, None)).await
}
/// Series metadata, assembled once per ETag and cached (PS3.18 §10.4; RFC 9110 §13.1.2
/// If-None-Match → 304). OHIF requests this for every series it opens.
pub async fn series_metadata(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    Uids([st, se]): Uids<2>,
) -> Result<Response, ApiError> {
    let grant = grant_read(&p)?;
    let Some((key, etag)) = state.archive.series_etag(&grant, &st, &se).await? else {
        return metadata(
            State(state),
            Authenticated(p),
            headers,
            scope(st, Some(se), None),
        )
        .await;
    };
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::internal("etag"))?;
    let matches_etag = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches_etag {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(header::ETAG, etag_value);
        return Ok(resp);
    }
    let text = state
        .archive
        .series_metadata(&grant, key, &etag, &st, &se)
        .await?;
    let base = base_url(&state, &headers);
    // Cached documents carry host-relative bulk URIs; make them absolute for this request.
    let body = String::from_utf8_lossy(&text).replace(
        "\"BulkDataURI\":\"/dicom-web/",
        &format!("\"BulkDataURI\":\"{base}/"),
    );
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    h.insert(header::ETAG, etag_value);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(resp)
}

pub async fn instance_metadata(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
) -> Result<Response, ApiError> {
    metadata(s, a, h, scope(st, Some(se), Some(i))).await
}

async fn metadata(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    scope: Vec<(Key, String)>,
) -> Result<Response, ApiError> {
    let (grant, found) = instances(&state, &p, scope).await?;
    let docs = state.archive.instance_metadata(&grant, &found).await?;
    let base = base_url(&state, &headers);
    let mut out = Vec::with_capacity(docs.len());
    for (m, doc) in found.iter().zip(docs) {
        let prefix = format!(
            "{base}/studies/{}/series/{}/instances/{}/",
            m.study_instance_uid,
            m.series_instance_uid.as_deref().unwrap_or(""),
            m.sop_instance_uid.as_deref().unwrap_or("")
        );
        let mut v = Value::Object(doc);
        huren_archive::prefix_bulk_uris(&mut v, &prefix);
        out.push(v);
    }
    let mut resp = Value::Array(out).to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    Ok(resp)
}

// ---- Accept negotiation ----

/// The transfer syntax a client asks for in `Accept` (PS3.18 §8.7.3): `*` means as stored;
/// absent means the default for the media type.
fn requested_syntax(headers: &HeaderMap, default: &str) -> Option<String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        for param in part.split(';') {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("transfer-syntax")
            {
                return Some(v.trim().trim_matches('"').to_owned());
            }
        }
    }
    Some(default.to_owned())
}

fn serves(stored: &str, requested: &str) -> bool {
    requested == "*" || requested == stored
}

// ---- instances ----

pub async fn retrieve_study(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([study]): Uids<1>,
) -> Result<Response, ApiError> {
    retrieve(s, a, h, scope(study, None, None)).await
}
pub async fn retrieve_series(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([st, se]): Uids<2>,
) -> Result<Response, ApiError> {
    retrieve(s, a, h, scope(st, Some(se), None)).await
}
pub async fn retrieve_instance(
    s: State<AppState>,
    a: Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
) -> Result<Response, ApiError> {
    retrieve(s, a, h, scope(st, Some(se), Some(i))).await
}

async fn retrieve(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    scope: Vec<(Key, String)>,
) -> Result<Response, ApiError> {
    let (grant, found) = instances(&state, &p, scope).await?;
    let requested =
        requested_syntax(&headers, EXPLICIT_VR_LE).unwrap_or_else(|| EXPLICIT_VR_LE.into());
    let mut parts = Vec::with_capacity(found.len());
    for m in &found {
        let stored = m.transfer_syntax_uid.clone().unwrap_or_default();
        let convert = if serves(&stored, &requested) {
            None
        } else if huren_dicom::transcode::can_transcode(&stored, &requested) {
            Some(requested.clone())
        } else {
            return Err(not_acceptable(&format!(
                "instance {} is stored as {stored}, which huren cannot convert to {requested} (no pixel codec yet) — ask with transfer-syntax=*",
                m.sop_instance_uid.as_deref().unwrap_or("")
            )));
        };
        parts.push(Part {
            instance: m.clone(),
            convert,
        });
    }
    let stream = multipart_stream(parts, state.archive.clone(), grant);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!(
            "multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"
        ))
        .map_err(|_| ApiError::internal("header"))?,
    );
    Ok(resp)
}

pub(crate) struct Part {
    pub(crate) instance: Match,
    /// Re-encode to this native syntax on the way out.
    pub(crate) convert: Option<String>,
}

/// An opened object read 1 MiB at a time, preamble first.
pub(crate) struct Reading {
    opened: Opened,
    preamble: Option<Vec<u8>>,
    at: u64,
}

impl Reading {
    pub(crate) fn new(mut opened: Opened) -> Self {
        let preamble = Some(std::mem::take(&mut opened.preamble));
        Reading {
            opened,
            preamble,
            at: 0,
        }
    }

    /// The next 1 MiB (or less) of the object, or `None` at its end.
    pub(crate) async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        const CHUNK: u64 = 1024 * 1024;
        if let Some(p) = self.preamble.take().filter(|p| !p.is_empty()) {
            return Some(Ok(Bytes::from(p)));
        }
        if self.at >= self.opened.size {
            return None;
        }
        let end = (self.at + CHUNK).min(self.opened.size);
        let read = self.opened.read(self.at..end).await;
        self.at = end;
        Some(read.map_err(|e| std::io::Error::other(e.to_string())))
    }
}

/// A `multipart/related` response (PS3.18 §8.6.1.2) from whole parts: (part media type with
/// parameters, bytes).
pub(crate) fn multipart_response(
    media: &str,
    parts: Vec<(String, Vec<u8>)>,
) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.1.len() + 128).sum());
    for (content_type, bytes) in parts {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!(
            "multipart/related; type=\"{media}\"; boundary={BOUNDARY}"
        ))
        .map_err(|_| ApiError::internal("header"))?,
    );
    Ok(resp)
}

enum PartState {
    Start(usize),
    Body(usize, Reading),
    End,
}

/// One part after another, 1 MiB per read: memory stays bounded for any study or object size.
/// A part that cannot be opened or read ends the stream with an error, so the client sees a
/// broken response rather than a short object.
fn multipart_stream(
    parts: Vec<Part>,
    archive: huren_archive::Archive,
    grant: ReadGrant,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let parts = std::sync::Arc::new(parts);
    let grant = std::sync::Arc::new(grant);
    futures::stream::unfold(PartState::Start(0), move |st| {
        let parts = parts.clone();
        let archive = archive.clone();
        let grant = grant.clone();
        async move {
            match st {
                PartState::End => None,
                PartState::Start(i) if i >= parts.len() => Some((
                    Ok(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))),
                    PartState::End,
                )),
                PartState::Start(i) => {
                    let part = &parts[i];
                    let lead = if i == 0 { "" } else { "\r\n" };
                    match archive
                        .open_instance(&grant, &part.instance, part.convert.as_deref())
                        .await
                    {
                        Ok(opened) => {
                            let head = format!(
                                "{lead}--{BOUNDARY}\r\nContent-Type: application/dicom; transfer-syntax={}\r\n\r\n",
                                opened.transfer_syntax
                            );
                            Some((
                                Ok(Bytes::from(head)),
                                PartState::Body(i, Reading::new(opened)),
                            ))
                        }
                        Err(e) => Some((Err(std::io::Error::other(e.to_string())), PartState::End)),
                    }
                }
                PartState::Body(i, mut r) => match r.next_chunk().await {
                    Some(Ok(b)) => Some((Ok(b), PartState::Body(i, r))),
                    Some(Err(e)) => Some((Err(e), PartState::End)),
                    // Next part; a re-encoded copy (if any) is dropped here.
                    None => Some((Ok(Bytes::new()), PartState::Start(i + 1))),
                },
            }
        }
    })
}

pub(crate) fn not_acceptable(msg: &str) -> ApiError {
    ApiError::not_acceptable(msg)
}

// ---- frames ----

/// Media type of a frame in a transfer syntax (PS3.18 Table 8.7.3-2).
fn frame_media_type(ts: &str) -> &'static str {
    match ts {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => "application/octet-stream",
    }
}

pub async fn frames(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    Uids([study, series, instance]): Uids<3>,
    Path((_, _, _, list)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let numbers: Vec<u32> = list
        .split(',')
        .map(|n| n.trim().parse::<u32>().ok().filter(|n| *n >= 1))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            ApiError::bad_request("frame numbers are positive integers separated by commas")
        })?;
    let (_grant, found) = instances(&state, &p, scope(study, Some(series), Some(instance))).await?;
    let m = &found[0];
    let stored = m.transfer_syntax_uid.clone().unwrap_or_default();
    let layout: PixelLayout = m
        .pixel_layout
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(PixelLayout::None);
    let requested =
        requested_syntax(&headers, EXPLICIT_VR_LE).unwrap_or_else(|| EXPLICIT_VR_LE.into());
    if matches!(layout, PixelLayout::Deflated) {
        return deflated_frames(&state, &p, m, &numbers).await;
    }
    let native = matches!(layout, PixelLayout::Native { .. });
    // Native little-endian frames are already Explicit VR Little Endian frames.
    let ok = serves(&stored, &requested)
        || (native
            && requested == EXPLICIT_VR_LE
            && (stored == "1.2.840.10008.1.2" || stored == "1.2.840.10008.1.2.2"));
    // Uncompressed frames of a compressed object: decode just those frames.
    let decode =
        !ok && requested == EXPLICIT_VR_LE && matches!(layout, PixelLayout::Encapsulated { .. });
    if !ok && !decode {
        return Err(not_acceptable(&format!(
            "frames are stored as {stored}; they are served as stored (transfer-syntax=*) or as Explicit VR Little Endian"
        )));
    }
    if decode {
        return decoded_frames(&state, &p, m, &numbers, layout.frame_count()).await;
    }
    let total = layout.frame_count();
    if let Some(bad) = numbers.iter().find(|n| **n > total) {
        return Err(ApiError::not_found(format!(
            "frame {bad} does not exist; the instance has {total}"
        )));
    }
    let media = if native {
        "application/octet-stream"
    } else {
        frame_media_type(&stored)
    };
    let ts_label = if native && requested != "*" {
        requested.clone()
    } else {
        stored.clone()
    };
    // Big-endian native frames go out little endian unless asked for as stored.
    let swap_big_endian = requested != "*" && requested != stored;
    let mut pm = None;
    let mut parts = Vec::with_capacity(numbers.len());
    for n in &numbers {
        let bytes = read_frame(
            &state,
            &p,
            m,
            &layout,
            (*n - 1) as usize,
            &mut pm,
            swap_big_endian,
        )
        .await?;
        parts.push((format!("{media}; transfer-syntax={ts_label}"), bytes));
    }
    multipart_response(media, parts)
}

/// Frame `idx` (0-based) as stored (`Archive::read_frame`).
pub(crate) async fn read_frame(
    state: &AppState,
    p: &huren_access::Principal,
    m: &Match,
    layout: &PixelLayout,
    idx: usize,
    pm: &mut Option<huren_dicom::render::PixelModule>,
    swap_big_endian: bool,
) -> Result<Vec<u8>, ApiError> {
    let grant = grant_read(p)?;
    Ok(state
        .archive
        .read_frame(&grant, m, layout, idx, pm, swap_big_endian)
        .await?)
}

/// Frames of a deflated object, inflated (`Archive::deflated_frames`), one part each.
async fn deflated_frames(
    state: &AppState,
    p: &huren_access::Principal,
    m: &Match,
    numbers: &[u32],
) -> Result<Response, ApiError> {
    let grant = grant_read(p)?;
    let parts = state
        .archive
        .deflated_frames(&grant, m, numbers)
        .await?
        .into_iter()
        .map(|b| {
            (
                format!("application/octet-stream; transfer-syntax={EXPLICIT_VR_LE}"),
                b,
            )
        })
        .collect();
    multipart_response("application/octet-stream", parts)
}

/// Frames of a compressed object decoded to native little-endian samples, one part each.
async fn decoded_frames(
    state: &AppState,
    p: &huren_access::Principal,
    m: &Match,
    numbers: &[u32],
    total: u32,
) -> Result<Response, ApiError> {
    if let Some(bad) = numbers.iter().find(|n| **n > total) {
        return Err(ApiError::not_found(format!(
            "frame {bad} does not exist; the instance has {total}"
        )));
    }
    let grant = grant_read(p)?;
    let pm = state.archive.pixel_module(&grant, m).await?;
    let mut parts = Vec::with_capacity(numbers.len());
    for n in numbers {
        let (bytes, _) = native_frame(state, p, m, &pm, (*n - 1) as usize).await?;
        parts.push((
            format!("application/octet-stream; transfer-syntax={EXPLICIT_VR_LE}"),
            bytes,
        ));
    }
    multipart_response("application/octet-stream", parts)
}

// ---- bulk data ----

/// A bulk value (PS3.18 §10.4.1.1.5): the byte range named by its BulkDataURI. With an HTTP
/// `Range: bytes=a-b` header (RFC 9110 §14), that part of the value as 206 Partial Content.
pub async fn bulk(
    State(state): State<AppState>,
    Authenticated(p): Authenticated,
    headers: HeaderMap,
    Uids([study, series, instance]): Uids<3>,
    Path((_, _, _, range)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let (start, len) = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| ApiError::not_found("no such bulk data"))?;
    let (grant, found) = instances(&state, &p, scope(study, Some(series), Some(instance))).await?;
    let m = &found[0];
    // A value lies inside its object (a deflated object's offsets are into the inflated data,
    // whose end the inflater finds).
    let deflated = m.transfer_syntax_uid.as_deref() == Some("1.2.840.10008.1.2.1.99");
    let inside = start
        .checked_add(len)
        .is_some_and(|end| deflated || m.object_size.is_some_and(|size| end <= size as u64));
    if !inside {
        return Err(ApiError::not_found("no such bulk data"));
    }
    // The part of the value asked for, relative to the value.
    let sub = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(r) => {
            let spec = r
                .strip_prefix("bytes=")
                .filter(|s| !s.contains(','))
                .ok_or_else(range_not_satisfiable)?;
            let (a, b) = spec.split_once('-').ok_or_else(range_not_satisfiable)?;
            let (from, to) = match (a.trim(), b.trim()) {
                ("", n) => {
                    let n: u64 = n.parse().map_err(|_| range_not_satisfiable())?;
                    (len.saturating_sub(n), len.saturating_sub(1))
                }
                (a, "") => (
                    a.parse().map_err(|_| range_not_satisfiable())?,
                    len.saturating_sub(1),
                ),
                (a, b) => (
                    a.parse().map_err(|_| range_not_satisfiable())?,
                    b.parse::<u64>()
                        .map_err(|_| range_not_satisfiable())?
                        .min(len.saturating_sub(1)),
                ),
            };
            if from > to || from >= len {
                return Err(range_not_satisfiable());
            }
            Some((from, to))
        }
    };
    let (from, to) = sub.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { to - from + 1 };
    // Offsets and lengths come from the URL: a range that runs past the end of any object
    // (or of u64) is no bulk value of this one.
    let begin = start
        .checked_add(from)
        .filter(|b| b.checked_add(count).is_some())
        .ok_or_else(|| ApiError::not_found("no such bulk data"))?;
    let bytes = state.archive.read_bulk(&grant, m, begin, count).await?;
    if sub.is_some() {
        let mut resp = (StatusCode::PARTIAL_CONTENT, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {from}-{to}/{len}"))
                .map_err(|_| ApiError::internal("header"))?,
        );
        return Ok(resp);
    }
    let mut resp = multipart_response(
        "application/octet-stream",
        vec![("application/octet-stream".to_owned(), bytes)],
    )?;
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(resp)
}

fn range_not_satisfiable() -> ApiError {
    ApiError::range_not_satisfiable("the Range header is not a single satisfiable byte range")
}

/// Reads frame `idx` (0-based) as native little-endian bytes, decoding it when the object is
/// compressed; returns the pixel module that describes the bytes (decoding may change the
/// photometric interpretation, e.g. YBR_FULL_422 → RGB).
pub(crate) async fn native_frame(
    state: &AppState,
    p: &huren_access::Principal,
    m: &Match,
    pm: &huren_dicom::render::PixelModule,
    idx: usize,
) -> Result<(Vec<u8>, huren_dicom::render::PixelModule), ApiError> {
    let layout: PixelLayout = m
        .pixel_layout
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(PixelLayout::None);
    if idx as u32 >= layout.frame_count() {
        return Err(match layout {
            PixelLayout::None => not_acceptable("this instance has no pixel data to render"),
            PixelLayout::Deflated => {
                not_acceptable("rendering deflated objects is not implemented yet")
            }
            _ => ApiError::not_found(format!("frame {} does not exist", idx + 1)),
        });
    }
    let mut known = Some(pm.clone());
    let bytes = crate::wado::read_frame(state, p, m, &layout, idx, &mut known, true).await?;
    if !matches!(layout, PixelLayout::Encapsulated { .. }) {
        return Ok((bytes, pm.clone()));
    }
    let ts = m.transfer_syntax_uid.clone().unwrap_or_default();
    let pm = pm.clone();
    tokio::task::spawn_blocking(move || huren_dicom::decode::native_frame(&ts, &pm, bytes, true))
        .await
        .map_err(|_| ApiError::internal("decode task failed"))?
        .map_err(|e| not_acceptable(&e.to_string()))
}
