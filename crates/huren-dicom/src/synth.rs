//! Synthetic Part 10 objects for the demo data set, tests and benchmarks: explicit VR little
//! endian, real CT/DX/MR headers, pixels from a smooth phantom. Nothing here is copied from a
//! patient; names are generated.

use crate::meta::file_meta;

/// An explicit-VR little-endian dataset under construction; elements must be added in
/// ascending tag order.
#[derive(Default)]
pub struct DatasetWriter {
    out: Vec<u8>,
}

impl DatasetWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raw(&mut self, tag: u32, vr: &[u8; 2], value: &[u8]) -> &mut Self {
        let mut v = value.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
        }
        self.out
            .extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        self.out.extend_from_slice(&(tag as u16).to_le_bytes());
        self.out.extend_from_slice(vr);
        let long = crate::vr::Vr(*vr).has_long_header();
        if long {
            self.out.extend_from_slice(&[0, 0]);
            self.out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        self.out.extend_from_slice(&v);
        self
    }

    pub fn str(&mut self, tag: u32, vr: &[u8; 2], value: &str) -> &mut Self {
        self.raw(tag, vr, value.as_bytes())
    }

    pub fn us(&mut self, tag: u32, v: u16) -> &mut Self {
        self.raw(tag, b"US", &v.to_le_bytes())
    }

    /// A sequence of already-encoded items (defined lengths).
    pub fn seq(&mut self, tag: u32, items: &[Vec<u8>]) -> &mut Self {
        let mut body = Vec::new();
        for item in items {
            body.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            body.extend_from_slice(&(item.len() as u32).to_le_bytes());
            body.extend_from_slice(item);
        }
        self.raw(tag, b"SQ", &body)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.out
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

#[derive(Debug, Clone)]
pub struct SynthPatient {
    pub id: String,
    pub issuer: Option<String>,
    /// A resident identity number and the issuer name it is sent under, written as an
    /// OtherPatientIDsSequence item (PS3.3 C.7.1.1).
    pub other_id: Option<(String, String)>,
    /// `Alphabetic=Ideographic`, e.g. `Zhang^San=张^三`.
    pub name: String,
    pub birth_date: String,
    pub sex: String,
}

#[derive(Debug, Clone)]
pub struct SynthImage<'a> {
    pub patient: &'a SynthPatient,
    pub modality: &'a str,
    pub study_uid: &'a str,
    pub series_uid: &'a str,
    pub sop_uid: &'a str,
    pub study_date: &'a str,
    pub study_time: &'a str,
    pub accession: &'a str,
    pub institution_name: &'a str,
    pub study_description: &'a str,
    pub series_number: i32,
    pub instance_number: i32,
    pub rows: u16,
    pub columns: u16,
    pub slice_position: f64,
}

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const DX_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1.1";

