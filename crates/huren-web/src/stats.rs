//! The operators' recognition statistics (issue #20, part 4): the recognition rate by the
//! region's definition, re-examinations by reason, reminder coverage and ignore rate, and
//! savings — by institution, department, item or month, with a chart and CSV. Regional
//! operators see the region, an institution admin their institution (`StatsGrant`); the figures
//! are `Archive::recognition_statistics`, the same as `/api/recognition/statistics`.

use crate::pages::{Frame, framed, k, render};
use crate::session::Doctor;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use huren_archive::recognition::{StatsBy, StatsRow};
use huren_http::AppState;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct StatsQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    by: String,
}

struct Row {
    key: String,
    units: u64,
    recognized: u64,
    reexamined: u64,
    not_counted: u64,
    rate: String,
    eligible_rate: String,
    coverage: String,
    ignore_rate: String,
    savings: String,
    unpriced: u64,
    uncatalogued: u64,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    frame: Frame,
    q: StatsQuery,
    by: &'static str,
    /// `eligible` or `overall`: the region's headline rate.
    definition: &'static str,
    rows: Vec<Row>,
    total: Row,
    /// Re-examinations of the period: (code, reason in the page's language, count).
    reasons: Vec<(String, String, u64)>,
    /// [[group, rate %], …] as JSON for the chart.
    chart: String,
    charts: bool,
    csv: String,
    error: &'static str,
    /// Groups in all, when the table shows only the largest (`rows` is then the first
    /// [`TABLE_ROWS`] by units).
    all: usize,
}
framed!(StatsPage);

/// A region by department is tens of thousands of groups: the page's table shows the largest
/// this many by units and the chart the largest [`CHART_BARS`] (the CSV has every group).
const TABLE_ROWS: usize = 200;
const CHART_BARS: usize = 40;

fn percent(r: Option<f64>) -> String {
    r.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_default()
}

fn row(r: &StatsRow) -> Row {
    Row {
        key: r.key.clone(),
        units: r.units,
        recognized: r.recognized,
        reexamined: r.reexamined,
        not_counted: r.not_counted,
        rate: percent(r.rate),
        eligible_rate: percent(r.eligible_rate),
        coverage: percent(r.coverage),
        ignore_rate: percent(r.ignore_rate),
        savings: r.savings_yuan.clone(),
        unpriced: r.unpriced,
        uncatalogued: r.uncatalogued,
    }
}

/// `GET /stats?from&until&by`: the recognition statistics.
pub async fn page(State(state): State<AppState>, d: Doctor, RawQuery(raw): RawQuery) -> Response {
    let grant = match huren_access::grant_stats(&d.principal()) {
        Ok(g) => g,
        Err(e) => return crate::pages::role_refused(&d, k("stats_only"), e.to_string()),
    };
    let mut q: StatsQuery = crate::pages::query(raw);
    let (by_key, by) = match q.by.as_str() {
        "department" => ("department", StatsBy::Department),
        "item" => ("item", StatsBy::Item),
        "month" => ("month", StatsBy::Month),
        _ => ("institution", StatsBy::Institution),
    };
    let Some((from, until)) = crate::pages::period(state.archive.today(), &q.from, &q.until, |u| {
        u.replace_day(1).ok()
    }) else {
        return render(
            StatusCode::BAD_REQUEST,
            &StatsPage {
                frame: d.frame("/stats"),
                by: by_key,
                definition: "",
                rows: Vec::new(),
                total: row(&StatsRow::default()),
                reasons: Vec::new(),
                chart: "[]".into(),
                charts: false,
                csv: String::new(),
                q,
                error: k("qc_bad_period"),
                all: 0,
            },
        );
    };
    q.from = crate::pages::day(from);
    q.until = crate::pages::day(until);
    let stats = match state
        .archive
        .recognition_statistics(&grant, from, until, by)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "recognition statistics not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // The region's reasons, with its own beside the platform's, for the reasons' names.
    let names = state
        .archive
        .recognition_reasons()
        .await
        .unwrap_or_default();
    // Months stay in order; other groupings keep their largest.
    let all = stats.rows.len();
    let mut largest: Vec<&huren_archive::recognition::StatsRow> = stats.rows.iter().collect();
    if by_key != "month" {
        largest.sort_by(|a, b| b.units.cmp(&a.units).then_with(|| a.key.cmp(&b.key)));
    }
    let chart: Vec<(String, f64)> = largest
        .iter()
        .take(if by_key == "month" { all } else { CHART_BARS })
        .filter_map(|r| r.rate.map(|v| (r.key.clone(), (v * 1000.0).round() / 10.0)))
        .collect();
    let shown: Vec<Row> = if all > TABLE_ROWS {
        largest.iter().take(TABLE_ROWS).map(|r| row(r)).collect()
    } else {
        stats.rows.iter().map(row).collect()
    };
    let csv = crate::pages::csv_link("/api/recognition/statistics", &q.from, &q.until, by_key);
    let page = render(
        StatusCode::OK,
        &StatsPage {
            frame: d.frame("/stats"),
            by: by_key,
            definition: stats.rate_definition,
            rows: shown,
            all,
            reasons: stats
                .total
                .reasons
                .iter()
                .map(|(code, n)| {
                    let name = names
                        .iter()
                        .find(|r| r.code == code.as_str())
                        .map(|r| {
                            crate::i18n::T { lang: d.lang }
                                .pick(&r.zh, &r.en)
                                .to_owned()
                        })
                        .unwrap_or_default();
                    (code.clone(), name, *n)
                })
                .collect(),
            total: row(&stats.total),
            chart: serde_json::to_string(&chart).unwrap_or_else(|_| "[]".into()),
            charts: crate::assets::has_charts(),
            csv,
            q,
            error: "",
        },
    );
    // A region by department is 20,000 rows of maps: freeing them took 24 ms of the answer,
    // so they are freed after it, off the async threads.
    tokio::task::spawn_blocking(move || drop(stats));
    page
}
