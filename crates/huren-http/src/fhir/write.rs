//! FHIR writes (issue #5 item 6): `POST /fhir/Observation`, `POST /fhir/DiagnosticReport`
//! and transaction Bundles `POST /fhir` so a report and its observations (and the patient)
//! arrive atomically. Conditional create by business identifier (`If-None-Exist:
//! identifier=system|value`, or `request.ifNoneExist` in a Bundle) makes resends idempotent.
//!
//! One deliberate reading of the spec: when a Bundle's conditional report already exists, the
//! whole transaction is taken as a resend of the one that created it — its observations are
//! not stored again (R4 would create the unconditional entries anew, duplicating every result
//! of a retried upload).

use super::results::{Kind, fetch};
use super::{Fail, FhirBody, base, fhir_json, from_api};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::IngestGrant;
use huren_archive::model::{IfNoneExist, NewLabResult, NewOrder, OruOutcome};
use huren_archive::submit::{Submission, SubmittedPatient};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;

type Invalid = String;

use super::resource::{check_type, parse_body, parse_patient, writer};
use huren_labs::fhir::{parse_observation, parse_report, performer_name, s};

/// The subject of an Observation/DiagnosticReport: `(bundle fullUrl | person | record)`.
#[derive(Debug, Clone, PartialEq)]
enum Subject {
    Bundled(String),
    Person(String),
    Record(Option<String>, String),
}

fn subject(state: &AppState, v: &Value, what: &str) -> Result<Subject, Invalid> {
    let sj = v
        .get("subject")
        .ok_or_else(|| format!("{what}.subject is required"))?;
    if let Some(r) = s(sj, "reference") {
        return Ok(if r.starts_with("urn:uuid:") {
            Subject::Bundled(r)
        } else if let Some(id) = r.strip_prefix("Patient/") {
            Subject::Person(id.to_owned())
        } else {
            return Err(format!("{what}.subject {r:?} is not a Patient reference"));
        });
    }
    if let Some(i) = sj.get("identifier")
        && let Some(value) = s(i, "value")
    {
        let system = s(i, "system");
        if system
            .as_deref()
            .is_some_and(|x| state.archive.is_identity_system(x))
        {
            return Err(format!(
                "{what}.subject.identifier: name the patient's record number here; identity numbers go in a Patient resource"
            ));
        }
        return Ok(Subject::Record(system, value));
    }
    Err(format!("{what}.subject needs a reference or an identifier"))
}

/// `identifier=system|value` (the one conditional form huren supports).
fn if_none_exist(criteria: &str, on_report: bool) -> Result<IfNoneExist, Fail> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(criteria.trim_start_matches('?'))
        .map_err(|_| Fail::invalid("If-None-Exist is not a query"))?;
    match pairs.as_slice() {
        [(k, v)] if k == "identifier" => {
            let (system, value) = super::search::token(v);
            Ok(IfNoneExist {
                on_report,
                system: system.map(str::to_owned),
                value: value.to_owned(),
                performers: Vec::new(),
            })
        }
        _ => Err(Fail::Api(ApiError::not_supported(
            "If-None-Exist supports identifier=system|value only",
        ))),
    }
}

fn invalid(msg: Invalid) -> Response {
    from_api(ApiError::bad_request(&msg))
}

fn patient_of(subject: Subject) -> Result<SubmittedPatient, Fail> {
    Ok(match subject {
        Subject::Person(id) => SubmittedPatient {
            person: Some(id),
            ..Default::default()
        },
        Subject::Record(system, value) => SubmittedPatient {
            record: Some((system, value)),
            ..Default::default()
        },
        Subject::Bundled(r) => {
            return Err(Fail::invalid(format!(
                "subject {r} refers into a Bundle; send a transaction"
            )));
        }
    })
}

