//! The audit trail as FHIR R4 AuditEvent (issue #6), for auditors: `GET /fhir/AuditEvent` with
//! `date` ranges, `patient`, `site` (the institution) and `agent-name` (part of who acted), and
//! `_count` pages (newest first, next links). Event types are DICOM's
//! (PS3.15 A.5.1 / DCM codes), as IHE ATNA uses them.

use super::FhirQuery;
use super::results::date_time;
use super::search::date_params;
use super::{base, fhir_json, from_api};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use huren_archive::model::AuditRow;
use serde_json::{Value, json};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";

/// (type code, type display, subtype, action) of a stored action.
fn kind(
    action: &str,
) -> (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static str,
) {
    match action {
        "instance_stored" | "instance_refused" => {
            ("110104", "DICOM Instances Transferred", None, "C")
        }
        "patient_data_accessed" => ("110103", "DICOM Instances Accessed", None, "R"),
        "user_login" => (
            "110114",
            "User Authentication",
            Some(("110122", "Login")),
            "E",
        ),
        "user_logout" => (
            "110114",
            "User Authentication",
            Some(("110123", "Logout")),
            "E",
        ),
        "association_rejected" | "authentication_failed" => {
            ("110114", "User Authentication", None, "E")
        }
        "study_lifecycle_changed" => ("110105", "DICOM Study Deleted", None, "D"),
        "person_links_changed" | "encounter_changed" | "patient_contact_changed" => {
            ("110110", "Patient Record", None, "U")
        }
        "patient_registered" => ("110110", "Patient Record", None, "C"),
        "recognition_decided" => ("110110", "Patient Record", None, "C"),
        "results_stored" | "results_refused" => ("110107", "Import", None, "C"),
        // PS3.16 CID 400/402: Security Alert with its event type code as the subtype.
        "emergency_override" | "emergency_override_reviewed" => (
            "110113",
            "Security Alert",
            Some(("110127", "Emergency Override Started")),
            "E",
        ),
        "access_denied" => (
            "110113",
            "Security Alert",
            Some(("110132", "Use of Restricted Function")),
            "E",
        ),
        _ => ("110113", "Security Alert", None, "E"),
    }
}

fn audit_event(r: &AuditRow, zone: &'static time_tz::Tz) -> Value {
    let (code, display, subtype, action) = kind(&r.action);
    let mut agent = json!({ "who": { "display": r.actor }, "requestor": true });
    if let Some(a) = &r.source_address {
        agent["network"] = json!({ "address": a, "type": "2" });
    }
    let mut e = json!({
        "resourceType": "AuditEvent",
        "id": r.id.to_string(),
        "type": { "system": DCM, "code": code, "display": display },
        "action": action,
        "recorded": date_time(r.at, zone).unwrap_or_default(),
        "outcome": match r.outcome.as_str() { "success" => "0", "warning" => "4", _ => "8" },
        "outcomeDesc": r.action,
        "agent": [agent],
        "source": { "observer": { "display": "huren" }, "site": r.institution.clone().unwrap_or_default() },
    });
    if let Some((c, d)) = subtype {
        e["subtype"] = json!([{ "system": DCM, "code": c, "display": d }]);
    }
    let mut entities = Vec::new();
    if let Some(p) = &r.patient {
        entities.push(json!({
            "what": { "display": p },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" }
        }));
    }
    if let Some(uid) = &r.study_uid {
        entities.push(json!({
            "what": { "identifier": { "system": "urn:dicom:uid", "value": format!("urn:oid:{uid}") } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" }
        }));
    }
    // The detail (reason, purpose of use, counts) rides on the object's entity, or on an entity
    // of its own when the event names no object (a refused request, a failed sign-in).
    let has_detail = !matches!(r.detail.trim(), "" | "null" | "{}");
    match &r.object {
        Some(o) => entities.push(json!({
            "what": { "display": o },
            "detail": [{ "type": "huren-detail", "valueString": r.detail }]
        })),
        None if has_detail => entities.push(json!({
            "what": { "display": r.action },
            "detail": [{ "type": "huren-detail", "valueString": r.detail }]
        })),
        None => {}
    }
    if !entities.is_empty() {
        e["entity"] = json!(entities);
    }
    e
}

pub async fn search(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    headers: HeaderMap,
    FhirQuery(params): FhirQuery<Vec<(String, String)>>,
) -> Response {
    let grant = match auth.and_then(|Authenticated(p)| Ok(huren_access::grant_audit(&p)?)) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    let zone = state.archive.zone();
    let (mut dates, mut count, mut before) = (Vec::new(), 100u32, None);
    let mut filter = huren_archive::model::AuditFilter::default();
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    for (k, v) in &params {
        match k.as_str() {
            "date" => dates.push(v.as_str()),
            // The patient: `Patient/{id}` or the id (a person), or one record `PID@issuer`.
            "patient" => filter.patient = given(v.trim_start_matches("Patient/")),
            // AuditEvent.source.site is the institution the event is attributed to.
            "site" => filter.institution = given(v),
            // Who acted, by part of their label (`user:li#`); FHIR's agent-name is a string.
            "agent-name" | "agent-name:contains" => filter.actor = given(v),
            "_count" => match v.parse::<u32>() {
                Ok(n) => count = n.clamp(1, 500),
                Err(_) => {
                    return from_api(ApiError::bad_request("_count must be a number"));
                }
            },
            "_cursor" => match v.parse::<i64>() {
                Ok(n) => before = Some(n),
                Err(_) => {
                    return from_api(ApiError::bad_request("_cursor is not one huren gave"));
                }
            },
            other => {
                return from_api(ApiError::not_supported(format!(
                    "search parameter {other} is not supported"
                )));
            }
        }
    }
    let range = match date_params(dates.iter().copied(), zone) {
        Ok(r) => r,
        Err(e) => return from_api(ApiError::bad_request(&e)),
    };
    let rows = match state
        .archive
        .audit_trail(
            &grant,
            &huren_archive::model::AuditFilter {
                from: range.from,
                until: range.until,
                before,
                ..filter
            },
            count,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return from_api(e.into()),
    };
    let base = base(&state, &headers);
    let kept: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = |cursor: Option<i64>| {
        let mut pairs: Vec<(&str, String)> =
            kept.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(c) = cursor {
            pairs.push(("_cursor", c.to_string()));
        }
        format!(
            "{base}/AuditEvent?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let mut links = vec![json!({ "relation": "self", "url": url(None) })];
    if rows.len() == count as usize
        && let Some(last) = rows.last()
    {
        links.push(json!({ "relation": "next", "url": url(Some(last.id)) }));
    }
    let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset", "link": links });
    if !rows.is_empty() {
        bundle["entry"] = json!(
            rows.iter()
                .map(|r| json!({
                    "fullUrl": format!("{base}/AuditEvent/{}", r.id),
                    "resource": audit_event(r, zone),
                    "search": { "mode": "match" }
                }))
                .collect::<Vec<_>>()
        );
    }
    fhir_json(StatusCode::OK, bundle)
}
