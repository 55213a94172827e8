//! A submitted FHIR resource before it is stored, shared by the writes (`write`) and the
//! hospital's own Patient registration (`register`): its type checked, its body parsed, the
//! patient record it identifies, and the writer's grant.

use super::Fail;
use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use axum::body::Bytes;
use huren_access::{IngestGrant, grant_ingest};
use huren_archive::submit::SubmittedPatient;
use huren_labs::fhir::s;
use serde_json::Value;

type Invalid = String;

/// A Patient resource as the record it identifies.
pub(crate) fn parse_patient(state: &AppState, v: &Value) -> Result<SubmittedPatient, Invalid> {
    let mut p = SubmittedPatient::default();
    for i in v
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(value), system) = (s(i, "value"), s(i, "system")) else {
            continue;
        };
        let ty = i.pointer("/type/coding/0/code").and_then(Value::as_str);
        let identity = system
            .as_deref()
            .is_some_and(|s| state.archive.is_identity_system(s))
            || ty == Some("NI");
        if identity {
            p.identity_numbers.push((system.unwrap_or_default(), value));
        } else if p.record.is_none() || ty == Some("MR") {
            p.record = Some((system, value));
        }
    }
    if p.record.is_none() {
        return Err("Patient.identifier needs the record's own number (type MR, or any identifier that is not an identity number)".into());
    }
    if let Some(n) = v.pointer("/name/0") {
        let family = s(n, "family").unwrap_or_default();
        let given: Vec<&str> = n
            .get("given")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let pn = if given.is_empty() {
            family
        } else {
            format!("{family}^{}", given.join(" "))
        };
        p.name = Some(pn)
            .filter(|x| !x.trim_matches('^').is_empty())
            .or_else(|| s(n, "text"));
    }
    if let Some(b) = s(v, "birthDate") {
        let d: String = b.chars().filter(char::is_ascii_digit).collect();
        if d.len() != 8 {
            return Err(format!("Patient.birthDate {b:?} needs year, month and day"));
        }
        p.birth_date = Some(d);
    }
    p.sex = s(v, "gender").map(|g| {
        match g.as_str() {
            "male" => "M",
            "female" => "F",
            "other" => "O",
            _ => "U",
        }
        .to_owned()
    });
    Ok(p)
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, Fail> {
    serde_json::from_slice(body).map_err(|e| {
        Fail::Api(ApiError::malformed_body(format!(
            "the body is not JSON: {e}"
        )))
    })
}

pub(crate) fn writer(auth: Result<Authenticated, ApiError>) -> Result<IngestGrant, Fail> {
    let Authenticated(p) = auth?;
    Ok(grant_ingest(&p).map_err(ApiError::from)?)
}

pub(crate) fn check_type(v: &Value, want: &str) -> Result<(), Fail> {
    match v.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == want => Ok(()),
        other => Err(Fail::invalid(format!(
            "expected a {want}, got {}",
            other.unwrap_or("no resourceType")
        ))),
    }
}
