//! FHIR R4 → the lab model: an Observation is a [`NewLabResult`], a DiagnosticReport a
//! [`NewOrder`] (imaging when its category or code says so) with the references to its
//! results; codings to the stored form of their system (HL7 v2 names for the systems HL7 v2
//! also sends, [`stored_system`]), FHIR date/dateTime values to instants in the region's zone
//! at their precision ([`interval`]). What is not valid R4 for huren's purpose is an
//! [`Invalid`] message for an OperationOutcome.

use crate::model::{NewLabResult, NewOrder, ReportCategory};
use serde_json::Value;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use time_tz::{PrimitiveDateTimeExt, Tz};

/// HL7 v2 coding-system names (table 0396) that have a FHIR URI.
pub const SYSTEMS: &[(&str, &str)] = &[
    ("LN", "http://loinc.org"),
    ("SCT", "http://snomed.info/sct"),
    ("DCM", "http://dicom.nema.org/resources/ontology/DCM"),
    ("UCUM", "http://unitsofmeasure.org"),
    ("I10", "http://hl7.org/fhir/sid/icd-10"),
];
/// How a FHIR system is stored: HL7 name for known URIs (HL7 v2 sends those), the URI itself
/// otherwise (FHIR clients send those).
pub fn stored_system(uri: &str) -> String {
    SYSTEMS
        .iter()
        .find(|(_, u)| *u == uri)
        .map(|(n, _)| (*n).to_owned())
        .unwrap_or_else(|| uri.to_owned())
}

pub fn local(zone: &Tz, d: Date, t: Time) -> Option<i64> {
    let r = PrimitiveDateTime::new(d, t).assume_timezone(zone);
    r.take_first()
        .or_else(|| r.take_second())
        .map(OffsetDateTime::unix_timestamp)
}

/// The interval a FHIR date/dateTime value denotes at its precision.
pub fn interval(value: &str, zone: &Tz) -> Result<(i64, i64), String> {
    let bad = || format!("{value:?} is not a FHIR date or dateTime");
    let (date, rest) = value.split_at(value.find('T').unwrap_or(value.len()));
    let parts: Vec<&str> = date.split('-').collect();
    let num = |s: &str, n: usize| -> Result<i64, String> {
        if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = num(parts.first().copied().unwrap_or(""), 4)? as i32;
    let month = parts.get(1).map(|m| num(m, 2)).transpose()?;
    let day = parts.get(2).map(|d| num(d, 2)).transpose()?;
    if parts.len() > 3 {
        return Err(bad());
    }
    let mon = |m: i64| Month::try_from(m as u8).map_err(|_| bad());
    let first = Date::from_calendar_date(year, mon(month.unwrap_or(1))?, day.unwrap_or(1) as u8)
        .map_err(|_| bad())?;
    if rest.is_empty() {
        let next = match (month, day) {
            (None, _) => Date::from_calendar_date(year + 1, Month::January, 1).ok(),
            (Some(m), None) => {
                let (y, m) = if m == 12 {
                    (year + 1, 1)
                } else {
                    (year, m + 1)
                };
                Date::from_calendar_date(y, mon(m)?, 1).ok()
            }
            (Some(_), Some(_)) => first.next_day(),
        }
        .ok_or_else(bad)?;
        let from = local(zone, first, Time::MIDNIGHT).ok_or_else(bad)?;
        let until = local(zone, next, Time::MIDNIGHT).ok_or_else(bad)?;
        return Ok((from, until));
    }
    if day.is_none() {
        return Err(bad());
    }
    // hh:mm[:ss[.fff]] then Z or ±hh:mm (optional here: the region's zone when absent).
    let t = &rest[1..];
    let zpos = t.find(['Z', '+', '-']).unwrap_or(t.len());
    let (clock, offset) = t.split_at(zpos);
    let c: Vec<&str> = clock.split(':').collect();
    let h = num(c.first().copied().unwrap_or(""), 2)? as u8;
    let mi = num(c.get(1).copied().unwrap_or(""), 2)? as u8;
    let (sec, precision) = match c.get(2) {
        Some(s) => {
            let whole = s.split('.').next().unwrap_or("");
            (num(whole, 2)? as u8, 1)
        }
        None => (0, 60),
    };
    if c.len() > 3 {
        return Err(bad());
    }
    let time = Time::from_hms(h, mi, sec.min(59)).map_err(|_| bad())?;
    let from = if offset.is_empty() {
        local(zone, first, time).ok_or_else(bad)?
    } else {
        let off = if offset == "Z" {
            UtcOffset::UTC
        } else {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let hm: Vec<&str> = offset[1..].split(':').collect();
            let oh = num(hm.first().copied().unwrap_or(""), 2)? as i8;
            let om = num(hm.get(1).copied().unwrap_or("00"), 2)? as i8;
            UtcOffset::from_hms(sign * oh, sign * om, 0).map_err(|_| bad())?
        };
        PrimitiveDateTime::new(first, time)
            .assume_offset(off)
            .unix_timestamp()
    };
    Ok((from, from + Duration::seconds(precision).whole_seconds()))
}

/// Why a resource cannot be stored, said to the client in an OperationOutcome.
pub type Invalid = String;

pub fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
}

