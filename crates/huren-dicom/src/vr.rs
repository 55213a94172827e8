//! Value representations (PS3.5 §6.2) and the implicit-VR dictionary lookup.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vr(pub [u8; 2]);

impl Vr {
    pub const AE: Vr = Vr(*b"AE");
    pub const AS: Vr = Vr(*b"AS");
    pub const AT: Vr = Vr(*b"AT");
    pub const CS: Vr = Vr(*b"CS");
    pub const DA: Vr = Vr(*b"DA");
    pub const DS: Vr = Vr(*b"DS");
    pub const DT: Vr = Vr(*b"DT");
    pub const FD: Vr = Vr(*b"FD");
    pub const FL: Vr = Vr(*b"FL");
    pub const IS: Vr = Vr(*b"IS");
    pub const LO: Vr = Vr(*b"LO");
    pub const LT: Vr = Vr(*b"LT");
    pub const OB: Vr = Vr(*b"OB");
    pub const OD: Vr = Vr(*b"OD");
    pub const OF: Vr = Vr(*b"OF");
    pub const OL: Vr = Vr(*b"OL");
    pub const OV: Vr = Vr(*b"OV");
    pub const OW: Vr = Vr(*b"OW");
    pub const PN: Vr = Vr(*b"PN");
    pub const SH: Vr = Vr(*b"SH");
    pub const SL: Vr = Vr(*b"SL");
    pub const SQ: Vr = Vr(*b"SQ");
    pub const SS: Vr = Vr(*b"SS");
    pub const ST: Vr = Vr(*b"ST");
    pub const SV: Vr = Vr(*b"SV");
    pub const TM: Vr = Vr(*b"TM");
    pub const UC: Vr = Vr(*b"UC");
    pub const UI: Vr = Vr(*b"UI");
    pub const UL: Vr = Vr(*b"UL");
    pub const UN: Vr = Vr(*b"UN");
    pub const UR: Vr = Vr(*b"UR");
    pub const US: Vr = Vr(*b"US");
    pub const UT: Vr = Vr(*b"UT");
    pub const UV: Vr = Vr(*b"UV");

    const ALL: [Vr; 34] = [
        Vr::AE,
        Vr::AS,
        Vr::AT,
        Vr::CS,
        Vr::DA,
        Vr::DS,
        Vr::DT,
        Vr::FD,
        Vr::FL,
        Vr::IS,
        Vr::LO,
        Vr::LT,
        Vr::OB,
        Vr::OD,
        Vr::OF,
        Vr::OL,
        Vr::OV,
        Vr::OW,
        Vr::PN,
        Vr::SH,
        Vr::SL,
        Vr::SQ,
        Vr::SS,
        Vr::ST,
        Vr::SV,
        Vr::TM,
        Vr::UC,
        Vr::UI,
        Vr::UL,
        Vr::UN,
        Vr::UR,
        Vr::US,
        Vr::UT,
        Vr::UV,
    ];

    pub fn from_bytes(b: [u8; 2]) -> Option<Vr> {
        Self::ALL.iter().copied().find(|v| v.0 == b)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("UN")
    }

    /// VRs whose explicit-VR header uses a 2-byte reserved field and a 4-byte length
    /// (PS3.5 §7.1.2, Table 7.1-1).
    pub fn has_long_header(self) -> bool {
        matches!(
            &self.0,
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        )
    }

    /// Binary VRs, candidates for bulk data in DICOM JSON (PS3.18 §F.2.7).
    pub fn is_binary(self) -> bool {
        matches!(
            &self.0,
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"UN"
        )
    }

    /// VRs whose text is encoded in the Specific Character Set rather than the default
    /// repertoire (PS3.5 §6.1.2.3).
    pub fn is_charset_text(self) -> bool {
        matches!(
            &self.0,
            b"SH" | b"LO" | b"ST" | b"LT" | b"UC" | b"UT" | b"PN"
        )
    }

    /// Text VRs that may carry several values separated by backslash (PS3.5 §6.4).
    /// LT, ST, UT and UR are single-valued: a backslash there is content.
    pub fn is_multi_valued_text(self) -> bool {
        !matches!(&self.0, b"LT" | b"ST" | b"UT" | b"UR") && self.is_text()
    }

    pub fn is_text(self) -> bool {
        matches!(
            &self.0,
            b"AE"
                | b"AS"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"ST"
                | b"TM"
                | b"UC"
                | b"UI"
                | b"UR"
                | b"UT"
        )
    }
}

/// VR of a tag in an implicit-VR dataset (PS3.5 §7.1.3): the standard dictionary, group
/// lengths as UL, private creators as LO, everything else unknown as UN.
pub fn implicit_vr(tag: u32) -> Vr {
    let group = (tag >> 16) as u16;
    let element = tag as u16;
    if element == 0 {
        return Vr::UL;
    }
    if group % 2 == 1 {
        return if (0x0010..=0x00ff).contains(&element) {
            Vr::LO
        } else {
            Vr::UN
        };
    }
    match StandardDataDictionary
        .by_tag(Tag(group, element))
        .map(|e| e.vr())
    {
        Some(VirtualVr::Exact(vr)) => from_core(vr),
        Some(VirtualVr::Px) | Some(VirtualVr::Ox) => Vr::OW,
        Some(VirtualVr::Xs) => Vr::US,
        Some(VirtualVr::Lt) => Vr::OW,
        _ => Vr::UN,
    }
}

fn from_core(vr: VR) -> Vr {
    let s = vr.to_string();
    let b = s.as_bytes();
    if b.len() == 2 {
        Vr::from_bytes([b[0], b[1]]).unwrap_or(Vr::UN)
    } else {
        Vr::UN
    }
}

/// Standard keyword of a tag, for logs and error comments.
pub fn keyword(tag: u32) -> Option<&'static str> {
    StandardDataDictionary
        .by_tag(Tag((tag >> 16) as u16, tag as u16))
        .map(|e| e.alias)
}
