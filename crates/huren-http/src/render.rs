//! Rendered images: WADO-RS `rendered` and `thumbnail` (PS3.18 §10.4.1.1.3, §8.3.5) and
//! WADO-URI (PS3.18 §9), including WADO-URI's `application/dicom` object. Frames come from the
//! retrieval use case (`Archive::read_frame`: native frames by range at the offsets indexed at
//! ingest, encapsulated frames as their fragments), compressed ones are decoded
//! (`huren_dicom::decode`: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE) and
//! rendered in `huren_dicom::render`. Deflated objects are not rendered (406).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiQuery};
use crate::uids::Uids;
use crate::wado::{Reading, instances, native_frame, not_acceptable, scope};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use huren_archive::query::Match;
use huren_dicom::render::{PixelModule, RenderOptions, render};
use huren_types::Uid;
use std::collections::HashMap;

type Params = ApiQuery<HashMap<String, String>>;

/// Thumbnails fit in this many pixels on each side.
const THUMBNAIL: u32 = 128;

fn parse_pair(v: &str, what: &str) -> Result<(f64, f64), ApiError> {
    let mut it = v.split(',').map(|x| x.trim().parse::<f64>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
        _ => Err(ApiError::bad_request(format!(
            "{what} must be two numbers separated by a comma"
        ))),
    }
}

fn options(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<RenderOptions, ApiError> {
    let window = params
        .get("window")
        .map(|w| parse_pair(w, "window"))
        .transpose()?;
    if window.is_some_and(|(_, w)| w < 1.0) {
        return Err(ApiError::bad_request("window width must be at least 1"));
    }
    let viewport = match params.get("viewport") {
        Some(v) => {
            let (w, h) = parse_pair(v, "viewport")?;
            if w < 1.0 || h < 1.0 {
                return Err(ApiError::bad_request("viewport must be positive"));
            }
            Some((w as u32, h as u32))
        }
        None if thumbnail => Some((THUMBNAIL, THUMBNAIL)),
        None => None,
    };
    let quality = match params.get("quality") {
        Some(q) => q
            .parse::<u8>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| ApiError::bad_request("quality is 1 to 100"))?,
        None => 90,
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("image/jpeg");
    let png = accept.contains("image/png") && !accept.contains("image/jpeg");
    if !accept.contains("image/") && !accept.contains("*/*") && !accept.is_empty() {
        return Err(not_acceptable(
            "rendered images are image/jpeg or image/png",
        ));
    }
    Ok(RenderOptions {
        window,
        viewport,
        quality,
        png,
    })
}

async fn rendered_image(
    state: &AppState,
    p: &huren_access::Principal,
    uids: (Uid, Uid, Uid),
    frame: usize,
    opts: RenderOptions,
) -> Result<Response, ApiError> {
    let (grant, found) = instances(state, p, scope(uids.0, Some(uids.1), Some(uids.2))).await?;
    let m = &found[0];
    let docs = state
        .archive
        .instance_metadata(&grant, std::slice::from_ref(m))
        .await?;
    let doc = docs
        .into_iter()
        .next()
        .map(serde_json::Value::Object)
        .unwrap_or_default();
    let pm = PixelModule::from_json(&doc)
        .ok_or_else(|| not_acceptable("this instance has no image pixel module"))?;
    let (bytes, pm) = native_frame(state, p, m, &pm, frame).await?;
    let png = opts.png;
    let out = tokio::task::spawn_blocking(move || render(&pm, &bytes, &opts))
        .await
        .map_err(|_| ApiError::internal("render task failed"))?
        .map_err(|e| not_acceptable(&e.to_string()))?;
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if png { "image/png" } else { "image/jpeg" }),
    );
    Ok(resp)
}

pub async fn instance_rendered(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
    ApiQuery(q): Params,
) -> Result<Response, ApiError> {
    let opts = options(&q, &h, false)?;
    rendered_image(&s, &p, (st, se, i), 0, opts).await
}

pub async fn instance_thumbnail(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
    ApiQuery(q): Params,
) -> Result<Response, ApiError> {
    let opts = options(&q, &h, true)?;
    rendered_image(&s, &p, (st, se, i), 0, opts).await
}