/// FHIR status → HL7 result status (table 0085 / 0123), the stored vocabulary.
pub fn status_code(v: &Value, what: &str) -> Result<Option<String>, Invalid> {
    let st = s(v, "status").ok_or_else(|| format!("{what}.status is required"))?;
    Ok(match st.as_str() {
        "final" => Some("F"),
        "corrected" | "amended" | "appended" => Some("C"),
        "preliminary" => Some("P"),
        "partial" => Some("R"),
        "registered" => Some("I"),
        "cancelled" => Some("X"),
        "entered-in-error" => Some("W"),
        "unknown" => None,
        other => return Err(format!("{what}.status {other:?} is not an R4 status")),
    }
    .map(str::to_owned))
}

/// (original string, instant in the region zone unless the value carries an offset).
pub fn when(
    v: &Value,
    keys: &[&str],
    zone: &'static time_tz::Tz,
) -> Result<(Option<String>, Option<i64>), Invalid> {
    for k in keys {
        let raw = match *k {
            "effectivePeriod" => v.get(k).and_then(|p| s(p, "start")),
            _ => s(v, k),
        };
        if let Some(raw) = raw {
            let (from, _) = interval(&raw, zone).map_err(|e| format!("{k}: {e}"))?;
            return Ok((Some(raw), Some(from)));
        }
    }
    Ok((None, None))
}

/// The first coding with a code: (stored system, code, display).
pub fn coding(cc: &Value) -> Option<(Option<String>, String, Option<String>)> {
    cc.get("coding")?.as_array()?.iter().find_map(|c| {
        Some((
            s(c, "system").map(|x| stored_system(&x)),
            s(c, "code")?,
            s(c, "display"),
        ))
    })
}

pub fn first_identifier(v: &Value) -> Option<(String, String)> {
    v.get("identifier")?.as_array()?.iter().find_map(|i| {
        let value = s(i, "value")?;
        let typed = i
            .pointer("/type/coding/0/code")
            .and_then(Value::as_str)
            .is_some_and(|c| matches!(c, "PLAC" | "FILL" | "ACSN"));
        (!typed).then(|| (s(i, "system").unwrap_or_default(), value))
    })
}

pub fn typed_identifier(v: &Value, kind: &str) -> Option<String> {
    v.get("identifier")?.as_array()?.iter().find_map(|i| {
        (i.pointer("/type/coding/0/code").and_then(Value::as_str) == Some(kind))
            .then(|| s(i, "value"))
            .flatten()
    })
}

/// A contained Specimen's type as `code^text`.
pub fn specimen(v: &Value) -> Option<String> {
    let reference = match v.get("specimen")? {
        Value::Array(a) => a.first()?.get("reference")?.as_str()?,
        one => one.get("reference")?.as_str()?,
    };
    let id = reference.strip_prefix('#')?;
    let sp = v
        .get("contained")?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?;
    let ty = sp.get("type")?;
    match coding(ty) {
        Some((_, code, display)) => Some(match display {
            Some(d) => format!("{code}^{d}"),
            None => code,
        }),
        None => s(ty, "text"),
    }
}

pub fn performer_name(v: &Value) -> Option<String> {
    let p = v.get("performer")?.as_array()?.first()?;
    s(p, "display").or_else(|| p.get("identifier").and_then(|i| s(i, "value")))
}

pub fn number(v: &Value) -> Option<f64> {
    v.as_f64().filter(|n| n.is_finite())
}

pub fn fmt_num(n: f64) -> String {
    let t = format!("{n}");
    t.strip_suffix(".0").map(str::to_owned).unwrap_or(t)
}

