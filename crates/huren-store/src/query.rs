//! QIDO-RS / C-FIND queries as one SQL statement per request, whatever the level: lower-level
//! keys become EXISTS sub-queries, so round trips do not grow with the hierarchy.

use huren_archive::query::{Key, Level, Match, Matcher, Query};
use sqlx::Row;

fn column(key: Key) -> (&'static str, Level) {
    match key {
        Key::PatientName => ("p.name_raw", Level::Patient),
        Key::PatientId => ("p.patient_id", Level::Patient),
        Key::IssuerOfPatientId => ("p.issuer", Level::Patient),
        Key::PatientBirthDate => ("p.birth_date", Level::Patient),
        Key::PatientSex => ("p.sex", Level::Patient),
        Key::StudyInstanceUid => ("s.study_uid", Level::Study),
        Key::StudyDate => ("s.study_date", Level::Study),
        Key::StudyTime => ("s.study_time", Level::Study),
        Key::AccessionNumber => ("s.accession_number", Level::Study),
        Key::StudyId => ("s.study_id", Level::Study),
        Key::StudyDescription => ("s.description", Level::Study),
        Key::ReferringPhysicianName => ("s.referring_physician", Level::Study),
        Key::ModalitiesInStudy => ("se.modality", Level::Series),
        Key::SeriesInstanceUid => ("se.series_uid", Level::Series),
        Key::Modality => ("se.modality", Level::Series),
        Key::SeriesNumber => ("se.series_number", Level::Series),
        Key::SeriesDescription => ("se.description", Level::Series),
        Key::BodyPartExamined => ("se.body_part", Level::Series),
        Key::SopInstanceUid => ("i.sop_uid", Level::Instance),
        Key::SopClassUid => ("i.sop_class_uid", Level::Instance),
        Key::InstanceNumber => ("i.instance_number", Level::Instance),
    }
}

