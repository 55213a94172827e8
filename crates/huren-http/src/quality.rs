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
pub struct StudiesQuery {
    from: String,
    until: String,
    /// An institution's code (the region's readers; others see their own institution's).
    institution: Option<String>,
    modality: Option<String>,
    /// A grade: A, B, C or reject (甲, 乙, 丙, 废片 are taken too).
    grade: Option<String>,
    /// graded, not_assessable, pending or nothing_to_score.
    status: Option<String>,
    /// `score` (lowest first, the default), `-score`, or `newest`.
    order: Option<String>,
    /// 1 to 500 (default 50).
    limit: Option<i64>,
    offset: Option<i64>,
    format: Option<String>,
}

/// `GET /api/quality/studies?from&until[&institution][&modality][&grade][&status][&order]
/// [&limit][&offset][&format=csv]`: the QC centre's list of studies performed on those days
/// (by the day the first image arrived when a study has no StudyDate), lowest score first by
/// default, with what kept each low; pending and not-assessable studies included.
pub async fn studies(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<StudiesQuery>,
) -> Result<axum::response::Response, ApiError> {
    use huren_archive::model::{QcOrder, QcStatus};
    let grant = huren_access::grant_quality(&p)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit is 1 to 500"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset is 0 or more"));
    }
    let grade = match q.grade.as_deref() {
        None => None,
        Some(g) => Some(huren_types::QcGrade::parse(g).ok_or_else(|| {
            ApiError::bad_request("grade is A, B, C or reject (甲, 乙, 丙, 废片)")
        })?),
    };
    let status = match q.status.as_deref() {
        None => None,
        Some("graded") => Some(QcStatus::Graded),
        Some("not_assessable") => Some(QcStatus::NotAssessable),
        Some("pending") => Some(QcStatus::Pending),
        Some("nothing_to_score") => Some(QcStatus::NothingToScore),
        Some(_) => {
            return Err(ApiError::bad_request(
                "status is graded, not_assessable, pending or nothing_to_score",
            ));
        }
    };
    let order = match q.order.as_deref() {
        None | Some("score") => QcOrder::ScoreAscending,
        Some("-score") => QcOrder::ScoreDescending,
        Some("newest") => QcOrder::Newest,
        Some(_) => return Err(ApiError::bad_request("order is score, -score or newest")),
    };
    let (from, until) = span(&q.from, &q.until)?;
    let page = s
        .archive
        .quality_studies(
            &grant,
            from,
            until,
            q.institution.as_deref(),
            q.modality.as_deref(),
            grade,
            status,
            order,
            limit,
            offset,
        )
        .await?;
    if q.format.as_deref() != Some("csv") {
        return Ok(Json(page).into_response());
    }
    let mut text = String::from(
        "study_instance_uid,institution,modalities,day,dated_by,status,score,grade,grade_zh,\
         grade_en,calibrated,complete,stored,scored,images,excluded,reasons\n",
    );
    for x in &page.studies {
        let (g, zh, en) = (
            x.grade.grade.unwrap_or_default(),
            x.grade.grade_zh.unwrap_or_default(),
            x.grade.grade_en.unwrap_or_default(),
        );
        let status = serde_json::to_value(x.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let reasons: Vec<&str> = x.reasons.iter().map(|r| r.code.as_str()).collect();
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&x.study_instance_uid),
            csv_field(&x.institution),
            csv_field(&x.modalities),
            x.day,
            x.dated_by,
            status,
            x.score.map(|v| format!("{v:.1}")).unwrap_or_default(),
            g,
            zh,
            en,
            x.calibrated,
            x.complete.map(|c| c.to_string()).unwrap_or_default(),
            x.stored,
            x.scored,
            x.images,
            x.excluded,
            csv_field(&reasons.join(";"))
        ));
    }
    Ok(csv_response(text))
}

/// `GET /api/quality/studies/{uid}`: one study's QC record — its grade, each series' aggregate,
/// every image's scores with the measured value, unit, bands and whether each scorer could
/// judge it. 404 when no study of that UID is in the reader's reach.
pub async fn study(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    axum::extract::Path(uid): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let grant = huren_access::grant_quality(&p)?;
    let found = s.archive.quality_study(&grant, &uid).await?;
    if found.is_empty() {
        return Err(ApiError::not_found("no such study in quality control"));
    }
    Ok(Json(json!({ "study_instance_uid": uid, "studies": found })))
}
