//! The mutual recognition rules (检查检验结果互认, issue #7), pure and deterministic: the facts
//! about one prior result from another institution go in, a decision comes out — recognizable
//! (with its HR scope label), reference only, or not recognizable — with machine-readable
//! reasons and one line of explanation in Chinese and English.
//!
//! The engine advises; the receiving doctor decides (national Measures 国卫医发〔2022〕6号: the
//! receiving doctor's judgment is final). Every rule that is not met adds a [`Reason`] with the
//! verdict it alone would give; the decision is the worst of them, so a doctor sees every
//! reason, not only the first.
//!
//! The rules, in the order their reasons are listed:
//! 1. the result comes from **another institution** (not another campus of the same one);
//! 2. its item is **in the catalog**, and is the item asked for or an **equivalent** one;
//! 3. the **performer is qualified** for the item at the result's date: a qualification record
//!    (external quality assessment, QC-centre evaluation) valid that day, or by default a public
//!    二级-or-above hospital; lower-level institutions need a record from a city-level or higher
//!    evaluation; private institutions always need a record;
//! 4. the HR **scope covers the receiving institution**;
//! 5. it is **within the item's validity**: the reference date (the report date, else the
//!    study date, as a day in the region's zone) plus the item's days, inclusive;
//! 6. images: the study's **QC grade** meets the item's minimum (absent or uncalibrated: by
//!    policy, reference only by default); the series is **complete**; the images are **not
//!    lossy-compressed** unless the policy allows it;
//! 7. lab results: the result is **final** (or a correction of a final one).
//!
//! Everything the rules need is in [`Facts`]: the caller looks up institutions and
//! qualifications *as of the result's date*, and converts instants to days in the region's zone.

use huren_types::{InstitutionLevel, Ownership};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use time::Date;

// Days travel as `YYYY-MM-DD` (not `time`'s default [year, ordinal]).
time::serde::format_description!(day, Date, "[year]-[month]-[day]");

/// What the engine says of one prior result. Ordered from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    NotRecognizable,
    ReferenceOnly,
    Recognizable,
}

impl Verdict {
    pub fn label_zh(self) -> &'static str {
        match self {
            Verdict::Recognizable => "可互认",
            Verdict::ReferenceOnly => "仅供参考",
            Verdict::NotRecognizable => "不予互认",
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            Verdict::Recognizable => "recognizable",
            Verdict::ReferenceOnly => "reference only",
            Verdict::NotRecognizable => "not recognizable",
        }
    }
}

/// Image quality grade of a study (甲/乙/丙/废片), worst first: huren's one QC grade type.
pub use huren_types::QcGrade;

/// What the quality-control port knows of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "grade", rename_all = "snake_case")]
pub enum Qc {
    Graded(QcGrade),
    /// Scored, but by scorers not calibrated for this kind of image.
    Uncalibrated,
    /// Scored, but no image could be judged (blank frames are graded 废片, not this): too few
    /// of its pixel scorers could assess it.
    NotAssessable,
    /// Not scored (yet).
    Absent,
}

/// A lab result's status as sent (HL7 OBX-11, FHIR Observation.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabStatus {
    Final,
    /// A correction of a final result (HL7 C, FHIR corrected/amended).
    Corrected,
    Preliminary,
    /// Cancelled, entered in error, or anything else that is not a result.
    Withdrawn,
}

/// What kind of result, with what only that kind has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Imaging {
        qc: Qc,
        /// No missing instances, ImagesInAcquisition agrees, even spacing (the QC pipeline's
        /// completeness check); `None` when not checked.
        complete: Option<bool>,
        /// Any instance stored in a lossy transfer syntax, or with LossyImageCompression 01.
        lossy: bool,
    },
    Lab {
        status: LabStatus,
    },
}

