//! The catalog API (issue #5 item 8). Reading — versions, items, effective prices, code
//! lookups — is for any authenticated principal (HIS plug-ins need it for order-time
//! reminders); loading CSV and the unmapped-studies report are operators' (`/api/admin/…`).

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiQuery};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use huren_access::{grant_admin, grant_catalog};
use huren_archive::catalog::{CatalogError, CatalogFile};
use huren_catalog::MapKind;
use serde::Deserialize;
use serde_json::{Value, json};

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            // Every bad line is named, so an operator fixes the file in one pass.
            CatalogError::Lines(lines) => ApiError::unprocessable(format!(
                "the file was not loaded: {}",
                lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            CatalogError::Invalid(m) => ApiError::unprocessable(m),
            CatalogError::Store(s) => s.into(),
        }
    }
}

pub(crate) fn date(s: &str) -> Result<time::Date, ApiError> {
    huren_types::day::parse_iso(s)
        .ok_or_else(|| ApiError::bad_request(format!("{s:?} is not YYYY-MM-DD")))
}

pub(crate) fn csv_text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the CSV must be UTF-8"))
}

pub async fn versions(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_catalog(&p);
    Ok(Json(json!(s.archive.catalog_versions(&grant).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsQuery {
    version: Option<String>,
}

pub async fn items(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_catalog(&p);
    match s
        .archive
        .catalog_items(&grant, q.version.as_deref())
        .await?
    {
        Some((v, items)) => Ok(Json(json!({ "version": v, "items": items }))),
        None => Err(ApiError::not_found(
            "no such catalog version (or none in force)",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceQuery {
    institution: String,
    item: String,
    /// YYYY-MM-DD; today in the region's zone when absent.
    date: Option<String>,
}

pub async fn price(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<PriceQuery>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_catalog(&p);
    let day = match &q.date {
        Some(d) => date(d)?,
        None => s.archive.today(),
    };
    match s
        .archive
        .effective_price(&grant, &q.institution, &q.item, day)
        .await?
    {
        Some(price) => Ok(Json(json!(price))),
        None => Err(ApiError::not_found(
            "no price applies to that item, institution and day",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    institution: String,
    /// `order` (HIS order/charge code) or `lab` (a lab's test code).
    kind: String,
    system: Option<String>,
    code: String,
}

pub async fn lookup(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_catalog(&p);
    let kind = match q.kind.as_str() {
        "order" => MapKind::Order,
        "lab" => MapKind::Lab,
        _ => return Err(ApiError::bad_request("kind is order or lab")),
    };
    let item = s
        .archive
        .item_for_code(
            &grant,
            &q.institution,
            kind,
            q.system.as_deref().unwrap_or(""),
            &q.code,
        )
        .await?;
    match item {
        Some(item) => Ok(Json(json!({ "item_code": item }))),
        None => Err(ApiError::not_found("that code maps to no catalog item")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    label: String,
    effective_from: String,
}

pub async fn import_version(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let grant = grant_admin(&p)?;
    let v = s
        .archive
        .import_catalog(&grant, &q.label, date(&q.effective_from)?, csv_text(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(v))))
}

/// `POST /api/admin/catalog/{prices|mappings|study-rules}` with a CSV body.
async fn load(
    s: AppState,
    p: huren_access::Principal,
    body: Bytes,
    file: CatalogFile,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_admin(&p)?;
    let n = s
        .archive
        .load_catalog_file(&grant, file, csv_text(&body)?)
        .await?;
    Ok(Json(json!({ "rows": n })))
}

pub async fn import_prices(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    load(s, p, body, CatalogFile::Prices).await
}

pub async fn import_mappings(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    load(s, p, body, CatalogFile::Mappings).await
}

pub async fn import_rules(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    load(s, p, body, CatalogFile::StudyRules).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `csv` for a spreadsheet; JSON otherwise.
    format: Option<String>,
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Studies no rule maps to an item, grouped (institution, modality, body part, description),
/// most frequent first: what the operator should write rules for next.
pub async fn unmapped_studies(
    State(s): State<AppState>,
    Authenticated(p): Authenticated,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let grant = grant_admin(&p)?;
    let groups = s.archive.unmapped_studies(&grant).await?;
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "institution": g.facts.institution,
                "modality": g.facts.modalities.join("\\"),
                "body_part": g.facts.body_parts.join(","),
                "description": g.facts.description,
                "procedure_code": g.facts.procedure_code,
                "studies": g.studies,
            })
        })
        .collect();
    if q.format.as_deref() == Some("csv") {
        let mut out =
            String::from("institution,modality,body_part,description,procedure_code,studies\n");
        for g in &groups {
            out.push_str(
                &[
                    csv_field(&g.facts.institution),
                    csv_field(&g.facts.modalities.join("\\")),
                    csv_field(&g.facts.body_parts.join(",")),
                    csv_field(g.facts.description.as_deref().unwrap_or("")),
                    csv_field(g.facts.procedure_code.as_deref().unwrap_or("")),
                    g.studies.to_string(),
                ]
                .join(","),
            );
            out.push('\n');
        }
        return Ok(csv_response(out));
    }
    Ok(Json(json!(rows)).into_response())
}

/// A CSV document as the response (UTF-8, so spreadsheets read the Chinese right).
pub(crate) fn csv_response(text: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        text,
    )
        .into_response()
}
