//! The HIS registers its own record of a patient (issue #16, the first visit): `POST
//! /fhir/Patient` (conditional on `If-None-Exist: identifier=system|value`) and `PUT
//! /fhir/Patient?identifier=system|value` (conditional update), or a transaction Bundle holding
//! only a Patient. The Patient carries the hospital's record number (its own numbering), the
//! identity number read from the patient's card and the demographics; the master patient index
//! links the record to the person at once. The answer is the record as a Patient resource whose
//! id is the person's (`Patient/{person}`); the person's records at other hospitals are not
//! shown to the registering hospital.

use super::resource::{check_type, parse_body, parse_patient, writer};
use super::search::token;
use super::{Fail, FhirBody, base, fhir_json, from_api, patient};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::IngestGrant;
use huren_archive::registration::{Registered, Registration};
use huren_archive::submit::SubmittedPatient;
use std::net::SocketAddr;

/// Registers a parsed Patient; what was stored.
pub(crate) async fn register(
    state: &AppState,
    grant: &IngestGrant,
    p: SubmittedPatient,
    peer: SocketAddr,
) -> Result<Registered, Fail> {
    let Some((issuer, patient_id)) = p.record else {
        return Err(Fail::invalid(
            "Patient.identifier needs the hospital's own record number",
        ));
    };
    Ok(state
        .archive
        .register_patient(
            grant,
            Registration {
                issuer,
                patient_id,
                identity_numbers: p.identity_numbers,
                name: p.name,
                birth_date: p.birth_date,
                sex: p.sex,
            },
            Some(peer.ip().to_string()),
        )
        .await
        .map_err(ApiError::from)?)
}

/// The stored record as a Patient resource, with its Location.
fn answer(state: &AppState, headers: &HeaderMap, r: &Registered, status: StatusCode) -> Response {
    let Some(person) = &r.person else {
        return from_api(ApiError::internal(
            "the record was stored but its person was not found",
        ));
    };
    let records: Vec<_> = r.record.iter().cloned().collect();
    let mut resp = fhir_json(status, patient(person, &records, None));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/Patient/{person}", base(state, headers))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `system|value` of a conditional request, which must name the Patient's own record number.
fn condition(criteria: &str, p: &SubmittedPatient, what: &str) -> Result<(String, String), Fail> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(criteria.trim_start_matches('?'))
        .map_err(|_| Fail::invalid(format!("{what} is not a query")))?;
    let [(k, v)] = pairs.as_slice() else {
        return Err(Fail::Api(ApiError::not_supported(format!(
            "{what} supports identifier=system|value only"
        ))));
    };
    if k != "identifier" {
        return Err(Fail::Api(ApiError::not_supported(format!(
            "{what} supports identifier=system|value only"
        ))));
    }
    let (system, value) = token(v);
    let Some(system) = system.filter(|s| !s.is_empty()) else {
        return Err(Fail::invalid(format!(
            "{what}: name the record number with its system (system|value)"
        )));
    };
    match &p.record {
        Some((Some(s), v)) if s == system && v == value => {}
        _ => {
            return Err(Fail::invalid(format!(
                "{what} names {system}|{value}, which is not the Patient's record number"
            )));
        }
    }
    Ok((system.to_owned(), value.to_owned()))
}

/// The writer's grant and the Patient its body holds.
fn patient_body(
    state: &AppState,
    auth: Result<Authenticated, ApiError>,
    body: &axum::body::Bytes,
) -> Result<(IngestGrant, SubmittedPatient), Fail> {
    let grant = writer(auth)?;
    let v = parse_body(body)?;
    check_type(&v, "Patient")?;
    let p = parse_patient(state, &v).map_err(Fail::invalid)?;
    Ok((grant, p))
}

async fn create_inner(
    state: AppState,
    auth: Result<Authenticated, ApiError>,
    peer: SocketAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let (grant, p) = patient_body(&state, auth, &body)?;
    if let Some(c) = headers.get("if-none-exist") {
        let c = c
            .to_str()
            .map_err(|_| Fail::invalid("If-None-Exist is not text"))?;
        let (system, value) = condition(c, &p, "If-None-Exist")?;
        // R4 §3.1.0.8.1: a match means nothing is created; 200 with the existing record.
        if let Some(existing) = state
            .archive
            .own_record(&grant, &system, &value)
            .await
            .map_err(ApiError::from)?
        {
            return Ok(answer(&state, &headers, &existing, StatusCode::OK));
        }
    }
    registered(&state, &grant, &headers, p, peer).await
}

/// Registers and answers: 201 for a new record, 200 for one updated.
async fn registered(
    state: &AppState,
    grant: &IngestGrant,
    headers: &HeaderMap,
    p: SubmittedPatient,
    peer: SocketAddr,
) -> Result<Response, Fail> {
    let r = register(state, grant, p, peer).await?;
    let status = if r.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(state, headers, &r, status))
}

/// `POST /fhir/Patient`: registers (or, for a record already registered, updates) the
/// hospital's record; 201 when new, 200 otherwise or when `If-None-Exist` matched.
pub async fn create(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Response {
    create_inner(state, auth, peer, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn update_inner(
    state: AppState,
    auth: Result<Authenticated, ApiError>,
    peer: SocketAddr,
    headers: HeaderMap,
    query: Option<String>,
    body: axum::body::Bytes,
) -> Result<Response, Fail> {
    let (grant, p) = patient_body(&state, auth, &body)?;
    condition(query.as_deref().unwrap_or(""), &p, "the conditional update")?;
    registered(&state, &grant, &headers, p, peer).await
}

/// `PUT /fhir/Patient?identifier=system|value` (R4 conditional update): creates or updates the
/// hospital's record named by the identifier, which must be the Patient's record number.
pub async fn update(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    FhirBody(body): FhirBody,
) -> Response {
    update_inner(state, auth, peer, headers, query, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