/// An institution as it was on the day that matters (the result's date for the performer, the
/// decision's date for the receiver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub code: String,
    /// The legal institution: campuses of one hospital share it, and are not "outside" each
    /// other. Defaults to the code.
    pub organization: String,
    pub name: String,
    pub level: InstitutionLevel,
    pub ownership: Ownership,
    /// The areas it belongs to, as scope keys: its GB/T 2260 division and those above it
    /// (`division:500103`, `division:500100`, `division:500000`), `consortium:ygt1`, and the
    /// older free-text `city:重庆`. A scope covers it when they share a key; `national` covers
    /// all.
    pub areas: Vec<String>,
    /// Where it is, in words (重庆市渝中区), for explanations.
    #[serde(default)]
    pub place: Option<String>,
}

/// Who evaluated a qualification (a qualification from a lower level does not qualify a
/// lower-level institution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatedBy {
    County,
    City,
    Province,
    National,
}

/// A qualification record: an institution passed external quality assessment (labs, 室间质评)
/// or the QC centre's evaluation (imaging) for an item or all items of a kind, for a period and a
/// scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub institution: String,
    /// An item code, or `*` for every item.
    pub item: String,
    /// The HR label it earns, e.g. 川渝HR.
    pub scope_label: String,
    /// The area keys that label covers.
    pub covers: Vec<String>,
    pub evaluated_by: EvaluatedBy,
    #[serde(with = "day")]
    pub valid_from: Date,
    /// Inclusive.
    #[serde(with = "day")]
    pub valid_until: Date,
    /// The record's id, so a decision can name it.
    pub record: String,
}

/// A catalog item as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub code: String,
    pub name_zh: String,
    pub name_en: Option<String>,
    pub validity_days: u32,
    /// The default HR label and the area keys it covers (for results qualified by default).
    pub scope_label: Option<String>,
    pub covers: Vec<String>,
    /// Items a result of which counts as this one.
    pub equivalent: Vec<String>,
    /// Images: the lowest QC grade recognized.
    pub min_qc: Option<QcGrade>,
}

/// How the region applies the rules (configuration as versioned data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Public hospitals at this level or above are qualified without a record (二级).
    pub default_min_level: InstitutionLevel,
    /// The lowest evaluation level whose record qualifies a below-level or private institution.
    pub min_evaluator: EvaluatedBy,
    /// What a study without a (calibrated) QC grade gets.
    pub without_qc: Verdict,
    /// The lowest QC grade recognized for an item that names none (乙).
    pub default_min_qc: QcGrade,
    /// Lossy-compressed images may be recognized.
    pub allow_lossy: bool,
    /// What an incomplete series gets.
    pub incomplete_series: Verdict,
    /// What a study quality control could not assess gets (reference only by default, like a
    /// study without a grade).
    #[serde(default = "reference_only")]
    pub not_assessable_qc: Verdict,
}

fn reference_only() -> Verdict {
    Verdict::ReferenceOnly
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_min_level: InstitutionLevel::Secondary,
            min_evaluator: EvaluatedBy::City,
            without_qc: Verdict::ReferenceOnly,
            default_min_qc: QcGrade::B,
            allow_lossy: false,
            incomplete_series: Verdict::ReferenceOnly,
            not_assessable_qc: Verdict::ReferenceOnly,
        }
    }
}

/// Everything one decision depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The result's item as the catalog maps it; `None`: not in the catalog.
    pub result_item: Option<Item>,
    /// The item the doctor is ordering (an order-time reminder); `None` when the question is
    /// only whether the result itself is recognizable (encounter-time reminder).
    pub ordered_item: Option<Item>,
    pub evidence: Evidence,
    /// The report date, when a report was received.
    #[serde(with = "day::option")]
    pub report_date: Option<Date>,
    /// The study (or collection) date.
    #[serde(with = "day::option")]
    pub study_date: Option<Date>,
    /// The institution that performed it (not the one that sent it), as of the result's date.
    pub performer: Institution,
    /// The performer's qualification records (any dates; the engine picks those in force).
    pub qualifications: Vec<Qualification>,
    pub receiver: Institution,
    /// Today, in the region's zone (or the day a decision is re-checked as of).
    #[serde(with = "day")]
    pub today: Date,
    pub policy: Policy,
    /// Names of area keys for explanations (`division:500000` → 重庆市).
    #[serde(default)]
    pub area_names: std::collections::BTreeMap<String, String>,
}

