//! The association acceptor: identifies the calling peer (AE title + source network), then
//! serves C-ECHO and C-STORE on the association until release or abort.

use crate::channel::send_command;
use crate::command::{self, Command, field, tag};
use crate::find::{FindJob, JobKind};
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, Pdu, UserIdentity,
};
use huren_access::{
    AuditAction, AuditEvent, Outcome, Principal, Sender, SenderKind, grant_ingest, grant_read,
};
use huren_archive::model::{Peer, match_peer};
use huren_archive::{
    Archive, Expected, IngestRequest, IngestStatus, SenderSettings, Spool, SpoolError, Warning,
};
use huren_dicom::meta::file_meta;
use huren_types::{AeTitle, InstitutionCode};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const VERIFICATION: &str = "1.2.840.10008.1.1";

#[derive(Debug, Clone)]
pub struct ScpConfig {
    pub ae_title: AeTitle,
    /// Largest P-DATA PDU we accept (our A-ASSOCIATE-AC max length).
    pub max_pdu_length: u32,
    /// An association idle this long is aborted (the ARTIM-like guard of PS3.8 §9.1.5).
    pub idle_timeout: Duration,
    /// Concurrent associations served; more wait for a slot (back-pressure).
    pub max_associations: usize,
    /// DICOM TLS (PS3.15 B.1, the Secure Transport Connection Profiles) for [`serve_tls`];
    /// with client verification in the config, peers must present a certificate (mutual TLS).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Decides at A-ASSOCIATE-RQ time, inside dicom-ul's negotiation: the called AE must be ours
/// and the calling AE + source address must match a registered peer (PS3.8 §7.1.1.x reasons).
struct PeerAccess {
    peers: Vec<Peer>,
    addr: IpAddr,
    /// Whether this association came in over DICOM TLS.
    tls: bool,
    matched: Arc<Mutex<Option<Peer>>>,
    refused: Arc<Mutex<Option<Refused>>>,
}

/// Why an association was refused, and by whom it was asked: the AE titles are the requestor's
/// claim (PS3.8 has no authentication) and are audited as such.
#[derive(Debug, Clone)]
struct Refused {
    reason: &'static str,
    calling: String,
    called: String,
}

impl PeerAccess {
    fn refuse(&self, reason: &'static str, calling: &str, called: &str) {
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(Refused {
                reason,
                // Bounded: a requestor's AE title field is 16 bytes (PS3.8 §9.3.2).
                calling: calling.trim().chars().take(16).collect(),
                called: called.trim().chars().take(16).collect(),
            });
        }
    }
}

