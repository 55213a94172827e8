//! What the scorers read of a header, taken from the DICOM JSON model (PS3.18 F.2) the archive
//! already keeps for every instance.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The attributes the scorers use; `tags` lists every attribute present (for conformance).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub modality: String,
    pub sop_class: Option<String>,
    pub image_type: Vec<String>,
    pub rows: Option<u32>,
    pub columns: Option<u32>,
    pub bits_stored: Option<u32>,
    pub pixel_representation: Option<u32>,
    pub photometric: Option<String>,
    /// Row and column spacing, mm (0028,0030).
    pub pixel_spacing: Option<(f64, f64)>,
    /// (0018,1164) Imager Pixel Spacing, mm (projection radiography's detector pitch).
    pub imager_pixel_spacing: Option<(f64, f64)>,
    pub slice_thickness: Option<f64>,
    pub kvp: Option<f64>,
    pub convolution_kernel: Option<String>,
    /// CTDIvol, mGy (0018,9345).
    pub ctdi_vol: Option<f64>,
    /// (0018,1100) Reconstruction Diameter, mm: the field the CT reconstructed.
    pub reconstruction_diameter: Option<f64>,
    /// (0028,2110) Lossy Image Compression "01", or a ratio in (0028,2112): the pixels were
    /// compressed lossily at some point, at this ratio when known.
    pub lossy: Option<f64>,
    /// IEC 62494-1 exposure index (0018,1411), target (0018,1412), deviation index (0018,1413).
    pub exposure_index: Option<f64>,
    pub target_exposure_index: Option<f64>,
    pub deviation_index: Option<f64>,
    pub instance_number: Option<i64>,
    pub body_part: Option<String>,
    pub view_position: Option<String>,
    /// (0020,1002): how many images the acquisition made, when the modality says.
    pub images_in_acquisition: Option<i64>,
    /// (0018,1312) In-plane Phase Encoding Direction: `ROW` or `COL` (MR).
    pub phase_encoding: Option<String>,
    pub image_position: Option<[f64; 3]>,
    pub image_orientation: Option<[f64; 6]>,
    pub tags: BTreeSet<String>,
}

fn values<'a>(doc: &'a Map<String, Value>, tag: &str) -> Option<&'a Vec<Value>> {
    doc.get(tag)?.get("Value")?.as_array()
}

fn num(doc: &Map<String, Value>, tag: &str, i: usize) -> Option<f64> {
    let v = values(doc, tag)?.get(i)?;
    // DS and IS may arrive as JSON numbers or as strings (PS3.18 F.2.3.1).
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn text(doc: &Map<String, Value>, tag: &str) -> Option<String> {
    values(doc, tag)?
        .first()?
        .as_str()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Header {
    pub fn from_json(doc: &Map<String, Value>) -> Header {
        let arr = |tag: &str, n: usize| -> Option<Vec<f64>> {
            let v: Vec<f64> = (0..n).map(|i| num(doc, tag, i)).collect::<Option<_>>()?;
            Some(v)
        };
        Header {
            modality: text(doc, "00080060").unwrap_or_default(),
            sop_class: text(doc, "00080016"),
            image_type: values(doc, "00080008")
                .map(|v| {
                    v.iter()
                        .filter_map(|x| x.as_str().map(|s| s.trim().to_uppercase()))
                        .collect()
                })
                .unwrap_or_default(),
            rows: num(doc, "00280010", 0).map(|v| v as u32),
            columns: num(doc, "00280011", 0).map(|v| v as u32),
            bits_stored: num(doc, "00280101", 0).map(|v| v as u32),
            pixel_representation: num(doc, "00280103", 0).map(|v| v as u32),
            photometric: text(doc, "00280004"),
            pixel_spacing: arr("00280030", 2).map(|v| (v[0], v[1])),
            imager_pixel_spacing: arr("00181164", 2).map(|v| (v[0], v[1])),
            slice_thickness: num(doc, "00180050", 0),
            kvp: num(doc, "00180060", 0),
            convolution_kernel: text(doc, "00181210"),
            ctdi_vol: num(doc, "00189345", 0),
            reconstruction_diameter: num(doc, "00181100", 0),
            lossy: match (text(doc, "00282110").as_deref(), num(doc, "00282112", 0)) {
                (_, Some(ratio)) if ratio > 1.0 => Some(ratio),
                (Some("01"), _) => Some(0.0),
                _ => None,
            },
            exposure_index: num(doc, "00181411", 0),
            target_exposure_index: num(doc, "00181412", 0),
            deviation_index: num(doc, "00181413", 0),
            instance_number: num(doc, "00200013", 0).map(|v| v as i64),
            body_part: text(doc, "00180015").map(|s| s.to_uppercase()),
            view_position: text(doc, "00185101").map(|s| s.to_uppercase()),
            images_in_acquisition: num(doc, "00201002", 0).map(|v| v as i64),
            phase_encoding: text(doc, "00181312").map(|s| s.to_uppercase()),
            image_position: arr("00200032", 3).map(|v| [v[0], v[1], v[2]]),
            image_orientation: arr("00200037", 6).map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]),
            tags: doc
                .iter()
                .filter(|(_, v)| {
                    v.get("Value").is_some()
                        || v.get("BulkDataURI").is_some()
                        || v.get("InlineBinary").is_some()
                })
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }
}
