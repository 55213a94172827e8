//! Image quality control (影像质控, issue #8), pure: every scorer is a function of one image's
//! header and pixels returning a 0–100 score, a grade and its reasons in Chinese and English;
//! images aggregate robustly into series and study grades. No I/O: the archive reads the
//! objects, decodes the frames and stores what comes out (docs/quality.md).
//!
//! Decisions written down here because they are costly to change:
//! - **Scale**: 100 is the best. Grades: 甲 (A) ≥ 85, 乙 (B) ≥ 70, 丙 (C) ≥ 50, 废片 (reject)
//!   below, the bands the provincial film-rating rules use (甲级片/乙级片/丙级片/废片).
//! - **An image's score** is its weakest assessable aspect (the minimum over the scorers the
//!   validation suite has calibrated): a sharp image that is all noise is not a good image.
//!   Uncalibrated scorers are reported but do not grade.
//! - **A series' score**, per scorer, is the median over its images, so one bad slice of 500
//!   does not reject a study; the series' score is the minimum of those medians.
//! - **A study's score** is the minimum over its diagnostic series: each series is read.
//! - A scorer that cannot judge an image (a field it needs is absent) says "not assessable";
//!   that is not a low score.

pub mod content;
pub mod ct;
pub mod dr;
pub mod header;
pub mod meta;
pub mod mr;
pub mod pixels;
pub mod stats;

pub use header::Header;
pub use pixels::Pixels;
use serde::{Deserialize, Serialize};

/// A grade band (甲/乙/丙/废片), worst first: huren's one QC grade type.
pub use huren_types::QcGrade as Grade;

/// The grade band of a 0–100 score: 甲 ≥ 85, 乙 ≥ 70, 丙 ≥ 50, else 废片.
pub fn grade_of(score: f64) -> Grade {
    if score >= 85.0 {
        Grade::A
    } else if score >= 70.0 {
        Grade::B
    } else if score >= 50.0 {
        Grade::C
    } else {
        Grade::Reject
    }
}

/// Why a score is what it is, in both languages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub zh: String,
    pub en: String,
}

/// One scorer's judgment of one image (or series).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub scorer: String,
    /// 0–100, or none when the image cannot be judged on this aspect.
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    /// The measured quantity behind the score (e.g. the noise index in HU), for the QC centre.
    pub value: Option<f64>,
    pub reasons: Vec<Reason>,
}

impl Score {
    pub(crate) fn new(scorer: &str, score: f64, value: Option<f64>, reasons: Vec<Reason>) -> Score {
        let score = score.clamp(0.0, 100.0);
        Score {
            scorer: scorer.to_owned(),
            score: Some((score * 10.0).round() / 10.0),
            grade: Some(grade_of(score)),
            value,
            reasons,
        }
    }

    pub(crate) fn not_assessable(scorer: &str, zh: &str, en: &str) -> Score {
        Score {
            scorer: scorer.to_owned(),
            score: None,
            grade: None,
            value: None,
            reasons: vec![reason("not_assessable", zh, en)],
        }
    }
}

/// The reason, when the score is below 甲 (a scorer says why only when it matters).
pub(crate) fn below_a(code: &str, zh: &str, en: &str, score: f64) -> Vec<Reason> {
    if score < 85.0 {
        vec![reason(code, zh, en)]
    } else {
        Vec::new()
    }
}

/// A score from a measured value through bands given as (value, score) points in order of
/// worsening value: linear between points, and past the last one the last segment's slope
/// continues down to 0, so a worse value always scores lower (no plateau). Before the first
/// point the first segment continues up to 100.
pub(crate) fn banded(x: f64, points: &[(f64, f64)]) -> f64 {
    let line = |a: (f64, f64), b: (f64, f64)| a.1 + (x - a.0) * (b.1 - a.1) / (b.0 - a.0);
    let score = match points {
        [] => 100.0,
        [only] => only.1,
        [first, second, ..] if (x - first.0) * (second.0 - first.0) <= 0.0 => line(*first, *second),
        _ => {
            let mut s = None;
            for pair in points.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if (x - a.0) * (x - b.0) <= 0.0 {
                    s = Some(line(a, b));
                    break;
                }
            }
            s.unwrap_or_else(|| line(points[points.len() - 2], points[points.len() - 1]))
        }
    };
    score.clamp(0.0, 100.0)
}