/// An Observation as a result to store.
pub fn parse_observation(v: &Value, zone: &'static time_tz::Tz) -> Result<NewLabResult, Invalid> {
    let code = v.get("code").ok_or("Observation.code is required")?;
    let (code_system, code_value, display) =
        coding(code).ok_or("Observation.code needs a coding with a code")?;
    let mut r = NewLabResult {
        identifier: first_identifier(v),
        code: code_value,
        code_system,
        code_text: display.or_else(|| s(code, "text")),
        status: status_code(v, "Observation")?,
        specimen: specimen(v),
        performing_lab: performer_name(v),
        ..Default::default()
    };
    (r.observed_at, r.observed_instant) = when(
        v,
        &["effectiveDateTime", "effectiveInstant", "effectivePeriod"],
        zone,
    )?;
    (r.reported_at, r.reported_instant) = when(v, &["issued"], zone)?;
    if let Some(q) = v.get("valueQuantity") {
        let n = q
            .get("value")
            .and_then(number)
            .ok_or("valueQuantity.value must be a number")?;
        let comparator = s(q, "comparator");
        if let Some(c) = &comparator
            && !matches!(c.as_str(), "<" | "<=" | ">=" | ">")
        {
            return Err(format!(
                "valueQuantity.comparator {c:?} is not <, <=, >= or >"
            ));
        }
        let ucum = (s(q, "system").as_deref() == Some("http://unitsofmeasure.org"))
            .then(|| s(q, "code"))
            .flatten();
        r.unit = s(q, "unit").or_else(|| ucum.clone());
        r.unit_ucum = ucum.or_else(|| r.unit.as_deref().and_then(crate::units::ucum));
        r.value = Some(format!(
            "{}{}",
            comparator.as_deref().unwrap_or(""),
            fmt_num(n)
        ));
        r.value_type = Some(if comparator.is_some() { "SN" } else { "NM" }.into());
        r.value_num = Some(n);
        r.comparator = comparator;
    } else if let Some(t) = s(v, "valueString") {
        r.value_type = Some("ST".into());
        r.value = Some(t);
    } else if let Some(cc) = v.get("valueCodeableConcept") {
        r.value_type = Some("CWE".into());
        r.value = match coding(cc) {
            Some((_, c, Some(d))) => Some(format!("{c}^{d}")),
            Some((_, c, None)) => Some(c),
            None => s(cc, "text"),
        };
    } else if let Some(ratio) = v.get("valueRatio") {
        let part = |k: &str| ratio.get(k).and_then(|q| q.get("value")).and_then(number);
        let (Some(a), Some(b)) = (part("numerator"), part("denominator")) else {
            return Err("valueRatio needs numerator.value and denominator.value".into());
        };
        r.value_type = Some("SN".into());
        r.value = Some(format!("{}:{}", fmt_num(a), fmt_num(b)));
    } else if let Some(n) = v.get("valueInteger").and_then(Value::as_i64) {
        r.value_type = Some("NM".into());
        r.value = Some(n.to_string());
        r.value_num = Some(n as f64);
    }
    r.abnormal_flag = v
        .pointer("/interpretation/0/coding/0/code")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(rr) = v.pointer("/referenceRange/0") {
        let bound = |k: &str| rr.get(k).and_then(|q| q.get("value")).and_then(number);
        r.reference_range = s(rr, "text").or_else(|| match (bound("low"), bound("high")) {
            (Some(lo), Some(hi)) => Some(format!("{}-{}", fmt_num(lo), fmt_num(hi))),
            (Some(lo), None) => Some(format!(">={}", fmt_num(lo))),
            (None, Some(hi)) => Some(format!("<={}", fmt_num(hi))),
            (None, None) => None,
        });
    }
    Ok(r)
}

/// v2 table 0074 sections that are imaging.
const IMAGING: &[&str] = &[
    "RAD", "CT", "MR", "NMR", "US", "RX", "NMS", "XRC", "CUS", "OUS", "VUS",
];

/// A DiagnosticReport as an order, and the references in its `result`.
pub fn parse_report(
    v: &Value,
    zone: &'static time_tz::Tz,
) -> Result<(NewOrder, Vec<String>), Invalid> {
    let category = match v
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(coding)
        .map(|(_, c, _)| c)
        .find(|c| c == "LAB" || IMAGING.contains(&c.as_str()))
    {
        Some(c) if c != "LAB" => ReportCategory::Imaging,
        _ => ReportCategory::Lab,
    };
    let code = v.get("code").ok_or("DiagnosticReport.code is required")?;
    let (procedure_code_system, procedure_code, display) = match coding(code) {
        Some((s, c, d)) => (s, Some(c), d),
        None => (None, None, None),
    };
    let filler = typed_identifier(v, "FILL");
    let mut o = NewOrder {
        category,
        study_uid: v
            .pointer("/imagingStudy/0/identifier/value")
            .and_then(Value::as_str)
            .map(|u| u.trim_start_matches("urn:oid:").to_owned()),
        accession_number: typed_identifier(v, "ACSN").or_else(|| {
            (category == ReportCategory::Imaging)
                .then(|| filler.clone())
                .flatten()
        }),
        placer_order: typed_identifier(v, "PLAC"),
        filler_order: filler,
        identifier: first_identifier(v),
        procedure_code,
        procedure_code_system,
        procedure_text: display.or_else(|| s(code, "text")),
        text: s(v, "conclusion"),
        status: status_code(v, "DiagnosticReport")?,
        specimen: specimen(v),
        effective_at: None,
        effective_instant: None,
        reported_at: None,
        reported_instant: None,
        results: Vec::new(),
    };
    if o.procedure_code.is_none() && o.procedure_text.is_none() {
        return Err("DiagnosticReport.code needs a coding or text".into());
    }
    (o.effective_at, o.effective_instant) =
        when(v, &["effectiveDateTime", "effectivePeriod"], zone)?;
    (o.reported_at, o.reported_instant) = when(v, &["issued"], zone)?;
    let refs = v
        .get("result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            s(r, "reference").ok_or_else(|| "DiagnosticReport.result needs references".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((o, refs))
}
