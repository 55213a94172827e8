//! The recognition API (issue #7): the region's recognition configuration (qualification
//! records and HR scope rules as CSV, the policy as TOML) loaded by operators; decisions for a
//! person's prior results, read by those who may read the person; reminders, doctors'
//! decisions and statistics.

use crate::AppState;
use crate::auth::Authenticated;
use crate::catalog::{csv_field, csv_text, date};
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use huren_access::{Principal, grant_admin, grant_read};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /api/admin/recognition/qualifications` (CSV): a new set of qualification records.
pub async fn import_qualifications(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let set = s
        .archive
        .import_qualifications(&grant, csv_text(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(set))))
}

/// `POST /api/admin/recognition/scopes` (CSV): a new set of HR scope rules.
pub async fn import_scopes(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let set = s.archive.import_scopes(&grant, csv_text(&body)?).await?;
    Ok((StatusCode::CREATED, Json(json!(set))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionQuery {
    /// The receiving institution; a person's or system's own by default (a regional service
    /// must name one).
    receiver: Option<String>,
    /// The catalog item being ordered (order-time question).
    item: Option<String>,
    /// YYYY-MM-DD: judge as of the end of that day (the facts and configuration then).
    as_of: Option<String>,
}

/// `GET /api/patients/{person}/recognition[?item=…][&receiver=…]`: each prior result from
/// another institution with the rules' decision for the receiving institution.
pub async fn person_recognition(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(person): Path<String>,
    ApiQuery(q): ApiQuery<RecognitionQuery>,
) -> Result<Json<Value>, ApiError> {
    // A regional service (read:region) judges for any receiving institution it names: the
    // question is the receiver's, the patient data read is what its scope already allows.
    let (own, any) = match &p {
        Principal::User(u) => (Some(u.institution_code.to_string()), false),
        Principal::System(sys) => (
            Some(sys.institution_code.to_string()),
            sys.reads == huren_access::SystemReads::Region,
        ),
        _ => (None, false),
    };
    let grant = grant_read(&p)?;
    let receiver = match (q.receiver, own) {
        (Some(r), Some(own)) if r != own && !any => {
            return Err(ApiError::forbidden(
                "decisions are for the reader's own institution",
            ));
        }
        (Some(r), _) => r,
        (None, Some(own)) => own,
        (None, None) => return Err(ApiError::bad_request("name the receiving institution")),
    };
    let judged = match q.as_of.as_deref() {
        Some(d) => huren_archive::recognition::Judged::AsOf(date(d)?),
        None => huren_archive::recognition::Judged::Now,
    };
    match s
        .archive
        .recognition_judged(&grant, &person, &receiver, q.item.as_deref(), &judged)
        .await?
    {
        Some(v) => Ok(Json(json!(v))),
        None => Err(ApiError::not_found(format!("no person {person}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderBody {
    /// The patient's record number at the receiving institution…
    patient_id: Option<String>,
    issuer: Option<String>,
    /// …or identity number, `system|value`.
    identifier: Option<String>,
    /// The HIS order/charge code being ordered (an order-time reminder) …
    order_code: Option<String>,
    order_system: Option<String>,
    /// … or the catalog item itself. Neither: an encounter-time reminder.
    item: Option<String>,
    /// The visit (the patient's open encounter here when absent).
    visit_number: Option<String>,
}

/// `system|value` as a pair.
fn split_identifier(v: Option<&str>) -> Result<Option<(&str, &str)>, ApiError> {
    v.map(|i| {
        i.split_once('|')
            .ok_or_else(|| ApiError::bad_request("identifier is system|value"))
    })
    .transpose()
}

/// `POST /api/recognition/reminders`: the HIS (acting for the doctor) or the doctor asks, when
/// an encounter opens or an order is placed, which outside results the rules recognize. The
/// answer carries each decision and where to open the images or the result.
pub async fn reminders(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    headers: axum::http::HeaderMap,
    crate::error::ApiJson(b): crate::error::ApiJson<ReminderBody>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let receiver = match &p {
        Principal::User(u) => (u.institution_id, u.institution_code.to_string()),
        Principal::System(sys) => (sys.institution_id, sys.institution_code.to_string()),
        _ => {
            return Err(ApiError::forbidden(
                "reminders are for an institution's doctors",
            ));
        }
    };
    let grant = grant_read(&p)?;
    let r = s
        .archive
        .reminder(
            &grant,
            (receiver.0, &receiver.1),
            huren_archive::recognition::ReminderRequest {
                patient_id: b.patient_id.as_deref(),
                issuer: b.issuer.as_deref(),
                identifier: split_identifier(b.identifier.as_deref())?,
                order_code: b.order_code.as_deref(),
                order_system: b.order_system.as_deref(),
                item: b.item.as_deref(),
                visit_number: b.visit_number.as_deref(),
                person: None,
            },
        )
        .await?;
    let origin = crate::qido::origin_url(&s, &headers);
    let mut r = r;
    for x in &mut r.results {
        x.link = Some(match x.kind {
            "imaging_study" => format!("{origin}/dicom-web/studies/{}", x.id),
            _ => format!("{origin}/fhir/Observation/{}", x.id),
        });
    }
    // Serialized as it stands: an encounter's reminder lists every outside result, each with
    // what it consulted (some 300 kB for 200 results).
    Ok(Json(r).into_response())
}

/// `GET /api/recognition/reasons`: the re-examination reasons — the platform's (national six,
/// and 98 and 99, which are recorded but not counted as non-recognition), then the region's
/// from its policy.
pub async fn reasons(
    State(s): State<AppState>,
    Authenticated(_): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.archive.recognition_reasons().await?)))
}

/// `POST /api/admin/recognition/policy`: the region's policy (TOML) as a new set.
pub async fn import_policy(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the policy file is not UTF-8"))?;
    let set = s.archive.import_policy(&grant, text).await?;
    Ok((StatusCode::CREATED, Json(json!(set))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    patient_id: Option<String>,
    issuer: Option<String>,
    identifier: Option<String>,
    /// `{"kind": "imaging_study"|"lab_result", "id": …}` as the reminder listed it.
    result: ResultRef,
    /// `recognize` or `re_examine`.
    decision: String,
    reason: Option<String>,
    note: Option<String>,
    visit_number: Option<String>,
    order_code: Option<String>,
    order_system: Option<String>,
    item: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRef {
    kind: String,
    id: String,
}

/// `POST /api/recognition/decisions`: the doctor (or the HIS acting for them) records the
/// decision on one prior result; the answer has the sentence for the medical record.
pub async fn decide(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    crate::error::ApiJson(b): crate::error::ApiJson<DecisionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = huren_access::grant_clinician(&p)?;
    let d = s
        .archive
        .record_decision(
            &grant,
            huren_archive::recognition::DecisionRequest {
                about: huren_archive::recognition::ReminderRequest {
                    patient_id: b.patient_id.as_deref(),
                    issuer: b.issuer.as_deref(),
                    identifier: split_identifier(b.identifier.as_deref())?,
                    order_code: b.order_code.as_deref(),
                    order_system: b.order_system.as_deref(),
                    item: b.item.as_deref(),
                    visit_number: b.visit_number.as_deref(),
                    person: None,
                },
                result_kind: &b.result.kind,
                result_id: &b.result.id,
                decision: &b.decision,
                reason: b.reason.as_deref(),
                note: b.note.as_deref(),
                visit_number: b.visit_number.as_deref(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(d))))
}

/// `GET /api/recognition/decisions/{id}`: a recorded decision with the engine's decision then,
/// and the same result judged again with the recorded configuration versions and the facts of
/// the decision's moment (`same`: the replay agrees). For the deciding institution's readers
/// and regional services, who must reach the patient.
pub async fn decision(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_read(&p)?;
    match s.archive.recorded_decision(&grant, id).await? {
        Some(d) => Ok(Json(json!(d))),
        None => Err(ApiError::not_found(format!("no decision {id}"))),
    }
}

/// The query of an aggregate report: a span of days, a grouping and a format (recognition
/// statistics, quality feedback).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanQuery {
    /// Days, YYYY-MM-DD, inclusive (decision days; study days for quality).
    pub(crate) from: String,
    pub(crate) until: String,
    /// What the rows are grouped by; each report names its own and its default.
    pub(crate) by: Option<String>,
    /// `csv` for a spreadsheet; JSON otherwise.
    pub(crate) format: Option<String>,
}

/// `GET /api/recognition/statistics?from&until[&by][&format=csv]`: units decided, recognitions,
/// re-examinations by reason, the recognition rate and the savings, for operators (the region)
/// and institution admins (their institution). `by` is `item` (default), `institution`,
/// `department` or `month`.
pub async fn statistics(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<SpanQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let grant = huren_access::grant_stats(&p)?;
    let by = huren_archive::recognition::StatsBy::parse(q.by.as_deref().unwrap_or("item"))
        .ok_or_else(|| ApiError::bad_request("by is item, institution, department or month"))?;
    let st = s
        .archive
        .recognition_statistics(&grant, date(&q.from)?, date(&q.until)?, by)
        .await?;
    if q.format.as_deref() != Some("csv") {
        return Ok(Json(st).into_response());
    }
    // The headline rate first, under the name of its definition; then every count and rate.
    let mut text = format!(
        "key,units,recognized,reexamined,not_counted,opened,ignored,rate_{},eligible_rate,\
         overall_rate,eligible,eligible_recognized,eligible_not_counted,shown,shown_decided,\
         coverage,ignore_rate,uncatalogued,uncatalogued_recognized,savings_yuan,unpriced\n",
        st.rate_definition
    );
    let rate = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_default();
    for r in st.rows.iter().chain(std::iter::once(&st.total)) {
        let key = csv_field(&r.key);
        text.push_str(&format!(
            "{key},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.units,
            r.recognized,
            r.reexamined,
            r.not_counted,
            r.opened,
            r.ignored,
            rate(r.rate),
            rate(r.eligible_rate),
            rate(r.overall_rate),
            r.eligible,
            r.eligible_recognized,
            r.eligible_not_counted,
            r.shown,
            r.shown_decided,
            rate(r.coverage),
            rate(r.ignore_rate),
            r.uncatalogued,
            r.uncatalogued_recognized,
            r.savings_yuan,
            r.unpriced
        ));
    }
    Ok(crate::catalog::csv_response(text))
}
