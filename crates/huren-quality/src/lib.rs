//! Image quality control (影像质控, issue #8), pure: every scorer is a function of one image's
//! header and pixels returning a 0–100 score, a grade and its reasons in Chinese and English;
//! images aggregate robustly into series and study grades. No I/O: the archive reads the
//! objects, decodes the frames and stores what comes out (docs/quality.md).
//!
//! Decisions written down here because they are costly to change:
//! - **Scale**: 100 is the best. Grades: 甲 (A) ≥ 85, 乙 (B) ≥ 70, 丙 (C) ≥ 50, 废片 (reject)
//!   below, the bands the provincial film-rating rules use (甲级片/乙级片/丙级片/废片).
//! - **An image's score** is its weakest assessable aspect (the minimum over scorers): a sharp
//!   image that is all noise is not a good image.
//! - **A series' score**, per scorer, is the median over its images, so one bad slice of 500
//!   does not reject a study; the series' score is the minimum of those medians.
//! - **A study's score** is the minimum over its diagnostic series: each series is read.
//! - A scorer that cannot judge an image (a field it needs is absent) says "not assessable";
//!   that is not a low score.

pub mod ct;
pub mod dr;
pub mod header;
pub mod meta;
pub mod pixels;

pub use header::Header;
pub use pixels::Pixels;
use serde::{Deserialize, Serialize};

/// A grade band (甲/乙/丙/废片), worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Grade {
    Reject,
    C,
    B,
    A,
}

impl Grade {
    pub fn of(score: f64) -> Grade {
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

    pub fn label_zh(self) -> &'static str {
        match self {
            Grade::A => "甲",
            Grade::B => "乙",
            Grade::C => "丙",
            Grade::Reject => "废片",
        }
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
            grade: Some(Grade::of(score)),
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
    pub score: fn(&Header, Option<&Pixels>) -> Score,
}

/// Every image-level scorer.
pub const SCORERS: &[Scorer] = &[
    Scorer {
        name: "ct_noise",
        modalities: &["CT"],
        calibrated: false,
        score: ct::noise,
    },
    Scorer {
        name: "ct_acquisition",
        modalities: &["CT"],
        calibrated: false,
        score: ct::acquisition,
    },
    Scorer {
        name: "dr_exposure",
        modalities: &["DX", "CR", "DR"],
        calibrated: false,
        score: dr::exposure,
    },
    Scorer {
        name: "dr_saturation",
        modalities: &["DX", "CR", "DR"],
        calibrated: false,
        score: dr::saturation,
    },
    Scorer {
        name: "metadata",
        modalities: &["CT", "DX", "CR", "DR", "MR"],
        calibrated: false,
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
/// assessable aspect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub calibrated: bool,
    pub scores: Vec<Score>,
}

pub fn score_image(h: &Header, px: Option<&Pixels>) -> ImageResult {
    let mut scores = Vec::new();
    let mut calibrated = true;
    for s in SCORERS
        .iter()
        .filter(|s| s.modalities.contains(&h.modality.as_str()))
    {
        let r = (s.score)(h, px);
        if r.score.is_some() {
            calibrated &= s.calibrated;
        }
        scores.push(r);
    }
    let score = scores.iter().filter_map(|s| s.score).min_by(f64::total_cmp);
    ImageResult {
        score,
        grade: score.map(Grade::of),
        calibrated: calibrated && score.is_some(),
        scores,
    }
}

/// One series' aggregate: per scorer, the median over its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResult {
    pub series_uid: String,
    pub images: usize,
    pub score: Option<f64>,
    pub grade: Option<Grade>,
    pub calibrated: bool,
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
    for i in images {
        for s in &i.scores {
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
    let scorers: std::collections::BTreeMap<String, f64> = per
        .into_iter()
        .filter_map(|(k, mut v)| median(&mut v).map(|m| (k, m)))
        .collect();
    let score = scorers.values().copied().min_by(f64::total_cmp);
    let mut weak: Vec<(&String, &f64)> = scorers.iter().filter(|(_, v)| **v < 85.0).collect();
    weak.sort_by(|a, b| a.1.total_cmp(b.1));
    let reasons = weak
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
    SeriesResult {
        series_uid: series_uid.to_owned(),
        images: images.len(),
        score,
        grade: score.map(Grade::of),
        calibrated: score.is_some() && images.iter().all(|i| i.calibrated || i.score.is_none()),
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
    pub series: Vec<SeriesResult>,
}

pub fn aggregate_study(series: Vec<SeriesResult>) -> StudyResult {
    let scored: Vec<&SeriesResult> = series.iter().filter(|s| s.score.is_some()).collect();
    let score = scored.iter().filter_map(|s| s.score).min_by(f64::total_cmp);
    StudyResult {
        score,
        grade: score.map(Grade::of),
        calibrated: !scored.is_empty() && scored.iter().all(|s| s.calibrated),
        series,
    }
}

#[cfg(test)]
mod tests;
