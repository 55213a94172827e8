use super::*;
use crate::mllp::{Deframer, Frame, frame};

const ORU: &str = "MSH|^~\\&|LIS|县人民医院|HUREN|REGION|20250301101500||ORU^R01^ORU_R01|MSG0001|P|2.5.1|||||CHN|UNICODE UTF-8\r\
PID|1||C100^^^urn:oid:2.16.156.10011.1.9.county^MR~11010519491231002X^^^身份证^NI||李^娜||19491231|F\r\
OBR|1||A20250301|2093-3^Cholesterol^LN|||20250301080000\r\
OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L|<5.2|H|||F\r\
OBX|2|ST|HBSAG^乙肝表面抗原^L||阴性(-)||||||F\r";

#[test]
fn parses_fields_components_repetitions() {
    let m = Message::parse(ORU).expect("parse");
    assert_eq!(m.get("MSH", 9, 1), Some("ORU"));
    assert_eq!(m.get("MSH", 10, 1), Some("MSG0001"));
    assert_eq!(m.get("MSH", 4, 1), Some("县人民医院"));
    let pid = m.segments("PID").next().expect("pid");
    assert_eq!(pid.fields[2][1][0][0], "11010519491231002X");
    assert_eq!(pid.fields[2][1][3][0], "身份证");
    assert_eq!(m.segments("OBX").count(), 2);
    assert_eq!(
        m.segments("OBX").nth(1).and_then(|o| o.get(5, 1)),
        Some("阴性(-)")
    );
    assert!(check_oru(&m).is_ok());
}

#[test]
fn gbk_is_decoded_before_splitting() {
    // In GBK 億 ends with 0x7C ('|') and 昞 with 0x5C ('\', the escape character): splitting
    // or unescaping bytes before decoding would break PID-5.
    let text = ORU
        .replace("UNICODE UTF-8", "GB 18030-2000")
        .replace("李^娜", "吴^億昞");
    let (bytes, _, _) = GB18030.encode(&text);
    assert!(bytes.windows(2).any(|w| w[1] == 0x7C && w[0] >= 0x81));
    assert!(bytes.windows(2).any(|w| w == [0x95, 0x5C]));
    let decoded = decode(&bytes, None).expect("decode");
    let m = Message::parse(&decoded).expect("parse");
    assert_eq!(m.get("PID", 5, 2), Some("億昞"));
    // "GBK" as written by many senders, and the per-sender default when MSH-18 is empty.
    let gbk = decode(
        &GB18030.encode(&text.replace("GB 18030-2000", "GBK")).0,
        None,
    )
    .expect("gbk");
    assert_eq!(
        Message::parse(&gbk).expect("parse").get("PID", 5, 2),
        Some("億昞")
    );
    let undeclared = text.replace("|GB 18030-2000", "|");
    let bytes = GB18030.encode(&undeclared).0;
    assert!(
        decode(&bytes, None).is_err(),
        "GB 18030 bytes are not UTF-8"
    );
    let m = Message::parse(&decode(&bytes, Some(GB18030)).expect("default")).expect("parse");
    assert_eq!(m.get("PID", 5, 2), Some("億昞"));
    assert_eq!(
        decode(ORU.replace("UNICODE UTF-8", "EBCDIC").as_bytes(), None),
        Err(Hl7Error::UnknownCharset("EBCDIC".into()))
    );
}

#[test]
fn escapes() {
    let m = Message::parse("MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.4\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X E6 9D 8E\\\r".replace(' ', "").as_str())
        .expect("parse");
    assert_eq!(m.get("NTE", 3, 1), Some("a|b^c&d~e\\f李"));
}

#[test]
fn refusals_use_table_0357() {
    let bad_version = ORU.replace("|2.5.1|", "|2.6|");
    let m = Message::parse(&bad_version).expect("parse");
    let r = check_oru(&m).expect_err("2.6");
    assert_eq!((r.ack, r.code), (AckCode::AR, 203));
    let adt = ORU.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01");
    assert_eq!(
        check_oru(&Message::parse(&adt).expect("parse")).map_err(|r| r.code),
        Err(200)
    );
    let r02 = ORU.replace("ORU^R01^ORU_R01", "ORU^R30");
    assert_eq!(
        check_oru(&Message::parse(&r02).expect("parse")).map_err(|r| r.code),
        Err(201)
    );
    let no_pid3 = ORU.replace(
        "PID|1||C100^^^urn:oid:2.16.156.10011.1.9.county^MR~11010519491231002X^^^身份证^NI||",
        "PID|1||||",
    );
    let r = check_oru(&Message::parse(&no_pid3).expect("parse")).expect_err("PID-3");
    assert_eq!(
        (r.ack, r.code, r.location.clone()),
        (AckCode::AE, 101, Some(("PID".into(), 1, 3)))
    );
    let no_obx3 = ORU.replace("OBX|2|ST|HBSAG^乙肝表面抗原^L|", "OBX|2|ST||");
    let r = check_oru(&Message::parse(&no_obx3).expect("parse")).expect_err("OBX-3");
    assert_eq!(r.location, Some(("OBX".into(), 2, 3)));
}

