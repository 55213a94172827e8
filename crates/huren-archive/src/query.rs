//! Queries over the index, shared by QIDO-RS (PS3.18 §10.6) and C-FIND (PS3.4 C.4.1):
//! which attributes can be matched, how a request value becomes a matcher (PS3.4 §C.2.2.2),
//! and how a matched row becomes DICOM JSON. Pure: storage turns a [`Query`] into SQL.

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Patient,
    Study,
    Series,
    Instance,
}

/// Attributes the index can match on, with their tag and VR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    PatientName,
    PatientId,
    IssuerOfPatientId,
    PatientBirthDate,
    PatientSex,
    StudyInstanceUid,
    StudyDate,
    StudyTime,
    AccessionNumber,
    StudyId,
    StudyDescription,
    ReferringPhysicianName,
    ModalitiesInStudy,
    SeriesInstanceUid,
    Modality,
    SeriesNumber,
    SeriesDescription,
    BodyPartExamined,
    SopInstanceUid,
    SopClassUid,
    InstanceNumber,
}

pub const KEYS: &[(Key, u32, &str, &str, Level)] = &[
    (
        Key::PatientName,
        0x0010_0010,
        "PatientName",
        "PN",
        Level::Patient,
    ),
    (
        Key::PatientId,
        0x0010_0020,
        "PatientID",
        "LO",
        Level::Patient,
    ),
    (
        Key::IssuerOfPatientId,
        0x0010_0021,
        "IssuerOfPatientID",
        "LO",
        Level::Patient,
    ),
    (
        Key::PatientBirthDate,
        0x0010_0030,
        "PatientBirthDate",
        "DA",
        Level::Patient,
    ),
    (
        Key::PatientSex,
        0x0010_0040,
        "PatientSex",
        "CS",
        Level::Patient,
    ),
    (
        Key::StudyInstanceUid,
        0x0020_000D,
        "StudyInstanceUID",
        "UI",
        Level::Study,
    ),
    (Key::StudyDate, 0x0008_0020, "StudyDate", "DA", Level::Study),
    (Key::StudyTime, 0x0008_0030, "StudyTime", "TM", Level::Study),
    (
        Key::AccessionNumber,
        0x0008_0050,
        "AccessionNumber",
        "SH",
        Level::Study,
    ),
    (Key::StudyId, 0x0020_0010, "StudyID", "SH", Level::Study),
    (
        Key::StudyDescription,
        0x0008_1030,
        "StudyDescription",
        "LO",
        Level::Study,
    ),
    (
        Key::ReferringPhysicianName,
        0x0008_0090,
        "ReferringPhysicianName",
        "PN",
        Level::Study,
    ),
    (
        Key::ModalitiesInStudy,
        0x0008_0061,
        "ModalitiesInStudy",
        "CS",
        Level::Study,
    ),
    (
        Key::SeriesInstanceUid,
        0x0020_000E,
        "SeriesInstanceUID",
        "UI",
        Level::Series,
    ),
    (Key::Modality, 0x0008_0060, "Modality", "CS", Level::Series),
    (
        Key::SeriesNumber,
        0x0020_0011,
        "SeriesNumber",
        "IS",
        Level::Series,
    ),
    (
        Key::SeriesDescription,
        0x0008_103E,
        "SeriesDescription",
        "LO",
        Level::Series,
    ),
    (
        Key::BodyPartExamined,
        0x0018_0015,
        "BodyPartExamined",
        "CS",
        Level::Series,
    ),
    (
        Key::SopInstanceUid,
        0x0008_0018,
        "SOPInstanceUID",
        "UI",
        Level::Instance,
    ),
    (
        Key::SopClassUid,
        0x0008_0016,
        "SOPClassUID",
        "UI",
        Level::Instance,
    ),
    (
        Key::InstanceNumber,
        0x0020_0013,
        "InstanceNumber",
        "IS",
        Level::Instance,
    ),
];

impl Key {
    /// By keyword (`PatientName`) or tag (`00100010`), as QIDO parameters name them.
    pub fn lookup(name: &str) -> Option<(Key, u32, &'static str, Level)> {
        let tag = u32::from_str_radix(name, 16)
            .ok()
            .filter(|_| name.len() == 8);
        KEYS.iter()
            .find(|(_, t, kw, _, _)| *kw == name || Some(*t) == tag)
            .map(|(k, t, _, vr, l)| (*k, *t, *vr, *l))
    }