/// A study's thumbnail for the doctor's timeline (issue #19): the middle image of its largest
/// series, read through the same access rules as every WADO request. Not a DICOMweb resource
/// (PS3.18 has thumbnails of studies, but leaves the chosen image to the server): the web pages
/// call it.
pub async fn study_thumbnail(
    state: &AppState,
    p: &huren_access::Principal,
    study: &str,
) -> Result<Response, ApiError> {
    let (_, found) = instances(state, p, scope(uid(study, "study")?, None, None)).await?;
    let mut by_series: HashMap<&str, Vec<&Match>> = HashMap::new();
    for m in &found {
        if m.pixel_layout.is_some() {
            by_series
                .entry(m.series_instance_uid.as_deref().unwrap_or(""))
                .or_default()
                .push(m);
        }
    }
    let mut series: Vec<Vec<&Match>> = by_series.into_values().collect();
    series.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let Some(mut images) = series.into_iter().next() else {
        return Err(not_acceptable("this study has no image to show"));
    };
    images.sort_by_key(|m| m.instance_number.unwrap_or(0));
    let m = images[images.len() / 2];
    let uids = (
        uid(study, "study")?,
        uid(m.series_instance_uid.as_deref().unwrap_or(""), "series")?,
        uid(m.sop_instance_uid.as_deref().unwrap_or(""), "instance")?,
    );
    let opts = RenderOptions {
        window: None,
        viewport: Some((THUMBNAIL, THUMBNAIL)),
        quality: 80,
        png: false,
    };
    let mut resp = rendered_image(state, p, uids, 0, opts).await?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(resp)
}

/// One image of a study, for pages that show rendered images (a phone that cannot run the
/// viewer, a shared link): its series and instance, in series then instance order.
#[derive(Debug, Clone)]
pub struct StudyImage {
    pub series_uid: String,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub modality: Option<String>,
    pub instance_uid: String,
    pub instance_number: Option<i64>,
}

/// The images (instances with pixel data) of a study the principal may read, with its
/// description; read and audited like any WADO request.
pub async fn study_images(
    state: &AppState,
    p: &huren_access::Principal,
    study: &str,
) -> Result<(Option<String>, Vec<StudyImage>), ApiError> {
    let (_, found) = instances(state, p, scope(uid(study, "study")?, None, None)).await?;
    let description = found.first().and_then(|m| m.study_description.clone());
    let mut images: Vec<StudyImage> = found
        .iter()
        .filter(|m| m.pixel_layout.is_some())
        .map(|m| StudyImage {
            series_uid: m.series_instance_uid.clone().unwrap_or_default(),
            series_number: m.series_number,
            series_description: m.series_description.clone(),
            modality: m.modality.clone(),
            instance_uid: m.sop_instance_uid.clone().unwrap_or_default(),
            instance_number: m.instance_number,
        })
        .collect();
    images.sort_by(|a, b| {
        (a.series_number, &a.series_uid, a.instance_number).cmp(&(
            b.series_number,
            &b.series_uid,
            b.instance_number,
        ))
    });
    Ok((description, images))
}

/// One image of `study` rendered as JPEG to fit `size` pixels a side (its first frame, the
/// object's own window), for pages; read and audited like any WADO request.
pub async fn study_image(
    state: &AppState,
    p: &huren_access::Principal,
    (study, series, instance): (&str, &str, &str),
    size: u32,
) -> Result<Response, ApiError> {
    let opts = RenderOptions {
        window: None,
        viewport: Some((size, size)),
        quality: 85,
        png: false,
    };
    let uids = (
        uid(study, "study")?,
        uid(series, "series")?,
        uid(instance, "instance")?,
    );
    let mut resp = rendered_image(state, p, uids, 0, opts).await?;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=600"),
    );
    Ok(resp)
}

/// A UID named outside a DICOMweb path (WADO-URI's parameters, a study's own rows).
fn uid(s: &str, what: &str) -> Result<Uid, ApiError> {
    Uid::parse_lenient(s).map_err(|e| ApiError::bad_request(format!("{what} is not a UID: {e}")))
}