/// A record the rules consulted, whether or not the verdict turned on it (issue #17): the
/// performer on the result's date, each qualification record and whether it was in force, the
/// scope rule, the validity window, the QC grade, completeness, compression, the lab status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consulted {
    /// `performer`, `qualification`, `scope`, `validity`, `qc`, `series`, `compression`,
    /// `lab_status`.
    pub what: &'static str,
    /// Whether this record is met (a qualification in force, the receiver in scope, …).
    pub met: bool,
    pub zh: String,
    pub en: String,
}

/// One rule not met. (Output only: stored decisions keep their JSON.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable, machine-readable.
    pub code: &'static str,
    /// What this reason alone gives.
    pub verdict: Verdict,
    pub zh: String,
    pub en: String,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The HR label when recognizable (e.g. 川渝HR).
    pub scope_label: Option<String>,
    /// The reference date used (report date, else study date).
    #[serde(with = "day::option")]
    pub reference_date: Option<Date>,
    /// The last day the result is recognizable, when the item is known.
    #[serde(with = "day::option")]
    pub valid_through: Option<Date>,
    /// The qualification record relied on, if any.
    pub qualification: Option<String>,
    pub reasons: Vec<Reason>,
    pub explanation_zh: String,
    pub explanation_en: String,
    /// Every record consulted, in the order of the rules.
    pub consulted: Vec<Consulted>,
}

fn consulted(what: &'static str, met: bool, zh: String, en: String) -> Consulted {
    Consulted { what, met, zh, en }
}

/// Area keys as words: division names where known.
fn area_words(keys: &[String], names: &std::collections::BTreeMap<String, String>) -> String {
    keys.iter()
        .map(|k| match (k.as_str(), names.get(k)) {
            ("national", _) => "全国".to_owned(),
            (_, Some(n)) => n.clone(),
            (k, None) => k.split_once(':').map_or(k, |(_, v)| v).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("、")
}

fn evaluator_zh(e: EvaluatedBy) -> &'static str {
    match e {
        EvaluatedBy::County => "县级",
        EvaluatedBy::City => "市级",
        EvaluatedBy::Province => "省级",
        EvaluatedBy::National => "国家级",
    }
}

fn reason(code: &'static str, verdict: Verdict, zh: String, en: String) -> Reason {
    Reason {
        code,
        verdict,
        zh,
        en,
    }
}

fn covers(keys: &[String], receiver: &Institution) -> bool {
    keys.iter()
        .any(|k| k == "national" || receiver.areas.contains(k))
}

fn level_rank(l: InstitutionLevel) -> u8 {
    match l {
        InstitutionLevel::Tertiary => 3,
        InstitutionLevel::Secondary => 2,
        InstitutionLevel::Primary => 1,
        InstitutionLevel::Other => 0,
    }
}

/// How the performer is qualified for `item` on `day`: a record in force (the best evaluator
/// first), or the default for public hospitals at or above the policy's level.
enum Qualified<'a> {
    ByRecord(&'a Qualification),
    ByDefault,
    No {
        lapsed: Option<&'a Qualification>,
        low_evaluator: Option<&'a Qualification>,
    },
}

fn qualified<'a>(f: &'a Facts, item: &Item, day: Date) -> Qualified<'a> {
    let mine = f.qualifications.iter().filter(|q| {
        q.institution.eq_ignore_ascii_case(&f.performer.code)
            && (q.item == item.code || q.item == "*")
    });
    let in_force = |q: &&Qualification| q.valid_from <= day && day <= q.valid_until;
    let mut best: Option<&Qualification> = None;
    let mut low_evaluator = None;
    let mut lapsed = None;
    for q in mine {
        if !in_force(&q) {
            lapsed = lapsed.or(Some(q));
        } else if q.evaluated_by < f.policy.min_evaluator {
            low_evaluator = low_evaluator.or(Some(q));
        } else if best.is_none_or(|b| q.evaluated_by > b.evaluated_by) {
            best = Some(q);
        }
    }
    if let Some(q) = best {
        return Qualified::ByRecord(q);
    }
    let by_level = level_rank(f.performer.level) >= level_rank(f.policy.default_min_level);
    if f.performer.ownership == Ownership::Public && by_level {
        return Qualified::ByDefault;
    }
    Qualified::No {
        lapsed,
        low_evaluator,
    }
}

