//! Observation (lab results) and DiagnosticReport (lab orders, imaging reports) as FHIR R4:
//! read and search by patient, `subject.identifier`, code, date range, category, status and
//! identifier, newest first, `_count` pages with `next` links (a keyset cursor, `_cursor`).
//! Results are stored in HL7 v2 terms (OBX-11 status codes, coding-system names such as `LN`)
//! and shown in FHIR's; a search in FHIR terms is translated back.

use super::FhirQuery;
use super::search::{date_params, token};
use super::{base, fhir_json, from_api, reader};
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use huren_access::ReadGrant;
use huren_archive::model::ReportCategory;
use huren_archive::results::{CodeFilter, Cursor, ObservationRow, OrderRow, ResultQuery};
use serde_json::{Value, json};

use huren_labs::fhir::SYSTEMS;
pub use huren_labs::fhir::stored_system;

const LOCAL: &str = "urn:huren:local:";
pub const INSTITUTION_SYSTEM: &str = "urn:huren:institution";
/// Codes of the region's recognition catalog (docs/catalog.md).
pub const CATALOG_SYSTEM: &str = "urn:huren:catalog";

/// The FHIR system of a stored code: a known URI, a URI as sent, or the institution's local
/// system `urn:huren:local:<institution>:<HL7 name>`.
pub fn system_uri(stored: Option<&str>, institution: &str) -> String {
    match stored {
        Some(s) if s.contains(':') => s.to_owned(),
        Some(s) => SYSTEMS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, u)| (*u).to_owned())
            .unwrap_or_else(|| format!("{LOCAL}{institution}:{s}")),
        None => format!("{LOCAL}{institution}:L"),
    }
}

fn code_filter(v: &str) -> CodeFilter {
    let (system, code) = token(v);
    let code = code.to_owned();
    match system {
        None => CodeFilter {
            code,
            ..Default::default()
        },
        Some(uri) => match uri.strip_prefix(LOCAL).and_then(|r| r.rsplit_once(':')) {
            Some((inst, sys)) => CodeFilter {
                systems: vec![sys.to_owned()],
                code,
                institution: Some(inst.to_owned()),
            },
            None => {
                let mut systems = vec![uri.to_owned()];
                let short = stored_system(uri);
                if short != uri {
                    systems.push(short);
                }
                CodeFilter {
                    systems,
                    code,
                    institution: None,
                }
            }
        },
    }
}

/// OBX-11 / OBR-25 result status (HL7 table 0085/0123) → FHIR status.
fn status(stored: Option<&str>, report: bool) -> &'static str {
    match stored.map(str::trim) {
        Some("F") => "final",
        Some("C") => "corrected",
        Some("P" | "R" | "S") if !report => "preliminary",
        Some("P") => "preliminary",
        Some("R" | "S" | "A") => "partial",
        Some("I" | "O") => "registered",
        Some("X") => "cancelled",
        Some("D" | "W") => "entered-in-error",
        _ => "unknown",
    }
}

/// FHIR status → the stored codes it covers.
pub fn stored_statuses(fhir: &str) -> Option<&'static [&'static str]> {
    Some(match fhir {
        "final" => &["F"],
        "corrected" | "amended" => &["C"],
        "preliminary" => &["P", "R", "S"],
        "partial" => &["R", "S", "A"],
        "registered" => &["I", "O"],
        "cancelled" => &["X"],
        "entered-in-error" => &["D", "W"],
        _ => return None,
    })
}

/// Unix seconds as an R4 dateTime/instant in the region's zone (`2025-03-01T08:30:00+08:00`).
pub fn date_time(t: i64, zone: &'static time_tz::Tz) -> Option<String> {
    use time_tz::OffsetDateTimeExt;
    let at = time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .to_timezone(zone);
    let off = at.offset();
    let (h, m, _) = off.as_hms();
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        if off.is_negative() { '-' } else { '+' },
        h.unsigned_abs(),
        m.unsigned_abs()
    ))
}