fn frame_index(f: &str) -> Result<usize, ApiError> {
    f.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .map(|n| n - 1)
        .ok_or_else(|| ApiError::bad_request("a rendered frame is one positive frame number"))
}

pub async fn frame_rendered(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
    Path((_, _, _, f)): Path<(String, String, String, String)>,
    ApiQuery(q): Params,
) -> Result<Response, ApiError> {
    let opts = options(&q, &h, false)?;
    rendered_image(&s, &p, (st, se, i), frame_index(&f)?, opts).await
}

pub async fn frame_thumbnail(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    h: HeaderMap,
    Uids([st, se, i]): Uids<3>,
    Path((_, _, _, f)): Path<(String, String, String, String)>,
    ApiQuery(q): Params,
) -> Result<Response, ApiError> {
    let opts = options(&q, &h, true)?;
    rendered_image(&s, &p, (st, se, i), frame_index(&f)?, opts).await
}

/// WADO-URI (PS3.18 §9): `GET /wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…`.
/// `contentType=application/dicom` returns the object (re-encoded when `transferSyntax` names
/// another native syntax; as stored when no syntax is named — legacy viewers expect that);
/// image/jpeg (the default) or image/png renders it.
pub async fn wado_uri(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): Params,
) -> Result<Response, ApiError> {
    if q.get("requestType").map(String::as_str) != Some("WADO") {
        return Err(ApiError::bad_request("requestType=WADO is required"));
    }
    let get = |k: &str| {
        q.get(k)
            .ok_or_else(|| ApiError::bad_request(format!("{k} is required")))
            .and_then(|v| uid(v, k))
    };
    let uids = (get("studyUID")?, get("seriesUID")?, get("objectUID")?);
    let content_type = q
        .get("contentType")
        .map(String::as_str)
        .unwrap_or("image/jpeg");
    if content_type
        .split(',')
        .any(|c| c.trim() == "application/dicom")
    {
        let (grant, found) = instances(&s, &p, scope(uids.0, Some(uids.1), Some(uids.2))).await?;
        let m = &found[0];
        let stored = m.transfer_syntax_uid.clone().unwrap_or_default();
        let convert = match q.get("transferSyntax") {
            Some(ts) if *ts != stored => {
                if !huren_dicom::transcode::can_transcode(&stored, ts) {
                    return Err(not_acceptable(&format!(
                        "the object is stored as {stored} and cannot be converted to {ts}"
                    )));
                }
                Some(ts.clone())
            }
            _ => None,
        };
        let opened = s
            .archive
            .open_instance(&grant, m, convert.as_deref())
            .await?;
        let mut resp = Response::new(Body::from_stream(object_stream(Reading::new(opened))));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/dicom"),
        );
        return Ok(resp);
    }
    let png = content_type.contains("image/png");
    if !png && !content_type.contains("image/jpeg") {
        return Err(not_acceptable(
            "contentType is application/dicom, image/jpeg or image/png",
        ));
    }
    let window = match (q.get("windowCenter"), q.get("windowWidth")) {
        (Some(c), Some(w)) => Some(parse_pair(&format!("{c},{w}"), "windowCenter/windowWidth")?),
        _ => None,
    };
    let viewport = match (q.get("columns"), q.get("rows")) {
        (Some(c), Some(r)) => Some(
            parse_pair(&format!("{c},{r}"), "columns/rows").map(|(c, r)| (c as u32, r as u32))?,
        ),
        _ => None,
    };
    let quality = q
        .get("imageQuality")
        .and_then(|v| v.parse::<u8>().ok())
        .unwrap_or(90);
    let frame = q
        .get("frameNumber")
        .map(|f| frame_index(f))
        .transpose()?
        .unwrap_or(0);
    rendered_image(
        &s,
        &p,
        uids,
        frame,
        RenderOptions {
            window,
            viewport,
            quality,
            png,
        },
    )
    .await
}

fn object_stream(reading: Reading) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(reading, |mut r| async move {
        r.next_chunk().await.map(|chunk| (chunk, r))
    })
}