use huren_types::day::iso;

/// The decision for one prior result. Deterministic: the same facts give the same decision.
pub fn decide(f: &Facts) -> Decision {
    use Verdict::*;
    let mut reasons = Vec::new();
    let mut seen = Vec::new();
    let p = &f.performer;
    let reference_date = f.report_date.or(f.study_date);
    let day_words = reference_date.map(iso).unwrap_or_else(|| "日期不详".into());
    seen.push(consulted(
        "performer",
        true,
        format!(
            "{}：{}{}医疗机构{}（{}）",
            p.name,
            p.level.label_zh(),
            if p.ownership == Ownership::Public {
                "公立"
            } else {
                "非公立"
            },
            p.place
                .as_deref()
                .map(|x| format!("，{x}"))
                .unwrap_or_default(),
            day_words
        ),
        format!(
            "{}: {} {} institution{} (as of {})",
            p.name,
            p.level.as_str(),
            p.ownership.as_str(),
            p.place
                .as_deref()
                .map(|x| format!(", {x}"))
                .unwrap_or_default(),
            day_words
        ),
    ));

    // 1. Outside: another institution, not another campus of the same one.
    if p.organization == f.receiver.organization {
        reasons.push(reason(
            "same_institution",
            NotRecognizable,
            format!("{}是本机构的结果，不属于外院互认", p.name),
            format!(
                "{} is this institution's own result, not another institution's",
                p.name
            ),
        ));
    }

    // 2. In the catalog, and the item asked for (or an equivalent).
    let item = match &f.result_item {
        None => {
            // Outside the catalog says nothing bad about the result: the doctor may use it
            // as a reference (issue #17), it just is not a recognition.
            reasons.push(reason(
                "item_not_in_catalog",
                ReferenceOnly,
                "该项目不在互认目录内".into(),
                "the item is not in the recognition catalog".into(),
            ));
            None
        }
        Some(item) => {
            if let Some(ordered) = &f.ordered_item
                && ordered.code != item.code
                && !ordered.equivalent.contains(&item.code)
            {
                reasons.push(reason(
                    "item_differs",
                    NotRecognizable,
                    format!("该结果是{}，不是所开立的{}", item.name_zh, ordered.name_zh),
                    format!(
                        "the result is {}, not the ordered {}",
                        item.name_en.as_deref().unwrap_or(&item.code),
                        ordered.name_en.as_deref().unwrap_or(&ordered.code)
                    ),
                ));
            }
            Some(item)
        }
    };

    let mut scope_label = None;
    let mut qualification = None;
    let mut valid_through = None;
    if let Some(item) = item {
        // 3. The performer qualified on the result's date. Every record of the performer for
        // the item is named, in force or not.
        for q in f.qualifications.iter().filter(|q| {
            q.institution.eq_ignore_ascii_case(&p.code) && (q.item == item.code || q.item == "*")
        }) {
            let in_force = reference_date.is_some_and(|d| q.valid_from <= d && d <= q.valid_until);
            seen.push(consulted(
                "qualification",
                in_force,
                format!(
                    "资质记录{}（{}评价，{}，{}至{}）：结果日期{}{}有效期内",
                    q.record,
                    evaluator_zh(q.evaluated_by),
                    q.scope_label,
                    iso(q.valid_from),
                    iso(q.valid_until),
                    day_words,
                    if in_force { "在" } else { "不在" }
                ),
                format!(
                    "qualification {} ({:?} evaluation, {}, {} to {}): {} on the result's date {}",
                    q.record,
                    q.evaluated_by,
                    q.scope_label,
                    iso(q.valid_from),
                    iso(q.valid_until),
                    if in_force { "in force" } else { "not in force" },
                    day_words
                ),
            ));
        }
        let (label, keys) = match reference_date.map(|d| qualified(f, item, d)) {
            Some(Qualified::ByRecord(q)) => {
                qualification = Some(q.record.clone());
                (Some(q.scope_label.clone()), q.covers.clone())
            }
            Some(Qualified::ByDefault) => {
                seen.push(consulted(
                    "qualification",
                    true,
                    format!(
                        "{}及以上公立医院默认具备互认资质（无需资质记录）",
                        f.policy.default_min_level.label_zh()
                    ),
                    format!(
                        "public hospitals of level {} or above are qualified by default",
                        f.policy.default_min_level.as_str()
                    ),
                ));
                (item.scope_label.clone(), item.covers.clone())
            }
            Some(Qualified::No {
                lapsed,
                low_evaluator,
            }) => {
                let day = reference_date.map(iso).unwrap_or_default();
                let (code, zh, en) = if let Some(q) = lapsed {
                    (
                        "qualification_not_in_force",
                        format!(
                            "{}的互认资质（{}，有效期{}至{}）在结果日期{}不在有效期内",
                            p.name,
                            q.record,
                            iso(q.valid_from),
                            iso(q.valid_until),
                            day
                        ),
                        format!(
                            "{}'s qualification {} ({} to {}) was not in force on the result's date {}",
                            p.name,
                            q.record,
                            iso(q.valid_from),
                            iso(q.valid_until),
                            day
                        ),
                    )
                } else if let Some(q) = low_evaluator {
                    (
                        "qualification_evaluator_too_low",
                        format!("{}的资质记录{}来自低于市级的评价", p.name, q.record),
                        format!(
                            "{}'s qualification {} comes from an evaluation below city level",
                            p.name, q.record
                        ),
                    )
                } else if p.ownership == Ownership::Private {
                    (
                        "private_without_qualification",
                        format!("{}为民营机构，无该项目的互认资质记录", p.name),
                        format!(
                            "{} is private and has no qualification record for this item",
                            p.name
                        ),
                    )
                } else {
                    (
                        "below_level_without_qualification",
                        format!(
                            "{}为{}机构，无市级及以上质控评价的资质记录",
                            p.name,
                            p.level.label_zh()
                        ),
                        format!(
                            "{} is a {} institution without a qualification from a city-level or higher evaluation",
                            p.name,
                            p.level.as_str()
                        ),
                    )
                };
                reasons.push(reason(code, NotRecognizable, zh, en));
                (None, Vec::new())
            }
            None => {
                reasons.push(reason(
                    "no_date",
                    NotRecognizable,
                    "结果没有报告日期或检查日期".into(),
                    "the result has neither a report date nor a study date".into(),
                ));
                (None, Vec::new())
            }
        };

        // 4. The scope covers the receiver.
        if let Some(label) = &label {
            let covered = covers(&keys, &f.receiver);
            let areas = area_words(&keys, &f.area_names);
            let receiver = match &f.receiver.place {
                Some(place) => format!("{}（{place}）", f.receiver.name),
                None => f.receiver.name.clone(),
            };
            seen.push(consulted(
                "scope",
                covered,
                format!(
                    "互认范围{label}：{areas}；接收机构{receiver}{}范围内",
                    if covered { "在" } else { "不在" }
                ),
                format!(
                    "scope {label}: {areas}; the receiver {receiver} is {}",
                    if covered { "inside" } else { "outside" }
                ),
            ));
            if covered {
                scope_label = Some(label.clone());
            } else {
                reasons.push(reason(
                    "scope_excludes_receiver",
                    NotRecognizable,
                    format!("互认范围{label}（{areas}）不包括{receiver}"),
                    format!("the scope {label} ({areas}) does not cover {receiver}"),
                ));
            }
        } else if !reasons
            .iter()
            .any(|r| r.code.contains("qualification") || r.code == "no_date")
        {
            reasons.push(reason(
                "no_scope",
                NotRecognizable,
                "该项目没有互认范围（HR标识）".into(),
                "the item has no recognition scope (HR mark)".into(),
            ));
        }

        // 5. Within the validity window, counted in days from the reference date.
        if let Some(day) = reference_date {
            let last = day.saturating_add(time::Duration::days(i64::from(item.validity_days)));
            valid_through = Some(last);
            seen.push(consulted(
                "validity",
                f.today <= last,
                format!(
                    "{}有效期{}天：自{}至{}，判定日{}",
                    item.name_zh,
                    item.validity_days,
                    iso(day),
                    iso(last),
                    iso(f.today)
                ),
                format!(
                    "valid {} days: {} through {}, judged on {}",
                    item.validity_days,
                    iso(day),
                    iso(last),
                    iso(f.today)
                ),
            ));
            if f.today > last {
                reasons.push(reason(
                    "expired",
                    NotRecognizable,
                    format!(
                        "已超过互认有效期（{}天，至{}）",
                        item.validity_days,
                        iso(last)
                    ),
                    format!(
                        "past the validity of {} days (through {})",
                        item.validity_days,
                        iso(last)
                    ),
                ));
            }
        }

        // 6. Images: quality, completeness, lossless.
        if let Evidence::Imaging {
            qc,
            complete,
            lossy,
        } = &f.evidence
        {
            let min = item.min_qc.unwrap_or(f.policy.default_min_qc);
            seen.push(match qc {
                Qc::Graded(g) => consulted(
                    "qc",
                    *g >= min,
                    format!(
                        "影像质控等级{}（该项目最低要求{}）",
                        g.label_zh(),
                        min.label_zh()
                    ),
                    format!(
                        "image quality {} (the item's minimum: {})",
                        g.label_en(),
                        min.label_en()
                    ),
                ),
                Qc::Uncalibrated => consulted(
                    "qc",
                    false,
                    "影像已评分，但评分方法尚未校准".into(),
                    "scored by scorers not yet calibrated".into(),
                ),
                Qc::NotAssessable => consulted(
                    "qc",
                    false,
                    "影像质控无法评价（可判定的像素评分项不足）".into(),
                    "image quality not assessable (too few pixel scorers could judge)".into(),
                ),
                Qc::Absent => consulted(
                    "qc",
                    false,
                    "尚无影像质控等级".into(),
                    "no image quality grade yet".into(),
                ),
            });
            seen.push(match complete {
                Some(true) => consulted(
                    "series",
                    true,
                    "影像序列完整".into(),
                    "the series are complete".into(),
                ),
                Some(false) => consulted(
                    "series",
                    false,
                    "影像序列不完整".into(),
                    "a series is incomplete".into(),
                ),
                None => consulted(
                    "series",
                    false,
                    "影像序列完整性未检查".into(),
                    "series completeness not checked".into(),
                ),
            });
            seen.push(consulted(
                "compression",
                !*lossy,
                if *lossy {
                    "影像为有损压缩".into()
                } else {
                    "影像为无损存储".into()
                },
                if *lossy {
                    "lossy-compressed".into()
                } else {
                    "stored lossless".into()
                },
            ));
            match qc {
                Qc::Graded(g) => {
                    if *g < min {
                        reasons.push(reason(
                            "qc_below_minimum",
                            NotRecognizable,
                            format!(
                                "影像质控等级{}低于该项目要求的{}",
                                g.label_zh(),
                                min.label_zh()
                            ),
                            format!(
                                "the image quality grade {} is below the item's minimum {}",
                                g.label_en(),
                                min.label_en()
                            ),
                        ));
                    }
                }
                Qc::NotAssessable => {
                    if f.policy.not_assessable_qc != Recognizable {
                        reasons.push(reason(
                            "qc_not_assessable",
                            f.policy.not_assessable_qc,
                            "影像质控无法评价".into(),
                            "image quality could not be assessed".into(),
                        ));
                    }
                }
                Qc::Absent | Qc::Uncalibrated => {
                    if f.policy.without_qc != Recognizable {
                        reasons.push(reason(
                            if *qc == Qc::Absent {
                                "qc_absent"
                            } else {
                                "qc_uncalibrated"
                            },
                            f.policy.without_qc,
                            "尚无可靠的影像质控等级".into(),
                            "no reliable image quality grade yet".into(),
                        ));
                    }
                }
            }
            if *complete == Some(false) && f.policy.incomplete_series != Recognizable {
                reasons.push(reason(
                    "series_incomplete",
                    f.policy.incomplete_series,
                    "影像序列不完整".into(),
                    "the image series is incomplete".into(),
                ));
            }
            if *lossy && !f.policy.allow_lossy {
                reasons.push(reason(
                    "lossy_images",
                    NotRecognizable,
                    "影像为有损压缩".into(),
                    "the images are lossy-compressed".into(),
                ));
            }
        }
    }

    // 7. Lab results: final.
    if let Evidence::Lab { status } = &f.evidence {
        let (zh, en) = match status {
            LabStatus::Final => ("最终结果", "final"),
            LabStatus::Corrected => ("更正后的最终结果", "corrected"),
            LabStatus::Preliminary => ("初步结果", "preliminary"),
            LabStatus::Withdrawn => ("已撤销", "withdrawn"),
        };
        seen.push(consulted(
            "lab_status",
            matches!(status, LabStatus::Final | LabStatus::Corrected),
            format!("检验结果状态：{zh}"),
            format!("lab result status: {en}"),
        ));
        match status {
            LabStatus::Final | LabStatus::Corrected => {}
            LabStatus::Preliminary => reasons.push(reason(
                "preliminary",
                ReferenceOnly,
                "检验结果为初步结果，尚未最终审核".into(),
                "the lab result is preliminary, not final".into(),
            )),
            LabStatus::Withdrawn => reasons.push(reason(
                "withdrawn",
                NotRecognizable,
                "检验结果已撤销或作废".into(),
                "the lab result was withdrawn".into(),
            )),
        }
    }

    let verdict = reasons
        .iter()
        .map(|r| r.verdict)
        .min()
        .unwrap_or(Recognizable);
    if verdict != Recognizable {
        scope_label = None;
    }
    let (explanation_zh, explanation_en) =
        match (verdict, reasons.iter().find(|r| r.verdict == verdict)) {
            (Recognizable, _) | (_, None) => {
                let name = item.map(|i| i.name_zh.as_str()).unwrap_or("");
                let label = scope_label.as_deref().unwrap_or("");
                let through = valid_through.map(iso).unwrap_or_default();
                (
                    format!("可互认（{label}）：{}{}，有效至{through}", p.name, name),
                    format!(
                        "recognizable ({label}): {} {}, valid through {through}",
                        p.name,
                        item.and_then(|i| i.name_en.as_deref()).unwrap_or("")
                    ),
                )
            }
            (v, Some(r)) => {
                let more = reasons.len() - 1;
                let (zh_more, en_more) = if more > 0 {
                    (
                        format!("（另有{more}项原因）"),
                        format!(" (and {more} more)"),
                    )
                } else {
                    (String::new(), String::new())
                };
                (
                    format!("{}：{}{zh_more}", v.label_zh(), r.zh),
                    format!("{}: {}{en_more}", v.label_en(), r.en),
                )
            }
        };
    Decision {
        verdict,
        scope_label,
        reference_date,
        valid_through,
        qualification,
        reasons,
        explanation_zh,
        explanation_en,
        consulted: seen,
    }
}