    pub fn by_tag(tag: u32) -> Option<(Key, &'static str, Level)> {
        KEYS.iter()
            .find(|(_, t, _, _, _)| *t == tag)
            .map(|(k, _, _, vr, l)| (*k, *vr, *l))
    }
}

/// A request value turned into a matching rule (PS3.4 §C.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exact value (case-insensitive for PN, as PS3.4 permits).
    Single(String),
    /// `*` and `?` wildcards.
    Wildcard(String),
    /// `from-to`, either side may be open.
    Range(Option<String>, Option<String>),
    /// Backslash-separated UIDs (or values, for CS/SH).
    List(Vec<String>),
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("{0} cannot be matched")]
    UnsupportedKey(String),
    #[error("invalid value for {key}: {reason}")]
    InvalidValue { key: &'static str, reason: String },
}

/// Parses a request value for an attribute of the given VR. `None` means universal matching
/// (an empty value: return the attribute, do not filter).
pub fn matcher(key: &'static str, vr: &str, raw: &str) -> Result<Option<Matcher>, QueryError> {
    let v = raw.trim();
    if v.is_empty() || v == "*" {
        return Ok(None);
    }
    let invalid = |reason: &str| QueryError::InvalidValue {
        key,
        reason: reason.to_owned(),
    };
    match vr {
        "DA" | "TM" | "DT" => {
            let clean = |s: &str| -> Result<Option<String>, QueryError> {
                let s: String = s
                    .trim()
                    .chars()
                    .filter(|c| !matches!(c, '.' | ':') || vr == "TM" && *c == '.')
                    .collect();
                if s.is_empty() {
                    return Ok(None);
                }
                if !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    return Err(invalid("dates and times are digits, with '-' for a range"));
                }
                Ok(Some(s))
            };
            match v.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (clean(a)?, clean(b)?);
                    if a.is_none() && b.is_none() {
                        return Ok(None);
                    }
                    Ok(Some(Matcher::Range(a, b)))
                }
                None => Ok(clean(v)?.map(Matcher::Single)),
            }
        }
        "UI" => {
            let list: Vec<String> = v
                .split(['\\', ','])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            if list
                .iter()
                .any(|u| !u.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            {
                return Err(invalid("UIDs are digits and dots"));
            }
            Ok(Some(if list.len() == 1 {
                Matcher::Single(list[0].clone())
            } else {
                Matcher::List(list)
            }))
        }
        _ => {
            if v.contains(['*', '?']) {
                Ok(Some(Matcher::Wildcard(v.to_owned())))
            } else if v.contains('\\') && vr != "PN" {
                Ok(Some(Matcher::List(
                    v.split('\\').map(str::to_owned).collect(),
                )))
            } else {
                Ok(Some(Matcher::Single(v.to_owned())))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub key: Key,
    pub matcher: Matcher,
}

#[derive(Debug, Clone)]
pub struct Query {
    pub level: Level,
    pub conditions: Vec<Condition>,
    pub limit: u32,
    pub offset: u32,
    /// Keyset pagination: only rows whose key at the query's level is greater than this, in
    /// key order (stable while rows are added, unlike OFFSET). Streaming C-FIND uses it.
    pub after_key: Option<i64>,
    /// Only records of the person holding this identity number (the use case sets it from
    /// PatientID + an identity-number IssuerOfPatientID; adapters leave it `None`).
    pub person: Option<PersonKey>,
    /// Only records of these persons (internal keys): the reader's relationships. Set by the
    /// use case from the grant, never by adapters.
    pub persons_in: Option<Vec<i64>>,
    /// With `persons_in`: also the studies these institutions performed (a hospital system's
    /// own data). Set by the use case from the grant, never by adapters.
    pub institutions_or: Option<Vec<i64>>,
}

/// An identity number as the index can look it up: its system and blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonKey {
    pub system: String,
    pub blind: String,
}

/// One matched row, flattened across the hierarchy (fields of lower levels are `None` at
/// higher levels). Patient fields are the *current* patient record, not the object's copy.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub patient_name: Option<String>,
    pub patient_id: String,
    pub issuer_of_patient_id: String,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub study_key: i64,
    pub study_instance_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub modalities_in_study: String,
    pub study_related_series: i64,
    pub study_related_instances: i64,
    pub series_key: Option<i64>,
    pub series_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub body_part_examined: Option<String>,
    pub series_related_instances: Option<i64>,
    pub instance_key: Option<i64>,
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub transfer_syntax_uid: Option<String>,
    /// Where the object's bytes are (instance level only).
    pub blob_key: Option<String>,
    /// Frame locations as computed at ingest (instance level only; `huren_dicom::pixel`).
    pub pixel_layout: Option<String>,
    /// The stored object's size in bytes (instance level only).
    pub object_size: Option<i64>,
}

