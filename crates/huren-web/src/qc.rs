//! The QC centre's pages (issue #20, part 3; docs/quality.md): score distributions by
//! institution, modality or month, with a chart of the grades and CSV; the lowest-scoring
//! studies with what kept them down; and a study's drill-down to its series, images and every
//! scorer's measured value. No patient data anywhere: studies are named by StudyInstanceUID
//! and institution (`Archive::quality_*`, the same use cases as `/api/quality`).

use crate::i18n::Lang;
use crate::pages::{Frame, framed, k, render};
use crate::patient::local;
use crate::session::Doctor;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::QualityGrant;
use huren_archive::model::QcOrder;
use huren_archive::quality::{GradeLabel, QcStudyItem, QcStudyView, QualityBy, QualityRow};
use huren_http::AppState;
use serde::{Deserialize, Serialize};

/// The lowest studies the dashboard lists.
const LOWEST: i64 = 20;

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct QcQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    institution: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    modality: String,
}

struct Group {
    key: String,
    /// Where a row drills down to (the lowest studies of that institution or modality).
    link: String,
    row: QualityRow,
}

struct Study {
    uid: String,
    institution: String,
    modalities: String,
    day: String,
    score: String,
    grade: String,
    grade_class: &'static str,
    reasons: String,
    /// Reviewed by the QC centre (that many comments).
    reviews: i64,
}

#[derive(Template)]
#[template(path = "qc.html")]
struct QcPage {
    frame: Frame,
    q: QcQuery,
    by: &'static str,
    groups: Vec<Group>,
    /// The chart's data: [[group, 甲, 乙, 丙, 废片], …] as JSON.
    chart: String,
    charts: bool,
    csv: String,
    lowest: Vec<Study>,
    total: i64,
    error: &'static str,
}
framed!(QcPage);

struct Measure {
    scorer: String,
    value: String,
    score: String,
    grade: String,
    bands: String,
    calibrated: bool,
    reasons: String,
}

struct Image {
    sop: String,
    number: String,
    status: String,
    score: String,
    grade: String,
    measures: Vec<Measure>,
}

struct Series {
    uid: String,
    /// The image shown beside the series' scores: its lowest-scored image, else its middle one.
    shown: String,
    score: String,
    grade: String,
    complete: String,
    reasons: String,
    scorers: Vec<Measure>,
    images: Vec<Image>,
}

#[derive(Template)]
#[template(path = "qc_study.html")]
struct QcStudyPage {
    frame: Frame,
    study: Study,
    series: Vec<Series>,
    /// The QC centre's comments to the hospital: (when, who, comment).
    reviews: Vec<(String, String, String)>,
    /// The reader is a QC officer: the review form is shown.
    may_review: bool,
    /// A message key after a review, or empty.
    done: &'static str,
    error: &'static str,
}
framed!(QcStudyPage);

fn quality(d: &Doctor) -> Result<QualityGrant, Box<Response>> {
    huren_access::grant_quality(&d.principal())
        .map_err(|e| Box::new(crate::pages::role_refused(d, k("qc_only"), e.to_string())))
}

fn pick<'a>(lang: Lang, zh: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn grade(lang: Lang, g: &GradeLabel) -> String {
    match (g.grade_zh, g.grade_en) {
        (Some(zh), Some(en)) => pick(lang, zh, en).to_owned(),
        _ => String::new(),
    }
}

fn score(s: Option<f64>) -> String {
    s.map(|v| format!("{v:.0}")).unwrap_or_default()
}

