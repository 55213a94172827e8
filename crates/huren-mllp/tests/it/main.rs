//! In-process tests of the MLLP adapter: the real listener on a loopback port, the real use
//! cases and SQLite in a temporary directory (`huren-testkit`), and a sender written here that
//! frames messages as MLLP does (HL7 v2 MLLP: VT … FS CR).

use huren_access::{Principal, grant_admin};
use huren_hl7::mllp::frame;
use huren_mllp::{MllpConfig, serve};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn oru(control: &str, value: &str) -> String {
    format!(
        "MSH|^~\\&|LIS|H500002|HUREN|REGION|20261207093000||ORU^R01|{control}|P|2.5\r\
         PID|1||P1^^^H500002^MR||张^三||19800101|M\r\
         OBR|1|PL1|FL1|GLU^血糖^L|||20261207080000|||||||||||||||20261207090000|||F\r\
         OBX|1|NM|2345-7^Glucose^LN||{value}|mmol/L|3.9-6.1|N|||F\r"
    )
}

/// Reads one framed answer (VT … FS CR) and returns its text.
async fn answer(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(&[0x1c, 0x0d]) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n == 1, "connection closed");
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf[1..buf.len() - 2]).into_owned()
}

fn msa(ack: &str) -> (String, String) {
    let line = ack
        .split('\r')
        .find(|l| l.starts_with("MSA|"))
        .unwrap_or_default();
    let f: Vec<&str> = line.split('|').collect();
    (
        f.get(1).copied().unwrap_or_default().to_owned(),
        f.get(2).copied().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn results_are_acknowledged_after_they_are_stored() {
    let h = huren_testkit::harness().await;
    let grant = grant_admin(&Principal::Console).expect("console");
    h.archive
        .add_hl7_sender(
            &grant,
            "h500002",
            "127.0.0.1/32".parse().expect("network"),
            Some("H500002"),
            None,
        )
        .await
        .expect("sender");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(
        listener,
        h.archive.clone(),
        MllpConfig {
            max_message_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(30),
        },
    ));
    let mut s = TcpStream::connect(addr).await.expect("connect");

    // Garbage before a frame is skipped; the message after it is stored and acknowledged.
    s.write_all(b"not mllp at all\r\n").await.expect("write");
    s.write_all(&frame(oru("M1", "5.6").as_bytes()))
        .await
        .expect("write");
    assert_eq!(msa(&answer(&mut s).await), ("AA".into(), "M1".into()));

    // A numeric value that is not a number: AE, with the error where it is, nothing stored;
    // the connection goes on.
    s.write_all(&frame(oru("M2", "high").as_bytes()))
        .await
        .expect("write");
    let ack = answer(&mut s).await;
    assert_eq!(msa(&ack), ("AE".into(), "M2".into()));
    assert!(ack.contains("ERR|") && ack.contains("OBX"), "{ack}");

    // The same message again is a resend: acknowledged, not stored twice.
    s.write_all(&frame(oru("M1", "5.6").as_bytes()))
        .await
        .expect("write");
    assert_eq!(msa(&answer(&mut s).await), ("AA".into(), "M1".into()));

    // What was stored is the one result, read back through the API.
    let r = h
        .get("/fhir/Observation?code=2345-7", Some(&h.system))
        .await;
    assert_eq!(r.status, 200);
    let bundle = r.json();
    let entries = bundle["entry"].as_array().map_or(0, Vec::len);
    assert_eq!(entries, 1, "{bundle}");
    assert_eq!(
        bundle["entry"][0]["resource"]["valueQuantity"]["value"],
        5.6
    );
}
