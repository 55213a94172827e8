//! DICOM JSON Model (PS3.18 Annex F) built once at ingest from the scanned dataset.
//!
//! Bulk values are not inlined: they become `BulkDataURI`s of the form
//! `bulk/{offset}-{length}` (byte range in the stored object), relative to the instance's
//! WADO-RS URL. The retrieve layer prefixes the instance URL when serving metadata, so the
//! stored JSON does not depend on the host name the archive is reached by.

use crate::attrs::PersonName;
use crate::parse::{Dataset, Element, Value};
use crate::values::TextContext;
use crate::vr::Vr;
use base64::Engine;
use serde_json::{Map, Value as J, json};

/// A decoded PN value as its DICOM JSON object (PS3.18 §F.2.2): the non-empty component groups.
pub fn person_name(decoded: &str) -> J {
    let pn = PersonName::parse(decoded);
    let mut m = Map::new();
    for (k, s) in [
        ("Alphabetic", pn.alphabetic),
        ("Ideographic", pn.ideographic),
        ("Phonetic", pn.phonetic),
    ] {
        if !s.is_empty() {
            m.insert(k.into(), J::String(s));
        }
    }
    J::Object(m)
}

pub fn to_json(ds: &Dataset, cx: &TextContext) -> J {
    J::Object(dataset(ds, cx))
}

fn dataset(ds: &Dataset, cx: &TextContext) -> Map<String, J> {
    let mut map = Map::new();
    for el in &ds.elements {
        // Group lengths are retired and meaningless after re-encoding (PS3.5 §7.2); trailing
        // padding is not an attribute.
        if el.tag & 0xFFFF == 0 || el.tag == 0xFFFC_FFFC {
            continue;
        }
        map.insert(format!("{:08X}", el.tag), element(el, cx));
    }
    map
}

fn element(el: &Element, cx: &TextContext) -> J {
    let vr = el.vr.as_str().to_owned();
    let mut obj = Map::new();
    obj.insert("vr".into(), J::String(vr));
    match &el.value {
        Value::Sequence(items) => {
            let values: Vec<J> = items
                .iter()
                .map(|item| J::Object(dataset(item, &cx.for_item(item))))
                .collect();
            if !values.is_empty() {
                obj.insert("Value".into(), J::Array(values));
            }
        }
        Value::Bulk { offset, length } => {
            obj.insert(
                "BulkDataURI".into(),
                J::String(format!("bulk/{offset}-{length}")),
            );
        }
        Value::Fragments { .. } => {
            obj.insert("BulkDataURI".into(), J::String("bulk/pixeldata".into()));
        }
        Value::Bytes(raw) => {
            if let Some(values) = values(el, raw, cx) {
                obj.insert(values.0.into(), values.1);
            }
        }
    }
    J::Object(obj)
}

fn values(el: &Element, raw: &[u8], cx: &TextContext) -> Option<(&'static str, J)> {
    if raw.is_empty() {
        return None;
    }
    let vr = el.vr;
    if vr.is_binary() {
        return Some((
            "InlineBinary",
            J::String(base64::engine::general_purpose::STANDARD.encode(raw)),
        ));
    }
    let arr: Vec<J> = match vr {
        Vr::PN => cx
            .strings(el)
            .iter()
            .map(|v| {
                if v.is_empty() {
                    return J::Null;
                }
                person_name(v)
            })
            .collect(),
        Vr::DS | Vr::FL | Vr::FD => {
            if vr == Vr::DS {
                // PS3.18 §F.2.3: DS as JSON numbers; an unparseable value becomes null rather
                // than failing the whole object.
                cx.strings(el)
                    .iter()
                    .map(|s| s.trim().parse::<f64>().ok().map_or(J::Null, |f| json!(f)))
                    .collect()
            } else {
                cx.floats(el)
                    .into_iter()
                    .map(|f| if f.is_finite() { json!(f) } else { J::Null })
                    .collect()
            }
        }
        Vr::IS => cx
            .strings(el)
            .iter()
            .map(|s| s.trim().parse::<i64>().ok().map_or(J::Null, |i| json!(i)))
            .collect(),
        Vr::US | Vr::SS | Vr::UL | Vr::SL => cx.ints(el).into_iter().map(|i| json!(i)).collect(),
        Vr::UV | Vr::SV => {
            // Beyond 2^53 a JSON number loses precision; PS3.18 §F.2.3.1 allows strings.
            cx.ints(el)
                .into_iter()
                .map(|i| {
                    if i.unsigned_abs() < (1u64 << 53) {
                        json!(i)
                    } else {
                        J::String(i.to_string())
                    }
                })
                .collect()
        }
        Vr::AT => raw
            .chunks_exact(4)
            .map(|c| {
                let (g, e) = if cx.big_endian {
                    (
                        u16::from_be_bytes([c[0], c[1]]),
                        u16::from_be_bytes([c[2], c[3]]),
                    )
                } else {
                    (
                        u16::from_le_bytes([c[0], c[1]]),
                        u16::from_le_bytes([c[2], c[3]]),
                    )
                };
                J::String(format!("{g:04X}{e:04X}"))
            })
            .collect(),
        _ => cx
            .strings(el)
            .into_iter()
            .map(|s| if s.is_empty() { J::Null } else { J::String(s) })
            .collect(),
    };
    if arr.is_empty() || arr.iter().all(J::is_null) && arr.len() == 1 {
        return None;
    }
    Some(("Value", J::Array(arr)))
}

/// Deflate-compresses a JSON document for storage in the index (metadata is read often and
/// compresses ~8×; RFC 1951 raw deflate, as HTTP `Content-Encoding: deflate` can carry it).
pub fn deflate(value: &J) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail; serde_json::to_writer fails only on non-string map keys.
    let _ = serde_json::to_writer(&mut enc, value);
    let _ = enc.flush();
    enc.finish().unwrap_or_default()
}

pub fn inflate(raw: &[u8]) -> Result<J, std::io::Error> {
    let dec = flate2::read::DeflateDecoder::new(raw);
    serde_json::from_reader(dec).map_err(std::io::Error::other)
}

/// Raw deflate of bytes (RFC 1951).
pub fn deflate_bytes(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(raw);
    enc.finish().unwrap_or_default()
}

pub fn inflate_bytes(raw: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}
