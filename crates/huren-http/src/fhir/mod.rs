//! FHIR R4 (4.0.1) under `/fhir`: Patient (a huren *person*) read and search, PIXm, a
//! hospital's own Patient registered by conditional update ([`register`]); Observation and
//! DiagnosticReport read, search and create, transactions and conditional create
//! ([`results`], [`write`](mod@write), the search syntax in [`search`](mod@search));
//! AuditEvent for auditors ([`audit`]); the CapabilityStatement; OperationOutcome for errors.
//! Hand-written JSON; the suite parses every response with the R4 models of Python
//! `fhirclient` in strict mode.

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::grant_read;
use huren_archive::PatientLookup;
use huren_archive::model::{PersonHit, RecordView};
use serde_json::{Value, json};
use std::collections::HashMap;

pub mod audit;
pub mod register;
mod resource;
pub mod results;
pub mod search;
pub mod write;

pub(crate) fn fhir_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; fhirVersion=4.0"),
    );
    resp
}

/// The largest FHIR request body: a transaction Bundle of a large lab panel with its reports is
/// well under this; above it the answer is 413 with an OperationOutcome.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A FHIR request body, refused in FHIR's terms (413 OperationOutcome) above [`MAX_BODY`].
pub struct FhirBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for FhirBody {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, Response> {
        match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
            Ok(b) => Ok(FhirBody(b)),
            Err(_) => Err(from_api(ApiError::payload_too_large(format!(
                "the request body is larger than {} MiB",
                MAX_BODY >> 20
            )))),
        }
    }
}

/// Search parameters, a malformed query string refused in FHIR's terms (400 OperationOutcome)
/// rather than axum's plain text.
pub struct FhirQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for FhirQuery<T>
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(FhirQuery(v)),
            Err(e) => Err(from_api(ApiError::bad_request(e.body_text()))),
        }
    }
}

/// A FHIR error before it becomes a response: an [`ApiError`] from the one error table, so
/// FHIR and the rest of the API name every refusal the same way.
pub(crate) enum Fail {
    Api(ApiError),
}

impl Fail {
    pub(crate) fn invalid(msg: impl Into<String>) -> Fail {
        Fail::Api(ApiError::bad_request(msg))
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        match self {
            Fail::Api(e) => from_api(e),
        }
    }
}

/// An error of the one table as an OperationOutcome: the status stays, the issue type is the
/// table's FHIR column, and `details` carry the table's code (system
/// `https://huren.dev/errors`); 401 keeps its Bearer challenge, and a refusal (`forbidden`) is
/// marked for the refusal audit as on every other route.
pub(crate) fn from_api(e: ApiError) -> Response {
    let mut resp = fhir_json(
        e.status,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": e.fhir_issue(),
                "details": { "coding": [{ "system": "https://huren.dev/errors", "code": e.code }] },
                "diagnostics": e.message,
            }]
        }),
    );

    if e.code == "forbidden" {
        resp.extensions_mut()
            .insert(crate::auth::RefusalReason(e.message.clone()));
    }
    if e.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"huren\""),
        );
    }
    resp
}

pub(crate) fn base(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/fhir", crate::qido::origin_url(state, headers))
}

pub async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Response {
    fhir_json(
        StatusCode::OK,
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-25",
            "kind": "instance",
            "software": { "name": "huren", "version": env!("CARGO_PKG_VERSION") },
            "implementation": { "description": "huren 互认", "url": base(&state, &headers) },
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [{
                "mode": "server",
                "security": { "description": "Bearer tokens (Authorization: Bearer …). Reading needs any token; creating results needs an institution's system token." },
                "interaction": [{ "code": "transaction", "documentation": "one Patient, DiagnosticReports and Observations, all POST, stored atomically; one entry may carry ifNoneExist=identifier=system|value; a Patient alone registers the hospital's record" }],
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [
                            { "code": "read" }, { "code": "search-type" },
                            { "code": "create", "documentation": "a hospital registers its own record: the record number under its own system, identity numbers, demographics" },
                            { "code": "update", "documentation": "conditional: PUT /fhir/Patient?identifier=system|value naming the record number" }
                        ],
                        "conditionalCreate": true,
                        "conditionalUpdate": true,
                        "searchParam": [
                            { "name": "identifier", "type": "token", "documentation": "system|value: an identity-number system (urn:huren:id:cn-resident, or a configured issuer name such as 身份证) or a record's assigning authority" },
                            { "name": "name", "type": "string", "documentation": "start of a name, characters or pinyin" },
                            { "name": "_count", "type": "number" }
                        ],
                        "operation": [{ "name": "ihe-pix", "definition": "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix" }]
                    },
                    results_capability("Observation"),
                    results_capability("DiagnosticReport")
                ]
            }]
        }),
    )
}