fn created(
    state: &AppState,
    headers: &HeaderMap,
    kind: &str,
    id: i64,
    body: Value,
    status: StatusCode,
) -> Response {
    let mut resp = fhir_json(status, body);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/{kind}/{id}", base(state, headers))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Reads back what was stored (or found) and answers 201 / 200 with it.
async fn answer_one(
    state: &AppState,
    grant: &IngestGrant,
    headers: &HeaderMap,
    kind: Kind,
    out: OruOutcome,
) -> Result<Response, Fail> {
    let (id, status) = match out {
        OruOutcome::Stored {
            report_ids,
            result_ids,
        } => {
            let ids = match kind {
                Kind::Observation => result_ids,
                Kind::DiagnosticReport => report_ids,
            };
            (ids.first().copied(), StatusCode::CREATED)
        }
        OruOutcome::Exists { id } => (Some(id), StatusCode::OK),
        OruOutcome::Duplicate => (None, StatusCode::OK),
    };
    let read = huren_access::grant_read(grant.principal()).map_err(ApiError::from)?;
    let Some(id) = id else {
        return Err(ApiError::internal("nothing was stored").into());
    };
    match fetch(state, &read, kind, id).await? {
        Some(body) => Ok(created(state, headers, kind.name(), id, body, status)),
        None => Err(ApiError::internal("the stored resource was not found").into()),
    }
}

/// `POST /fhir/Observation` and `POST /fhir/DiagnosticReport`: one resource, conditional on
/// `If-None-Exist` when given.
async fn create(
    state: AppState,
    auth: Result<Authenticated, ApiError>,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, Fail> {
    let grant = writer(auth)?;
    let v = parse_body(&body)?;
    check_type(&v, kind.name())?;
    let zone = state.archive.zone();
    let patient = patient_of(subject(&state, &v, kind.name()).map_err(Fail::invalid)?)?;
    let mut sub = Submission {
        patient,
        ..Default::default()
    };
    match kind {
        Kind::Observation => {
            let result = parse_observation(&v, zone).map_err(Fail::invalid)?;
            sub.performer = result.performing_lab.clone();
            sub.loose_results.push(result);
        }
        Kind::DiagnosticReport => {
            let (order, refs) = parse_report(&v, zone).map_err(Fail::invalid)?;
            if !refs.is_empty() {
                return Err(Fail::invalid(
                    "send a report with results as a transaction Bundle with its Observations",
                ));
            }
            sub.performer = performer_name(&v);
            sub.orders.push(order);
        }
    }
    if let Some(c) = headers.get("if-none-exist") {
        let c = c
            .to_str()
            .map_err(|_| Fail::invalid("If-None-Exist is not text"))?;
        sub.if_none_exist = Some(if_none_exist(c, kind == Kind::DiagnosticReport)?);
    }
    let (out, _) = state
        .archive
        .submit_results(&grant, sub, Some(peer.ip().to_string()))
        .await
        .map_err(ApiError::from)?;
    answer_one(&state, &grant, &headers, kind, out).await
}

pub async fn create_observation(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Response {
    create(state, auth, peer, headers, body, Kind::Observation)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn create_report(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Response {
    create(state, auth, peer, headers, body, Kind::DiagnosticReport)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What one Bundle entry became, for the transaction-response.
enum Slot {
    Patient,
    Report(usize),
    Result(usize),
}

/// `POST /fhir` with a transaction Bundle (R4 §3.1.0.11): one patient, any number of
/// DiagnosticReports and Observations, all POST, all stored or none.
pub async fn transaction(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    FhirBody(body): FhirBody,
) -> Response {
    let grant = match writer(auth) {
        Ok(g) => g,
        Err(r) => return r.into_response(),
    };
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = check_type(&v, "Bundle") {
        return r.into_response();
    }
    if v.get("type").and_then(Value::as_str) != Some("transaction") {
        return from_api(ApiError::not_supported(
            "only transaction Bundles are accepted",
        ));
    }
    let zone = state.archive.zone();
    let entries: &[Value] = v
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut patient: Option<(String, SubmittedPatient)> = None;
    let mut reports: Vec<(usize, NewOrder, Vec<String>)> = Vec::new();
    let mut observations: Vec<(usize, String, NewLabResult)> = Vec::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut cond: Option<IfNoneExist> = None;
    let mut performer = None;
    for (i, e) in entries.iter().enumerate() {
        let res = e.get("resource").cloned().unwrap_or(Value::Null);
        let kind = res
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let method = e.pointer("/request/method").and_then(Value::as_str);
        if method != Some("POST") || e.pointer("/request/url").and_then(Value::as_str) != Some(kind)
        {
            return from_api(ApiError::not_supported(format!(
                "entry {i}: only POST of the entry's resource type is supported"
            )));
        }
        let full_url = s(e, "fullUrl").unwrap_or_default();
        if let Some(c) = e.pointer("/request/ifNoneExist").and_then(Value::as_str) {
            if cond.is_some() {
                return from_api(ApiError::not_supported("one conditional entry per Bundle"));
            }
            cond = match if_none_exist(c, kind == "DiagnosticReport") {
                Ok(c) => Some(c),
                Err(r) => return r.into_response(),
            };
        }
        let step = match kind {
            "Patient" => {
                if patient.is_some() {
                    Err("one Patient per transaction".to_owned())
                } else {
                    parse_patient(&state, &res).map(|p| patient = Some((full_url, p)))
                }
            }
            "DiagnosticReport" => parse_report(&res, zone).and_then(|(o, refs)| {
                subjects.push(subject(&state, &res, "DiagnosticReport")?);
                performer = performer.take().or_else(|| performer_name(&res));
                reports.push((i, o, refs));
                Ok(())
            }),
            "Observation" => parse_observation(&res, zone).and_then(|r| {
                subjects.push(subject(&state, &res, "Observation")?);
                observations.push((i, full_url, r));
                Ok(())
            }),
            other => Err(format!("entry {i}: {other} cannot be stored here")),
        };
        if let Err(msg) = step {
            return invalid(format!("entry {i}: {msg}"));
        }
    }
    if reports.is_empty() && observations.is_empty() {
        // A Bundle with only a Patient registers the hospital's record (the first visit).
        let Some((_, p)) = patient.take() else {
            return invalid("the Bundle has no Patient, DiagnosticReport or Observation".into());
        };
        return match super::register::register(&state, &grant, p, peer).await {
            Ok(r) => {
                let status = if r.created { "201 Created" } else { "200 OK" };
                let mut resp = json!({ "status": status });
                if let Some(person) = &r.person {
                    resp["location"] = json!(format!("Patient/{person}"));
                }
                fhir_json(
                    StatusCode::OK,
                    json!({ "resourceType": "Bundle", "type": "transaction-response",
                            "entry": [{ "response": resp }] }),
                )
            }
            Err(f) => f.into_response(),
        };
    }
    subjects.dedup();
    let patient_url = patient.as_ref().map(|(u, _)| u.clone());
    let sub_patient = match subjects.as_slice() {
        [Subject::Bundled(url)] => match patient.take() {
            Some((u, p)) if &u == url => p,
            _ => return invalid(format!("subject {url} is not the Patient in this Bundle")),
        },
        [one] => match patient_of(one.clone()) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        },
        _ => return invalid("all results of a transaction must have one subject".into()),
    };
    // Results go under the report that lists them, in its order; the rest stand alone.
    let mut slots: Vec<(usize, Slot)> = Vec::new();
    let mut taken = vec![false; observations.len()];
    let mut orders = Vec::new();
    for (k, (i, mut order, refs)) in reports.into_iter().enumerate() {
        slots.push((i, Slot::Report(k)));
        for r in refs {
            let Some(j) = observations.iter().position(|(_, url, _)| *url == r) else {
                return invalid(format!(
                    "entry {i}: result {r} is not an Observation in this Bundle"
                ));
            };
            if std::mem::replace(&mut taken[j], true) {
                return invalid(format!("{r} is a result of two reports"));
            }
            let mut res = observations[j].2.clone();
            res.placer_order = order.placer_order.clone();
            res.filler_order = order.filler_order.clone();
            res.order_code = order.procedure_code.clone();
            res.order_text = order.procedure_text.clone();
            if res.specimen.is_none() {
                res.specimen = order.specimen.clone();
            }
            if res.reported_at.is_none() {
                res.reported_at = order.reported_at.clone();
                res.reported_instant = order.reported_instant;
            }
            order.results.push(res);
            slots.push((observations[j].0, Slot::Result(0)));
        }
        orders.push(order);
    }
    let mut loose = Vec::new();
    for (j, (i, _, r)) in observations.iter().enumerate() {
        if !taken[j] {
            loose.push(r.clone());
            slots.push((*i, Slot::Result(0)));
        }
    }
    // Number the results in storage order (by report, then the loose ones).
    let mut n = 0;
    for (_, slot) in slots.iter_mut() {
        if let Slot::Result(k) = slot {
            *k = n;
            n += 1;
        }
    }
    if let Some(url) = &patient_url {
        let at = entries
            .iter()
            .position(|e| s(e, "fullUrl").as_deref() == Some(url));
        slots.push((at.unwrap_or(0), Slot::Patient));
    }
    slots.sort_by_key(|(i, _)| *i);
    let sub = Submission {
        patient: sub_patient,
        performer,
        orders,
        loose_results: loose,
        if_none_exist: cond,
    };
    let (out, person) = match state
        .archive
        .submit_results(&grant, sub, Some(peer.ip().to_string()))
        .await
    {
        Ok(x) => x,
        Err(e) => return from_api(e.into()),
    };
    let (report_ids, result_ids, status) = match out {
        OruOutcome::Stored {
            report_ids,
            result_ids,
        } => (report_ids, result_ids, "201 Created"),
        OruOutcome::Exists { id } => {
            // A resend: answer with what the first transaction created.
            let read = match huren_access::grant_read(grant.principal()) {
                Ok(g) => g,
                Err(e) => return from_api(e.into()),
            };
            match state.archive.order(&read, id).await {
                Ok(Some(o)) => (vec![id], o.results, "200 OK"),
                Ok(None) => (vec![id], Vec::new(), "200 OK"),
                Err(e) => return from_api(e.into()),
            }
        }
        OruOutcome::Duplicate => {
            return from_api(ApiError::internal("unexpected duplicate"));
        }
    };
    let location = |slot: &Slot| -> Option<String> {
        match slot {
            Slot::Patient => person.as_ref().map(|p| format!("Patient/{p}")),
            Slot::Report(k) => report_ids
                .get(*k)
                .map(|id| format!("DiagnosticReport/{id}")),
            Slot::Result(k) => result_ids.get(*k).map(|id| format!("Observation/{id}")),
        }
    };
    let mut by_entry: HashMap<usize, Value> = HashMap::new();
    for (i, slot) in &slots {
        let st = if matches!(slot, Slot::Patient) {
            "200 OK"
        } else {
            status
        };
        let mut resp = json!({ "status": st });
        if let Some(l) = location(slot) {
            resp["location"] = json!(l);
        }
        by_entry.insert(*i, json!({ "response": resp }));
    }
    let out_entries: Vec<Value> = (0..entries.len())
        .map(|i| {
            by_entry
                .remove(&i)
                .unwrap_or_else(|| json!({ "response": { "status": "200 OK" } }))
        })
        .collect();
    fhir_json(
        StatusCode::OK,
        json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": out_entries }),
    )
}
