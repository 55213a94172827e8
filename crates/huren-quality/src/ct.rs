//! CT scorers.

use crate::{Header, Pixels, Score, reason};

/// **CT noise: the global noise index** (Christianson et al., "Automated technique to measure
/// noise in clinical CT examinations", AJR 2015;205:W93–W99). The image is tiled into squares
/// of about 6 mm; the standard deviation is taken in each square whose mean is soft tissue or
/// water (−50…150 HU); the noise index is the mode of those deviations (0.5 HU bins), so
/// squares that straddle an edge, being few, do not move it. Noise falls with slice thickness
/// roughly as 1/√thickness, so the index is brought to a 5 mm equivalent before scoring.
///
/// Score: 100 up to 8 HU, then 2.5 points per HU (甲 ≤ 14 HU, 乙 ≤ 20 HU, 丙 ≤ 28 HU).
pub fn noise(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_noise";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let Some(gni) = noise_index(px, h.pixel_spacing.map(|s| s.0)) else {
        return Score::not_assessable(
            NAME,
            "软组织区域不足，无法估计噪声",
            "too little soft tissue to estimate noise",
        );
    };
    let thickness = h.slice_thickness.filter(|t| *t > 0.0).unwrap_or(5.0);
    let equivalent = gni * (thickness / 5.0).sqrt();
    let score = 100.0 - (equivalent - 8.0).max(0.0) * 2.5;
    let reasons = if score < 85.0 {
        vec![reason(
            "ct_noise_high",
            &format!("图像噪声偏高（噪声指数{gni:.1} HU，折合5 mm {equivalent:.1} HU）"),
            &format!("high image noise (noise index {gni:.1} HU, {equivalent:.1} HU at 5 mm)"),
        )]
    } else {
        Vec::new()
    };
    Score::new(NAME, score, Some(gni), reasons)
}

/// The global noise index in HU, or none when fewer than 30 squares are soft tissue.
pub fn noise_index(px: &Pixels, spacing_mm: Option<f64>) -> Option<f64> {
    let side = spacing_mm
        .filter(|s| *s > 0.0)
        .map_or(8, |s| ((6.0 / s).round() as usize).clamp(4, 16));
    let mut deviations = Vec::new();
    let mut r = 0;
    while r + side <= px.rows {
        let mut c = 0;
        while c + side <= px.columns {
            let (mut sum, mut sq) = (0f64, 0f64);
            for y in r..r + side {
                for x in c..c + side {
                    let v = f64::from(px.at(y, x));
                    sum += v;
                    sq += v * v;
                }
            }
            let n = (side * side) as f64;
            let mean = sum / n;
            if (-50.0..=150.0).contains(&mean) {
                let var = (sq / n - mean * mean).max(0.0) * n / (n - 1.0);
                deviations.push(var.sqrt());
            }
            c += side;
        }
        r += side;
    }
    if deviations.len() < 30 {
        return None;
    }
    // The mode of a 0.5 HU histogram, refined as the mean of the deviations in that bin.
    let mut bins: std::collections::BTreeMap<i64, (usize, f64)> = Default::default();
    for d in &deviations {
        let e = bins.entry((d / 0.5).floor() as i64).or_default();
        e.0 += 1;
        e.1 += d;
    }
    let (_, (n, total)) = bins.into_iter().max_by_key(|(k, (n, _))| (*n, -k))?;
    Some(total / n as f64)
}

/// **CT acquisition parameters**: slice thickness, reconstruction kernel, tube voltage and
/// CTDIvol present and plausible (PS3.3 C.8.2.1, C.8.15.2; plausible ranges: 70–150 kV, 0.3–10
/// mm, 0.2–150 mGy). Each missing field costs 15 points, each implausible one 30.
pub fn acquisition(h: &Header, _px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_acquisition";
    let mut score = 100.0;
    let mut reasons = Vec::new();
    let mut check = |value: Option<f64>, range: (f64, f64), zh: &str, en: &str| match value {
        None => {
            score -= 15.0;
            reasons.push(reason(
                "ct_field_missing",
                &format!("缺少{zh}"),
                &format!("{en} missing"),
            ));
        }
        Some(v) if !(range.0..=range.1).contains(&v) => {
            score -= 30.0;
            reasons.push(reason(
                "ct_field_implausible",
                &format!("{zh}不合理（{v}）"),
                &format!("implausible {en} ({v})"),
            ));
        }
        Some(_) => {}
    };
    check(h.kvp, (70.0, 150.0), "管电压", "tube voltage (kVp)");
    check(h.slice_thickness, (0.3, 10.0), "层厚", "slice thickness");
    check(h.ctdi_vol, (0.2, 150.0), "CTDIvol", "CTDIvol");
    if h.convolution_kernel.is_none() {
        score -= 15.0;
        reasons.push(reason(
            "ct_field_missing",
            "缺少重建卷积核",
            "reconstruction kernel missing",
        ));
    }
    Score::new(NAME, score, None, reasons)
}
