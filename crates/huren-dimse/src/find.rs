//! C-FIND SCP (PS3.4 C.4.1): Patient Root and Study Root information models, PATIENT / STUDY /
//! SERIES / IMAGE levels, matching through the same query model as QIDO-RS. Responses are
//! streamed one match at a time with 0xFF00 (0xFF01 when optional keys could not be matched);
//! a C-CANCEL-RQ stops the stream with 0xFE00.

use crate::command::{self, Command, field, tag};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use huren_access::ReadGrant;
use huren_archive::Archive;
use huren_archive::query::{Condition, Key, Level, Match, Query, matcher, to_json};
use huren_dicom::charset::Assumed;
use huren_dicom::parse::{Limits, SeekSource, Value, read_dataset};
use huren_dicom::values::TextContext;
use std::collections::{HashSet, VecDeque};

pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
const QUERY_RETRIEVE_LEVEL: u32 = 0x0008_0052;
const SPECIFIC_CHARACTER_SET: u32 = 0x0008_0005;
/// Matches fetched per database round trip while streaming.
const PAGE: u32 = 500;
/// Largest identifier accepted.
pub const MAX_IDENTIFIER: usize = 1024 * 1024;

/// A C-FIND, C-GET or C-MOVE request whose identifier is being received or processed.
pub struct FindJob {
    pub message_id: u16,
    pub pc_id: u8,
    pub sop_class: String,
    pub transfer_syntax: String,
    pub identifier: Vec<u8>,
    pub kind: JobKind,
}

