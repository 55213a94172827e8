//! The data steward's pages (issue #20, part 6): the identity review queue — each pair of
//! records side by side with what the link rules saw — and a person's records and link history
//! with merge and unmerge. Every change needs a reason and goes through the API's use cases
//! (`Archive::decide_link_review`, `change_person`), which check the steward's institution and
//! write the link events and the audit.

use crate::pages::{Frame, framed, k, render};
use crate::patient::local;
use crate::session::Doctor;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use huren_access::StewardGrant;
use huren_archive::model::{LinkReview, RecordView};
use huren_archive::{AdminError, PersonChange};
use huren_http::AppState;
use serde::Deserialize;

/// One field of a pair, and whether the two records agree on it.
struct Field {
    label: &'static str,
    a: String,
    b: String,
    /// `same`, `near` (birth dates one typing slip apart) or `differs`.
    agree: &'static str,
}

struct Pair {
    id: i64,
    reason: &'static str,
    score: String,
    state: String,
    created: String,
    a_person: String,
    b_person: String,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "steward.html")]
struct StewardPage {
    frame: Frame,
    state: String,
    pairs: Vec<Pair>,
    /// A message key after a decision, or empty.
    done: &'static str,
    error: &'static str,
}
framed!(StewardPage);

#[derive(Template)]
#[template(path = "steward_person.html")]
struct PersonPage {
    frame: Frame,
    person: String,
    merged_into: String,
    /// (record, name, birth date, sex)
    records: Vec<(String, String, String, String)>,
    history: Vec<(String, String, String, String, String)>,
    done: &'static str,
    error: &'static str,
}
framed!(PersonPage);

/// The steward's grant, or the page refusing it (boxed: a response is large).
fn steward(d: &Doctor) -> Result<StewardGrant, Box<Response>> {
    huren_access::grant_steward(&d.principal()).map_err(|e| {
        Box::new(crate::pages::role_refused(
            d,
            k("steward_only"),
            e.to_string(),
        ))
    })
}

fn reason_key(code: &str) -> &'static str {
    match code {
        "national_id_inconsistent" => k("review_national_id_inconsistent"),
        "possible_match" => k("review_possible_match"),
        "conflicting_numbers" => k("review_conflicting_numbers"),
        _ => k("review_other"),
    }
}

fn field(label: &'static str, a: Option<&str>, b: Option<&str>, fuzzy: bool) -> Field {
    let (a, b) = (a.unwrap_or("").trim(), b.unwrap_or("").trim());
    let agree = if a.is_empty() || b.is_empty() {
        "unknown"
    } else if a.eq_ignore_ascii_case(b) {
        "same"
    } else if fuzzy && huren_mpi::link::typing_slip(a, b) {
        "near"
    } else {
        "differs"
    };
    Field {
        label,
        a: a.to_owned(),
        b: b.to_owned(),
        agree,
    }
}

/// DICOM PN groups (`Zhang^San=张^三`) compared by their ideographic form when both have one.
fn shown_name(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    let groups: Vec<&str> = raw.split('=').collect();
    let pick = groups
        .iter()
        .rev()
        .find(|g| !g.is_ascii() && !g.trim().is_empty())
        .or(groups.first())?;
    Some(
        pick.split('^')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(if pick.is_ascii() { " " } else { "" }),
    )
}

fn pair(state: &AppState, r: LinkReview) -> Pair {
    let record = |v: &RecordView| format!("{} @ {}", v.patient_id, v.issuer);
    let fields = vec![
        Field {
            label: k("review_record"),
            a: record(&r.a),
            b: record(&r.b),
            agree: "info",
        },
        field(
            k("name"),
            shown_name(r.a.name.as_deref()).as_deref(),
            shown_name(r.b.name.as_deref()).as_deref(),
            false,
        ),
        field(
            k("birth_date"),
            r.a.birth_date.as_deref(),
            r.b.birth_date.as_deref(),
            true,
        ),
        field(k("sex"), r.a.sex.as_deref(), r.b.sex.as_deref(), false),
    ];
    Pair {
        id: r.id,
        reason: reason_key(&r.reason),
        score: r.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
        state: r.state,
        created: local(state, Some(r.created_at), true),
        a_person: r.a.person,
        b_person: r.b.person,
        fields,
    }
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    done: String,
}

