//! The attributes the index keeps for every instance (patient, study, series, instance
//! levels), decoded once at ingest. Later paths (QIDO, C-FIND, recognition, QC) read these
//! columns, never the stored object.

use crate::parse::Dataset;
use crate::values::TextContext;
use serde::{Deserialize, Serialize};

/// A person name split into its component groups (PS3.5 §6.2.1): alphabetic, ideographic,
/// phonetic — Chinese equipment commonly writes `Wang^XiaoDong=王^小东`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    pub raw: String,
    pub alphabetic: String,
    pub ideographic: String,
    pub phonetic: String,
}

impl PersonName {
    pub fn parse(decoded: &str) -> Self {
        let mut groups = decoded.splitn(3, '=');
        let mut next = || groups.next().unwrap_or("").trim_end_matches('^').to_owned();
        let alphabetic = next();
        let ideographic = next();
        let phonetic = next();
        PersonName {
            raw: decoded.to_owned(),
            alphabetic,
            ideographic,
            phonetic,
        }
    }

    /// The form shown and searched first: ideographic when present (Chinese characters),
    /// else alphabetic.
    pub fn display(&self) -> &str {
        if !self.ideographic.is_empty() {
            &self.ideographic
        } else {
            &self.alphabetic
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPatientId {
    pub patient_id: String,
    pub issuer: Option<String>,
    pub type_of_patient_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexAttributes {
    pub specific_character_set: Vec<String>,
    // Patient (PS3.3 C.7.1.1)
    pub patient_id: Option<String>,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<PersonName>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub other_patient_ids: Vec<OtherPatientId>,
    // Study (C.7.2.1)
    pub study_instance_uid: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub institution_name: Option<String>,
    // Series (C.7.3.1)
    pub series_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub body_part_examined: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    pub station_name: Option<String>,
    pub manufacturer: Option<String>,
    pub manufacturer_model_name: Option<String>,
    // Instance (C.12.1, C.7.6.x)
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub content_date: Option<String>,
    pub content_time: Option<String>,
    pub image_type: Vec<String>,
    pub lossy_image_compression: Option<String>,
    pub number_of_frames: Option<i64>,
    pub rows: Option<i64>,
    pub columns: Option<i64>,
    pub bits_allocated: Option<i64>,
    pub samples_per_pixel: Option<i64>,
    pub photometric_interpretation: Option<String>,
    pub images_in_acquisition: Option<i64>,
    pub slice_thickness: Option<f64>,
    pub image_position_patient: Vec<f64>,
    pub slice_location: Option<f64>,
}

pub mod tags {
    pub const SPECIFIC_CHARACTER_SET: u32 = 0x0008_0005;
    pub const IMAGE_TYPE: u32 = 0x0008_0008;
    pub const SOP_CLASS_UID: u32 = 0x0008_0016;
    pub const SOP_INSTANCE_UID: u32 = 0x0008_0018;
    pub const STUDY_DATE: u32 = 0x0008_0020;
    pub const SERIES_DATE: u32 = 0x0008_0021;
    pub const CONTENT_DATE: u32 = 0x0008_0023;
    pub const STUDY_TIME: u32 = 0x0008_0030;
    pub const SERIES_TIME: u32 = 0x0008_0031;
    pub const CONTENT_TIME: u32 = 0x0008_0033;
    pub const ACCESSION_NUMBER: u32 = 0x0008_0050;
    pub const MODALITY: u32 = 0x0008_0060;
    pub const MANUFACTURER: u32 = 0x0008_0070;
    pub const INSTITUTION_NAME: u32 = 0x0008_0080;
    pub const REFERRING_PHYSICIAN_NAME: u32 = 0x0008_0090;
    pub const STATION_NAME: u32 = 0x0008_1010;
    pub const STUDY_DESCRIPTION: u32 = 0x0008_1030;
    pub const SERIES_DESCRIPTION: u32 = 0x0008_103E;
    pub const MANUFACTURER_MODEL_NAME: u32 = 0x0008_1090;
    pub const PATIENT_NAME: u32 = 0x0010_0010;
    pub const PATIENT_ID: u32 = 0x0010_0020;
    pub const ISSUER_OF_PATIENT_ID: u32 = 0x0010_0021;
    pub const TYPE_OF_PATIENT_ID: u32 = 0x0010_0022;
    pub const PATIENT_BIRTH_DATE: u32 = 0x0010_0030;
    pub const PATIENT_SEX: u32 = 0x0010_0040;
    pub const OTHER_PATIENT_IDS_SEQUENCE: u32 = 0x0010_1002;
    pub const BODY_PART_EXAMINED: u32 = 0x0018_0015;
    pub const SLICE_THICKNESS: u32 = 0x0018_0050;
    pub const STUDY_INSTANCE_UID: u32 = 0x0020_000D;
    pub const SERIES_INSTANCE_UID: u32 = 0x0020_000E;
    pub const STUDY_ID: u32 = 0x0020_0010;
    pub const SERIES_NUMBER: u32 = 0x0020_0011;
    pub const INSTANCE_NUMBER: u32 = 0x0020_0013;
    pub const IMAGE_POSITION_PATIENT: u32 = 0x0020_0032;
    pub const IMAGES_IN_ACQUISITION: u32 = 0x0020_1002;
    pub const SLICE_LOCATION: u32 = 0x0020_1041;
    pub const SAMPLES_PER_PIXEL: u32 = 0x0028_0002;
    pub const PHOTOMETRIC_INTERPRETATION: u32 = 0x0028_0004;
    pub const NUMBER_OF_FRAMES: u32 = 0x0028_0008;
    pub const ROWS: u32 = 0x0028_0010;
    pub const COLUMNS: u32 = 0x0028_0011;
    pub const BITS_ALLOCATED: u32 = 0x0028_0100;
    pub const LOSSY_IMAGE_COMPRESSION: u32 = 0x0028_2110;
    pub const EXTENDED_OFFSET_TABLE: u32 = 0x7FE0_0001;
    pub const PIXEL_DATA: u32 = 0x7FE0_0010;
}

impl IndexAttributes {
    pub fn extract(ds: &Dataset, cx: &TextContext) -> Self {
        use tags::*;
        let s = |tag| cx.string(ds, tag);
        let other_patient_ids = ds
            .items(OTHER_PATIENT_IDS_SEQUENCE)
            .iter()
            .filter_map(|item| {
                let icx = cx.for_item(item);
                Some(OtherPatientId {
                    patient_id: icx.string(item, PATIENT_ID)?,
                    issuer: icx.string(item, ISSUER_OF_PATIENT_ID),
                    type_of_patient_id: icx.string(item, TYPE_OF_PATIENT_ID),
                })
            })
            .collect();
        IndexAttributes {
            specific_character_set: cx.charset.terms().to_vec(),
            patient_id: s(PATIENT_ID),
            issuer_of_patient_id: s(ISSUER_OF_PATIENT_ID),
            patient_name: ds.get(PATIENT_NAME).and_then(|el| {
                let v = cx.strings(el).into_iter().next()?;
                (!v.is_empty()).then(|| PersonName::parse(&v))
            }),
            patient_birth_date: s(PATIENT_BIRTH_DATE),
            patient_sex: s(PATIENT_SEX),
            other_patient_ids,
            study_instance_uid: s(STUDY_INSTANCE_UID),
            study_date: s(STUDY_DATE),
            study_time: s(STUDY_TIME),
            accession_number: s(ACCESSION_NUMBER),
            study_id: s(STUDY_ID),
            study_description: s(STUDY_DESCRIPTION),
            referring_physician_name: s(REFERRING_PHYSICIAN_NAME),
            institution_name: s(INSTITUTION_NAME),
            series_instance_uid: s(SERIES_INSTANCE_UID),
            modality: s(MODALITY),
            series_number: cx.int(ds, SERIES_NUMBER),
            series_description: s(SERIES_DESCRIPTION),
            body_part_examined: s(BODY_PART_EXAMINED),
            series_date: s(SERIES_DATE),
            series_time: s(SERIES_TIME),
            station_name: s(STATION_NAME),
            manufacturer: s(MANUFACTURER),
            manufacturer_model_name: s(MANUFACTURER_MODEL_NAME),
            sop_class_uid: s(SOP_CLASS_UID),
            sop_instance_uid: s(SOP_INSTANCE_UID),
            instance_number: cx.int(ds, INSTANCE_NUMBER),
            content_date: s(CONTENT_DATE),
            content_time: s(CONTENT_TIME),
            image_type: cx.all_strings(ds, IMAGE_TYPE),
            lossy_image_compression: s(LOSSY_IMAGE_COMPRESSION),
            number_of_frames: cx.int(ds, NUMBER_OF_FRAMES),
            rows: cx.int(ds, ROWS),
            columns: cx.int(ds, COLUMNS),
            bits_allocated: cx.int(ds, BITS_ALLOCATED),
            samples_per_pixel: cx.int(ds, SAMPLES_PER_PIXEL),
            photometric_interpretation: s(PHOTOMETRIC_INTERPRETATION),
            images_in_acquisition: cx.int(ds, IMAGES_IN_ACQUISITION),
            slice_thickness: cx.float(ds, SLICE_THICKNESS),
            image_position_patient: cx.floats_of(ds, IMAGE_POSITION_PATIENT),
            slice_location: cx.float(ds, SLICE_LOCATION),
        }
    }
}