/// A reason a doctor may give for re-examining instead of recognizing: the national six
/// situations (国卫医发〔2022〕6号) and the two codes deployed systems record without counting
/// them as non-recognition. Platform data, not editable by hospitals; a region's policy may add its own codes (07–97).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReexamReason {
    pub code: Cow<'static, str>,
    pub zh: Cow<'static, str>,
    pub en: Cow<'static, str>,
    /// Counted as a non-recognition in the statistics (98 and 99 are not).
    pub counts: bool,
    /// Free text is required (the "other" situation).
    pub needs_note: bool,
}

pub const REEXAM_REASONS: &[ReexamReason] = &[
    ReexamReason {
        code: Cow::Borrowed("01"),
        zh: Cow::Borrowed("病情变化，原结果已不能反映当前病情"),
        en: Cow::Borrowed("the condition changed; the result no longer fits the clinical picture"),
        counts: true,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("02"),
        zh: Cow::Borrowed("检查检验结果随疾病进展变化较快"),
        en: Cow::Borrowed("the result changes quickly as the disease evolves"),
        counts: true,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("03"),
        zh: Cow::Borrowed("重大医疗措施（手术、输血等）前需复查关键项目"),
        en: Cow::Borrowed("a critical item before a major measure (surgery, transfusion)"),
        counts: true,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("04"),
        zh: Cow::Borrowed("急诊、急救等抢救需要"),
        en: Cow::Borrowed("emergency or first aid"),
        counts: true,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("05"),
        zh: Cow::Borrowed("司法鉴定、伤残鉴定、病退鉴定等需要"),
        en: Cow::Borrowed("forensic, disability or retirement appraisal"),
        counts: true,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("06"),
        zh: Cow::Borrowed("其他确需复查的情形"),
        en: Cow::Borrowed("another real need (say which)"),
        counts: true,
        needs_note: true,
    },
    ReexamReason {
        code: Cow::Borrowed("98"),
        zh: Cow::Borrowed("未获取到影像或结果、患者未提供"),
        en: Cow::Borrowed("images or results not received, or not provided by the patient"),
        counts: false,
        needs_note: false,
    },
    ReexamReason {
        code: Cow::Borrowed("99"),
        zh: Cow::Borrowed("连续监测需要"),
        en: Cow::Borrowed("serial monitoring"),
        counts: false,
        needs_note: false,
    },
];

