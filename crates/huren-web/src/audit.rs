//! The auditor's pages (issue #20, part 5): the audit trail filtered by who acted, patient,
//! institution, event and dates, newest first; the chain's integrity (verified on demand with
//! the chain's key) and the last signed checkpoint; exports as CSV and as a FHIR AuditEvent
//! bundle with the same filters. Auditors read the trail, never patient data (docs/access.md).

use crate::pages::{Frame, framed, k, render};
use crate::patient::local;
use crate::session::Doctor;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::AuditGrant;
use huren_archive::model::{AuditFilter, AuditRow};
use huren_http::AppState;
use serde::{Deserialize, Serialize};

/// Events a page shows; a CSV export holds at most [`EXPORT_MAX`].
const PAGE: u32 = 100;
const EXPORT_MAX: usize = 50_000;

/// The filter as the form and the links carry it.
#[derive(Deserialize, Serialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    patient: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    institution: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<i64>,
}

struct Row {
    id: i64,
    at: String,
    action: String,
    outcome: String,
    actor: String,
    institution: String,
    patient: String,
    object: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    q: AuditQuery,
    rows: Vec<Row>,
    /// The next page's address, when there is one.
    next: String,
    /// This filter's exports.
    csv: String,
    fhir: String,
    /// The chain: a key is configured.
    chained: bool,
    /// The newest signed checkpoint (sequence number, time), or empty.
    checkpoint: String,
    /// A message key when the filter could not be read, or empty.
    error: &'static str,
}
framed!(AuditPage);

#[derive(Template)]
#[template(path = "audit_verify.html")]
struct VerifyPage {
    frame: Frame,
    ok: bool,
    summary: String,
    problems: Vec<String>,
}
framed!(VerifyPage);

fn auditor(d: &Doctor) -> Result<AuditGrant, Box<Response>> {
    huren_access::grant_audit(&d.principal()).map_err(|e| {
        Box::new(crate::pages::role_refused(
            d,
            k("audit_only"),
            e.to_string(),
        ))
    })
}

/// A day (YYYY-MM-DD) as the start of that day in the region's zone; with `after`, the start
/// of the next day (the form's "until" includes its day).
fn day_start(state: &AppState, s: &str, after: bool) -> Result<Option<i64>, ()> {
    use time_tz::PrimitiveDateTimeExt;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let mut day = huren_types::day::parse_iso(s).ok_or(())?;
    if after {
        day = day.next_day().ok_or(())?;
    }
    Ok(time::PrimitiveDateTime::new(day, time::Time::MIDNIGHT)
        .assume_timezone(state.archive.config.zone)
        .take_first()
        .map(|t| t.unix_timestamp()))
}

fn filter(state: &AppState, q: &AuditQuery) -> Result<AuditFilter, ()> {
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(AuditFilter {
        from: day_start(state, &q.from, false)?,
        until: day_start(state, &q.until, true)?,
        before: q.before,
        action: given(&q.action),
        institution: given(&q.institution),
        patient: given(&q.patient),
        actor: given(&q.actor),
    })
}

fn row(state: &AppState, r: AuditRow) -> Row {
    Row {
        id: r.id,
        at: local(state, Some(r.at), true),
        action: r.action,
        outcome: r.outcome,
        actor: r.actor,
        institution: r.institution.unwrap_or_default(),
        patient: r.patient.unwrap_or_default(),
        object: r.object.or(r.study_uid).unwrap_or_default(),
        detail: r.detail,
    }
}

fn query_string(q: &AuditQuery) -> String {
    serde_urlencoded::to_string(q).unwrap_or_default()
}

