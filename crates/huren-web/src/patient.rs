//! The patient page (the doctor's view of one person): every result the doctor may reach from
//! every institution on one timeline, newest first, each with its recognition verdict, HR mark,
//! validity, QC grade and explanation; the encounter-time reminder; lab results by analyte with
//! a trend chart; reports in place; images in one click; the decision with the medical-record
//! sentence. Also the order-time fragment a HIS embeds.

use crate::i18n::{Lang, T};
use crate::pages::{Frame, day, framed, k, render};
use crate::session::Doctor;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_archive::AdminError;
use huren_archive::judged_cache::JudgedTimeline;
use huren_archive::model::{Timeline, TimelineLab};
use huren_archive::recognition::{PriorResult, ReminderRequest};
use huren_http::AppState;
use huren_recognition::{Qc, QcGrade, Verdict};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// One result on the timeline, as the template shows it.
pub struct Entry {
    pub anchor: String,
    pub kind_key: &'static str,
    pub when: String,
    pub instant: i64,
    pub institution: String,
    pub own: bool,
    pub item: String,
    pub detail: String,
    pub verdict_key: &'static str,
    pub verdict_class: &'static str,
    pub hr: Option<String>,
    pub valid_through: Option<String>,
    pub qc_key: Option<&'static str>,
    pub view_url: String,
    pub thumb_url: String,
    pub report: Option<String>,
    pub result_kind: &'static str,
    pub result_id: String,
    pub decidable: bool,
}

pub struct LabRow {
    pub when: String,
    pub institution: String,
    pub value: String,
    pub unit: String,
    pub range: String,
    pub flag: String,
}

pub struct Analyte {
    pub name: String,
    pub unit: String,
    pub low: String,
    pub high: String,
    pub points: usize,
    /// `[[unix ms, value, institution], …]` oldest first, for the chart script.
    pub series_json: String,
    pub rows: Vec<LabRow>,
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    frame: Frame,
    name: String,
    sex: String,
    birth: String,
    records: Vec<String>,
    recognizable: usize,
    /// The timeline and lab sections, rendered by [`PatientResults`] (kept: [`results_html`]).
    results: Arc<str>,
    charts: bool,
    /// The viewer is in the binary: it is started in the background while the page is read.
    viewer: bool,
}
framed!(PatientPage);

/// The timeline and lab sections of a patient page.
#[derive(Template)]
#[template(path = "patient_results.html")]
struct PatientResults<'a> {
    t: T,
    person: &'a str,
    entries: Vec<Entry>,
    labs: Vec<Analyte>,
    charts: bool,
}

/// The results sections last rendered for a (person, reader's institution, language), with the
/// judged timeline they were rendered from. They are the same for every reader of that
/// institution and language (nothing in them is the reader's own: the decision form with its
/// token is fetched when opened), so they are used again while the use case hands out the
/// same judgement (`Archive::workstation_view`: until the person's data, the configuration or
/// the day changes, for ten seconds at most). The `Weak` keeps the judgement's allocation, so a
/// new judgement can never be mistaken for it. Rendering 200 results was half of a page's time.
type ResultsKey = (String, String, Lang);
type Rendered = (Weak<JudgedTimeline>, Arc<str>);
static RESULTS: LazyLock<Mutex<HashMap<ResultsKey, Rendered>>> = LazyLock::new(Mutex::default);
const RESULTS_KEPT: usize = 256;