fn put(m: &mut Map<String, Value>, tag: u32, vr: &str, v: Option<Value>) {
    let mut el = json!({ "vr": vr });
    if let Some(v) = v
        && !v.is_null()
    {
        el["Value"] = Value::Array(vec![v]);
    }
    m.insert(format!("{tag:08X}"), el);
}

fn s(v: &Option<String>) -> Option<Value> {
    v.as_ref()
        .filter(|x| !x.is_empty())
        .map(|x| Value::String(x.clone()))
}

fn pn(v: &Option<String>) -> Option<Value> {
    let raw = v.as_ref().filter(|x| !x.is_empty())?;
    Some(huren_dicom::json::person_name(raw))
}

/// One DICOM JSON element: tag, VR, values (none: the attribute is present but empty).
type El = (u32, &'static str, Vec<Value>);

fn el(o: &mut Vec<El>, tag: u32, vr: &'static str, v: Option<Value>) {
    o.push((tag, vr, v.filter(|v| !v.is_null()).into_iter().collect()));
}

/// The attributes of a match at `level`, as DICOM JSON (PS3.18 §10.6.3.3, Tables 6.7.1-2..2b).
/// `base` is the DICOMweb base URL, for RetrieveURL.
pub fn to_json(m: &Match, level: Level, base: &str) -> Map<String, Value> {
    let mut o = Map::new();
    for (tag, vr, values) in elements(m, level, base) {
        let mut e = Map::new();
        e.insert("vr".into(), Value::String(vr.into()));
        if !values.is_empty() {
            e.insert("Value".into(), Value::Array(values));
        }
        o.insert(format!("{tag:08X}"), Value::Object(e));
    }
    o
}

/// The same attributes as [`to_json`], written straight to `out` as one JSON object (tags in
/// ascending order, PS3.18 §F.2): a QIDO page of 101 studies costs a tenth of building maps.
pub fn write_json(m: &Match, level: Level, base: &str, out: &mut Vec<u8>) {
    let mut els = elements(m, level, base);
    els.sort_by_key(|e| e.0);
    out.push(b'{');
    for (k, (tag, vr, values)) in els.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{tag:08X}\":{{\"vr\":\"{vr}\"").as_bytes());
        if !values.is_empty() {
            out.extend_from_slice(b",\"Value\":");
            // Serializing a slice of values into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, values);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

fn elements(m: &Match, level: Level, base: &str) -> Vec<El> {
    let mut o: Vec<El> = Vec::with_capacity(32);
    el(&mut o, 0x0008_0005, "CS", Some(json!("ISO_IR 192")));
    el(&mut o, 0x0008_0020, "DA", s(&m.study_date));
    el(&mut o, 0x0008_0030, "TM", s(&m.study_time));
    el(&mut o, 0x0008_0050, "SH", s(&m.accession_number));
    el(&mut o, 0x0008_0056, "CS", Some(json!("ONLINE")));
    let mods: Vec<Value> = m
        .modalities_in_study
        .split('\\')
        .filter(|x| !x.is_empty())
        .map(|x| json!(x))
        .collect();
    o.push((0x0008_0061, "CS", mods));
    el(&mut o, 0x0008_0090, "PN", pn(&m.referring_physician_name));
    el(&mut o, 0x0008_1030, "LO", s(&m.study_description));
    el(&mut o, 0x0010_0010, "PN", pn(&m.patient_name));
    el(&mut o, 0x0010_0020, "LO", Some(json!(m.patient_id)));
    el(
        &mut o,
        0x0010_0021,
        "LO",
        Some(json!(m.issuer_of_patient_id)),
    );
    el(&mut o, 0x0010_0030, "DA", s(&m.patient_birth_date));
    el(&mut o, 0x0010_0040, "CS", s(&m.patient_sex));
    el(&mut o, 0x0020_000D, "UI", Some(json!(m.study_instance_uid)));
    el(&mut o, 0x0020_0010, "SH", s(&m.study_id));
    el(
        &mut o,
        0x0020_1206,
        "IS",
        Some(json!(m.study_related_series)),
    );
    el(
        &mut o,
        0x0020_1208,
        "IS",
        Some(json!(m.study_related_instances)),
    );
    let study_url = format!("{base}/studies/{}", m.study_instance_uid);
    if level == Level::Study {
        el(&mut o, 0x0008_1190, "UR", Some(json!(study_url)));
        return o;
    }
    let series_uid = m.series_instance_uid.clone().unwrap_or_default();
    el(&mut o, 0x0008_0060, "CS", s(&m.modality));
    el(&mut o, 0x0008_103E, "LO", s(&m.series_description));
    el(&mut o, 0x0018_0015, "CS", s(&m.body_part_examined));
    el(&mut o, 0x0020_000E, "UI", Some(json!(series_uid)));
    el(&mut o, 0x0020_0011, "IS", m.series_number.map(|n| json!(n)));
    el(
        &mut o,
        0x0020_1209,
        "IS",
        m.series_related_instances.map(|n| json!(n)),
    );
    let series_url = format!("{study_url}/series/{series_uid}");
    if level == Level::Series {
        el(&mut o, 0x0008_1190, "UR", Some(json!(series_url)));
        return o;
    }
    el(&mut o, 0x0008_0016, "UI", s(&m.sop_class_uid));
    el(&mut o, 0x0008_0018, "UI", s(&m.sop_instance_uid));
    el(
        &mut o,
        0x0020_0013,
        "IS",
        m.instance_number.map(|n| json!(n)),
    );
    el(&mut o, 0x0028_0010, "US", m.rows.map(|n| json!(n)));
    el(&mut o, 0x0028_0011, "US", m.columns.map(|n| json!(n)));
    el(
        &mut o,
        0x0028_0008,
        "IS",
        m.number_of_frames.map(|n| json!(n)),
    );
    el(
        &mut o,
        0x0008_1190,
        "UR",
        Some(json!(format!(
            "{series_url}/instances/{}",
            m.sop_instance_uid.clone().unwrap_or_default()
        ))),
    );
    o
}

/// Overlays the current patient module (from the patient record) on an instance's stored
/// JSON, so patient updates and merges show without rewriting objects.
pub fn overlay_patient(doc: &mut Map<String, Value>, m: &Match) {
    put(doc, 0x0010_0010, "PN", pn(&m.patient_name));
    put(doc, 0x0010_0020, "LO", Some(json!(m.patient_id)));
    put(doc, 0x0010_0021, "LO", Some(json!(m.issuer_of_patient_id)));
    put(doc, 0x0010_0030, "DA", s(&m.patient_birth_date));
    put(doc, 0x0010_0040, "CS", s(&m.patient_sex));
    doc.insert(
        "00080005".into(),
        json!({ "vr": "CS", "Value": ["ISO_IR 192"] }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_per_ps3_4_c_2_2_2() {
        assert_eq!(matcher("StudyDate", "DA", "").unwrap(), None);
        assert_eq!(
            matcher("StudyDate", "DA", "20250101-").unwrap(),
            Some(Matcher::Range(Some("20250101".into()), None))
        );
        assert_eq!(
            matcher("StudyDate", "DA", "-20250101").unwrap(),
            Some(Matcher::Range(None, Some("20250101".into())))
        );
        assert!(matcher("StudyDate", "DA", "2025-01-01").is_err());
        assert_eq!(
            matcher("PatientName", "PN", "徐*").unwrap(),
            Some(Matcher::Wildcard("徐*".into()))
        );
        assert_eq!(
            matcher("StudyInstanceUID", "UI", "1.2\\1.3").unwrap(),
            Some(Matcher::List(vec!["1.2".into(), "1.3".into()]))
        );
        assert_eq!(
            matcher("Modality", "CS", "CT").unwrap(),
            Some(Matcher::Single("CT".into()))
        );
        assert!(matcher("StudyInstanceUID", "UI", "abc").is_err());
        assert_eq!(Key::lookup("00100010").map(|k| k.0), Some(Key::PatientName));
        assert_eq!(
            Key::lookup("ModalitiesInStudy").map(|k| k.0),
            Some(Key::ModalitiesInStudy)
        );
    }
}