/// A complete Part 10 image (UTF-8 character set) with 16-bit pixels from a phantom.
pub fn image(img: &SynthImage) -> Vec<u8> {
    let sop_class = match img.modality {
        "MR" => MR_IMAGE_STORAGE,
        "DX" => DX_IMAGE_STORAGE,
        _ => CT_IMAGE_STORAGE,
    };
    let mut w = DatasetWriter::new();
    w.str(0x0008_0005, b"CS", "ISO_IR 192")
        .str(
            0x0008_0008,
            b"CS",
            if img.modality == "DX" {
                "ORIGINAL\\PRIMARY"
            } else {
                "ORIGINAL\\PRIMARY\\AXIAL"
            },
        )
        .str(0x0008_0016, b"UI", sop_class)
        .str(0x0008_0018, b"UI", img.sop_uid)
        .str(0x0008_0020, b"DA", img.study_date)
        .str(0x0008_0030, b"TM", img.study_time)
        .str(0x0008_0050, b"SH", img.accession)
        .str(0x0008_0060, b"CS", img.modality)
        .str(0x0008_0070, b"LO", "HUREN SYNTH")
        .str(0x0008_0080, b"LO", img.institution_name)
        .str(0x0008_1030, b"LO", img.study_description)
        .str(0x0010_0010, b"PN", &img.patient.name)
        .str(0x0010_0020, b"LO", &img.patient.id);
    if let Some(issuer) = &img.patient.issuer {
        w.str(0x0010_0021, b"LO", issuer);
    }
    w.str(0x0010_0030, b"DA", &img.patient.birth_date)
        .str(0x0010_0040, b"CS", &img.patient.sex);
    if let Some((number, issuer)) = &img.patient.other_id {
        let mut item = DatasetWriter::new();
        item.str(0x0010_0020, b"LO", number)
            .str(0x0010_0021, b"LO", issuer)
            .str(0x0010_0022, b"CS", "TEXT");
        w.seq(0x0010_1002, &[item.into_bytes()]);
    }
    if img.modality == "CT" {
        w.str(0x0018_0050, b"DS", "1.25")
            .str(0x0018_0060, b"DS", "120");
    }
    w.str(0x0020_000D, b"UI", img.study_uid)
        .str(0x0020_000E, b"UI", img.series_uid)
        .str(0x0020_0010, b"SH", "1")
        .str(0x0020_0011, b"IS", &img.series_number.to_string())
        .str(0x0020_0013, b"IS", &img.instance_number.to_string());
    if img.modality != "DX" {
        w.str(
            0x0020_0032,
            b"DS",
            &format!("-250\\-250\\{:.2}", img.slice_position),
        )
        .str(0x0020_0037, b"DS", "1\\0\\0\\0\\1\\0");
    }
    w.us(0x0028_0002, 1)
        .str(0x0028_0004, b"CS", "MONOCHROME2")
        .us(0x0028_0010, img.rows)
        .us(0x0028_0011, img.columns);
    if img.modality != "DX" {
        w.str(0x0028_0030, b"DS", "0.9765625\\0.9765625");
    }
    w.us(0x0028_0100, 16)
        .us(0x0028_0101, 12)
        .us(0x0028_0102, 11)
        .us(0x0028_0103, if img.modality == "CT" { 1 } else { 0 });
    if img.modality == "CT" {
        w.str(0x0028_1050, b"DS", "40")
            .str(0x0028_1051, b"DS", "400")
            .str(0x0028_1052, b"DS", "-1024")
            .str(0x0028_1053, b"DS", "1");
    }
    w.raw(
        0x7FE0_0010,
        b"OW",
        &phantom(img.rows, img.columns, img.slice_position),
    );
    let mut out = file_meta(
        sop_class,
        img.sop_uid,
        crate::ts::EXPLICIT_VR_LE,
        Some("HUREN_SYNTH"),
    );
    out.extend_from_slice(w.bytes());
    out
}

/// An ellipse of soft tissue with a brighter core, in stored values (rescale −1024).
fn phantom(rows: u16, cols: u16, z: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows as usize * cols as usize * 2);
    let (cy, cx) = (f64::from(rows) / 2.0, f64::from(cols) / 2.0);
    for y in 0..rows {
        for x in 0..cols {
            let dy = (f64::from(y) - cy) / (cy * 0.8);
            let dx = (f64::from(x) - cx) / (cx * 0.9);
            let r = dx * dx + dy * dy;
            let v: u16 = if r < 0.15 + 0.05 * (z / 50.0).sin() {
                1024 + 300
            } else if r < 1.0 {
                1024 + 40 + ((x ^ y) & 7)
            } else {
                24
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// A deterministic UID under huren's 2.25 root for synthetic objects.
pub fn uid(parts: &[u64]) -> String {
    let mut s = String::from("2.25.327082363167925278541007026679203501182.9");
    for p in parts {
        s.push('.');
        s.push_str(&p.to_string());
    }
    s
}