async fn results_html(
    state: &AppState,
    d: &Doctor,
    person: &str,
    judged: &Arc<JudgedTimeline>,
) -> Option<Arc<str>> {
    let key = (
        person.to_owned(),
        d.user.institution_code.to_string(),
        d.lang,
    );
    if let Ok(kept) = RESULTS.lock()
        && let Some((from, html)) = kept.get(&key)
        && from.upgrade().is_some_and(|j| Arc::ptr_eq(&j, judged))
    {
        return Some(html.clone());
    }
    let (timeline, view) = (&judged.0, &judged.1);
    let names = item_names(state).await;
    let institutions = timeline_institutions(state, timeline).await;
    let tpl = PatientResults {
        t: T { lang: d.lang },
        person,
        entries: entries(
            state,
            d,
            person,
            timeline,
            &view.results,
            &names,
            &institutions,
        ),
        labs: analytes(state, &timeline.lab_results, &institutions),
        charts: crate::assets::has_charts(),
    };
    let mut html = String::with_capacity(timeline.studies.len() * 2500 + 16 * 1024);
    if let Err(e) = tpl.render_into(&mut html) {
        tracing::error!(error = %e, "patient results not rendered");
        return None;
    }
    let html: Arc<str> = html.into();
    if let Ok(mut kept) = RESULTS.lock() {
        if kept.len() >= RESULTS_KEPT {
            kept.retain(|_, (from, _)| from.strong_count() > 0);
            if kept.len() >= RESULTS_KEPT {
                kept.clear();
            }
        }
        kept.insert(key, (Arc::downgrade(judged), html.clone()));
    }
    Some(html)
}

/// The decision form of one result, fetched when the doctor opens "互认决定" (htmx), or as a
/// page of its own without scripts.
#[derive(Template)]
#[template(path = "decide_form.html")]
struct DecideForm {
    frame: Frame,
    person: String,
    anchor: String,
    kind: String,
    id: String,
    recognize: bool,
    reasons: Vec<(String, String)>,
}
framed!(DecideForm);

#[derive(Template)]
#[template(path = "decide_page.html")]
struct DecidePage {
    frame: Frame,
    person: String,
    anchor: String,
    inner: Option<String>,
}
framed!(DecidePage);

/// Only what an element id may hold (the anchors the page made: `s12`, `l3`).
fn anchor(a: &str) -> String {
    let a: String = a
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    if a.is_empty() { "x".into() } else { a }
}

/// A fragment for htmx, or the same inside a page of its own (no scripts).
fn fragment_or_page(
    headers: &axum::http::HeaderMap,
    d: &Doctor,
    person: &str,
    anchor: &str,
    status: StatusCode,
    html: Result<String, askama::Error>,
) -> Response {
    let html = match html {
        Ok(h) => h,
        Err(e) => return unavailable(e),
    };
    if headers.contains_key("hx-request") {
        return (status, axum::response::Html(html)).into_response();
    }
    render(
        status,
        &DecidePage {
            frame: d.frame(&format!("/patients/{person}")),
            person: person.to_owned(),
            anchor: anchor.to_owned(),
            inner: Some(html),
        },
    )
}

/// One result of the page, as the decision form and the explanation name it.
#[derive(Deserialize, Default)]
pub struct DecideFormQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    anchor: String,
    #[serde(default)]
    suggest: String,
}

/// `GET /patients/{person}/decide-form?kind&id&anchor`: the decision form of one result.
pub async fn decide_form(
    State(state): State<AppState>,
    d: Doctor,
    headers: axum::http::HeaderMap,
    Path(person): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q: DecideFormQuery = crate::pages::query(q);
    let t = T { lang: d.lang };
    let reasons = state
        .archive
        .recognition_reasons()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.code.to_string(), t.pick(&r.zh, &r.en).to_owned()))
        .collect();
    let kind = if q.kind == "lab_result" {
        "lab_result"
    } else {
        "imaging_study"
    };
    let a = anchor(&q.anchor);
    let form = DecideForm {
        frame: d.frame(&format!("/patients/{person}")),
        person: person.clone(),
        anchor: a.clone(),
        kind: kind.to_owned(),
        id: q.id,
        recognize: q.suggest == "recognizable",
        reasons,
    };
    fragment_or_page(&headers, &d, &person, &a, StatusCode::OK, form.render())
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    frame: Frame,
    person: String,
    item: String,
    item_code: String,
    recognizable: usize,
    empty_key: &'static str,
    entries: Vec<Entry>,
}
framed!(OrderPage);