/// `GET /audit?from=&until=&actor=&patient=&institution=&action=&before=`.
pub async fn trail(State(state): State<AppState>, d: Doctor, RawQuery(raw): RawQuery) -> Response {
    let grant = match auditor(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: AuditQuery = crate::pages::query(raw);
    let (rows, error) = match filter(&state, &q) {
        Ok(f) => match state.archive.audit_trail(&grant, &f, PAGE).await {
            Ok(rows) => (rows, ""),
            Err(e) => {
                tracing::error!(error = %e, "audit trail not read");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
        Err(()) => (Vec::new(), k("audit_bad_date")),
    };
    let next = match rows.last() {
        Some(last) if rows.len() == PAGE as usize => format!(
            "/audit?{}",
            query_string(&AuditQuery {
                before: Some(last.id),
                ..q.clone()
            })
        ),
        _ => String::new(),
    };
    let first = AuditQuery {
        before: None,
        ..q.clone()
    };
    // The FHIR search takes the same filters under its own names (the event kind is not one
    // of them: an AuditEvent's type is DICOM's code, not huren's action).
    let mut fhir: Vec<(&str, String)> = Vec::new();
    if !q.from.trim().is_empty() {
        fhir.push(("date", format!("ge{}", q.from.trim())));
    }
    if !q.until.trim().is_empty() {
        fhir.push(("date", format!("le{}", q.until.trim())));
    }
    for (name, v) in [
        ("patient", &q.patient),
        ("site", &q.institution),
        ("agent-name", &q.actor),
    ] {
        if !v.trim().is_empty() {
            fhir.push((name, v.trim().to_owned()));
        }
    }
    fhir.push(("_count", "500".into()));
    let integrity = state.audit_integrity.as_ref();
    render(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        &AuditPage {
            frame: d.frame("/audit"),
            rows: rows.into_iter().map(|r| row(&state, r)).collect(),
            next,
            csv: format!("/audit/export.csv?{}", query_string(&first)),
            fhir: format!(
                "/fhir/AuditEvent?{}",
                serde_urlencoded::to_string(&fhir).unwrap_or_default()
            ),
            chained: integrity.is_some(),
            checkpoint: integrity
                .and_then(|i| i.last_checkpoint())
                .map(|(seq, at)| format!("#{seq} · {}", local(&state, Some(at), true)))
                .unwrap_or_default(),
            q,
            error,
        },
    )
}

/// A CSV field (RFC 4180): quoted, quotes doubled; a leading `=`, `+`, `-` or `@` is kept from
/// being read as a formula by spreadsheets.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `GET /audit/export.csv?…`: the filtered trail as CSV (UTF-8 with a BOM, for spreadsheets),
/// newest first, at most 50,000 events.
pub async fn export_csv(
    State(state): State<AppState>,
    d: Doctor,
    RawQuery(raw): RawQuery,
) -> Response {
    let grant = match auditor(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: AuditQuery = crate::pages::query(raw);
    let Ok(mut f) = filter(&state, &q) else {
        return (
            StatusCode::BAD_REQUEST,
            "from and until are days: YYYY-MM-DD",
        )
            .into_response();
    };
    let mut out = String::from(
        "\u{feff}id,time,action,outcome,actor,institution,patient,study,object,source_address,detail\r\n",
    );
    let mut n = 0;
    while n < EXPORT_MAX {
        let rows = match state.archive.audit_trail(&grant, &f, 500).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "audit trail not exported");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        let full = rows.len() == 500;
        for r in rows {
            let fields = [
                r.id.to_string(),
                local(&state, Some(r.at), true),
                r.action,
                r.outcome,
                r.actor,
                r.institution.unwrap_or_default(),
                r.patient.unwrap_or_default(),
                r.study_uid.unwrap_or_default(),
                r.object.unwrap_or_default(),
                r.source_address.unwrap_or_default(),
                r.detail,
            ];
            out.push_str(
                &fields
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push_str("\r\n");
            n += 1;
        }
        if !full {
            break;
        }
        f.before = Some(last);
    }
    let mut resp = out.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"huren-audit.csv\""),
    );
    resp
}

/// `GET /audit/verify`: every chained event checked with the key, and every checkpoint.
pub async fn verify(State(state): State<AppState>, d: Doctor) -> Response {
    if let Err(r) = auditor(&d) {
        return *r;
    }
    let Some(integrity) = state.audit_integrity.as_ref() else {
        return crate::pages::message(
            &d.frame("/audit"),
            StatusCode::OK,
            k("audit_chain"),
            k("audit_not_chained"),
            "/audit",
            k("back"),
        );
    };
    let (ok, summary, problems) = match integrity.verify().await {
        Ok(Ok(summary)) => (true, summary, Vec::new()),
        Ok(Err(problems)) => (false, String::new(), problems),
        Err(e) => {
            tracing::error!(error = %e, "audit trail not verified");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    render(
        StatusCode::OK,
        &VerifyPage {
            frame: d.frame("/audit/verify"),
            ok,
            summary,
            problems,
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=1+1"), "\"'=1+1\"");
    }
}