pub(crate) fn reason(code: &str, zh: &str, en: &str) -> Reason {
    Reason {
        code: code.to_owned(),
        zh: zh.to_owned(),
        en: en.to_owned(),
    }
}

/// A scorer as registered: its name, the modalities it applies to, and whether the validation
/// suite has shown it separates clean from degraded images (docs/quality.md). Grades from
/// uncalibrated scorers are stored and shown, but recognition treats them as "uncalibrated".
pub struct Scorer {
    pub name: &'static str,
    pub modalities: &'static [&'static str],
    pub calibrated: bool,
    /// It judges the pixels (else the header alone). An image is graded only when enough
    /// pixel scorers could judge it ([`MIN_PIXEL_SCORERS`]).
    pub pixels: bool,
    /// The measured value's unit ("" for a pure number), and where the grade bands lie on it,
    /// for the QC centre (docs/quality.md has the reasoning behind each).
    pub unit: &'static str,
    pub bands_zh: &'static str,
    pub bands_en: &'static str,
    pub score: fn(&Header, Option<&Pixels>) -> Score,
}

/// Every image-level scorer.
pub const SCORERS: &[Scorer] = &[
    Scorer {
        name: "image_content",
        modalities: &["CT", "DX", "CR", "DR", "MR"],
        // A rule with exact cases (blank, constant, all air), tested rather than calibrated;
        // it grades.
        calibrated: true,
        pixels: true,
        unit: "%",
        bands_zh: "内容占比 < 1% 为废片",
        bands_en: "under 1% content: reject",
        score: content::content,
    },
    Scorer {
        name: "ct_noise",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "HU",
        bands_zh: "折合5 mm：甲 ≤ 10 HU，乙 ≤ 20 HU，丙 ≤ 33 HU",
        bands_en: "at 5 mm: A ≤ 10 HU, B ≤ 20 HU, C ≤ 33 HU",
        score: ct::noise,
    },
    Scorer {
        name: "ct_acquisition",
        modalities: &["CT"],
        calibrated: true,
        pixels: false,
        unit: "",
        bands_zh: "每缺一项 −15，每项不合理 −30",
        bands_en: "−15 per field missing, −30 per implausible value",
        score: ct::acquisition,
    },
    Scorer {
        name: "ct_cnr",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≥ 68，乙 ≥ 28，丙 ≥ 12",
        bands_en: "A ≥ 68, B ≥ 28, C ≥ 12",
        score: ct::snr_cnr,
    },
    Scorer {
        name: "ct_sharpness",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "mm",
        bands_zh: "甲 ≤ 0.8 mm，乙 ≤ 1.3 mm，丙 ≤ 1.9 mm",
        bands_en: "A ≤ 0.8 mm, B ≤ 1.3 mm, C ≤ 1.9 mm",
        score: ct::sharpness,
    },
    Scorer {
        name: "ct_ring",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "z",
        bands_zh: "甲 ≤ 21，乙 ≤ 51，丙 ≤ 120",
        bands_en: "A ≤ 21, B ≤ 51, C ≤ 120",
        score: ct::ring,
    },
    Scorer {
        name: "ct_streak",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "×",
        bands_zh: "甲 ≤ 2.8，乙 ≤ 5.3，丙 ≤ 11",
        bands_en: "A ≤ 2.8, B ≤ 5.3, C ≤ 11",
        score: ct::streak,
    },
    Scorer {
        name: "ct_fov",
        modalities: &["CT"],
        calibrated: true,
        pixels: true,
        unit: "%",
        bands_zh: "甲 ≤ 3%，乙 ≤ 6%，丙 ≤ 10%",
        bands_en: "A ≤ 3%, B ≤ 6%, C ≤ 10%",
        score: ct::field_of_view,
    },
    Scorer {
        name: "dr_exposure",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: false,
        unit: "DI",
        bands_zh: "甲 |DI| ≤ 1.6，乙 ≤ 2.2，丙 ≤ 3",
        bands_en: "A |DI| ≤ 1.6, B ≤ 2.2, C ≤ 3",
        score: dr::exposure,
    },
    Scorer {
        name: "dr_saturation",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "%",
        bands_zh: "甲 ≤ 3.5%，乙 ≤ 6.5%，丙 ≤ 10.5%",
        bands_en: "A ≤ 3.5%, B ≤ 6.5%, C ≤ 10.5%",
        score: dr::saturation,
    },
    Scorer {
        name: "dr_contrast",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≥ 0.28，乙 ≥ 0.12，丙 ≥ 0.05",
        bands_en: "A ≥ 0.28, B ≥ 0.12, C ≥ 0.05",
        score: dr::contrast,
    },
    Scorer {
        name: "dr_collimation",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "sides",
        bands_zh: "甲 ≥ 3侧，乙 ≥ 1侧；不可见则无法评价",
        bands_en: "A ≥ 3 sides, B ≥ 1; none visible: not assessable",
        score: dr::collimation,
    },
    Scorer {
        name: "dr_positioning",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "r",
        bands_zh: "镜像相关 甲 ≥ 0.75，乙 ≥ 0.6，丙 ≥ 0.45；中线偏移超5%另扣分",
        bands_en: "mirror correlation A ≥ 0.75, B ≥ 0.6, C ≥ 0.45; less for a midline over 5% off",
        score: dr::positioning,
    },
    Scorer {
        name: "dr_sharpness",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≥ 0.05，乙 ≥ 0.012，丙 ≥ 0.005",
        bands_en: "A ≥ 0.05, B ≥ 0.012, C ≥ 0.005",
        score: dr::sharpness,
    },
    Scorer {
        name: "dr_noise",
        modalities: &["DX", "CR", "DR"],
        calibrated: true,
        pixels: true,
        unit: "%",
        bands_zh: "噪声占对比范围 甲 ≤ 1%，乙 ≤ 2%，丙 ≤ 4%",
        bands_en: "noise of contrast range A ≤ 1%, B ≤ 2%, C ≤ 4%",
        score: dr::noise,
    },
    Scorer {
        name: "mr_snr",
        modalities: &["MR"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≥ 34，乙 ≥ 14，丙 ≥ 6",
        bands_en: "A ≥ 34, B ≥ 14, C ≥ 6",
        score: mr::snr,
    },
    Scorer {
        name: "mr_ghosting",
        modalities: &["MR"],
        calibrated: true,
        pixels: true,
        unit: "%",
        bands_zh: "甲 ≤ 1%，乙 ≤ 2.5%，丙 ≤ 5%",
        bands_en: "A ≤ 1%, B ≤ 2.5%, C ≤ 5%",
        score: mr::ghosting,
    },
    Scorer {
        name: "mr_sharpness",
        modalities: &["MR"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≥ 0.05，乙 ≥ 0.012，丙 ≥ 0.005",
        bands_en: "A ≥ 0.05, B ≥ 0.012, C ≥ 0.005",
        score: mr::sharpness,
    },
    Scorer {
        name: "mr_motion",
        modalities: &["MR"],
        calibrated: true,
        pixels: true,
        unit: "",
        bands_zh: "甲 ≤ 0.61，乙 ≤ 0.66，丙 ≤ 0.70",
        bands_en: "A ≤ 0.61, B ≤ 0.66, C ≤ 0.70",
        score: mr::motion,
    },
    Scorer {
        name: "metadata",
        modalities: &["CT", "DX", "CR", "DR", "MR"],
        calibrated: true,
        pixels: false,
        unit: "missing",
        bands_zh: "齐全率 甲 ≥ 85%，乙 ≥ 70%，丙 ≥ 50%",
        bands_en: "present: A ≥ 85%, B ≥ 70%, C ≥ 50%",
        score: meta::conformance,
    },
];

/// Why an object is not scored at all (it is not a diagnostic image), if it is not.
pub fn excluded(h: &Header, has_pixels: bool) -> Option<Reason> {
    let sop = h.sop_class.as_deref().unwrap_or("");
    if !has_pixels {
        return Some(reason("no_pixels", "无像素数据", "no pixel data"));
    }
    if h.image_type.iter().any(|t| t == "LOCALIZER") {
        return Some(reason("localizer", "定位像", "a localizer"));
    }
    // Secondary capture (PS3.4 B.5: 1.2.840.10008.5.1.4.1.1.7 and its multi-frame kinds),
    // structured reports such as dose reports (…1.88.*), presentation states (…1.11.*).
    if sop.starts_with("1.2.840.10008.5.1.4.1.1.7") {
        return Some(reason(
            "secondary_capture",
            "二次采集图像",
            "a secondary capture",
        ));
    }
    if sop.starts_with("1.2.840.10008.5.1.4.1.1.88.")
        || sop.starts_with("1.2.840.10008.5.1.4.1.1.11.")
    {
        return Some(reason(
            "not_an_image",
            "非图像对象（报告或显示状态）",
            "not an image (a report or presentation state)",
        ));
    }
    if !SCORERS
        .iter()
        .any(|s| s.modalities.contains(&h.modality.as_str()))
    {
        return Some(reason(
            "modality_not_scored",
            "该模态尚无质控评分",
            "no scorer for this modality yet",
        ));
    }
    None
}

/// An image's scores from every scorer for its modality, and its overall score (the weakest
/// assessable aspect among the calibrated scorers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub calibrated: bool,
    /// Enough pixel scorers could judge it (or it is blank); when not, it has no score.
    #[serde(default = "assessable_by_default")]
    pub assessable: bool,
    pub scores: Vec<Score>,
    /// Where the slice lies along the normal of its plane (mm), for the series' completeness.
    #[serde(default)]
    pub position: Option<f64>,
    /// (0020,1002) Images in Acquisition, when the modality says.
    #[serde(default)]
    pub images_in_acquisition: Option<i64>,
}

/// Results stored before issue #18 carry no `assessable`; aggregation derives it again.
fn assessable_by_default() -> bool {
    true
}

pub fn score_image(h: &Header, px: Option<&Pixels>) -> ImageResult {
    let mut r = image_result(
        SCORERS
            .iter()
            .filter(|s| s.modalities.contains(&h.modality.as_str()))
            .map(|s| (s.score)(h, px))
            .collect(),
    );
    r.position = slice_position(h);
    r.images_in_acquisition = h.images_in_acquisition;
    r
}

/// The slice's position along its plane's normal: ImagePositionPatient · (row × column
/// direction cosines), PS3.3 C.7.6.2.1.1.
pub fn slice_position(h: &Header) -> Option<f64> {
    let (p, o) = (h.image_position?, h.image_orientation?);
    let n = [
        o[1] * o[5] - o[2] * o[4],
        o[2] * o[3] - o[0] * o[5],
        o[0] * o[4] - o[1] * o[3],
    ];
    Some(p[0] * n[0] + p[1] * n[1] + p[2] * n[2])
}

/// Whether the validation suite has passed this scorer.
pub fn is_calibrated(scorer: &str) -> bool {
    SCORERS.iter().any(|s| s.name == scorer && s.calibrated)
}

/// A scorer's unit and grade bands (zh, en), the series scorer's included.
pub fn scorer_info(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    if name == "series_completeness" {
        return Some((
            "slices",
            "每缺一层 −30，每处层距不均 −10",
            "−30 per missing slice, −10 per uneven step",
        ));
    }
    SCORERS
        .iter()
        .find(|s| s.name == name)
        .map(|s| (s.unit, s.bands_zh, s.bands_en))
}

/// Whether the scorer judges pixels (rather than the header alone).
pub fn reads_pixels(scorer: &str) -> bool {
    SCORERS.iter().any(|s| s.name == scorer && s.pixels)
}

/// An image is graded only when at least this many calibrated pixel scorers (besides
/// `image_content`) could judge it: the header alone says nothing of the image, and one aspect
/// is too little to call an image good (issue #18: a blank CT graded 甲 by its header).
pub const MIN_PIXEL_SCORERS: usize = 2;

/// Why an image or series has no grade although it was scored.
pub fn not_assessable_reason() -> Reason {
    reason(
        "image_not_assessable",
        "无法评价：能够判定的像素评分项不足两项",
        "not assessable: fewer than two pixel scorers could judge the image",
    )
}

/// An image's overall result from its scorers' results:
/// 1. blank or nearly empty (`image_content` says so): 0, 废片;
/// 2. fewer than [`MIN_PIXEL_SCORERS`] calibrated pixel scorers could judge it: not
///    assessable, no score (which is not a low score: recognition treats it by the region's
///    policy);
/// 3. otherwise the weakest of its assessable calibrated scorers. Uncalibrated ones are shown,
///    with their reasons, but do not grade.
pub fn image_result(scores: Vec<Score>) -> ImageResult {
    let blank = scores
        .iter()
        .any(|s| s.scorer == "image_content" && s.score == Some(0.0));
    let judged = scores
        .iter()
        .filter(|s| s.scorer != "image_content" && s.score.is_some())
        .filter(|s| reads_pixels(&s.scorer) && is_calibrated(&s.scorer))
        .count();
    let assessable = blank || judged >= MIN_PIXEL_SCORERS;
    let score = if blank {
        Some(0.0)
    } else if assessable {
        scores
            .iter()
            .filter(|s| is_calibrated(&s.scorer))
            .filter_map(|s| s.score)
            .min_by(f64::total_cmp)
    } else {
        None
    };
    ImageResult {
        score,
        grade: score.map(grade_of),
        calibrated: assessable,
        assessable,
        scores,
        position: None,
        images_in_acquisition: None,
    }
}

/// **Series completeness** (CT coverage; any series of positioned slices): slices missing
/// (a gap of about twice the usual spacing or more counts its missing slices; fewer images than
/// Images in Acquisition says counts the difference) and uneven spacing (steps off the usual
/// spacing by more than 20%). Exact counts, so its bands are fixed rather than validated:
/// 100 − 30 per missing slice − 10 per uneven step. `None` below three positioned slices.
pub fn completeness(images: &[ImageResult]) -> Option<(Score, bool)> {
    let mut z: Vec<f64> = images.iter().filter_map(|i| i.position).collect();
    if z.len() < 3 {
        return None;
    }
    z.sort_by(f64::total_cmp);
    let mut steps: Vec<f64> = z
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 1e-3)
        .collect();
    if steps.len() < 2 {
        return None;
    }
    let mut sorted = steps.clone();
    let m = median(&mut sorted)?;
    let (mut missing, mut uneven) = (0i64, 0i64);
    for d in steps.drain(..) {
        let k = (d / m).round();
        if k >= 2.0 && (d - k * m).abs() <= 0.2 * m {
            missing += k as i64 - 1;
        } else if (d - m).abs() > 0.2 * m {
            uneven += 1;
        }
    }
    if let Some(expected) = images.iter().filter_map(|i| i.images_in_acquisition).max() {
        missing = missing.max(expected - images.len() as i64);
    }
    let mut reasons = Vec::new();
    if missing > 0 {
        reasons.push(reason(
            "series_missing_slices",
            &format!("序列缺失{missing}层"),
            &format!("{missing} slice(s) missing from the series"),
        ));
    }
    if uneven > 0 {
        reasons.push(reason(
            "series_uneven_spacing",
            &format!("层间距不均（{uneven}处）"),
            &format!("uneven slice spacing ({uneven} step(s))"),
        ));
    }
    let score = 100.0 - 30.0 * missing as f64 - 10.0 * uneven as f64;
    Some((
        Score::new("series_completeness", score, Some(missing as f64), reasons),
        missing == 0 && uneven == 0,
    ))
}

