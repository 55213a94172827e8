//! Metadata conformance per modality: the attributes a receiving doctor and the other scorers
//! rely on (PS3.3 C.7–C.8 modules, Type 1/2 attributes and the geometry ones). The score is the
//! share present, as a percentage.

use crate::{Header, Pixels, Score, reason};

const COMMON: &[(&str, &str)] = &[
    ("00080016", "SOPClassUID"),
    ("00080018", "SOPInstanceUID"),
    ("00080020", "StudyDate"),
    ("00080060", "Modality"),
    ("00080080", "InstitutionName"),
    ("00100020", "PatientID"),
    ("0020000D", "StudyInstanceUID"),
    ("0020000E", "SeriesInstanceUID"),
];

const CT: &[(&str, &str)] = &[
    ("00280030", "PixelSpacing"),
    ("00180050", "SliceThickness"),
    ("00200032", "ImagePositionPatient"),
    ("00200037", "ImageOrientationPatient"),
    ("00281052", "RescaleIntercept"),
    ("00281053", "RescaleSlope"),
    ("00180060", "KVP"),
];

const DX: &[(&str, &str)] = &[
    ("00181164", "ImagerPixelSpacing"),
    ("00185101", "ViewPosition"),
    ("00180015", "BodyPartExamined"),
];

const MR: &[(&str, &str)] = &[
    ("00280030", "PixelSpacing"),
    ("00180050", "SliceThickness"),
    ("00200032", "ImagePositionPatient"),
    ("00200037", "ImageOrientationPatient"),
    ("00180080", "RepetitionTime"),
    ("00180081", "EchoTime"),
    ("00180087", "MagneticFieldStrength"),
];

pub fn conformance(h: &Header, _px: Option<&Pixels>) -> Score {
    const NAME: &str = "metadata";
    let specific: &[(&str, &str)] = match h.modality.as_str() {
        "CT" => CT,
        "DX" | "CR" | "DR" => DX,
        "MR" => MR,
        _ => &[],
    };
    let wanted: Vec<&(&str, &str)> = COMMON.iter().chain(specific).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(tag, _)| !h.tags.contains(*tag))
        .map(|(_, name)| *name)
        .collect();
    let score = 100.0 * (wanted.len() - missing.len()) as f64 / wanted.len() as f64;
    let reasons = if missing.is_empty() {
        Vec::new()
    } else {
        vec![reason(
            "metadata_missing",
            &format!("缺少必要属性：{}", missing.join("、")),
            &format!("missing attributes: {}", missing.join(", ")),
        )]
    };
    Score::new(NAME, score, Some(missing.len() as f64), reasons)
}