async fn queue(
    state: &AppState,
    d: &Doctor,
    grant: &StewardGrant,
    which: &str,
    done: &'static str,
    error: &'static str,
) -> Response {
    let which = if matches!(which, "linked" | "rejected") {
        which
    } else {
        "open"
    };
    let pairs = match state.archive.link_reviews(grant, which, 200).await {
        Ok(list) => list.into_iter().map(|r| pair(state, r)).collect(),
        Err(e) => {
            tracing::error!(error = %e, "review queue not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    render(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &StewardPage {
            frame: d.frame("/steward"),
            state: which.to_owned(),
            pairs,
            done,
            error,
        },
    )
}

/// `GET /steward?state=open|linked|rejected`: the review queue.
pub async fn reviews(State(state): State<AppState>, d: Doctor, RawQuery(q): RawQuery) -> Response {
    let grant = match steward(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: QueueQuery = crate::pages::query(q);
    let done = match q.done.as_str() {
        "link" => k("review_done_link"),
        "reject" => k("review_done_reject"),
        _ => "",
    };
    queue(&state, &d, &grant, &q.state, done, "").await
}

#[derive(Deserialize, Default)]
struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    merged: String,
}

/// A steward's form: its CSRF token checked, then the steward's grant.
fn steward_form(d: &Doctor, body: &[u8]) -> Result<(ChangeForm, StewardGrant), Box<Response>> {
    let f: ChangeForm = serde_urlencoded::from_bytes(body).unwrap_or_default();
    if !d.csrf_ok(&f.csrf) {
        return Err(Box::new(d.csrf_refused()));
    }
    Ok((f, steward(d)?))
}

fn change_error(e: &AdminError) -> &'static str {
    match e {
        AdminError::Refused(huren_archive::refusal::Rule::ReasonRequired, _) => {
            k("steward_reason_needed")
        }
        AdminError::Forbidden(_) => k("steward_not_yours"),
        AdminError::Store(_) => k("error_title"),
        _ => k("steward_refused"),
    }
}

/// `POST /steward/reviews/{id}` (form): link the pair, or record that they are two people.
pub async fn decide(
    State(state): State<AppState>,
    d: Doctor,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    let (f, grant) = match steward_form(&d, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let link = match f.decision.as_str() {
        "link" => true,
        "reject" => false,
        _ => return queue(&state, &d, &grant, "open", "", k("steward_refused")).await,
    };
    match state
        .archive
        .decide_link_review(&grant, id, link, &f.reason)
        .await
    {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/steward?done={}", f.decision))],
        )
            .into_response(),
        Err(e) => {
            if matches!(e, AdminError::Store(_)) {
                tracing::error!(error = %e, "review not decided");
            }
            queue(&state, &d, &grant, "open", "", change_error(&e)).await
        }
    }
}

async fn person_page(
    state: &AppState,
    d: &Doctor,
    grant: &StewardGrant,
    person: &str,
    done: &'static str,
    error: &'static str,
) -> Response {
    let view = match state.archive.person(grant, person).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return crate::pages::message(
                &d.frame("/steward"),
                StatusCode::NOT_FOUND,
                k("error_title"),
                k("steward_no_person"),
                "/steward",
                k("back"),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "person not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let history = view
        .history
        .iter()
        .rev()
        .map(|e| {
            (
                local(state, Some(e.at), true),
                e.rule.clone(),
                e.from_person.clone().unwrap_or_default(),
                e.to_person.clone(),
                e.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    render(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &PersonPage {
            frame: d.frame(&format!("/steward/persons/{person}")),
            person: view.public_id,
            merged_into: view.merged_into.unwrap_or_default(),
            records: view
                .records
                .iter()
                .map(|r| {
                    (
                        format!("{} @ {}", r.patient_id, r.issuer),
                        shown_name(r.name.as_deref()).unwrap_or_default(),
                        r.birth_date.clone().unwrap_or_default(),
                        r.sex.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            history,
            done,
            error,
        },
    )
}

/// `GET /steward/persons/{person}`: the person's records and link history.
pub async fn person(
    State(state): State<AppState>,
    d: Doctor,
    Path(person): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let grant = match steward(&d) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q: QueueQuery = crate::pages::query(q);
    let done = match q.done.as_str() {
        "merge" => k("steward_done_merge"),
        "unmerge" => k("steward_done_unmerge"),
        _ => "",
    };
    person_page(&state, &d, &grant, &person, done, "").await
}

/// `POST /steward/persons/{person}/merge` (form: the person to merge into this one, a reason)
/// and `…/unmerge` (a reason): through `Archive::change_person`.
pub async fn change(
    State(state): State<AppState>,
    d: Doctor,
    Path((person, what)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (f, grant) = match steward_form(&d, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let merged = f.merged.trim().to_owned();
    let result = match what.as_str() {
        "merge" => {
            state
                .archive
                .change_person(&grant, &merged, PersonChange::MergeInto(&person), &f.reason)
                .await
        }
        "unmerge" => {
            state
                .archive
                .change_person(&grant, &person, PersonChange::Unmerge, &f.reason)
                .await
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match result {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/steward/persons/{person}?done={what}"),
            )],
        )
            .into_response(),
        Err(e) => {
            if matches!(e, AdminError::Store(_)) {
                tracing::error!(error = %e, "person not changed");
            }
            person_page(&state, &d, &grant, &person, "", change_error(&e)).await
        }
    }
}