/// `*`/`?` wildcards to a LIKE pattern with `\` as escape.
fn like(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            '?' => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

fn predicate(col: &str, m: &Matcher, nocase: bool, binds: &mut Vec<String>) -> String {
    let collate = if nocase { " COLLATE NOCASE" } else { "" };
    match m {
        Matcher::Single(v) => {
            binds.push(v.clone());
            format!("{col} = ?{collate}")
        }
        Matcher::Wildcard(v) => {
            binds.push(like(v));
            format!("{col} LIKE ? ESCAPE '\\'")
        }
        Matcher::Range(a, b) => {
            let mut parts = Vec::new();
            if let Some(a) = a {
                binds.push(a.clone());
                parts.push(format!("{col} >= ?"));
            }
            if let Some(b) = b {
                // An end date includes the whole day/time prefix: '20250301' ≤ '20250301…'.
                binds.push(format!("{b}\u{7f}"));
                parts.push(format!("{col} <= ?"));
            }
            format!("({})", parts.join(" AND "))
        }
        Matcher::List(vs) => {
            let marks = vec!["?"; vs.len()].join(", ");
            binds.extend(vs.iter().cloned());
            format!("{col} IN ({marks})")
        }
    }
}

fn person_name(m: &Matcher, binds: &mut Vec<String>) -> String {
    // A name matches when any component group (or the whole value) matches: 徐* finds
    // 徐^明 in the ideographic group, Xu* finds it in the alphabetic one.
    let cols = [
        "p.name_raw",
        "p.name_alphabetic",
        "p.name_ideographic",
        "p.name_phonetic",
    ];
    let parts: Vec<String> = cols.iter().map(|c| predicate(c, m, true, binds)).collect();
    format!("({})", parts.join(" OR "))
}

pub fn build(q: &Query) -> (String, Vec<String>) {
    let mut binds = Vec::new();
    let mut wheres: Vec<String> = Vec::new();
    let (select, from, base, order) = match q.level {
        Level::Patient | Level::Study => (
            "s.id AS study_key",
            "study s JOIN patient p ON p.id = s.patient_id",
            "s.num_instances > 0",
            "s.study_date DESC, s.study_time DESC, s.id DESC",
        ),
        Level::Series => (
            "s.id AS study_key, se.id AS series_key",
            "series se JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id",
            "se.num_instances > 0",
            "se.series_number, se.id",
        ),
        Level::Instance => (
            "s.id AS study_key, se.id AS series_key, i.id AS instance_key",
            "instance i JOIN series se ON se.id = i.series_id JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id",
            "i.lifecycle = 'active'",
            "i.instance_number, i.id",
        ),
    };
    wheres.push(base.to_owned());
    for c in &q.conditions {
        let (col, key_level) = column(c.key);
        let pred = if c.key == Key::PatientName {
            person_name(&c.matcher, &mut binds)
        } else {
            predicate(
                col,
                &c.matcher,
                c.key == Key::ReferringPhysicianName,
                &mut binds,
            )
        };
        let level_rank = |l: Level| match l {
            Level::Patient | Level::Study => 0,
            Level::Series => 1,
            Level::Instance => 2,
        };
        let depth = level_rank(q.level);
        let need = level_rank(key_level);
        let pred = if need <= depth {
            pred
        } else if key_level == Level::Series {
            format!(
                "EXISTS (SELECT 1 FROM series se WHERE se.study_id = s.id AND se.num_instances > 0 AND {pred})"
            )
        } else if depth == 1 {
            format!(
                "EXISTS (SELECT 1 FROM instance i WHERE i.series_id = se.id AND i.lifecycle = 'active' AND {pred})"
            )
        } else {
            format!(
                "EXISTS (SELECT 1 FROM instance i WHERE i.study_id = s.id AND i.lifecycle = 'active' AND {pred})"
            )
        };
        wheres.push(pred);
    }
    let (key_col, order) = match q.level {
        Level::Patient | Level::Study => ("s.id", order),
        Level::Series => ("se.id", order),
        Level::Instance => ("i.id", order),
    };
    let order = if let Some(after) = q.after_key {
        wheres.push(format!("{key_col} > {after}"));
        key_col
    } else {
        order
    };
    let lower = match q.level {
        Level::Patient | Level::Study => {
            "NULL AS series_uid, NULL AS modality, NULL AS series_number, NULL AS series_description, NULL AS body_part, NULL AS series_instances"
        }
        _ => {
            "se.series_uid, se.modality, se.series_number, se.description AS series_description, se.body_part, se.num_instances AS series_instances"
        }
    };
    let inst = match q.level {
        Level::Instance => {
            "i.sop_uid, i.sop_class_uid, i.instance_number, i.rows, i.columns, i.number_of_frames, i.transfer_syntax_uid, i.blob_key, i.pixel_layout"
        }
        _ => {
            "NULL AS sop_uid, NULL AS sop_class_uid, NULL AS instance_number, NULL AS rows, NULL AS columns, NULL AS number_of_frames, NULL AS transfer_syntax_uid, NULL AS blob_key, NULL AS pixel_layout"
        }
    };
    let sql = format!(
        "SELECT {select}, p.name_raw, p.patient_id, p.issuer, p.birth_date, p.sex,
                s.study_uid, s.study_date, s.study_time, s.accession_number, s.study_id, s.description, s.referring_physician,
                s.modalities, s.num_series, s.num_instances, {lower}, {inst}
         FROM {from} WHERE {} ORDER BY {order} LIMIT {} OFFSET {}",
        wheres.join(" AND "),
        q.limit,
        q.offset
    );
    (sql, binds)
}

pub fn to_match(r: &sqlx::sqlite::SqliteRow, level: Level) -> Match {
    let opt_i = |name: &str| r.try_get::<Option<i64>, _>(name).ok().flatten();
    let opt_s = |name: &str| r.try_get::<Option<String>, _>(name).ok().flatten();
    Match {
        patient_name: opt_s("name_raw"),
        patient_id: opt_s("patient_id").unwrap_or_default(),
        issuer_of_patient_id: opt_s("issuer").unwrap_or_default(),
        patient_birth_date: opt_s("birth_date"),
        patient_sex: opt_s("sex"),
        study_key: opt_i("study_key").unwrap_or_default(),
        study_instance_uid: opt_s("study_uid").unwrap_or_default(),
        study_date: opt_s("study_date"),
        study_time: opt_s("study_time"),
        accession_number: opt_s("accession_number"),
        study_id: opt_s("study_id"),
        study_description: opt_s("description"),
        referring_physician_name: opt_s("referring_physician"),
        modalities_in_study: opt_s("modalities").unwrap_or_default(),
        study_related_series: opt_i("num_series").unwrap_or_default(),
        study_related_instances: opt_i("num_instances").unwrap_or_default(),
        series_key: if level == Level::Series || level == Level::Instance {
            opt_i("series_key")
        } else {
            None
        },
        series_instance_uid: opt_s("series_uid"),
        modality: opt_s("modality"),
        series_number: opt_i("series_number"),
        series_description: opt_s("series_description"),
        body_part_examined: opt_s("body_part"),
        series_related_instances: opt_i("series_instances"),
        instance_key: if level == Level::Instance {
            opt_i("instance_key")
        } else {
            None
        },
        sop_instance_uid: opt_s("sop_uid"),
        sop_class_uid: opt_s("sop_class_uid"),
        instance_number: opt_i("instance_number"),
        rows: opt_i("rows"),
        columns: opt_i("columns"),
        number_of_frames: opt_i("number_of_frames"),
        transfer_syntax_uid: opt_s("transfer_syntax_uid"),
        blob_key: opt_s("blob_key"),
        pixel_layout: opt_s("pixel_layout"),
    }
}