/// One series' aggregate: per scorer, the median over its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResult {
    pub series_uid: String,
    pub images: usize,
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub calibrated: bool,
    /// At least one of its images could be judged.
    #[serde(default = "assessable_by_default")]
    pub assessable: bool,
    /// No slice missing and even spacing; `None` when the series cannot say (too few
    /// positioned slices).
    #[serde(default)]
    pub complete: Option<bool>,
    /// Scorer → median score over the images it could judge.
    pub scorers: std::collections::BTreeMap<String, f64>,
    /// The scorers that kept the series below 甲, weakest first, with their most frequent
    /// reason.
    pub reasons: Vec<Reason>,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn aggregate_series(series_uid: &str, images: &[ImageResult]) -> SeriesResult {
    let mut per: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut why: std::collections::BTreeMap<String, Vec<Reason>> = Default::default();
    // Only the images that could be judged grade the series (a not-assessable image's header
    // scorers say nothing of its pixels); a blank image is judged, at 0.
    let judged: Vec<&ImageResult> = images.iter().filter(|i| i.assessable).collect();
    for i in &judged {
        for s in &i.scores {
            if !is_calibrated(&s.scorer) {
                continue;
            }
            if let Some(v) = s.score {
                per.entry(s.scorer.clone()).or_default().push(v);
                if v < 85.0 {
                    why.entry(s.scorer.clone())
                        .or_default()
                        .extend(s.reasons.iter().cloned());
                }
            }
        }
    }
    let mut scorers: std::collections::BTreeMap<String, f64> = per
        .into_iter()
        .filter_map(|(k, mut v)| median(&mut v).map(|m| (k, m)))
        .collect();
    let complete = completeness(images).map(|(s, complete)| {
        if let Some(v) = s.score {
            scorers.insert(s.scorer.clone(), v);
            if v < 85.0 {
                why.insert(s.scorer.clone(), s.reasons.clone());
            }
        }
        complete
    });
    let assessable = !judged.is_empty();
    let score = if assessable {
        scorers.values().copied().min_by(f64::total_cmp)
    } else {
        None
    };
    let mut weak: Vec<(&String, &f64)> = scorers.iter().filter(|(_, v)| **v < 85.0).collect();
    weak.sort_by(|a, b| a.1.total_cmp(b.1));
    let mut reasons: Vec<Reason> = weak
        .into_iter()
        .filter_map(|(k, _)| {
            let list = why.get(k)?;
            // The most frequent reason of this scorer across the series.
            let mut counts: std::collections::BTreeMap<&str, (usize, &Reason)> = Default::default();
            for r in list {
                counts.entry(r.code.as_str()).or_insert((0, r)).0 += 1;
            }
            counts
                .into_values()
                .max_by_key(|(n, _)| *n)
                .map(|(_, r)| r.clone())
        })
        .collect();
    if !assessable && !images.is_empty() {
        reasons.insert(0, not_assessable_reason());
    }
    SeriesResult {
        series_uid: series_uid.to_owned(),
        images: images.len(),
        score,
        grade: score.map(grade_of),
        calibrated: score.is_some(),
        assessable,
        complete,
        scorers,
        reasons,
    }
}

/// A study's aggregate: the weakest diagnostic series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyResult {
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub calibrated: bool,
    /// It has scored images and none could be judged: "not assessable" (不可评价), which is
    /// neither a grade nor "not scored yet".
    #[serde(default)]
    pub not_assessable: bool,
    /// Every series that can say is complete; `None` when none can.
    #[serde(default)]
    pub complete: Option<bool>,
    pub series: Vec<SeriesResult>,
}

pub fn aggregate_study(series: Vec<SeriesResult>) -> StudyResult {
    let scored: Vec<&SeriesResult> = series.iter().filter(|s| s.score.is_some()).collect();
    let score = scored.iter().filter_map(|s| s.score).min_by(f64::total_cmp);
    StudyResult {
        score,
        grade: score.map(grade_of),
        calibrated: !scored.is_empty() && scored.iter().all(|s| s.calibrated),
        not_assessable: scored.is_empty() && series.iter().any(|s| s.images > 0),
        complete: series
            .iter()
            .filter_map(|s| s.complete)
            .reduce(|a, b| a && b),
        series,
    }
}

#[cfg(test)]
mod tests;