fn reasons(lang: Lang, rs: &[huren_quality::Reason]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for r in rs {
        let text = pick(lang, &r.zh, &r.en);
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    seen.join("；")
}

fn study(lang: Lang, s: &QcStudyItem) -> Study {
    Study {
        uid: s.study_instance_uid.clone(),
        institution: s.institution.clone(),
        modalities: s.modalities.clone(),
        day: s.day.clone(),
        score: score(s.score),
        grade: grade(lang, &s.grade),
        grade_class: match s.grade.grade {
            Some("A") => "grade-a",
            Some("B") => "grade-b",
            Some("C") => "grade-c",
            Some(_) => "grade-reject",
            None => "grade-none",
        },
        reasons: reasons(lang, &s.reasons),
        reviews: s.reviews,
    }
}

/// `GET /qc?from&until&by&institution&modality`: the QC centre's dashboard.
pub async fn dashboard(
    State(state): State<AppState>,
    d: Doctor,
    RawQuery(raw): RawQuery,
) -> Response {
    let grant = match quality(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let mut q: QcQuery = crate::pages::query(raw);
    let (by_key, by) = match q.by.as_str() {
        "modality" => ("modality", QualityBy::Modality),
        "month" => ("month", QualityBy::Month),
        _ => ("institution", QualityBy::Institution),
    };
    // By default the twelve months to date, from the first of a month: a period of whole
    // months is read from the roll-up.
    let Some((from, until)) = crate::pages::period(state.archive.today(), &q.from, &q.until, |u| {
        let first = u.replace_day(1).ok()?;
        match first.month() {
            time::Month::December => first.replace_month(time::Month::January).ok(),
            m => first
                .replace_year(first.year() - 1)
                .ok()?
                .replace_month(m.next())
                .ok(),
        }
    }) else {
        return render(
            StatusCode::BAD_REQUEST,
            &QcPage {
                frame: d.frame("/qc"),
                by: by_key,
                groups: Vec::new(),
                chart: "[]".into(),
                charts: false,
                csv: String::new(),
                lowest: Vec::new(),
                total: 0,
                q,
                error: k("qc_bad_period"),
            },
        );
    };
    q.from = crate::pages::day(from);
    q.until = crate::pages::day(until);
    let rows = match state
        .archive
        .quality_statistics(&grant, from, until, by)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "quality statistics not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    fn given(v: &str) -> Option<&str> {
        Some(v.trim()).filter(|v| !v.is_empty())
    }
    let lowest = match state
        .archive
        .quality_studies(
            &grant,
            from,
            until,
            given(&q.institution),
            given(&q.modality),
            None,
            Some(huren_archive::model::QcStatus::Graded),
            QcOrder::ScoreAscending,
            LOWEST,
            0,
        )
        .await
    {
        Ok(p) => p,
        Err(huren_archive::AdminError::Refused(
            huren_archive::refusal::Rule::InstitutionNotFound,
            _,
        )) => huren_archive::quality::QcStudyPage {
            total: 0,
            offset: 0,
            limit: LOWEST,
            studies: Vec::new(),
        },
        Err(e) => {
            tracing::error!(error = %e, "quality studies not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let chart: Vec<(String, u64, u64, u64, u64)> = rows
        .iter()
        .map(|r| (r.key.clone(), r.a, r.b, r.c, r.reject))
        .collect();
    let link = |key: &str| -> String {
        let mut to = QcQuery {
            by: by_key.to_owned(),
            ..q.clone()
        };
        match by {
            QualityBy::Institution => to.institution = key.to_owned(),
            QualityBy::Modality => to.modality = key.to_owned(),
            QualityBy::Month | QualityBy::Cell => return String::new(),
        }
        format!(
            "/qc?{}#lowest",
            serde_urlencoded::to_string(&to).unwrap_or_default()
        )
    };
    let csv = crate::pages::csv_link("/api/quality/statistics", &q.from, &q.until, by_key);
    render(
        StatusCode::OK,
        &QcPage {
            frame: d.frame("/qc"),
            by: by_key,
            groups: rows
                .into_iter()
                .map(|row| Group {
                    link: link(&row.key),
                    key: row.key.clone(),
                    row,
                })
                .collect(),
            chart: serde_json::to_string(&chart).unwrap_or_else(|_| "[]".into()),
            charts: crate::assets::has_charts(),
            csv,
            lowest: lowest.studies.iter().map(|s| study(d.lang, s)).collect(),
            total: lowest.total,
            q,
            error: "",
        },
    )
}

fn measures(lang: Lang, ms: &[huren_archive::quality::QcMeasure]) -> Vec<Measure> {
    ms.iter()
        .map(|m| Measure {
            scorer: m.scorer.clone(),
            value: m
                .value
                .map(|v| format!("{v:.2} {}", m.unit).trim().to_owned())
                .unwrap_or_default(),
            score: score(m.score),
            grade: grade(lang, &m.grade),
            bands: pick(lang, m.bands_zh, m.bands_en).to_owned(),
            calibrated: m.calibrated,
            reasons: reasons(lang, &m.reasons),
        })
        .collect()
}

/// `GET /qc/studies/{uid}`: one study's series, images and every scorer's value.
pub async fn study_page(
    State(state): State<AppState>,
    d: Doctor,
    Path(uid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let done = if raw.as_deref() == Some("done=review") {
        k("qc_review_done")
    } else {
        ""
    };
    study_view(&state, &d, &uid, done, "").await
}

async fn study_view(
    state: &AppState,
    d: &Doctor,
    uid: &str,
    done: &'static str,
    error: &'static str,
) -> Response {
    let grant = match quality(d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let views: Vec<QcStudyView> = match state.archive.quality_study(&grant, uid).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "quality study not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // The same UID from two institutions is two studies; the first one found is shown.
    let Some(v) = views.into_iter().next() else {
        return crate::pages::message(
            &d.frame("/qc"),
            StatusCode::NOT_FOUND,
            k("error_title"),
            k("qc_no_study"),
            "/qc",
            k("back"),
        );
    };
    let lang = d.lang;
    let reviews = match state
        .archive
        .quality_reviews(&grant, uid, &v.study.institution)
        .await
    {
        Ok(r) => r
            .into_iter()
            .map(|r| (local(state, Some(r.reviewed_at), true), r.actor, r.comment))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "quality reviews not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    render(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &QcStudyPage {
            reviews,
            may_review: huren_access::grant_qc_review(&d.principal()).is_ok(),
            done,
            error,
            frame: d.frame(&format!("/qc/studies/{uid}")),
            study: study(lang, &v.study),
            series: v
                .series
                .iter()
                .map(|s| Series {
                    uid: s.series_instance_uid.clone(),
                    shown: shown_image(&s.images),
                    score: score(s.score),
                    grade: grade(lang, &s.grade),
                    complete: match s.complete {
                        Some(true) => crate::i18n::T { lang }.t("qc_complete").to_owned(),
                        Some(false) => crate::i18n::T { lang }.t("qc_incomplete").to_owned(),
                        None => String::new(),
                    },
                    reasons: reasons(lang, &s.reasons),
                    scorers: measures(lang, &s.scorers),
                    images: s
                        .images
                        .iter()
                        .map(|i| Image {
                            sop: i.sop_instance_uid.clone(),
                            number: i.instance_number.map(|n| n.to_string()).unwrap_or_default(),
                            status: i.excluded.clone().unwrap_or_else(|| i.status.to_owned()),
                            score: score(i.score),
                            grade: grade(lang, &i.grade),
                            measures: measures(lang, &i.scores),
                        })
                        .collect(),
                })
                .collect(),
        },
    )
}

/// The image a series is shown by: the lowest-scored one (what the QC centre is looking for),
/// else the middle one.
fn shown_image(images: &[huren_archive::quality::QcImageView]) -> String {
    images
        .iter()
        .filter(|i| i.score.is_some())
        .min_by(|a, b| {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .or_else(|| images.get(images.len() / 2))
        .map(|i| i.sop_instance_uid.clone())
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
struct SizeQuery {
    #[serde(default)]
    size: String,
}

/// `GET /qc/studies/{uid}/images/{sop}[?size=]`: an image of a study the reader's quality
/// grant reaches, rendered as JPEG (pixels only, no patient identity).
pub async fn image(
    State(state): State<AppState>,
    d: Doctor,
    Path((uid, sop)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let grant = match quality(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: SizeQuery = crate::pages::query(raw);
    let size = q.size.parse::<u32>().unwrap_or(384).clamp(64, 1024);
    match state.archive.quality_image(&grant, &uid, &sop, size).await {
        Ok(Some(jpeg)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=600"),
            ],
            jpeg,
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(huren_archive::AdminError::Refused(huren_archive::refusal::Rule::NoImage, m)) => {
            (StatusCode::NOT_ACCEPTABLE, m).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "QC image not rendered");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(Deserialize, Default)]
struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    institution: String,
    #[serde(default)]
    comment: String,
}

/// `POST /qc/studies/{uid}/reviews` (form): the QC centre's comment to the hospital.
pub async fn review(
    State(state): State<AppState>,
    d: Doctor,
    Path(uid): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f: ReviewForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !d.csrf_ok(&f.csrf) {
        return d.csrf_refused();
    }
    let grant = match huren_access::grant_qc_review(&d.principal()) {
        Ok(g) => g,
        Err(e) => return crate::pages::role_refused(&d, k("qc_review_only"), e.to_string()),
    };
    match state
        .archive
        .quality_review(&grant, &uid, f.institution.trim(), &f.comment)
        .await
    {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(
                axum::http::header::LOCATION,
                format!("/qc/studies/{uid}?done=review"),
            )],
        )
            .into_response(),
        Err(huren_archive::AdminError::Invalid(_)) => {
            study_view(&state, &d, &uid, "", k("qc_review_needed")).await
        }
        Err(huren_archive::AdminError::Refused(huren_archive::refusal::Rule::StudyNotFound, _)) => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "quality review not recorded");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
