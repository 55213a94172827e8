//! The MLLP listener (`huren serve --mllp HOST:PORT`). Per connection: MLLP frames in, one
//! ACK per message out (HL7 v2 original acknowledgment mode). A message is acknowledged AA
//! only after its results are committed; AE for content errors (nothing stored), AR for an
//! unsupported type, event or version or an unregistered sender. Framing errors and garbage
//! never stop the listener; a connection's bad frame does not end the connection.

use huren_archive::Archive;
use huren_archive::model::OruOutcome;
use huren_hl7::mllp::{Deframer, Frame, frame};
use huren_hl7::{AckCode, Message, Refusal, ack, check_oru, decode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct MllpConfig {
    /// Largest message accepted (bytes); larger frames are dropped.
    pub max_message_bytes: usize,
    /// A connection idle this long is closed.
    pub idle_timeout: Duration,
}

static ACK_SEQ: AtomicU64 = AtomicU64::new(1);

pub async fn serve(listener: TcpListener, archive: Archive, cfg: MllpConfig) {
    let cfg = std::sync::Arc::new(cfg);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "MLLP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let archive = archive.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, &archive, &cfg).await {
                tracing::info!(peer = %peer, error = %e, "MLLP connection ended");
            }
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    archive: &Archive,
    cfg: &MllpConfig,
) -> std::io::Result<()> {
    let mut deframer = Deframer::new(cfg.max_message_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match tokio::time::timeout(cfg.idle_timeout, stream.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        for f in deframer.push(&buf[..n]) {
            let reply = match f {
                Frame::Message(bytes) => handle(&bytes, peer, archive).await,
                Frame::TooLarge { head } => {
                    tracing::warn!(peer = %peer, "MLLP frame over the size limit refused");
                    too_large(&head, cfg.max_message_bytes)
                }
            };
            if let Some(text) = reply {
                stream.write_all(&frame(text.as_bytes())).await?;
            }
        }
    }
}

fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// One message → the ACK text, or `None` when the bytes are not an HL7 message at all (no
/// MSH to answer to).
async fn handle(bytes: &[u8], peer: SocketAddr, archive: &Archive) -> Option<String> {
    // MSH-4 (which, with the address, names the sender and so its default character set for
    // an empty MSH-18) is read from a provisional decoding; then the message is decoded as it
    // declares or as its sender's default.
    let provisional = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    };
    let Ok(header) = Message::parse(&provisional) else {
        tracing::info!(peer = %peer, "not an HL7 message");
        return None;
    };
    let facility = header.get("MSH", 4, 1).map(str::to_owned);
    let sender = match archive.hl7_sender(peer.ip(), facility.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            let r = Refusal::new(AckCode::AE, 207, format!("not stored: {e}"));
            return Some(reply(&header, Err(r)));
        }
    };
    let default = sender
        .as_ref()
        .and_then(|s| s.default_charset.as_deref())
        .and_then(|c| huren_hl7::charset_of(c).ok().flatten());
    let m = match decode(bytes, default).map(|t| Message::parse(&t)) {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return Some(reply(
                &header,
                Err(Refusal::new(AckCode::AE, 102, e.to_string())),
            ));
        }
        Err(e @ huren_hl7::Hl7Error::UnknownCharset(_)) => {
            return Some(reply(
                &header,
                Err(Refusal::new(AckCode::AR, 103, e.to_string()).at("MSH", 1, 18)),
            ));
        }
        Err(e) => {
            return Some(reply(
                &header,
                Err(Refusal::new(AckCode::AE, 102, e.to_string())),
            ));
        }
    };
    if let Err(r) = check_oru(&m) {
        return Some(reply(&m, Err(r)));
    }
    let Some(sender) = sender else {
        let r = Refusal::new(
            AckCode::AR,
            207,
            format!(
                "sender not registered (address {}, MSH-4 {facility:?})",
                peer.ip()
            ),
        )
        .at("MSH", 1, 4);
        return Some(reply(&m, Err(r)));
    };
    let outcome = archive.ingest_oru(&sender, &m, bytes, peer.ip()).await;
    Some(reply(&m, outcome))
}

/// An oversized message is answered AR from its MSH segment (HL7 v2.5 table 0357 code 207,
/// application error, with the limit named), so the sender is not left waiting; without a
/// readable MSH it is dropped, like any bytes that are not HL7.
fn too_large(head: &[u8], max: usize) -> Option<String> {
    let msh_end = head.iter().position(|b| *b == b'\r')?;
    let msh = String::from_utf8_lossy(&head[..msh_end]);
    let Ok(header) = Message::parse(&msh) else {
        metrics::counter!("huren_mllp_messages_total", "ack" => "dropped").increment(1);
        return None;
    };
    let r = Refusal::new(
        AckCode::AR,
        207,
        format!("message larger than {max} bytes; nothing stored"),
    );
    Some(reply(&header, Err(r)))
}

fn reply(m: &Message, outcome: Result<OruOutcome, Refusal>) -> String {
    let control = format!("HUREN{}", ACK_SEQ.fetch_add(1, Ordering::Relaxed));
    let (code, refusal) = match &outcome {
        Ok(_) => (AckCode::AA, None),
        Err(r) => (r.ack, Some(r)),
    };
    let label = match (code, &outcome) {
        (AckCode::AA, Ok(OruOutcome::Duplicate)) => "duplicate",
        (AckCode::AA, _) => "AA",
        (AckCode::AE, _) => "AE",
        (AckCode::AR, _) => "AR",
    };
    metrics::counter!("huren_mllp_messages_total", "ack" => label).increment(1);
    ack(m, code, refusal, &control, &timestamp())
}