/// Observation and DiagnosticReport take the same interactions and search parameters.
fn results_capability(kind: &str) -> Value {
    json!({
        "type": kind,
        "interaction": [{ "code": "read" }, { "code": "search-type" }, { "code": "create" }],
        "conditionalCreate": true,
        "searchParam": [
            { "name": "patient", "type": "reference" },
            { "name": "subject", "type": "reference" },
            { "name": "subject.identifier", "type": "token", "documentation": "the patient by identity number or record number (system|value)" },
            { "name": "code", "type": "token" },
            { "name": "date", "type": "date", "documentation": "eq, ge, gt, le, lt, sa, eb; a value without an offset is in the region's zone (Asia/Shanghai)" },
            { "name": "category", "type": "token" },
            { "name": "status", "type": "token" },
            { "name": "identifier", "type": "token" },
            { "name": "_count", "type": "number", "documentation": "page size, at most 200; pages follow the Bundle's next link" }
        ]
    })
}

fn gender(sex: Option<&str>) -> Option<&'static str> {
    match sex.map(str::trim) {
        Some("M") => Some("male"),
        Some("F") => Some("female"),
        Some("O") => Some("other"),
        Some("U") => Some("unknown"),
        _ => None,
    }
}

fn birth_date(d: Option<&str>) -> Option<String> {
    let d = d?;
    (d.len() == 8 && d.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..8]))
}

/// DICOM PN `Alphabetic=Ideographic` (or HL7 `family^given`) → HumanName entries.
fn names(raw: &str) -> Vec<Value> {
    raw.split('=')
        .filter(|g| !g.trim_matches(['^', ' ']).is_empty())
        .map(|g| {
            let mut parts = g.split('^');
            let family = parts.next().unwrap_or("").trim().to_owned();
            let given: Vec<String> = parts
                .next()
                .map(|x| {
                    x.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let mut n = json!({ "use": "official", "text": g.replace('^', "") });
            if !family.is_empty() {
                n["family"] = json!(family);
            }
            if !given.is_empty() {
                n["given"] = json!(given);
            }
            n
        })
        .collect()
}

/// A person as a FHIR Patient: one identifier per record (its own number under its assigning
/// authority), the name, sex and birth date of the records that have them. Identity numbers
/// are not returned (they are kept sealed).
pub(crate) fn patient(person: &str, records: &[RecordView], merged_into: Option<&str>) -> Value {
    let identifiers: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "use": "usual",
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] },
                "system": r.issuer,
                "value": r.patient_id
            })
        })
        .collect();
    let mut p = json!({
        "resourceType": "Patient",
        "id": person,
        "active": merged_into.is_none(),
        "identifier": identifiers,
    });
    if let Some(n) = records.iter().find_map(|r| r.name.as_deref()) {
        p["name"] = json!(names(n));
    }
    if let Some(g) = records.iter().find_map(|r| gender(r.sex.as_deref())) {
        p["gender"] = json!(g);
    }
    if let Some(b) = records
        .iter()
        .find_map(|r| birth_date(r.birth_date.as_deref()))
    {
        p["birthDate"] = json!(b);
    }
    if let Some(target) = merged_into {
        p["link"] = json!([{ "other": { "reference": format!("Patient/{target}") }, "type": "replaced-by" }]);
    }
    p
}

/// The caller's read grant, or why not (the caller answers with an OperationOutcome).
pub(crate) fn reader(
    auth: Result<Authenticated, ApiError>,
) -> Result<huren_access::ReadGrant, ApiError> {
    let Authenticated(p) = auth?;
    Ok(grant_read(&p)?)
}

pub async fn read(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    Path(id): Path<String>,
) -> Response {
    let grant = match reader(auth) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    match state.archive.person_records(&grant, &id).await {
        Ok(Some(view)) => fhir_json(
            StatusCode::OK,
            patient(&view.public_id, &view.records, view.merged_into.as_deref()),
        ),
        Ok(None) => from_api(ApiError::not_found(format!("Patient/{id} is not known"))),
        Err(e) => from_api(e.into()),
    }
}