impl AccessControl for PeerAccess {
    fn check_access(
        &self,
        this_ae: &str,
        calling: &str,
        called: &str,
        _user: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called.trim() != this_ae.trim() {
            self.refuse("called AE title not recognized", calling, called);
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        match match_peer(&self.peers, calling, self.addr) {
            Some(p) if p.require_tls && !self.tls => {
                self.refuse("this peer must use DICOM TLS", calling, called);
                Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
            }
            Some(p) => {
                if let Ok(mut m) = self.matched.lock() {
                    *m = Some(p.clone());
                }
                Ok(())
            }
            None => {
                self.refuse(
                    "calling AE title not recognized from this address",
                    calling,
                    called,
                );
                Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
            }
        }
    }
}

/// Accepts the SCU/SCP roles a requestor proposes (PS3.7 D.3.3.4): a C-GET requestor must act
/// as SCP for the storage SOP classes it wants to receive on the same association.
struct AcceptProposedRoles;

impl dicom_ul::association::server::Negotiation for AcceptProposedRoles {
    fn negotiate_roles(
        &self,
        _sop_class_uid: &str,
        scu_role: bool,
        scp_role: bool,
    ) -> Option<dicom_ul::pdu::RequestorRoles> {
        Some(dicom_ul::pdu::RequestorRoles {
            scu: scu_role,
            scp: scp_role,
        })
    }
}

pub async fn serve(listener: TcpListener, archive: Archive, cfg: ScpConfig) {
    serve_on(listener, archive, Arc::new(cfg), false).await
}

/// The same service over DICOM TLS (its own port, conventionally 2762): a failed handshake
/// ends that connection only.
pub async fn serve_tls(listener: TcpListener, archive: Archive, cfg: ScpConfig) {
    serve_on(listener, archive, Arc::new(cfg), true).await
}

async fn serve_on(listener: TcpListener, archive: Archive, cfg: Arc<ScpConfig>, tls: bool) {
    let slots = Arc::new(tokio::sync::Semaphore::new(cfg.max_associations));
    loop {
        let (socket, peer_addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let archive = archive.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            if let Err(e) = association(socket, peer_addr, archive, &cfg, tls).await {
                tracing::info!(peer = %peer_addr, error = %e, "association ended with an error");
            }
            drop(permit);
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum AssocError {
    #[error("upper layer: {0}")]
    Ul(#[from] dicom_ul::association::Error),
    #[error("index: {0}")]
    Index(#[from] huren_archive::ports::StoreError),
    #[error("spool: {0}")]
    Io(#[from] std::io::Error),
}

enum State {
    Idle,
    /// Receiving a C-STORE data set into a spool file.
    Receiving {
        rq: StoreRq,
        spool: Box<Spool>,
    },
    /// Data set being drained after a failure decided before its end; `rsp` goes out at its end.
    Draining {
        pc_id: u8,
        rsp: Box<Command>,
    },
    /// Receiving a C-FIND identifier.
    Identifier(Box<FindJob>),
}

/// What the association loop must do after a PDV.
enum Reply {
    Send(u8, Command),
    Find(Box<FindJob>),
}

struct StoreRq {
    message_id: u16,
    pc_id: u8,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
}

async fn association(
    socket: TcpStream,
    peer_addr: SocketAddr,
    archive: Archive,
    cfg: &ScpConfig,
    tls: bool,
) -> Result<(), AssocError> {
    let peers = archive.dimse_peers().await?;
    let matched = Arc::new(Mutex::new(None));
    let refused = Arc::new(Mutex::new(None));
    let access = PeerAccess {
        peers,
        addr: peer_addr.ip(),
        tls,
        matched: matched.clone(),
        refused: refused.clone(),
    };
    let mut opts = ServerAssociationOptions::new()
        .ae_access_control(access)
        .with_negotiation(AcceptProposedRoles)
        .ae_title(cfg.ae_title.as_str().to_owned())
        // Every storage SOP class is accepted, private and future ones included: an archive
        // stores what it is sent. Non-storage services are answered with 0x0122 below.
        .promiscuous(true)
        .max_pdu_length(cfg.max_pdu_length)
        .read_timeout(cfg.idle_timeout)
        .write_timeout(cfg.idle_timeout);
    for ts in huren_dicom::ts::ACCEPTED {
        opts = opts.with_transfer_syntax(ts.uid);
    }
    if tls {
        let Some(config) = cfg.tls.clone() else {
            return Ok(());
        };
        opts = opts.tls_config(config);
        let assoc = match opts.establish_tls_async(socket).await {
            Ok(a) => a,
            Err(e) => {
                if let Some(reason) = refused.lock().ok().and_then(|r| r.clone()) {
                    audit_rejection(&archive, peer_addr, reason).await;
                    return Ok(());
                }
                return Err(e.into());
            }
        };
        return serve_association(assoc, peer_addr, archive, cfg, matched).await;
    }
    // A second handle on the connection: after an A-ASSOCIATE-RJ, dicom-ul drops its socket at
    // once, and a requestor still reading the RJ may see the close first (pynetdicom then
    // reports an abort). PS3.8 §9.1.4: the requestor closes after RJ; we wait for that.
    let std_socket = socket.into_std()?;
    let keep = std_socket.try_clone()?;
    let socket = TcpStream::from_std(std_socket)?;
    let assoc = match opts.establish_async(socket).await {
        Ok(a) => {
            drop(keep);
            a
        }
        Err(e) => {
            tokio::spawn(linger_until_peer_closes(keep));
            let reason = refused.lock().ok().and_then(|r| r.clone());
            if let Some(reason) = reason {
                audit_rejection(&archive, peer_addr, reason).await;
                return Ok(());
            }
            return Err(e.into());
        }
    };
    serve_association(assoc, peer_addr, archive, cfg, matched).await
}

/// The association after negotiation, over TCP or TLS alike.
async fn serve_association<S>(
    mut assoc: dicom_ul::association::server::AsyncServerAssociation<S>,
    peer_addr: SocketAddr,
    archive: Archive,
    cfg: &ScpConfig,
    matched: Arc<Mutex<Option<Peer>>>,
) -> Result<(), AssocError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let Some(peer) = matched.lock().ok().and_then(|m| m.clone()) else {
        return Ok(());
    };
    metrics::counter!("huren_dimse_associations_total").increment(1);
    let Ok(institution_code) = InstitutionCode::parse(&peer.institution_code) else {
        let _ = assoc.abort().await;
        return Ok(());
    };
    let principal = Principal::System(Sender {
        institution_id: peer.institution_id,
        institution_code,
        kind: SenderKind::Dimse {
            ae_id: peer.id,
            ae_title: peer.ae_title.clone(),
        },
        // A peer reads its institution's data (and its open encounters' patients).
        reads: huren_access::SystemReads::Institution,
    });
    let Ok(grant) = grant_ingest(&principal) else {
        return Ok(());
    };
    let settings = SenderSettings {
        assumed_charset: peer.assumed_charset.clone(),
        stable_after_secs: peer.stable_after_secs,
        default_performer_id: peer.default_performer_id,
    };
    let contexts: Vec<(u8, String, String)> = assoc
        .presentation_contexts()
        .iter()
        .map(|pc| {
            (
                pc.id,
                pc.abstract_syntax.clone(),
                pc.transfer_syntax.clone(),
            )
        })
        .collect();
    let our_ae = cfg.ae_title.as_str().to_owned();
    // Reads on this association are audited per association × study (issue #6).
    let Ok(read_grant) = grant_read(&principal)
        .map(|g| g.in_session(format!("association:{}", uuid::Uuid::new_v4().simple())))
    else {
        return Ok(());
    };
    let mut cmd_buf: Vec<u8> = Vec::new();
    let mut state = State::Idle;
    // PDUs that arrived while a C-FIND was streaming, handled in order afterwards.
    let mut pending: VecDeque<Pdu> = VecDeque::new();
    loop {
        let next = match pending.pop_front() {
            Some(p) => Ok(p),
            None => assoc.receive().await,
        };
        let pdu = match next {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(peer = %peer_addr, error = %e, "association lost");
                return Ok(());
            }
        };
        match pdu {
            Pdu::PData { data } => {
                for pdv in data {
                    match pdv.value_type {
                        PDataValueType::Command => {
                            cmd_buf.extend_from_slice(&pdv.data);
                            if !pdv.is_last {
                                continue;
                            }
                            let bytes = std::mem::take(&mut cmd_buf);
                            let reply = on_command(
                                &bytes,
                                pdv.presentation_context_id,
                                &contexts,
                                &archive,
                                peer.ae_title.as_str(),
                                &mut state,
                            )
                            .await;
                            if let Some(Reply::Send(pc, rsp)) = reply {
                                send_command(&mut assoc, pc, &rsp).await?;
                            }
                        }
                        PDataValueType::Data => {
                            let reply = on_data(
                                pdv,
                                &mut state,
                                &archive,
                                &grant,
                                &settings,
                                peer_addr.ip(),
                            )
                            .await;
                            match reply {
                                Some(Reply::Send(pc, rsp)) => {
                                    send_command(&mut assoc, pc, &rsp).await?
                                }
                                Some(Reply::Find(job)) => match job.kind {
                                    JobKind::Find => {
                                        crate::find::run(
                                            &mut assoc,
                                            *job,
                                            &archive,
                                            &read_grant,
                                            &mut pending,
                                        )
                                        .await?
                                    }
                                    JobKind::Get => {
                                        crate::retrieve::run_get(
                                            &mut assoc,
                                            *job,
                                            &archive,
                                            &read_grant,
                                            &mut pending,
                                        )
                                        .await?
                                    }
                                    JobKind::Move(_) => {
                                        crate::retrieve::run_move(
                                            &mut assoc,
                                            *job,
                                            &archive,
                                            &read_grant,
                                            &our_ae,
                                            peer.ae_title.as_str(),
                                            &mut pending,
                                        )
                                        .await?
                                    }
                                },
                                None => {}
                            }
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                let _ = assoc.send(&Pdu::ReleaseRP).await;
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Ok(()),
            other => {
                tracing::info!(peer = %peer_addr, pdu = ?std::mem::discriminant(&other), "unexpected PDU; aborting");
                let _ = assoc.abort().await;
                return Ok(());
            }
        }
    }
}

/// An A-ASSOCIATE-RJ for an unknown peer or wrong called AE: audited.
async fn audit_rejection(archive: &Archive, peer_addr: SocketAddr, r: Refused) {
    let ev = AuditEvent {
        action: AuditAction::AssociationRejected,
        outcome: Outcome::Failure,
        actor: format!("ae:{}", r.calling),
        institution: None,
        patient: None,
        study_uid: None,
        object: Some(format!("association:{}", r.called)),
        source_address: Some(peer_addr.ip().to_string()),
        detail: serde_json::json!({
            "reason": r.reason,
            "calling_ae_title": r.calling,
            "called_ae_title": r.called,
        }),
    };
    if let Err(e) = archive.audit_refusal(ev).await {
        tracing::error!(error = %e, "could not record a rejected association");
    }
    metrics::counter!("huren_dimse_associations_rejected_total").increment(1);
    tracing::info!(peer = %peer_addr, reason = r.reason, calling = %r.calling, "association rejected");
}

async fn linger_until_peer_closes(keep: std::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let Ok(mut s) = TcpStream::from_std(keep) else {
        return;
    };
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Handles a complete command set. Returns a response to send now, if any (C-STORE and
/// C-FIND respond after their data set).
async fn on_command(
    bytes: &[u8],
    pc_id: u8,
    contexts: &[(u8, String, String)],
    archive: &Archive,
    calling_ae: &str,
    state: &mut State,
) -> Option<Reply> {
    let cmd = match Command::decode(bytes) {
        Ok(c) => c,
        Err(e) => {
            // No message ID to answer to: a malformed command set cannot get a response.
            tracing::warn!(error = %e, "undecodable command set ignored");
            return None;
        }
    };
    let message_id = cmd.message_id().unwrap_or(0);
    let field_value = cmd.command_field().unwrap_or(0);
    let (_, abstract_syntax, ts) = contexts.iter().find(|(id, _, _)| *id == pc_id)?;
    let reply = |status: u16, comment: &str| {
        let c = command::response(
            field_value | 0x8000,
            message_id,
            Some(abstract_syntax),
            None,
            status,
            Some(comment),
        );
        Reply::Send(pc_id, c)
    };
    match field_value {
        field::C_ECHO_RQ => Some(Reply::Send(
            pc_id,
            command::response(
                field::C_ECHO_RSP,
                message_id,
                Some(VERIFICATION),
                None,
                0x0000,
                None,
            ),
        )),
        field::C_STORE_RQ => {
            let sop_class = cmd
                .string(tag::AFFECTED_SOP_CLASS_UID)
                .unwrap_or_else(|| abstract_syntax.clone());
            let sop_instance = cmd
                .string(tag::AFFECTED_SOP_INSTANCE_UID)
                .unwrap_or_default();
            let rq = StoreRq {
                message_id,
                pc_id,
                sop_class,
                sop_instance,
                transfer_syntax: ts.clone(),
            };
            if !cmd.has_data_set() {
                return Some(Reply::Send(
                    pc_id,
                    store_rsp(&rq, 0xC000, Some("C-STORE-RQ announces no data set")),
                ));
            }
            let drain = |status: u16, comment: &str| State::Draining {
                pc_id,
                rsp: Box::new(store_rsp(&rq, status, Some(comment))),
            };
            if rq.sop_class == VERIFICATION || is_non_storage_service(&rq.sop_class) {
                *state = drain(0x0122, "SOP class is not a storage SOP class");
                return None;
            }
            *state = match archive.spool().await {
                Ok(mut spool) => {
                    // DIMSE carries a bare data set; a File Meta header makes the stored
                    // object a Part 10 file (PS3.10 §7.1). The data set bytes follow unchanged.
                    let meta = file_meta(
                        &rq.sop_class,
                        &rq.sop_instance,
                        &rq.transfer_syntax,
                        Some(calling_ae),
                    );
                    match spool.write(&meta).await {
                        Ok(()) => State::Receiving {
                            rq,
                            spool: Box::new(spool),
                        },
                        Err(e) => drain(0xA700, &e.to_string()),
                    }
                }
                Err(e) => drain(0xA700, &format!("cannot spool: {e}")),
            };
            None
        }
        field::C_FIND_RQ | field::C_GET_RQ | field::C_MOVE_RQ => {
            let model = abstract_syntax.as_str();
            // Patient Root / Study Root: FIND .1, MOVE .2, GET .3 (PS3.4 Annex C.6).
            let (supported, kind) = match field_value {
                field::C_FIND_RQ => (
                    model == crate::find::PATIENT_ROOT_FIND
                        || model == crate::find::STUDY_ROOT_FIND,
                    JobKind::Find,
                ),
                field::C_GET_RQ => (
                    model == "1.2.840.10008.5.1.4.1.2.1.3"
                        || model == "1.2.840.10008.5.1.4.1.2.2.3",
                    JobKind::Get,
                ),
                _ => (
                    model == "1.2.840.10008.5.1.4.1.2.1.2"
                        || model == "1.2.840.10008.5.1.4.1.2.2.2",
                    JobKind::Move(cmd.string(tag::MOVE_DESTINATION).unwrap_or_default()),
                ),
            };
            if !supported {
                let r = reply(
                    0x0122,
                    "only the Patient Root and Study Root models are supported",
                );
                *state = drain_with(pc_id, r);
                return None;
            }
            *state = State::Identifier(Box::new(FindJob {
                message_id,
                pc_id,
                sop_class: model.to_owned(),
                transfer_syntax: ts.clone(),
                identifier: Vec::new(),
                kind,
            }));
            None
        }
        field::C_CANCEL_RQ => None,
        other => {
            // 0x0211 "Unrecognized operation" (PS3.7 §C.5.8).
            tracing::info!(command_field = other, "unsupported DIMSE command");
            let r = reply(0x0211, "unsupported DIMSE service");
            if cmd.has_data_set() {
                *state = drain_with(pc_id, r);
                return None;
            }
            Some(r)
        }
    }
}

fn drain_with(pc_id: u8, reply: Reply) -> State {
    match reply {
        Reply::Send(_, c) => State::Draining {
            pc_id,
            rsp: Box::new(c),
        },
        Reply::Find(_) => State::Idle,
    }
}

/// Query/retrieve, worklist, MPPS and commitment SOP classes: accepted at association level
/// (promiscuous negotiation) but not storage.
fn is_non_storage_service(sop_class: &str) -> bool {
    sop_class.starts_with("1.2.840.10008.5.1.4.1.2.")
        || sop_class.starts_with("1.2.840.10008.5.1.4.31")
        || sop_class.starts_with("1.2.840.10008.3.1.")
        || sop_class.starts_with("1.2.840.10008.1.20")
}

fn store_rsp(rq: &StoreRq, status: u16, comment: Option<&str>) -> Command {
    command::response(
        field::C_STORE_RSP,
        rq.message_id,
        Some(&rq.sop_class),
        Some(&rq.sop_instance),
        status,
        comment,
    )
}

async fn on_data(
    pdv: PDataValue,
    state: &mut State,
    archive: &Archive,
    grant: &huren_access::IngestGrant,
    settings: &SenderSettings,
    source: IpAddr,
) -> Option<Reply> {
    match state {
        State::Idle => {
            tracing::warn!("data set fragment without a request; ignored");
            None
        }
        State::Draining { .. } => {
            if !pdv.is_last {
                return None;
            }
            let State::Draining { pc_id, rsp } = std::mem::replace(state, State::Idle) else {
                return None;
            };
            Some(Reply::Send(pc_id, *rsp))
        }
        State::Identifier(job) => {
            job.identifier.extend_from_slice(&pdv.data);
            if job.identifier.len() > crate::find::MAX_IDENTIFIER {
                let j = std::mem::replace(
                    job,
                    Box::new(FindJob {
                        message_id: 0,
                        pc_id: 0,
                        sop_class: String::new(),
                        transfer_syntax: String::new(),
                        identifier: Vec::new(),
                        kind: JobKind::Find,
                    }),
                );
                let c = command::response(
                    j.response_field(),
                    j.message_id,
                    Some(&j.sop_class),
                    None,
                    0xA700,
                    Some("identifier too large"),
                );
                *state = State::Draining {
                    pc_id: j.pc_id,
                    rsp: Box::new(c),
                };
                return None;
            }
            if !pdv.is_last {
                return None;
            }
            let State::Identifier(job) = std::mem::replace(state, State::Idle) else {
                return None;
            };
            Some(Reply::Find(job))
        }
        State::Receiving { spool, .. } => {
            if let Err(e) = spool.write(&pdv.data).await {
                let State::Receiving { rq, .. } = std::mem::replace(state, State::Idle) else {
                    return None;
                };
                let comment = match e {
                    SpoolError::TooLarge(_) => e.to_string(),
                    SpoolError::Io(io) => io.to_string(),
                };
                let rsp = store_rsp(&rq, 0xA700, Some(&comment));
                if pdv.is_last {
                    return Some(Reply::Send(rq.pc_id, rsp));
                }
                *state = State::Draining {
                    pc_id: rq.pc_id,
                    rsp: Box::new(rsp),
                };
                return None;
            }
            if !pdv.is_last {
                return None;
            }
            let State::Receiving { rq, spool } = std::mem::replace(state, State::Idle) else {
                return None;
            };
            let spooled = match (*spool).finish().await {
                Ok(s) => s,
                Err(e) => {
                    return Some(Reply::Send(
                        rq.pc_id,
                        store_rsp(&rq, 0xA700, Some(&e.to_string())),
                    ));
                }
            };
            let req = IngestRequest {
                spooled,
                expected: Expected {
                    sop_class_uid: Some(rq.sop_class.clone()),
                    sop_instance_uid: Some(rq.sop_instance.clone()),
                    study_instance_uid: None,
                },
                source: Some(source),
                settings: settings.clone(),
            };
            let status = archive.ingest(grant, req).await;
            let (code, comment) = dimse_status(&status);
            metrics::counter!("huren_dimse_cstore_total", "status" => format!("{code:04X}"))
                .increment(1);
            Some(Reply::Send(
                rq.pc_id,
                store_rsp(&rq, code, comment.as_deref()),
            ))
        }
    }
}

/// PS3.4 Table B.2-1 statuses for an ingest outcome.
pub fn dimse_status(s: &IngestStatus) -> (u16, Option<String>) {
    match s {
        IngestStatus::Stored { warnings, .. } => {
            // When several warnings apply, the one most relevant to the sender wins.
            let pick = warnings
                .iter()
                .find(|w| matches!(w, Warning::DoesNotMatchSopClass(_)))
                .or_else(|| {
                    warnings
                        .iter()
                        .find(|w| matches!(w, Warning::ElementsDiscarded(_)))
                })
                .or_else(|| warnings.first());
            match pick {
                None => (0x0000, None),
                Some(w) => (w.status(), Some(w.message().to_owned())),
            }
        }
        IngestStatus::Refused { refusal, .. } => {
            (refusal.status(), Some(refusal.message().to_owned()))
        }
    }
}