/// A region's policy as versioned data (imported as a file, kept as a set): how the rules apply,
/// the items' minimum QC grades, and the region's own re-examination reasons beside the
/// platform's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionPolicy {
    pub policy: Policy,
    /// Item code → the lowest QC grade recognized; items not named take the policy's default.
    pub min_qc: std::collections::BTreeMap<String, QcGrade>,
    /// The region's reasons (codes 07–97); the platform's are always there too.
    pub reasons: Vec<ReexamReason>,
    /// Which recognition rate the statistics name as the headline (both are always reported).
    #[serde(default)]
    pub rate: RateDefinition,
}

/// How a region defines its recognition rate (issue #17; docs/recognition.md has the formulas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateDefinition {
    /// 符合互认条件结果的互认率: recognitions over the units whose result met every condition
    /// when the doctor decided (or when the reminder showed it), less those re-examined for a
    /// reason that does not count.
    #[default]
    Eligible,
    /// 外院结果互认率: recognitions over every unit — every outside result of a catalog item the
    /// patient had at the encounter, decided or only shown in a reminder — less those
    /// re-examined for a reason that does not count.
    Overall,
}

impl RateDefinition {
    pub fn as_str(self) -> &'static str {
        match self {
            RateDefinition::Eligible => "eligible",
            RateDefinition::Overall => "overall",
        }
    }
}

