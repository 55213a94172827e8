//! C-GET and C-MOVE SCP (PS3.4 C.4.2, C.4.3): the identifier selects instances (same matching
//! as C-FIND), each goes out as a C-STORE sub-operation — on the same association for C-GET
//! (the requestor took the SCP role for storage, PS3.7 D.3.3.4), on a new association to a
//! registered destination for C-MOVE. Objects are sent in their stored transfer syntax when
//! the peer accepted it, else re-encoded to a native syntax it accepted — compressed objects
//! are decoded when `huren_dicom::transcode::can_transcode` says so; one the peer takes in no
//! syntax huren can give counts as a failed sub-operation (huren encodes into no compressed
//! syntax). Objects are opened and read through the retrieval use case
//! (`huren_archive::retrieve`), never as local files.

use crate::channel::{Channel, send_command};
use crate::command::{self, Command, field, tag};
use crate::find::{FindJob, JobKind, plan};
use dicom_ul::association::{AsyncServerAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use huren_access::ReadGrant;
use huren_archive::Archive;
use huren_archive::query::{Level, Match};
use std::collections::VecDeque;
use std::time::Duration;

const NUMBER_OF_REMAINING: u32 = 0x0000_1020;
const NUMBER_OF_COMPLETED: u32 = 0x0000_1021;
const NUMBER_OF_FAILED: u32 = 0x0000_1022;
const NUMBER_OF_WARNING: u32 = 0x0000_1023;
const MOVE_ORIGINATOR_AE: u32 = 0x0000_1030;
const MOVE_ORIGINATOR_ID: u32 = 0x0000_1031;
/// Most instances one C-GET/C-MOVE covers.
const MAX_INSTANCES: u32 = 100_000;

#[derive(Default)]
struct Counts {
    remaining: u16,
    completed: u16,
    failed: u16,
    warning: u16,
    failed_uids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum SubOpError {
    #[error("association: {0}")]
    Ul(#[from] dicom_ul::association::Error),
    #[error("object: {0}")]
    Object(String),
}

/// What arrives on the association while a sub-operation waits for its response: a C-CANCEL
/// for `cancel_id` sets `cancelled`; other PDUs are kept in `pending`.
struct Incoming<'a> {
    cancel_id: Option<u16>,
    cancelled: bool,
    pending: &'a mut VecDeque<Pdu>,
}

/// One C-STORE sub-operation: command, data set streamed from storage, wait for the response.
/// Returns the peer's status, or `None` when no accepted context fits the stored object.
async fn store_one<C: Channel>(
    ch: &mut C,
    archive: &Archive,
    grant: &ReadGrant,
    m: &Match,
    msg_id: u16,
    originator: Option<(&str, u16)>,
    incoming: &mut Incoming<'_>,
) -> Result<Option<u16>, SubOpError> {
    let sop_class = m.sop_class_uid.clone().unwrap_or_default();
    let sop = m.sop_instance_uid.clone().unwrap_or_default();
    let ts = m.transfer_syntax_uid.clone().unwrap_or_default();
    // The stored syntax when the peer accepted it; else a native syntax huren can re-encode to.
    let accepted = ch.accepted();
    let exact = accepted
        .iter()
        .find(|(_, a, t)| *a == sop_class && *t == ts);
    let converted = accepted
        .iter()
        .find(|(_, a, t)| *a == sop_class && huren_dicom::transcode::can_transcode(&ts, t));
    let Some((pc_id, _, pc_ts)) = exact.or(converted).cloned() else {
        return Ok(None);
    };
    let convert = (pc_ts != ts).then_some(pc_ts.as_str());
    // The object (re-encoded when the peer takes another syntax) is opened by the retrieval
    // use case; a re-encoded copy lives until this sub-operation ends.
    let opened = archive
        .open_instance(grant, m, convert)
        .await
        .map_err(|e| SubOpError::Object(e.to_string()))?;
    let start = opened
        .dataset_offset()
        .await
        .map_err(|e| SubOpError::Object(e.to_string()))?;
    let size = opened.size;
    let mut cmd = Command::default();
    cmd.set_u16(tag::COMMAND_FIELD, field::C_STORE_RQ)
        .set_u16(tag::MESSAGE_ID, msg_id)
        .set_u16(tag::PRIORITY, 0)
        .set_u16(tag::COMMAND_DATA_SET_TYPE, 0x0000)
        .set_string(tag::AFFECTED_SOP_CLASS_UID, &sop_class, true)
        .set_string(tag::AFFECTED_SOP_INSTANCE_UID, &sop, true);
    if let Some((ae, id)) = originator {
        cmd.set_string(MOVE_ORIGINATOR_AE, ae, false)
            .set_u16(MOVE_ORIGINATOR_ID, id);
    }
    send_command(ch, pc_id, &cmd).await?;
    let max = ch.max_pdv();
    let mut at = start;
    const READ: u64 = 1 << 20;
    while at < size {
        let end = (at + READ).min(size);
        let bytes = opened
            .read(at..end)
            .await
            .map_err(|e| SubOpError::Object(e.to_string()))?;
        for (i, chunk) in bytes.chunks(max).enumerate() {
            let last = end == size && (i + 1) * max >= bytes.len();
            let pdu = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc_id,
                    value_type: PDataValueType::Data,
                    is_last: last,
                    data: chunk.to_vec(),
                }],
            };
            ch.send_pdu(&pdu).await?;
        }
        at = end;
    }
    loop {
        let pdu = ch.receive_pdu().await?;
        let Pdu::PData { data } = &pdu else {
            return Err(SubOpError::Object(format!(
                "unexpected PDU while waiting for C-STORE-RSP: {:?}",
                std::mem::discriminant(&pdu)
            )));
        };
        let cmds: Vec<Command> = data
            .iter()
            .filter(|p| p.value_type == PDataValueType::Command)
            .filter_map(|p| Command::decode(&p.data).ok())
            .collect();
        for c in &cmds {
            match c.command_field().ok() {
                Some(field::C_STORE_RSP)
                    if c.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO) == Some(msg_id) =>
                {
                    return Ok(Some(c.u16(tag::STATUS).unwrap_or(0xC000)));
                }
                Some(field::C_CANCEL_RQ)
                    if incoming.cancel_id.is_some()
                        && c.u16(tag::MESSAGE_ID_BEING_RESPONDED_TO) == incoming.cancel_id =>
                {
                    incoming.cancelled = true
                }
                _ => {}
            }
        }
        if cmds.is_empty() {
            incoming.pending.push_back(pdu);
        }
    }
}