fn coded(v: &str) -> Value {
    let (code, text) = v.split_once('^').unwrap_or((v, ""));
    let mut c = json!({});
    if !code.is_empty() {
        c["coding"] = json!([{ "code": code }]);
        if !text.is_empty() {
            c["coding"][0]["display"] = json!(text);
        }
    }
    c["text"] = json!(if text.is_empty() { code } else { text });
    c
}

fn quantity(value: f64, unit: Option<&str>, ucum: Option<&str>) -> Value {
    let mut q = json!({ "value": value });
    if let Some(u) = unit {
        q["unit"] = json!(u);
    }
    if let Some(c) = ucum {
        q["system"] = json!("http://unitsofmeasure.org");
        q["code"] = json!(c);
    }
    q
}

/// `3.5-5.5` → low/high (same unit as the value); any other range stays text only.
fn reference_range(text: &str, unit: Option<&str>, ucum: Option<&str>) -> Value {
    let mut r = json!({ "text": text });
    if let Some((lo, hi)) = text.split_once(['-', '~', '～'])
        && let (Ok(lo), Ok(hi)) = (lo.trim().parse::<f64>(), hi.trim().parse::<f64>())
    {
        r["low"] = quantity(lo, unit, ucum);
        r["high"] = quantity(hi, unit, ucum);
    }
    r
}

fn performer(institution: &str, lab: Option<&str>) -> Value {
    json!([{
        "identifier": { "system": INSTITUTION_SYSTEM, "value": institution },
        "display": lab.unwrap_or(institution)
    }])
}