impl RegionPolicy {
    /// Every reason a doctor may give here: the platform's, then the region's.
    pub fn reasons(&self) -> impl Iterator<Item = &ReexamReason> {
        REEXAM_REASONS.iter().chain(self.reasons.iter())
    }

    pub fn reason(&self, code: &str) -> Option<&ReexamReason> {
        self.reasons().find(|r| r.code == code.trim())
    }
}

/// The sentence for the medical record (Chinese, as the record is kept): what was recognized
/// (result, issuing institution, date), or why the exam is repeated.
pub fn record_sentence(
    recognized: bool,
    performer: &str,
    item: &str,
    day: Option<Date>,
    scope_label: Option<&str>,
    reason: Option<&ReexamReason>,
    note: Option<&str>,
) -> String {
    let day = day.map(iso).unwrap_or_else(|| "日期不详".into());
    if recognized {
        match scope_label {
            Some(l) => format!("认可{performer}{day}{item}结果（{l}互认），不再重复检查。"),
            None => format!("认可{performer}{day}{item}结果，不再重复检查。"),
        }
    } else {
        let why = reason.map(|r| r.zh.as_ref()).unwrap_or("");
        match note.filter(|n| !n.trim().is_empty()) {
            Some(n) => format!(
                "{performer}{day}{item}结果未予互认，重新检查。原因：{why}（{}）。已告知患者复查原因、必要性及可能影响。",
                n.trim()
            ),
            None => format!(
                "{performer}{day}{item}结果未予互认，重新检查。原因：{why}。已告知患者复查原因、必要性及可能影响。"
            ),
        }
    }
}