fn progress(
    job: &FindJob,
    rsp_field: u16,
    status: u16,
    c: &Counts,
    comment: Option<&str>,
) -> Command {
    let mut cmd = command::response(
        rsp_field,
        job.message_id,
        Some(&job.sop_class),
        None,
        status,
        comment,
    );
    cmd.set_u16(NUMBER_OF_REMAINING, c.remaining)
        .set_u16(NUMBER_OF_COMPLETED, c.completed)
        .set_u16(NUMBER_OF_FAILED, c.failed)
        .set_u16(NUMBER_OF_WARNING, c.warning);
    cmd
}

/// Final response: 0x0000, 0xB000 with the failed UIDs (0008,0058) in an identifier, or 0xFE00.
async fn finish(
    assoc: &mut impl Channel,
    job: &FindJob,
    rsp_field: u16,
    c: &Counts,
    cancelled: bool,
    explicit: bool,
) -> Result<(), dicom_ul::association::Error> {
    let status = if cancelled {
        0xFE00
    } else if c.failed > 0 || c.warning > 0 {
        0xB000
    } else {
        0x0000
    };
    let mut cmd = progress(job, rsp_field, status, c, None);
    if status == 0x0000 {
        // PS3.4 C.4.2.1.3: counts other than completed/failed/warning are absent at the end.
        cmd = command::response(
            rsp_field,
            job.message_id,
            Some(&job.sop_class),
            None,
            0,
            None,
        );
        cmd.set_u16(NUMBER_OF_COMPLETED, c.completed)
            .set_u16(NUMBER_OF_FAILED, 0)
            .set_u16(NUMBER_OF_WARNING, 0);
    }
    if c.failed_uids.is_empty() || status == 0x0000 {
        return send_command(assoc, job.pc_id, &cmd).await;
    }
    cmd.set_u16(tag::COMMAND_DATA_SET_TYPE, 0x0102);
    send_command(assoc, job.pc_id, &cmd).await?;
    let mut ident = Vec::new();
    let list = serde_json::json!({ "vr": "UI", "Value": c.failed_uids });
    huren_dicom::encode::element(&mut ident, 0x0008_0058, "UI", Some(&list), explicit, false);
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: job.pc_id,
            value_type: PDataValueType::Data,
            is_last: true,
            data: ident,
        }],
    };
    assoc.send_pdu(&pdu).await
}

