//! DICOM UIDs from a request path, checked at the edge: a DICOMweb path segment that is no UID
//! (PS3.5 §9.1: digits and dots, at most 64 characters) is refused with 400 before any use case
//! runs, and handlers get `Uid`s, not strings. Parsed leniently (leading zeros in a component
//! are allowed): an archive must serve what modalities sent.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use huren_types::Uid;

/// The first `N` path parameters, each a UID (study, series, instance in that order).
pub struct Uids<const N: usize>(pub [Uid; N]);

impl<S: Send + Sync, const N: usize> FromRequestParts<S> for Uids<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw): Path<Vec<(String, String)>> =
            Path::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut out = Vec::with_capacity(N);
        for (name, value) in raw.into_iter().take(N) {
            out.push(Uid::parse_lenient(&value).map_err(|e| {
                ApiError::bad_request(format!("{name} in the path is not a UID: {e}"))
            })?);
        }
        let n = out.len();
        out.try_into()
            .map_err(|_| ApiError::internal(format!("route has {n} UIDs, {N} expected")))
            .map(Uids)
    }
}
