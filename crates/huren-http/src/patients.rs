//! The patient API (issue #5): find a *person* by identity number, by one institution's
//! record or by name, and their timeline (imaging studies, lab results and reports) across
//! institutions, newest first. JSON. What a caller finds and reads is narrowed by its read
//! grant and relationships (`huren_archive::reach`, docs/access.md), and audited.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::extract::{Path, State};
use huren_access::grant_read;
use huren_archive::PatientLookup;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// `system|value`, e.g. `urn:huren:id:cn-resident|11010519491231002X` or `身份证|…`.
    identifier: Option<String>,
    /// With `issuer`: one institution's record.
    patient_id: Option<String>,
    issuer: Option<String>,
    /// The start of a name, in characters or pinyin.
    name: Option<String>,
}

pub async fn search(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<Search>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_read(&p)?;
    let lookup = match (&q.identifier, &q.patient_id, &q.issuer, &q.name) {
        (Some(ident), None, None, None) => {
            let (system, value) = ident
                .split_once('|')
                .ok_or_else(|| ApiError::bad_request("identifier is system|value"))?;
            PatientLookup::Identifier { system, value }
        }
        (None, Some(patient_id), Some(issuer), None) => {
            PatientLookup::Record { issuer, patient_id }
        }
        (None, None, None, Some(name)) => PatientLookup::Name(name),
        _ => {
            return Err(ApiError::bad_request(
                "give one of: identifier=system|value; patient_id and issuer; name",
            ));
        }
    };
    let hits = s.archive.find_persons(&grant, lookup).await?;
    Ok(Json(json!(hits)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<u32>,
}

pub async fn timeline(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    Path(person): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_read(&p)?;
    match s
        .archive
        .timeline(&grant, &person, page.limit.unwrap_or(200))
        .await?
    {
        Some(t) => {
            // One list, newest first, for a timeline view; the lists keep all fields.
            let mut entries: Vec<(Option<i64>, Value)> = t
                .studies
                .iter()
                .map(|s| {
                    (
                        s.study_instant,
                        json!({ "kind": "imaging_study", "instant": s.study_instant, "study_instance_uid": s.study_instance_uid }),
                    )
                })
                .chain(t.lab_results.iter().map(|l| {
                    (
                        l.observed_instant,
                        json!({ "kind": "lab_result", "instant": l.observed_instant, "id": l.id }),
                    )
                }))
                .chain(t.reports.iter().map(|r| {
                    (
                        r.reported_instant,
                        json!({ "kind": "imaging_report", "instant": r.reported_instant, "id": r.id, "study_instance_uid": r.study_instance_uid }),
                    )
                }))
                .collect();
            entries.sort_by_key(|e| std::cmp::Reverse(e.0));
            let entries: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
            Ok(Json(json!({
                "person": person,
                "entries": entries,
                "studies": t.studies,
                "lab_results": t.lab_results,
                "reports": t.reports,
            })))
        }
        None => Err(ApiError::not_found(format!("no person {person}"))),
    }
}