/// The instances an identifier selects, whatever its level.
async fn select(
    archive: &Archive,
    grant: &ReadGrant,
    job: &FindJob,
) -> Result<Vec<Match>, (u16, String)> {
    let p = plan(job)?;
    let mut q = p.query.clone();
    q.level = Level::Instance;
    q.limit = MAX_INSTANCES;
    q.offset = 0;
    archive
        .find(grant, &q)
        .await
        .map_err(|e| (0xC001, e.to_string()))
}

pub async fn run_get<S>(
    assoc: &mut AsyncServerAssociation<S>,
    job: FindJob,
    archive: &Archive,
    grant: &ReadGrant,
    pending: &mut VecDeque<Pdu>,
) -> Result<(), dicom_ul::association::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let explicit = huren_dicom::ts::lookup(&job.transfer_syntax).is_some_and(|t| t.explicit_vr);
    let instances = match select(archive, grant, &job).await {
        Ok(v) => v,
        Err((status, msg)) => {
            return send_command(
                assoc,
                job.pc_id,
                &command::response(
                    field::C_GET_RSP,
                    job.message_id,
                    Some(&job.sop_class),
                    None,
                    status,
                    Some(&msg),
                ),
            )
            .await;
        }
    };
    let mut c = Counts {
        remaining: instances.len().min(usize::from(u16::MAX)) as u16,
        ..Default::default()
    };
    let mut incoming = Incoming {
        cancel_id: Some(job.message_id),
        cancelled: false,
        pending,
    };
    for (i, m) in instances.iter().enumerate() {
        if incoming.cancelled {
            break;
        }
        let msg_id = (i % 0xFFFE + 1) as u16;
        let outcome = store_one(assoc, archive, grant, m, msg_id, None, &mut incoming).await;
        tally(&mut c, m, outcome)?;
        send_command(
            assoc,
            job.pc_id,
            &progress(&job, field::C_GET_RSP, 0xFF00, &c, None),
        )
        .await?;
    }
    let cancelled = incoming.cancelled;
    finish(assoc, &job, field::C_GET_RSP, &c, cancelled, explicit).await
}

fn tally(
    c: &mut Counts,
    m: &Match,
    outcome: Result<Option<u16>, SubOpError>,
) -> Result<(), dicom_ul::association::Error> {
    c.remaining = c.remaining.saturating_sub(1);
    let uid = m.sop_instance_uid.clone().unwrap_or_default();
    match outcome {
        Ok(Some(0x0000)) => c.completed += 1,
        Ok(Some(s)) if s & 0xF000 == 0xB000 => c.warning += 1,
        Ok(_) => {
            c.failed += 1;
            c.failed_uids.push(uid);
        }
        Err(SubOpError::Ul(e)) => return Err(e),
        Err(SubOpError::Object(e)) => {
            tracing::warn!(error = %e, sop = %uid, "sub-operation failed");
            c.failed += 1;
            c.failed_uids.push(uid);
        }
    }
    Ok(())
}