/// The page for a person the doctor does not reach: nothing of theirs, and why (the read was
/// refused and audited by the use case; the 403 by the API's refusal layer).
pub fn refused(d: &Doctor, reason: &str) -> Response {
    let mut r = crate::pages::message(
        &d.frame("/"),
        StatusCode::FORBIDDEN,
        k("no_relationship_title"),
        k("no_relationship"),
        "/",
        k("back"),
    );
    r.extensions_mut()
        .insert(huren_http::auth::RefusalReason(reason.to_owned()));
    r
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "patient page not built");
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// Local date and time of an instant in the region's zone.
pub(crate) fn local(state: &AppState, instant: Option<i64>, with_time: bool) -> String {
    use time_tz::OffsetDateTimeExt;
    let Some(t) = instant.and_then(|i| time::OffsetDateTime::from_unix_timestamp(i).ok()) else {
        return String::new();
    };
    let t = t.to_timezone(state.archive.config.zone);
    if with_time && (t.hour(), t.minute()) != (0, 0) {
        format!("{} {:02}:{:02}", day(t.date()), t.hour(), t.minute())
    } else {
        day(t.date())
    }
}

/// A lab result's abnormal flag worth showing (`N`, normal, is not).
fn flag(l: &TimelineLab) -> Option<&str> {
    l.abnormal_flag
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "N")
}

fn verdict_keys(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Recognizable => (k("verdict_recognizable"), "recognizable"),
        Verdict::ReferenceOnly => (k("verdict_reference_only"), "reference-only"),
        Verdict::NotRecognizable => (k("verdict_not_recognizable"), "not-recognizable"),
    }
}

fn qc_key(q: Qc) -> &'static str {
    match q {
        Qc::Graded(QcGrade::A) => k("grade_A"),
        Qc::Graded(QcGrade::B) => k("grade_B"),
        Qc::Graded(QcGrade::C) => k("grade_C"),
        Qc::Graded(QcGrade::Reject) => k("grade_reject"),
        Qc::Uncalibrated => k("qc_uncalibrated"),
        Qc::NotAssessable => k("qc_not_assessable"),
        Qc::Absent => k("qc_absent"),
    }
}

/// Catalog item names in force, by code.
async fn item_names(state: &AppState) -> HashMap<String, (String, String)> {
    match state.archive.item_names().await {
        Ok(items) => items
            .into_iter()
            .map(|(code, (zh, en))| {
                let en = en.unwrap_or_else(|| zh.clone());
                (code, (zh, en))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "catalog names not read");
            HashMap::new()
        }
    }
}

fn sex_key(s: &str) -> Option<&'static str> {
    match s {
        "M" => Some(k("sex_M")),
        "F" => Some(k("sex_F")),
        "O" => Some(k("sex_O")),
        "U" => Some(k("sex_U")),
        _ => None,
    }
}

/// DICOM PN (`Family^Given=漢字^…`) for a heading: the ideographic group when there is one.
fn person_name(raw: &str) -> String {
    let groups: Vec<&str> = raw.split('=').collect();
    let pick = groups
        .iter()
        .rev()
        .find(|g| !g.is_ascii() && !g.trim().is_empty())
        .or(groups.first())
        .copied()
        .unwrap_or("");
    let parts: Vec<&str> = pick.split('^').filter(|p| !p.is_empty()).collect();
    if !pick.is_ascii() {
        parts.concat()
    } else {
        parts.join(" ")
    }
}