impl FindJob {
    pub fn response_field(&self) -> u16 {
        match self.kind {
            JobKind::Find => field::C_FIND_RSP,
            JobKind::Get => field::C_GET_RSP,
            JobKind::Move(_) => field::C_MOVE_RSP,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    Find,
    Get,
    /// C-MOVE to this destination AE title (0000,0600).
    Move(String),
}

/// A requested return key: tag and VR, in the identifier's order (ascending).
struct ReturnKey {
    tag: u32,
    vr: String,
}

pub(crate) struct Plan {
    pub(crate) level: Level,
    pub(crate) query: Query,
    keys: Vec<ReturnKey>,
    unsupported_optional: bool,
}

pub(crate) fn plan(job: &FindJob) -> Result<Plan, (u16, String)> {
    let ts = huren_dicom::ts::lookup(&job.transfer_syntax)
        .ok_or((0xC000, "unknown transfer syntax".to_owned()))?;
    if ts.deflated || ts.encapsulated {
        return Err((0xC000, "identifier transfer syntax not supported".into()));
    }
    let mut src = SeekSource::new(std::io::Cursor::new(job.identifier.as_slice()), 0)
        .map_err(|e| (0xC000, e.to_string()))?;
    let ds = read_dataset(&mut src, ts, &Limits::default())
        .map_err(|e| (0xC000, format!("identifier: {e}")))?;
    let cx = TextContext::for_dataset(&ds, Assumed::Declared, ts.big_endian);
    let level = match cx.string(&ds, QUERY_RETRIEVE_LEVEL).as_deref() {
        Some("PATIENT") if job.sop_class.starts_with("1.2.840.10008.5.1.4.1.2.1.") => {
            Level::Patient
        }
        Some("STUDY") => Level::Study,
        Some("SERIES") => Level::Series,
        Some("IMAGE") => Level::Instance,
        other => {
            return Err((
                0xA900,
                format!("QueryRetrieveLevel {other:?} is not valid for this information model"),
            ));
        }
    };
    let mut query = Query {
        level,
        conditions: Vec::new(),
        limit: PAGE,
        offset: 0,
        after_key: None,
        person: None,
        persons_in: None,
        institutions_or: None,
    };
    let mut keys = Vec::new();
    let mut unsupported_optional = false;
    for el in &ds.elements {
        if el.tag == SPECIFIC_CHARACTER_SET
            || el.tag == QUERY_RETRIEVE_LEVEL
            || el.tag >> 16 == 0x0002
        {
            continue;
        }
        keys.push(ReturnKey {
            tag: el.tag,
            vr: el.vr.as_str().to_owned(),
        });
        let text = match &el.value {
            Value::Bytes(_) if el.vr.is_text() => cx.strings(el).join("\\"),
            // Sequence matching and binary keys are not supported: returned empty.
            Value::Bytes(b) if !b.is_empty() => {
                unsupported_optional = true;
                continue;
            }
            Value::Sequence(items) if !items.is_empty() => {
                unsupported_optional = true;
                continue;
            }
            _ => continue,
        };
        match Key::by_tag(el.tag) {
            Some((key, vr, _)) => {
                let kw = huren_archive::query::KEYS
                    .iter()
                    .find(|k| k.0 == key)
                    .map_or("attribute", |k| k.2);
                if let Some(m) = matcher(kw, vr, &text).map_err(|e| (0xA900, e.to_string()))? {
                    query.conditions.push(Condition { key, matcher: m });
                }
            }
            None if !text.trim().is_empty() && text.trim() != "*" => unsupported_optional = true,
            None => {}
        }
    }
    if level == Level::Patient {
        query.level = Level::Study;
    }
    Ok(Plan {
        level,
        query,
        keys,
        unsupported_optional,
    })
}

fn encode_identifier(plan: &Plan, m: &Match, explicit: bool, big_endian: bool) -> Vec<u8> {
    let json_level = if plan.level == Level::Patient {
        Level::Study
    } else {
        plan.level
    };
    let doc = to_json(m, json_level, "");
    let mut out = Vec::with_capacity(512);
    let level_name = match plan.level {
        Level::Patient => "PATIENT",
        Level::Study => "STUDY",
        Level::Series => "SERIES",
        Level::Instance => "IMAGE",
    };
    let mut all: Vec<(u32, String, Option<serde_json::Value>)> = vec![
        (
            SPECIFIC_CHARACTER_SET,
            "CS".into(),
            Some(serde_json::json!({"vr":"CS","Value":["ISO_IR 192"]})),
        ),
        (
            QUERY_RETRIEVE_LEVEL,
            "CS".into(),
            Some(serde_json::json!({"vr":"CS","Value":[level_name]})),
        ),
    ];
    for k in &plan.keys {
        let v = doc.get(&format!("{:08X}", k.tag)).cloned();
        let vr = v
            .as_ref()
            .and_then(|j| j.get("vr"))
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| k.vr.clone());
        all.push((k.tag, vr, v));
    }
    all.sort_by_key(|e| e.0);
    for (t, vr, v) in &all {
        huren_dicom::encode::element(&mut out, *t, vr, v.as_ref(), explicit, big_endian);
    }
    out
}

fn rsp(job: &FindJob, status: u16, comment: Option<&str>, with_data: bool) -> Command {
    let mut c = command::response(
        field::C_FIND_RSP,
        job.message_id,
        Some(&job.sop_class),
        None,
        status,
        comment,
    );
    if with_data {
        c.set_u16(tag::COMMAND_DATA_SET_TYPE, 0x0102);
    }
    c
}

/// Runs one C-FIND to completion (or cancellation), sending every response on `assoc`.
/// PDUs other than the matching C-CANCEL that arrive meanwhile are queued in `pending`.
pub async fn run<S>(
    assoc: &mut dicom_ul::association::AsyncServerAssociation<S>,
    job: FindJob,
    archive: &Archive,
    grant: &ReadGrant,
    pending: &mut VecDeque<Pdu>,
) -> Result<(), dicom_ul::association::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let plan = match plan(&job) {
        Ok(p) => p,
        Err((status, comment)) => {
            return crate::channel::send_command(
                assoc,
                job.pc_id,
                &rsp(&job, status, Some(&comment), false),
            )
            .await;
        }
    };
    let ts = huren_dicom::ts::lookup(&job.transfer_syntax);
    let (explicit, big_endian) = ts.map_or((false, false), |t| (t.explicit_vr, t.big_endian));
    let pending_status = if plan.unsupported_optional {
        0xFF01
    } else {
        0xFF00
    };
    let max_pdv = (assoc.requestor_max_pdu_length().clamp(1024, 1 << 20) - 12) as usize;
    let mut query = plan.query.clone();
    query.after_key = Some(0);
    let mut seen_patients: HashSet<(String, String)> = HashSet::new();
    let mut sent = 0u64;
    loop {
        let page = match archive.find(grant, &query).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "C-FIND query failed");
                return crate::channel::send_command(
                    assoc,
                    job.pc_id,
                    &rsp(&job, 0xC001, Some("unable to process"), false),
                )
                .await;
            }
        };
        let n = page.len();
        for m in &page {
            if plan.level == Level::Patient
                && !seen_patients.insert((m.issuer_of_patient_id.clone(), m.patient_id.clone()))
            {
                continue;
            }
            if cancelled(assoc, &job, pending) {
                return crate::channel::send_command(
                    assoc,
                    job.pc_id,
                    &rsp(&job, 0xFE00, None, false),
                )
                .await;
            }
            crate::channel::send_command(assoc, job.pc_id, &rsp(&job, pending_status, None, true))
                .await?;
            let data = encode_identifier(&plan, m, explicit, big_endian);
            let chunks: Vec<&[u8]> = data.chunks(max_pdv).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let pdu = Pdu::PData {
                    data: vec![PDataValue {
                        presentation_context_id: job.pc_id,
                        value_type: PDataValueType::Data,
                        is_last: i + 1 == chunks.len(),
                        data: chunk.to_vec(),
                    }],
                };
                assoc.send(&pdu).await?;
            }
            sent += 1;
        }
        if n < query.limit as usize {
            break;
        }
        // Keyset pagination: the next page starts after the last key seen.
        query.after_key = page.last().map(|m| match plan.query.level {
            Level::Instance => m.instance_key.unwrap_or_default(),
            Level::Series => m.series_key.unwrap_or_default(),
            _ => m.study_key,
        });
    }
    metrics::counter!("huren_dimse_cfind_matches_total").increment(sent);
    crate::channel::send_command(assoc, job.pc_id, &rsp(&job, 0x0000, None, false)).await
}

fn cancelled<S>(
    assoc: &mut dicom_ul::association::AsyncServerAssociation<S>,
    job: &FindJob,
    pending: &mut VecDeque<Pdu>,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    cancelled_now(assoc, job.message_id, pending)
}

/// Polls (without waiting) for a PDU; true when it is a C-CANCEL-RQ for `message_id`.
/// Anything else is kept in `pending` for the association loop.
pub(crate) fn cancelled_now<S>(
    assoc: &mut dicom_ul::association::AsyncServerAssociation<S>,
    message_id: u16,
    pending: &mut VecDeque<Pdu>,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    use futures::FutureExt;
    // dicom-ul reads into a persistent buffer with `read_buf`, so dropping the future
    // unfinished loses no bytes (cancel-safe).
    let Some(Ok(pdu)) = assoc.receive().now_or_never() else {
        return false;
    };
    if let Pdu::PData { data } = &pdu
        && let Some(pdv) = data
            .iter()
            .find(|p| p.value_type == PDataValueType::Command)
        && let Ok(c) = Command::decode(&pdv.data)
        && c.command_field().ok() == Some(field::C_CANCEL_RQ)
        && c.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO) == Some(message_id)
    {
        return true;
    }
    pending.push_back(pdu);
    false
}