pub async fn run_move<S>(
    assoc: &mut AsyncServerAssociation<S>,
    job: FindJob,
    archive: &Archive,
    grant: &ReadGrant,
    our_ae: &str,
    calling_ae: &str,
    pending: &mut VecDeque<Pdu>,
) -> Result<(), dicom_ul::association::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let JobKind::Move(dest) = job.kind.clone() else {
        return Ok(());
    };
    let explicit = huren_dicom::ts::lookup(&job.transfer_syntax).is_some_and(|t| t.explicit_vr);
    let fail = |status: u16, msg: &str| {
        command::response(
            field::C_MOVE_RSP,
            job.message_id,
            Some(&job.sop_class),
            None,
            status,
            Some(msg),
        )
    };
    // Destinations are registered peers with a port; their titles are unique.
    let Ok(Some(peer)) = archive.move_destination(&dest).await else {
        return send_command(assoc, job.pc_id, &fail(0xA801, "move destination unknown")).await;
    };
    // A system moves studies only into its own institution's systems: sending a patient's
    // images to another hospital's AE is a disclosure the requester may not make
    // (PS3.7 C.5.x "Refused: Not Authorized", 0x0124).
    if let huren_access::Principal::System(sender) = grant.principal()
        && sender.institution_id != peer.institution_id
    {
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::PatientDataAccessed,
            outcome: huren_access::Outcome::Failure,
            actor: grant.principal().label(),
            institution: Some(sender.institution_code.to_string()),
            patient: None,
            study_uid: None,
            object: Some(format!("move-to:{}", peer.ae_title)),
            source_address: None,
            detail: serde_json::json!({ "refused": "move destination belongs to another institution", "destination_institution": peer.institution_code }),
        };
        if let Err(e) = archive.audit_refusal(ev).await {
            tracing::error!(error = %e, "could not record a refused move");
        }
        return send_command(
            assoc,
            job.pc_id,
            &fail(
                0x0124,
                "refused: the move destination belongs to another institution",
            ),
        )
        .await;
    }
    let instances = match select(archive, grant, &job).await {
        Ok(v) => v,
        Err((status, msg)) => return send_command(assoc, job.pc_id, &fail(status, &msg)).await,
    };
    let mut c = Counts {
        remaining: instances.len().min(usize::from(u16::MAX)) as u16,
        ..Default::default()
    };
    if instances.is_empty() {
        return finish(assoc, &job, field::C_MOVE_RSP, &c, false, explicit).await;
    }
    // One presentation context per (SOP class, stored transfer syntax) needed.
    let mut pairs: Vec<(String, String)> = instances
        .iter()
        .map(|m| {
            (
                m.sop_class_uid.clone().unwrap_or_default(),
                m.transfer_syntax_uid.clone().unwrap_or_default(),
            )
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs.truncate(127);
    let mut opts = ClientAssociationOptions::new()
        .calling_ae_title(our_ae.to_owned())
        .called_ae_title(peer.ae_title.as_str().to_owned())
        .max_pdu_length(131_072)
        .connection_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60));
    for (class, ts) in &pairs {
        // The stored syntax first; native ones huren can re-encode to as fall-backs.
        let mut tss = vec![ts.clone()];
        for alt in [
            huren_dicom::ts::EXPLICIT_VR_LE,
            huren_dicom::ts::IMPLICIT_VR_LE,
        ] {
            if alt != ts && huren_dicom::transcode::can_transcode(ts, alt) {
                tss.push(alt.to_owned());
            }
        }
        opts = opts.with_presentation_context(class.clone(), tss);
    }
    let addr = std::net::SocketAddr::new(peer.network.addr(), peer.port.unwrap_or(104));
    let mut sub = match opts.establish_async(addr).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, destination = %dest, "cannot associate with the move destination");
            return send_command(
                assoc,
                job.pc_id,
                &fail(0xA702, "cannot associate with the move destination"),
            )
            .await;
        }
    };
    let mut cancelled = false;
    // The destination association never carries a C-CANCEL for us; its stray PDUs are dropped.
    let mut ignored = VecDeque::new();
    let mut sub_incoming = Incoming {
        cancel_id: None,
        cancelled: false,
        pending: &mut ignored,
    };
    for (i, m) in instances.iter().enumerate() {
        if crate::find::cancelled_now(assoc, job.message_id, pending) {
            cancelled = true;
            break;
        }
        let msg_id = (i % 0xFFFE + 1) as u16;
        let outcome = store_one(
            &mut sub,
            archive,
            grant,
            m,
            msg_id,
            Some((calling_ae, job.message_id)),
            &mut sub_incoming,
        )
        .await;
        if let Err(SubOpError::Ul(e)) = &outcome {
            tracing::warn!(error = %e, "move sub-association failed");
        }
        let outcome = match outcome {
            Err(SubOpError::Ul(e)) => Err(SubOpError::Object(e.to_string())),
            o => o,
        };
        tally(&mut c, m, outcome)?;
        send_command(
            assoc,
            job.pc_id,
            &progress(&job, field::C_MOVE_RSP, 0xFF00, &c, None),
        )
        .await?;
    }
    let _ = sub.release().await;
    finish(assoc, &job, field::C_MOVE_RSP, &c, cancelled, explicit).await
}