pub fn observation(o: &ObservationRow, zone: &'static time_tz::Tz) -> Value {
    let mut coding =
        json!({ "system": system_uri(o.code_system.as_deref(), &o.institution), "code": o.code });
    if let Some(t) = &o.code_text {
        coding["display"] = json!(t);
    }
    let mut r = json!({
        "resourceType": "Observation",
        "id": o.id.to_string(),
        "status": status(o.status.as_deref(), false),
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory", "display": "Laboratory" }] }],
        "code": { "coding": [coding] },
        "subject": { "reference": format!("Patient/{}", o.person) },
        "performer": performer(&o.institution, o.performing_lab.as_deref()),
    });
    // The region's catalog item the lab's code maps to (recognition is decided per item).
    if let Some(item) = &o.catalog_item
        && let Some(codings) = r["code"]["coding"].as_array_mut()
    {
        codings.push(json!({ "system": CATALOG_SYSTEM, "code": item }));
    }
    if let Some(t) = &o.code_text {
        r["code"]["text"] = json!(t);
    }
    if let Some((s, v)) = &o.identifier {
        let mut i = json!({ "value": v });
        if !s.is_empty() {
            i["system"] = json!(s);
        }
        r["identifier"] = json!([i]);
    }
    if let Some(t) = o.observed_instant.and_then(|t| date_time(t, zone)) {
        r["effectiveDateTime"] = json!(t);
    }
    if let Some(t) = o.reported_instant.and_then(|t| date_time(t, zone)) {
        r["issued"] = json!(t);
    }
    let (unit, ucum) = (o.unit.as_deref(), o.unit_ucum.as_deref());
    match (o.value_num, o.value.as_deref(), o.value_type.as_deref()) {
        (Some(n), _, _) => {
            let mut q = quantity(n, unit, ucum);
            if let Some(c) = &o.comparator {
                q["comparator"] = json!(c);
            }
            r["valueQuantity"] = q;
        }
        (None, Some(v), Some("CE" | "CWE" | "CNE")) => r["valueCodeableConcept"] = coded(v),
        (None, Some(v), _) => {
            // Titres (1:320) are ratios; everything else is text as sent.
            match v
                .split_once(':')
                .map(|(a, b)| (a.trim().parse::<f64>(), b.trim().parse::<f64>()))
            {
                Some((Ok(a), Ok(b))) => {
                    r["valueRatio"] =
                        json!({ "numerator": { "value": a }, "denominator": { "value": b } })
                }
                _ => r["valueString"] = json!(v),
            }
        }
        (None, None, _) => {}
    }
    if let Some(flag) = o.abnormal_flag.as_deref().filter(|f| !f.trim().is_empty()) {
        r["interpretation"] = json!([{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": flag.trim() }] }]);
    }
    if let Some(range) = &o.reference_range {
        r["referenceRange"] = json!([reference_range(range, unit, ucum)]);
    }
    if let Some(s) = &o.specimen {
        r["contained"] =
            json!([{ "resourceType": "Specimen", "id": "specimen", "type": coded(s) }]);
        r["specimen"] = json!({ "reference": "#specimen" });
    }
    r
}

pub fn diagnostic_report(o: &OrderRow, zone: &'static time_tz::Tz) -> Value {
    let code = match &o.procedure_code {
        Some(c) => {
            let mut coding = json!({ "system": system_uri(o.procedure_code_system.as_deref(), &o.institution), "code": c });
            if let Some(t) = &o.procedure_text {
                coding["display"] = json!(t);
            }
            let mut cc = json!({ "coding": [coding] });
            if let Some(t) = &o.procedure_text {
                cc["text"] = json!(t);
            }
            cc
        }
        None => json!({ "text": o.procedure_text.as_deref().unwrap_or("未编码 uncoded") }),
    };
    let (cat, display) = if o.category == "LAB" {
        ("LAB", "Laboratory")
    } else {
        ("RAD", "Radiology")
    };
    let mut r = json!({
        "resourceType": "DiagnosticReport",
        "id": o.id.to_string(),
        "status": status(o.status.as_deref(), true),
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": cat, "display": display }] }],
        "code": code,
        "subject": { "reference": format!("Patient/{}", o.person) },
        "performer": performer(&o.institution, None),
    });
    let mut ids = Vec::new();
    if let Some((s, v)) = &o.identifier {
        let mut i = json!({ "value": v });
        if !s.is_empty() {
            i["system"] = json!(s);
        }
        ids.push(i);
    }
    for (kind, v) in [("PLAC", &o.placer_order), ("FILL", &o.filler_order)] {
        if let Some(v) = v {
            ids.push(json!({
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": kind }] },
                "value": v
            }));
        }
    }
    if !ids.is_empty() {
        r["identifier"] = json!(ids);
    }
    if let Some(t) = o.effective_instant.and_then(|t| date_time(t, zone)) {
        r["effectiveDateTime"] = json!(t);
    }
    if let Some(t) = o.reported_instant.and_then(|t| date_time(t, zone)) {
        r["issued"] = json!(t);
    }
    if !o.results.is_empty() {
        r["result"] = json!(
            o.results
                .iter()
                .map(|id| json!({ "reference": format!("Observation/{id}") }))
                .collect::<Vec<_>>()
        );
    }
    if let Some(uid) = &o.study_uid {
        // A logical reference: the study is served by DICOMweb, not as an ImagingStudy.
        r["imagingStudy"] = json!([{ "identifier": { "system": "urn:dicom:uid", "value": format!("urn:oid:{uid}") } }]);
    }
    if let Some(t) = &o.text {
        r["conclusion"] = json!(t);
    }
    if let Some(s) = &o.specimen {
        r["contained"] =
            json!([{ "resourceType": "Specimen", "id": "specimen", "type": coded(s) }]);
        r["specimen"] = json!([{ "reference": "#specimen" }]);
    }
    r
}

fn bad(msg: &str) -> Response {
    from_api(ApiError::bad_request(msg))
}

/// `Patient/<id>` or `<id>`.
fn patient_ref(v: &str) -> &str {
    v.strip_prefix("Patient/").unwrap_or(v)
}

/// The search parameters both resources take, as a query; `Err` is the response to send.
async fn parse(
    state: &AppState,
    grant: &ReadGrant,
    params: &[(String, String)],
    report: bool,
) -> Result<ResultQuery, Response> {
    let zone = state.archive.zone();
    let mut q = ResultQuery {
        limit: 50,
        ..Default::default()
    };
    let mut dates = Vec::new();
    let mut persons: Option<Vec<String>> = None;
    let mut narrow = |found: Vec<String>| {
        persons = Some(match persons.take() {
            None => found,
            Some(have) => have.into_iter().filter(|p| found.contains(p)).collect(),
        });
    };
    for (k, v) in params {
        match k.as_str() {
            "patient" | "subject" => {
                let found = state
                    .archive
                    .current_person(grant, patient_ref(v))
                    .await
                    .map_err(|e| from_api(e.into()))?;
                narrow(found.into_iter().collect());
            }
            "subject.identifier" | "patient.identifier" => {
                let Some((system, value)) = v.split_once('|') else {
                    return Err(bad("subject.identifier is system|value"));
                };
                let lookup = state.archive.lookup_by(system, value);
                let hits = state
                    .archive
                    .find_persons(grant, lookup)
                    .await
                    .map_err(|e| from_api(e.into()))?;
                narrow(hits.into_iter().map(|h| h.person).collect());
            }
            "code" => {
                if !q.codes.is_empty() {
                    return Err(bad("give code once (alternatives separated by commas)"));
                }
                q.codes = v.split(',').map(code_filter).collect();
            }
            "date" => dates.push(v.as_str()),
            "status" => {
                let mut codes = Vec::new();
                for s in v.split(',') {
                    let Some(c) = stored_statuses(s) else {
                        return Err(bad(&format!("unknown status {s}")));
                    };
                    codes.extend(c.iter().map(|c| (*c).to_owned()));
                }
                q.statuses = Some(codes);
            }
            "category" => {
                let (system, code) = token(v);
                let known = match (report, system, code) {
                    (
                        false,
                        None | Some("http://terminology.hl7.org/CodeSystem/observation-category"),
                        "laboratory",
                    ) => Some(ReportCategory::Lab),
                    (true, None | Some("http://terminology.hl7.org/CodeSystem/v2-0074"), "LAB") => {
                        Some(ReportCategory::Lab)
                    }
                    (true, None | Some("http://terminology.hl7.org/CodeSystem/v2-0074"), "RAD") => {
                        Some(ReportCategory::Imaging)
                    }
                    _ => None,
                };
                match known {
                    Some(c) => q.category = Some(c),
                    // A category huren holds nothing of (vital-signs, imaging…): no matches.
                    None => narrow(Vec::new()),
                }
            }
            "identifier" => {
                let (system, value) = token(v);
                q.identifier = Some((system.map(str::to_owned), value.to_owned()));
            }
            "_count" => {
                q.limit = v
                    .parse::<u32>()
                    .map_err(|_| bad("_count must be a number"))?
                    .clamp(1, 200);
            }
            "_cursor" => {
                q.after =
                    Some(Cursor::decode(v).ok_or_else(|| bad("_cursor is not one huren gave"))?);
            }
            other => {
                return Err(from_api(ApiError::not_supported(format!(
                    "search parameter {other} is not supported"
                ))));
            }
        }
    }
    let range = date_params(dates, zone).map_err(|e| bad(&e))?;
    q.from = range.from;
    q.until = range.until;
    if persons.is_some() {
        q.persons = persons;
    }
    Ok(q)
}

/// A searchset with `self` and, when the page is full, `next` (same parameters, the cursor
/// after the last entry).
fn searchset(
    base: &str,
    kind: &str,
    params: &[(String, String)],
    entries: Vec<(String, Value)>,
    next: Option<Cursor>,
) -> Response {
    let kept: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "_cursor").collect();
    let url = |extra: Option<Cursor>| {
        let mut pairs: Vec<(&str, String)> =
            kept.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if let Some(c) = extra {
            pairs.push(("_cursor", c.encode()));
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if qs.is_empty() {
            format!("{base}/{kind}")
        } else {
            format!("{base}/{kind}?{qs}")
        }
    };
    let mut links = vec![json!({ "relation": "self", "url": url(None) })];
    if let Some(c) = next {
        links.push(json!({ "relation": "next", "url": url(Some(c)) }));
    }
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(id, resource)| {
            json!({
                "fullUrl": format!("{base}/{kind}/{id}"),
                "resource": resource,
                "search": { "mode": "match" }
            })
        })
        .collect();
    let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset", "link": links });
    // FHIR JSON has no empty arrays (R4 §2.6.2): no matches, no `entry`.
    if !entries.is_empty() {
        bundle["entry"] = json!(entries);
    }
    fhir_json(StatusCode::OK, bundle)
}

/// The two result resources, for the handlers they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Observation,
    DiagnosticReport,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Observation => "Observation",
            Kind::DiagnosticReport => "DiagnosticReport",
        }
    }
}