#[test]
fn ack_swaps_sender_and_receiver_and_echoes_the_control_id() {
    let m = Message::parse(ORU).expect("parse");
    let a = ack(&m, AckCode::AA, None, "ACK0001", "20250301101501");
    let am = Message::parse(&a).expect("ack parses");
    assert_eq!(am.get("MSH", 3, 1), Some("HUREN"));
    assert_eq!(am.get("MSH", 5, 1), Some("LIS"));
    assert_eq!(am.get("MSH", 6, 1), Some("县人民医院"));
    assert_eq!(am.get("MSH", 9, 1), Some("ACK"));
    assert_eq!(am.get("MSH", 10, 1), Some("ACK0001"));
    assert_eq!(am.get("MSH", 12, 1), Some("2.5.1"));
    assert_eq!(am.get("MSH", 18, 1), Some("UNICODE UTF-8"));
    assert_eq!(am.get("MSA", 1, 1), Some("AA"));
    assert_eq!(am.get("MSA", 2, 1), Some("MSG0001"));
    assert!(am.segments("ERR").next().is_none());

    // v2.5: ERR-2 location, ERR-3 code, ERR-4 severity.
    let r = Refusal::new(AckCode::AE, 101, "PID-3 missing").at("PID", 1, 3);
    let am = Message::parse(&ack(&m, AckCode::AE, Some(&r), "ACK2", "20250301")).expect("parse");
    let err = am.segments("ERR").next().expect("ERR");
    assert_eq!((err.get(2, 1), err.get(2, 3)), (Some("PID"), Some("3")));
    assert_eq!(
        (err.get(3, 1), err.get(3, 3), err.get(4, 1)),
        (Some("101"), Some("HL70357"), Some("E"))
    );
    // v2.4: ERR-1.
    let v24 = Message::parse(&ORU.replace("|2.5.1|", "|2.4|")).expect("parse");
    let am = Message::parse(&ack(&v24, AckCode::AE, Some(&r), "ACK3", "20250301")).expect("parse");
    let err = am.segments("ERR").next().expect("ERR");
    assert_eq!(err.get(1, 1), Some("PID"));
    assert_eq!(
        err.fields[0][0][3],
        vec![
            "101".to_string(),
            "Required field missing".into(),
            "HL70357".into()
        ]
    );
}

#[test]
fn mllp_frames_survive_garbage_splits_and_oversize() {
    let mut d = Deframer::new(1024);
    let one = frame(b"MSH|first");
    let two = frame(b"MSH|second");
    let mut stream = b"garbage\r\n".to_vec();
    stream.extend_from_slice(&one);
    stream.extend_from_slice(b"\x00noise");
    stream.extend_from_slice(&two);
    // Byte by byte: frame ends split across reads.
    let mut got = Vec::new();
    for b in &stream {
        got.extend(d.push(std::slice::from_ref(b)));
    }
    assert_eq!(
        got,
        vec![
            Frame::Message(b"MSH|first".to_vec()),
            Frame::Message(b"MSH|second".to_vec())
        ]
    );
    // All at once.
    assert_eq!(Deframer::new(1024).push(&stream).len(), 2);
    // Too large, then a good one: the listener keeps going.
    let mut d = Deframer::new(16);
    let mut big = frame(&[b'x'; 100]);
    big.extend_from_slice(&frame(b"MSH|ok"));
    assert_eq!(
        d.push(&big),
        vec![
            Frame::TooLarge {
                head: vec![b'x'; 100]
            },
            Frame::Message(b"MSH|ok".to_vec())
        ]
    );
    // Too large across reads: the head is the frame's start, kept once.
    let mut d = Deframer::new(16);
    let mut big = frame(b"MSH|head\rOBX|");
    big.splice(big.len() - 2..big.len() - 2, [b'y'; 40]);
    let (a, b) = big.split_at(20);
    assert!(d.push(a).is_empty());
    match d.push(b).as_slice() {
        [Frame::TooLarge { head }] => assert!(head.starts_with(b"MSH|head\rOBX|yy")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn formatted_text_line_breaks() {
    let m = Message::parse("MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\rOBX|1|FT|GDT||双肺纹理清晰。\\.br\\心影不大。\\.in+4\\")
        .expect("parse");
    assert_eq!(m.get("OBX", 5, 1), Some("双肺纹理清晰。\n心影不大。"));
}