pub async fn search(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    headers: HeaderMap,
    FhirQuery(params): FhirQuery<HashMap<String, String>>,
) -> Response {
    let grant = match reader(auth) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "identifier" | "name" | "_count"))
    {
        return from_api(ApiError::not_supported(format!(
            "search parameter {unknown} is not supported"
        )));
    }
    let count: usize = match params.get("_count").map(|c| c.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) => n.min(50),
        Some(Err(_)) => {
            return from_api(ApiError::bad_request("_count must be a number"));
        }
    };
    let hits: Vec<PersonHit> = match (params.get("identifier"), params.get("name")) {
        (Some(ident), None) => {
            let Some((system, value)) = ident.split_once('|') else {
                return from_api(ApiError::bad_request("identifier is system|value"));
            };
            // An identity-number system is looked up by blind index; any other system is a
            // record's assigning authority.
            let lookup = state.archive.lookup_by(system, value);
            match state.archive.find_persons(&grant, lookup).await {
                Ok(h) => h,
                Err(e) => return from_api(e.into()),
            }
        }
        (None, Some(name)) => match state
            .archive
            .find_persons(&grant, PatientLookup::Name(name))
            .await
        {
            Ok(h) => h,
            Err(e) => return from_api(e.into()),
        },
        _ => {
            return from_api(ApiError::bad_request(
                "search by exactly one of identifier or name",
            ));
        }
    };
    let base = base(&state, &headers);
    let entries: Vec<Value> = hits
        .iter()
        .take(count)
        .map(|h| {
            json!({
                "fullUrl": format!("{base}/Patient/{}", h.person),
                "resource": patient(&h.person, &h.records, None),
                "search": { "mode": "match" }
            })
        })
        .collect();
    let mut resp = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": hits.len(),
            "link": [{ "relation": "self", "url": format!("{base}/Patient") }],
    });
    if !entries.is_empty() {
        resp["entry"] = json!(entries);
    }
    fhir_json(StatusCode::OK, resp)
}

/// IHE PIXm `GET [base]/Patient/$ihe-pix?sourceIdentifier=system|value[&targetSystem=…]`
/// (ITI-83): the person's other identifiers. Found → 200 Parameters (`targetIdentifier` per
/// record in the target domains, `targetId` the Patient); unknown identifier in a known domain
/// → 404; unknown source domain → 400 code-invalid; unknown target domain → 403 code-invalid.
/// Identity numbers are never returned (they are kept sealed); they may be the source.
pub async fn pix(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    FhirQuery(params): FhirQuery<Vec<(String, String)>>,
) -> Response {
    let grant = match reader(auth) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    let mut source = None;
    let mut targets = Vec::new();
    for (k, v) in &params {
        match k.as_str() {
            "sourceIdentifier" => source = Some(v.clone()),
            "targetSystem" => targets.extend(v.split(',').map(str::to_owned)),
            "_format" => {}
            other => {
                return from_api(ApiError::not_supported(format!(
                    "parameter {other} is not supported"
                )));
            }
        }
    }
    let Some((system, value)) = source.as_deref().and_then(|s| s.split_once('|')) else {
        return from_api(ApiError::required(
            "sourceIdentifier=system|value is required",
        ));
    };
    // The statuses and diagnostics PIXm prescribes (ITI-83 §3.83.4.2.2).
    type Row = fn(&'static str) -> ApiError;
    for (domain, row, text) in std::iter::once((
        system,
        ApiError::source_domain_unknown as Row,
        "sourceIdentifier Assigning Authority not found",
    ))
    .chain(targets.iter().map(|t| {
        (
            t.as_str(),
            ApiError::target_domain_unknown as Row,
            "targetSystem not found",
        )
    })) {
        match state.archive.identifier_domain_known(&grant, domain).await {
            Ok(true) => {}
            Ok(false) => return from_api(row(text)),
            Err(e) => return from_api(e.into()),
        }
    }
    let lookup = state.archive.lookup_by(system, value);
    let hits = match state.archive.find_persons(&grant, lookup).await {
        Ok(h) => h,
        // A malformed identity number is not a patient huren knows.
        Err(huren_archive::AdminError::Invalid(_)) => Vec::new(),
        Err(e) => return from_api(e.into()),
    };
    if hits.is_empty() {
        return from_api(ApiError::patient_not_found(
            "sourceIdentifier Patient Identifier not found",
        ));
    }
    let mut parameters = Vec::new();
    for h in &hits {
        for r in &h.records {
            let is_source = r.issuer == system && r.patient_id == value;
            if is_source || (!targets.is_empty() && !targets.contains(&r.issuer)) {
                continue;
            }
            parameters.push(json!({
                "name": "targetIdentifier",
                "valueIdentifier": { "use": "usual", "system": r.issuer, "value": r.patient_id }
            }));
        }
        parameters.push(json!({
            "name": "targetId",
            "valueReference": { "reference": format!("Patient/{}", h.person) }
        }));
    }
    fhir_json(
        StatusCode::OK,
        json!({ "resourceType": "Parameters", "parameter": parameters }),
    )
}