/// One page of a search: the resources and, when the page is full, the cursor after it.
async fn page(
    state: &AppState,
    grant: &ReadGrant,
    kind: Kind,
    q: &ResultQuery,
) -> Result<(Vec<(String, Value)>, Option<Cursor>), ApiError> {
    let zone = state.archive.zone();
    let (entries, last): (Vec<(String, Value)>, Option<Cursor>) = match kind {
        Kind::Observation => {
            let rows = state.archive.search_observations(grant, q).await?;
            let last = rows.last().map(|r| Cursor {
                instant: r.observed_instant,
                id: r.id,
            });
            let e = rows
                .iter()
                .map(|r| (r.id.to_string(), observation(r, zone)));
            (e.collect(), last)
        }
        Kind::DiagnosticReport => {
            let rows = state.archive.search_orders(grant, q).await?;
            let last = rows.last().map(|r| Cursor {
                instant: r.effective_instant,
                id: r.id,
            });
            let e = rows
                .iter()
                .map(|r| (r.id.to_string(), diagnostic_report(r, zone)));
            (e.collect(), last)
        }
    };
    let full = entries.len() == q.limit as usize;
    Ok((entries, last.filter(|_| full)))
}

async fn search(
    state: AppState,
    auth: Result<Authenticated, ApiError>,
    headers: HeaderMap,
    params: Vec<(String, String)>,
    kind: Kind,
) -> Response {
    let grant = match reader(auth) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    let q = match parse(&state, &grant, &params, kind == Kind::DiagnosticReport).await {
        Ok(q) => q,
        Err(r) => return r,
    };
    match page(&state, &grant, kind, &q).await {
        Ok((entries, next)) => {
            searchset(&base(&state, &headers), kind.name(), &params, entries, next)
        }
        Err(e) => from_api(e),
    }
}