/// The timeline's entries from the use case's view, newest first.
fn entries(
    state: &AppState,
    d: &Doctor,
    person: &str,
    timeline: &Timeline,
    judged: &[PriorResult],
    names: &HashMap<String, (String, String)>,
    institutions: &HashMap<String, String>,
) -> Vec<Entry> {
    let t = T { lang: d.lang };
    let own = d.user.institution_code.to_string();
    let judged: HashMap<(&str, &str), &PriorResult> = judged
        .iter()
        .map(|r| ((r.kind, r.id.as_str()), r))
        .collect();
    let item_name = |code: Option<&str>| -> Option<String> {
        code.and_then(|c| names.get(c))
            .map(|(zh, en)| t.pick(zh, en).to_owned())
    };
    let mut reports: HashMap<&str, String> = HashMap::new();
    for r in &timeline.reports {
        if let Some(uid) = r.study_instance_uid.as_deref() {
            reports.entry(uid).or_insert_with(|| r.text.clone());
        }
    }
    let mut out = Vec::new();
    for (n, s) in timeline.studies.iter().enumerate() {
        let j = judged.get(&("imaging_study", s.study_instance_uid.as_str()));
        let mut e = judged_entry(j.copied());
        e.anchor = format!("s{n}");
        e.kind_key = k("kind_imaging");
        e.instant = s.study_instant.unwrap_or(0);
        e.when = local(state, s.study_instant, true);
        e.institution = s
            .performing_institution_name
            .clone()
            .unwrap_or_else(|| s.performing_institution.clone());
        e.own = s.performing_institution == own;
        e.item = item_name(s.catalog_item.as_deref())
            .or_else(|| s.description.clone())
            .unwrap_or_else(|| s.modalities.replace('\\', "/"));
        e.detail = format!(
            "{} · {} {}",
            s.modalities.replace('\\', "/"),
            s.instances,
            t.t("images_count")
        );
        e.view_url = format!("/patients/{person}/studies/{}/view", s.study_instance_uid);
        e.thumb_url = format!(
            "/patients/{person}/studies/{}/thumbnail",
            s.study_instance_uid
        );
        e.report = reports.get(s.study_instance_uid.as_str()).cloned();
        e.result_kind = "imaging_study";
        e.result_id = s.study_instance_uid.clone();
        e.decidable = !e.own && j.is_some();
        out.push(e);
    }
    for (n, l) in timeline.lab_results.iter().enumerate() {
        let id = l.id.to_string();
        let j = judged.get(&("lab_result", id.as_str())).copied();
        let mut e = judged_entry(j);
        e.anchor = format!("l{n}");
        e.kind_key = k("kind_lab");
        e.instant = l.observed_instant.unwrap_or(0);
        e.when = local(state, l.observed_instant, true);
        e.institution = institutions
            .get(&l.performing_institution)
            .cloned()
            .unwrap_or_else(|| l.performing_institution.clone());
        e.own = l.performing_institution == own;
        e.item = item_name(l.catalog_item.as_deref())
            .or_else(|| l.code_text.clone())
            .unwrap_or_else(|| l.code.clone());
        e.detail = format!(
            "{} {}{}",
            l.value.as_deref().unwrap_or(""),
            l.unit.as_deref().unwrap_or(""),
            flag(l).map(|f| format!(" ({f})")).unwrap_or_default()
        );
        e.result_kind = "lab_result";
        e.result_id = id;
        e.decidable = !e.own && j.is_some();
        out.push(e);
    }
    for e in &mut out {
        // The reader's own results are not a question of recognition.
        if e.own {
            e.verdict_key = k("own_result");
            e.verdict_class = "own";
            e.hr = None;
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.instant));
    out
}

/// Names of the institutions a timeline mentions, by code.
/// The names of the institutions that performed a timeline's studies and lab results.
async fn timeline_institutions(state: &AppState, timeline: &Timeline) -> HashMap<String, String> {
    let codes: Vec<&str> = timeline
        .studies
        .iter()
        .map(|s| s.performing_institution.as_str())
        .chain(
            timeline
                .lab_results
                .iter()
                .map(|l| l.performing_institution.as_str()),
        )
        .collect();
    institution_names(state, &codes).await
}

/// Institutions' names as patients and doctors know them today, each code asked once (else
/// the code itself).
pub(crate) async fn institution_names(state: &AppState, codes: &[&str]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for &code in codes {
        if !out.contains_key(code) {
            let name = state
                .archive
                .institution_name(code)
                .await
                .unwrap_or_else(|_| code.to_owned());
            out.insert(code.to_owned(), name);
        }
    }
    out
}

