//! The embedded assets: huren's own CSS and scripts (`static/` in this crate), htmx and ECharts
//! (`/static/…`), and the OHIF viewer (`/viewer/…`), all from the binary. The third-party files
//! are stored gzip-compressed (scripts/web-assets.sh) and sent as such to every browser that
//! accepts gzip (all do); a client that does not gets them inflated.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};
use std::io::Read;

static PREPARED: Dir<'static> = include_dir!("$HUREN_WEB_ASSET_DIR");

/// huren's own files, written by this team (served uncompressed; they are small).
const OWN: &[(&str, &str, &[u8])] = &[
    (
        "huren.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/huren.css"),
    ),
    (
        "huren.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/huren.js"),
    ),
    (
        "trend.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/trend.js"),
    ),
    (
        "qc.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/qc.js"),
    ),
    (
        "stats.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/stats.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/upload.js"),
    ),
    (
        "film.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/film.js"),
    ),
    (
        "config.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/config.js"),
    ),
];

/// OHIF's configuration for huren: one DICOMweb source on this origin (shared/ui.md).
const VIEWER_CONFIG: &str = include_str!("../viewer/app-config.js");

/// The versions of the third-party assets in this binary, when they were prepared.
pub fn versions() -> Option<&'static str> {
    PREPARED
        .get_file("VERSIONS")
        .and_then(|f| f.contents_utf8())
        .map(str::trim)
}

/// Whether the binary carries the viewer / the chart library.
pub fn has_viewer() -> bool {
    PREPARED.get_file("viewer/index.html.gz").is_some()
}

pub fn has_charts() -> bool {
    PREPARED.get_file("static/echarts.min.js.gz").is_some()
}

pub fn has_htmx() -> bool {
    PREPARED.get_file("static/htmx.min.js.gz").is_some()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// A prepared (gzip) file as a response, `None` when absent.
fn prepared(path: &str, headers: &HeaderMap, cache: &'static str) -> Option<Response> {
    let file = PREPARED.get_file(format!("{path}.gz"))?;
    let mut resp = if accepts_gzip(headers) {
        let mut r = Response::new(Body::from(file.contents()));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(file.contents())
            .read_to_end(&mut plain)
            .is_err()
        {
            return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        Response::new(Body::from(plain))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(resp)
}

/// `GET /static/{file}`.
pub async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if let Some((_, ct, bytes)) = OWN.iter().find(|(n, _, _)| *n == file) {
        return (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response();
    }
    prepared(&format!("static/{file}"), &headers, "public, max-age=86400")
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// A file name webpack stamped with its content hash (`2493.bundle.c4af70e46357151f.js`,
/// `0ddf166f7a343eda.wasm`): it never changes, so browsers may keep it.
fn content_hashed(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .unwrap_or("")
        .split('.')
        .any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET /viewer/{*path}`: OHIF's files; any other path under `/viewer/` is one of its
/// client-side routes and gets `index.html`.
pub async fn viewer(path: Option<Path<String>>, headers: HeaderMap) -> Response {
    let path = path.map(|Path(p)| p).unwrap_or_default();
    if path == "app-config.js" {
        return (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            VIEWER_CONFIG,
        )
            .into_response();
    }
    if !has_viewer() {
        return crate::pages::viewer_missing(&headers);
    }
    if path.contains("..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let cache = if content_hashed(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if !path.is_empty()
        && let Some(r) = prepared(&format!("viewer/{path}"), &headers, cache)
    {
        return r;
    }
    // A missing script or style is a 404, not the app's page (a browser would run HTML as JS).
    if path.ends_with(".js") || path.ends_with(".css") || path.ends_with(".wasm") {
        return StatusCode::NOT_FOUND.into_response();
    }
    prepared("viewer/index.html", &headers, "no-cache")
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_told_from_stable_ones() {
        assert!(content_hashed("2493.bundle.c4af70e46357151f.js"));
        assert!(content_hashed("0ddf166f7a343eda.wasm"));
        assert!(!content_hashed("index.html"));
        assert!(!content_hashed("ohif-init.js"));
        assert!(!content_hashed("assets/favicon.ico"));
    }

    #[test]
    fn gzip_is_recognised_in_accept_encoding() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        assert!(!accepts_gzip(&h));
    }
}