pub async fn search_observations(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    headers: HeaderMap,
    FhirQuery(params): FhirQuery<Vec<(String, String)>>,
) -> Response {
    search(state, auth, headers, params, Kind::Observation).await
}

pub async fn search_reports(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    headers: HeaderMap,
    FhirQuery(params): FhirQuery<Vec<(String, String)>>,
) -> Response {
    search(state, auth, headers, params, Kind::DiagnosticReport).await
}

/// One stored result resource by id, as FHIR.
pub async fn fetch(
    state: &AppState,
    grant: &ReadGrant,
    kind: Kind,
    id: i64,
) -> Result<Option<Value>, ApiError> {
    let zone = state.archive.zone();
    Ok(match kind {
        Kind::Observation => state
            .archive
            .observation(grant, id)
            .await?
            .map(|o| observation(&o, zone)),
        Kind::DiagnosticReport => state
            .archive
            .order(grant, id)
            .await?
            .map(|o| diagnostic_report(&o, zone)),
    })
}

async fn read(
    state: AppState,
    auth: Result<Authenticated, ApiError>,
    id: String,
    kind: Kind,
) -> Response {
    let grant = match reader(auth) {
        Ok(g) => g,
        Err(e) => return from_api(e),
    };
    let found = match id.parse::<i64>() {
        Ok(n) => fetch(&state, &grant, kind, n).await,
        Err(_) => Ok(None),
    };
    match found {
        Ok(Some(r)) => fhir_json(StatusCode::OK, r),
        Ok(None) => from_api(ApiError::not_found(format!(
            "{}/{id} is not known",
            kind.name()
        ))),
        Err(e) => from_api(e),
    }
}

pub async fn read_observation(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    Path(id): Path<String>,
) -> Response {
    read(state, auth, id, Kind::Observation).await
}

pub async fn read_report(
    State(state): State<AppState>,
    auth: Result<Authenticated, ApiError>,
    Path(id): Path<String>,
) -> Response {
    read(state, auth, id, Kind::DiagnosticReport).await
}
