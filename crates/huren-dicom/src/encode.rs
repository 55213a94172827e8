//! Encoding small datasets (C-FIND identifiers) in the presentation context's transfer
//! syntax (PS3.5 §7.1). Values are given as DICOM JSON (PS3.18 Annex F), which is how
//! query results are already represented.

use crate::vr::Vr;
use serde_json::Value;

/// Encodes one element from its DICOM JSON form. Unsupported shapes (sequences with items,
/// inline binary) are encoded empty: C-FIND returns them as "no value".
pub fn element(
    out: &mut Vec<u8>,
    tag: u32,
    vr: &str,
    json: Option<&Value>,
    explicit: bool,
    big_endian: bool,
) {
    let vr_code = vr.as_bytes();
    let vrv = if vr_code.len() == 2 {
        Vr::from_bytes([vr_code[0], vr_code[1]]).unwrap_or(Vr::UN)
    } else {
        Vr::UN
    };
    let values: Vec<&Value> = json
        .and_then(|j| j.get("Value"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut bytes: Vec<u8> = Vec::new();
    match vrv {
        Vr::US | Vr::SS => {
            for v in &values {
                let n = v.as_i64().unwrap_or(0) as u16;
                bytes.extend_from_slice(&if big_endian {
                    n.to_be_bytes()
                } else {
                    n.to_le_bytes()
                });
            }
        }
        Vr::UL | Vr::SL => {
            for v in &values {
                let n = v.as_i64().unwrap_or(0) as u32;
                bytes.extend_from_slice(&if big_endian {
                    n.to_be_bytes()
                } else {
                    n.to_le_bytes()
                });
            }
        }
        Vr::SQ => {}
        _ if vrv.is_binary() => {}
        _ => {
            let text: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Object(pn) => {
                        let g =
                            |k: &str| pn.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                        let mut s =
                            format!("{}={}={}", g("Alphabetic"), g("Ideographic"), g("Phonetic"));
                        while s.ends_with('=') {
                            s.pop();
                        }
                        s
                    }
                    _ => String::new(),
                })
                .collect();
            bytes = text.join("\\").into_bytes();
            if bytes.len() % 2 == 1 {
                bytes.push(if vrv == Vr::UI { 0 } else { b' ' });
            }
        }
    }
    let (g, e) = ((tag >> 16) as u16, tag as u16);
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    out.extend_from_slice(&u16b(g));
    out.extend_from_slice(&u16b(e));
    if explicit {
        out.extend_from_slice(&vrv.0);
        if vrv.has_long_header() {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&u32b(bytes.len() as u32));
        } else {
            out.extend_from_slice(&u16b(bytes.len() as u16));
        }
    } else {
        out.extend_from_slice(&u32b(bytes.len() as u32));
    }
    out.extend_from_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn person_name_and_numbers() {
        let mut out = Vec::new();
        element(
            &mut out,
            0x0010_0010,
            "PN",
            Some(&json!({"vr":"PN","Value":[{"Alphabetic":"Xu^Ming","Ideographic":"徐^明"}]})),
            true,
            false,
        );
        let text = "Xu^Ming=徐^明".as_bytes();
        assert_eq!(&out[0..4], &[0x10, 0x00, 0x10, 0x00]);
        assert_eq!(&out[4..6], b"PN");
        assert_eq!(
            u16::from_le_bytes([out[6], out[7]]) as usize,
            text.len() + text.len() % 2
        );
        let mut out = Vec::new();
        element(
            &mut out,
            0x0020_1208,
            "IS",
            Some(&json!({"vr":"IS","Value":[500]})),
            false,
            false,
        );
        assert_eq!(&out[8..], b"500 ");
        let mut out = Vec::new();
        element(&mut out, 0x0008_0020, "DA", None, true, false);
        assert_eq!(out.len(), 8);
    }
}