/// The verdict part of an entry (the rest is filled by the caller).
fn judged_entry(j: Option<&PriorResult>) -> Entry {
    let (verdict_key, verdict_class, hr, valid, qc) = match j {
        Some(r) => {
            let (vk, vc) = verdict_keys(r.decision.verdict);
            (
                vk,
                vc,
                r.decision.scope_label.clone(),
                r.decision.valid_through.map(day),
                r.qc.map(qc_key),
            )
        }
        None => (
            k("verdict_not_recognizable"),
            "not-recognizable",
            None,
            None,
            None,
        ),
    };
    Entry {
        anchor: String::new(),
        kind_key: "",
        when: String::new(),
        instant: 0,
        institution: String::new(),
        own: false,
        item: String::new(),
        detail: String::new(),
        verdict_key,
        verdict_class,
        hr,
        valid_through: valid,
        qc_key: qc,
        view_url: String::new(),
        thumb_url: String::new(),
        report: None,
        result_kind: "",
        result_id: String::new(),
        decidable: false,
    }
}

/// The numeric part of a lab value (`5.6`, `<0.1` is not plotted).
fn numeric(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `3.5-5.5` → (low, high).
fn range_bounds(r: &str) -> (String, String) {
    let r = r.trim();
    match r.split_once('-') {
        Some((a, b)) if numeric(a).is_some() && numeric(b).is_some() => {
            (a.trim().to_owned(), b.trim().to_owned())
        }
        _ => (String::new(), String::new()),
    }
}

fn analytes(
    state: &AppState,
    labs: &[TimelineLab],
    institutions: &HashMap<String, String>,
) -> Vec<Analyte> {
    let inst = |code: &str| {
        institutions
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_owned())
    };
    // Grouped by LOINC when the performer sent one, else by the performer's own code: the same
    // analyte from two hospitals meets on its LOINC.
    let mut groups: Vec<(String, Vec<&TimelineLab>)> = Vec::new();
    for l in labs {
        let key = match l.code_system.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("LN") || s.contains("loinc") => {
                format!("LN|{}", l.code)
            }
            _ => format!("{}|{}", l.performing_institution, l.code),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(l),
            None => groups.push((key, vec![l])),
        }
    }
    groups
        .into_iter()
        .map(|(_, rows)| {
            let first = rows[0];
            let name = first
                .code_text
                .clone()
                .unwrap_or_else(|| first.code.clone());
            let unit = first.unit.clone().unwrap_or_default();
            let (low, high) = range_bounds(first.reference_range.as_deref().unwrap_or(""));
            let mut points: Vec<(i64, f64, String)> = rows
                .iter()
                .filter_map(|l| {
                    Some((
                        l.observed_instant? * 1000,
                        numeric(l.value.as_deref()?)?,
                        inst(&l.performing_institution),
                    ))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            Analyte {
                name,
                unit,
                low,
                high,
                points: points.len(),
                series_json: serde_json::to_string(&points).unwrap_or_else(|_| "[]".into()),
                rows: rows
                    .iter()
                    .map(|l| LabRow {
                        when: local(state, l.observed_instant, true),
                        institution: inst(&l.performing_institution),
                        value: l.value.clone().unwrap_or_default(),
                        unit: l.unit.clone().unwrap_or_default(),
                        range: l.reference_range.clone().unwrap_or_default(),
                        flag: flag(l).unwrap_or_default().to_owned(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `GET /patients/{person}`.
pub async fn page(
    State(state): State<AppState>,
    d: Doctor,
    Path(person): Path<String>,
) -> Response {
    let grant = match huren_access::grant_read(&d.principal()) {
        Ok(g) => g,
        Err(e) => return refused(&d, &e.to_string()),
    };
    let receiver = d.user.institution_code.to_string();
    let judged = match state
        .archive
        .workstation_view(&grant, &person, &receiver)
        .await
    {
        Ok(Some(v)) => v,
        Ok(None) => return refused(&d, "no relationship with this person"),
        Err(e) => return unavailable(e),
    };
    let (timeline, view) = (&judged.0, &judged.1);
    // The viewer's PatientID-only study query is answered for this person (huren_http::opened).
    state.opened.open(d.user.user_id, &person);
    let records = match state.archive.person_records(&grant, &person).await {
        Ok(Some(p)) => p.records,
        Ok(None) => Vec::new(),
        Err(e) => return unavailable(e),
    };
    // The encounter-time reminder, recorded as shown (the statistics' coverage and ignore rate).
    let recognizable = match state
        .archive
        .encounter_reminder(&grant, (d.user.institution_id, &receiver), view)
        .await
    {
        Ok(n) => n,
        Err(e) => return unavailable(e),
    };

    let Some(results) = results_html(&state, &d, &person, &judged).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let t = T { lang: d.lang };
    let first = records.first();
    let name = records
        .iter()
        .filter_map(|r| r.name.as_deref())
        .map(person_name)
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| person.clone());
    let page = PatientPage {
        frame: d.frame(&format!("/patients/{person}")),
        name,
        sex: first
            .and_then(|r| r.sex.as_deref())
            .and_then(sex_key)
            .map(|k| t.t(k).to_owned())
            .unwrap_or_default(),
        birth: first
            .and_then(|r| r.birth_date.clone())
            .map(|b| match (b.get(0..4), b.get(4..6), b.get(6..8)) {
                (Some(y), Some(m), Some(dd)) if b.len() == 8 => format!("{y}-{m}-{dd}"),
                _ => b,
            })
            .unwrap_or_default(),
        records: records
            .iter()
            .map(|r| format!("{} @ {}", r.patient_id, r.issuer))
            .collect(),
        recognizable,
        results,
        charts: crate::assets::has_charts(),
        viewer: crate::assets::has_viewer() && !timeline.studies.is_empty(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    /// The ordered item (order-time decisions).
    #[serde(default)]
    item: String,
    /// The person (order-time form; the patient page has it in the path).
    #[serde(default)]
    person: String,
    /// The entry's element id on the page.
    #[serde(default)]
    anchor: String,
}

#[derive(Template)]
#[template(path = "decided.html")]
struct Decided {
    frame: Frame,
    anchor: String,
    sentence: String,
    counted: bool,
}
framed!(Decided);

#[derive(Template)]
#[template(path = "decide_failed.html")]
struct DecideFailed {
    frame: Frame,
    reason: String,
}
framed!(DecideFailed);

async fn record(
    state: &AppState,
    d: &Doctor,
    headers: &axum::http::HeaderMap,
    person: &str,
    f: &DecisionForm,
) -> Response {
    if !d.csrf_ok(&f.csrf) {
        return d.csrf_refused();
    }
    let grant = match huren_access::grant_clinician(&d.principal()) {
        Ok(g) => g,
        Err(e) => return refused(d, &e.to_string()),
    };
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let (reason, note, item) = (opt(&f.reason), opt(&f.note), opt(&f.item));
    let decision = f.decision.as_str();
    let out = state
        .archive
        .record_decision(
            &grant,
            huren_archive::recognition::DecisionRequest {
                about: ReminderRequest {
                    patient_id: None,
                    issuer: None,
                    identifier: None,
                    order_code: None,
                    order_system: None,
                    item: item.as_deref(),
                    visit_number: None,
                    person: Some(person),
                },
                result_kind: &f.kind,
                result_id: &f.id,
                decision,
                // A reason picked and then "recognize" chosen: the choice wins.
                reason: if decision == "recognize" {
                    None
                } else {
                    reason.as_deref()
                },
                note: note.as_deref(),
                visit_number: None,
            },
        )
        .await;
    let frame = d.frame("/");
    let a = anchor(&f.anchor);
    match out {
        Ok(r) => {
            let html = Decided {
                frame,
                anchor: a.clone(),
                sentence: r.record_sentence,
                counted: r.counted,
            }
            .render();
            fragment_or_page(headers, d, person, &a, StatusCode::CREATED, html)
        }
        Err(AdminError::Forbidden(m)) => refused(d, &m),
        Err(e) => match the_doctors_to_fix(e) {
            // htmx swaps 4xx bodies only when told; 200 with the reason keeps the form usable.
            Ok(m) => {
                let html = DecideFailed { frame, reason: m }.render();
                fragment_or_page(headers, d, person, &a, StatusCode::OK, html)
            }
            Err(e) => unavailable(e),
        },
    }
}

/// A refusal the doctor can mend on the form (a malformed field, an item code outside the
/// catalog, an unknown receiving institution): said beside the form, not as a failure page.
/// `Ok` with what to say, or the error back when it is not one of those.
fn the_doctors_to_fix(e: AdminError) -> Result<String, AdminError> {
    use huren_archive::refusal::Rule;
    match e {
        AdminError::Invalid(m)
        | AdminError::Refused(Rule::ItemNotInCatalog | Rule::InstitutionNotFound, m) => Ok(m),
        e => Err(e),
    }
}

fn form(body: &[u8]) -> DecisionForm {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "why.html")]
struct Why {
    frame: Frame,
    explanation: String,
    consulted: Vec<(bool, String)>,
}
framed!(Why);

/// `GET /patients/{person}/why?kind&id`: a result's explanation — the verdict in words and
/// every fact the rules consulted — fetched when the doctor opens 依据 (htmx), or as a page of
/// its own without scripts. From the same judgement as the page (read, authorized and audited
/// like it).
pub async fn why(
    State(state): State<AppState>,
    d: Doctor,
    headers: axum::http::HeaderMap,
    Path(person): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q: DecideFormQuery = crate::pages::query(q);
    let grant = match huren_access::grant_read(&d.principal()) {
        Ok(g) => g,
        Err(e) => return refused(&d, &e.to_string()),
    };
    let receiver = d.user.institution_code.to_string();
    let judged = match state
        .archive
        .workstation_view(&grant, &person, &receiver)
        .await
    {
        Ok(Some(v)) => v,
        Ok(None) => return refused(&d, "no relationship with this person"),
        Err(e) => return unavailable(e),
    };
    let t = T { lang: d.lang };
    let Some(r) = judged
        .1
        .results
        .iter()
        .find(|r| r.kind == q.kind && r.id == q.id)
    else {
        return crate::pages::message(
            &d.frame(&format!("/patients/{person}")),
            StatusCode::NOT_FOUND,
            k("error_title"),
            k("why_none"),
            &format!("/patients/{person}"),
            k("back"),
        );
    };
    let why = Why {
        frame: d.frame(&format!("/patients/{person}")),
        explanation: t
            .pick(&r.decision.explanation_zh, &r.decision.explanation_en)
            .to_owned(),
        consulted: r
            .decision
            .consulted
            .iter()
            .map(|c| (c.met, t.pick(&c.zh, &c.en).to_owned()))
            .collect(),
    };
    fragment_or_page(
        &headers,
        &d,
        &person,
        &anchor(&q.anchor),
        StatusCode::OK,
        why.render(),
    )
}

/// `POST /patients/{person}/decisions` (form): the decision on one result; answers the
/// fragment with the medical-record sentence.
pub async fn decide(
    State(state): State<AppState>,
    d: Doctor,
    headers: axum::http::HeaderMap,
    Path(person): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f = form(&body);
    record(&state, &d, &headers, &person, &f).await
}

/// `POST /order-reminder/decisions` (form): the one-click recognition at order time.
pub async fn order_decide(
    State(state): State<AppState>,
    d: Doctor,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let f = form(&body);
    let person = f.person.clone();
    record(&state, &d, &headers, &person, &f).await
}

/// `GET /patients/{person}/studies/{study}/view`: opens the study in OHIF on this origin, with
/// this person as the one the viewer's study browser shows.
pub async fn open_study(
    State(state): State<AppState>,
    d: Doctor,
    Path((person, study)): Path<(String, String)>,
) -> Response {
    state.opened.open(d.user.user_id, &person);
    // A UID is digits and dots (PS3.5 §9.1); nothing else goes into the viewer's URL.
    let study: String = study
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            format!("/viewer/viewer?StudyInstanceUIDs={study}"),
        )],
    )
        .into_response()
}

/// `GET /patients/{person}/studies/{study}/thumbnail`: a small rendering of the study's middle
/// image (PS3.18 §10.4 thumbnail, through the same access rules as WADO).
pub async fn thumbnail(
    State(state): State<AppState>,
    d: Doctor,
    Path((_person, study)): Path<(String, String)>,
) -> Response {
    match huren_http::render::study_thumbnail(&state, &d.principal(), &study).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize, Default)]
pub struct OrderQuery {
    /// The patient by the institution's own record number…
    #[serde(default)]
    patient_id: String,
    /// …or by huren's person id.
    #[serde(default)]
    person: String,
    #[serde(default)]
    order_code: String,
    #[serde(default)]
    order_system: String,
    #[serde(default)]
    item: String,
}

/// `GET /order-reminder?patient_id=…&order_code=…` (or `item=`): the order-time reminder as a
/// HIS shows it beside its order form (您开立的项目有可互认的结果), with one-click recognition.
pub async fn order_reminder(
    State(state): State<AppState>,
    d: Doctor,
    RawQuery(q): RawQuery,
) -> Response {
    let q: OrderQuery = crate::pages::query(q);
    let grant = match huren_access::grant_read(&d.principal()) {
        Ok(g) => g,
        Err(e) => return refused(&d, &e.to_string()),
    };
    let receiver = d.user.institution_code.to_string();
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let (pid, person, code, system, item) = (
        opt(&q.patient_id),
        opt(&q.person),
        opt(&q.order_code),
        opt(&q.order_system),
        opt(&q.item),
    );
    let r = state
        .archive
        .reminder(
            &grant,
            (d.user.institution_id, &receiver),
            ReminderRequest {
                patient_id: pid.as_deref(),
                issuer: None,
                identifier: None,
                order_code: code.as_deref(),
                order_system: system.as_deref(),
                item: item.as_deref(),
                visit_number: None,
                person: person.as_deref(),
            },
        )
        .await;
    let r = match r {
        Ok(r) => r,
        Err(AdminError::Forbidden(m)) => return refused(&d, &m),
        Err(e) => {
            return match the_doctors_to_fix(e) {
                Ok(m) => render(
                    StatusCode::BAD_REQUEST,
                    &DecideFailed {
                        frame: d.frame("/"),
                        reason: m,
                    },
                ),
                Err(e) => unavailable(e),
            };
        }
    };
    let names = item_names(&state).await;
    let t = T { lang: d.lang };
    let person = r.person.clone().unwrap_or_default();
    // The reminder has judged the results for the ordered item; the timeline gives what the
    // entries show of them (dates, institutions, items), without judging them again.
    let timeline = if person.is_empty() {
        None
    } else {
        match state.archive.timeline(&grant, &person, 200).await {
            Ok(t) => t,
            Err(e) => return unavailable(e),
        }
    };
    let mut listed = match &timeline {
        Some(timeline) => {
            let institutions = timeline_institutions(&state, timeline).await;
            entries(
                &state,
                &d,
                &person,
                timeline,
                &r.results,
                &names,
                &institutions,
            )
        }
        None => Vec::new(),
    };
    let reminded: std::collections::HashSet<(&str, &str)> =
        r.results.iter().map(|x| (x.kind, x.id.as_str())).collect();
    listed.retain(|e| reminded.contains(&(e.result_kind, e.result_id.as_str())));
    let item_code = r.item.clone().unwrap_or_default();
    let item_label = names
        .get(&item_code)
        .map(|(zh, en)| t.pick(zh, en).to_owned())
        .unwrap_or_else(|| item_code.clone());
    let empty_key = match r.patient {
        "unknown" => k("order_unknown"),
        "not_in_reach" => k("order_not_in_reach"),
        _ => k("order_none"),
    };
    render(
        StatusCode::OK,
        &OrderPage {
            frame: d.frame("/order-reminder"),
            person,
            item: item_label,
            item_code,
            recognizable: r.recognizable,
            empty_key,
            entries: listed,
        },
    )
}
