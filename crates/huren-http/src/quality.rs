//! Image quality feedback for the QC centre (issue #8, docs/quality.md): score distributions by
//! institution, modality or month, and the lowest-scoring studies with their reasons. No
//! patient data: studies are named by StudyInstanceUID and institution only.

use crate::AppState;
use crate::auth::Authenticated;
use crate::catalog::{csv_field, csv_response, date};
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use huren_archive::quality::QualityBy;
use serde::Deserialize;
use serde_json::json;

/// `from` and `until` as dates, `until` not before `from` (as the recognition statistics).
fn span(from: &str, until: &str) -> Result<(time::Date, time::Date), ApiError> {
    let (from, until) = (date(from)?, date(until)?);
    if until < from {
        return Err(ApiError::bad_request("until is before from"));
    }
    Ok((from, until))
}

/// `GET /api/quality/statistics?from&until[&by][&format=csv]`: `by` is `institution` (default),
/// `modality` or `month`.
pub async fn statistics(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<crate::recognition::SpanQuery>,
) -> Result<axum::response::Response, ApiError> {
    let grant = huren_access::grant_quality(&p)?;
    let by = QualityBy::parse(q.by.as_deref().unwrap_or("institution"))
        .ok_or_else(|| ApiError::bad_request("by is institution, modality or month"))?;
    let (from, until) = span(&q.from, &q.until)?;
    let rows = s
        .archive
        .quality_statistics(&grant, from, until, by)
        .await?;
    if q.format.as_deref() != Some("csv") {
        return Ok(Json(json!({ "from": q.from, "until": q.until, "rows": rows })).into_response());
    }
    let num = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
    let mut text =
        String::from("key,studies,a,b,c,reject,uncalibrated,incomplete,mean,p10,median,p90\n");
    for r in &rows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.key),
            r.studies,
            r.a,
            r.b,
            r.c,
            r.reject,
            r.uncalibrated,
            r.incomplete,
            num(r.mean),
            num(r.p10),
            num(r.median),
            num(r.p90)
        ));
    }
    Ok(csv_response(text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowestQuery {
    from: String,
    until: String,
    modality: Option<String>,
    /// At most 500 (default 20).
    limit: Option<usize>,
}

/// `GET /api/quality/studies?from&until[&modality][&limit]`: the lowest-scoring studies first,
/// with the reasons that kept them low.
pub async fn lowest(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<LowestQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_quality(&p)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit is 1 to 500"));
    }
    let (from, until) = span(&q.from, &q.until)?;
    let studies = s
        .archive
        .quality_lowest(&grant, from, until, q.modality.as_deref(), limit)
        .await?;
    Ok(Json(json!({ "studies": studies })))
}
