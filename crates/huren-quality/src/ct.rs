//! CT scorers.

use crate::{Header, Pixels, Score, below_a, reason};

/// **CT noise: the global noise index** (Christianson et al., "Automated technique to measure
/// noise in clinical CT examinations", AJR 2015;205:W93–W99). The image is tiled into squares
/// of about 6 mm; the standard deviation is taken in each square whose mean is soft tissue or
/// water (−50…150 HU); the noise index is the mode of those deviations (0.5 HU bins), so
/// squares that straddle an edge, being few, do not move it. Noise falls with slice thickness
/// roughly as 1/√thickness, so the index is brought to a 5 mm equivalent before scoring.
///
/// Score: 100 − 1.5 per HU, with no plateau, so even a good image scores lower as noise is
/// added (甲 ≤ 10 HU, 乙 ≤ 20 HU, 丙 ≤ 33 HU at 5 mm).
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
    let score = 100.0 - 1.5 * equivalent;
    let reasons = below_a(
        "ct_noise_high",
        &format!("图像噪声偏高（噪声指数{gni:.1} HU，折合5 mm {equivalent:.1} HU）"),
        &format!("high image noise (noise index {gni:.1} HU, {equivalent:.1} HU at 5 mm)"),
        score,
    );
    Score::new(NAME, score, Some(gni), reasons)
}

/// The global noise index in HU, or none when fewer than 30 squares are soft tissue.
pub fn noise_index(px: &Pixels, spacing_mm: Option<f64>) -> Option<f64> {
    let deviations: Vec<f64> = px
        .squares(square_side(spacing_mm))
        .iter()
        .filter(|b| (-50.0..=150.0).contains(&b.2))
        .map(|b| b.3)
        .collect();
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

/// **CT SNR and CNR against air** (air and soft tissue, as in the ACR CT phantom's CNR but on
/// the patient's own regions): CNR = (soft tissue − air) / noise index, from the medians of
/// the ~6 mm squares that are soft tissue (−50…150 HU) and air (below −900 HU). Air far from
/// −1000 HU (a wrong rescale) costs 30 points.
///
/// Score: 100·CNR/(CNR + 12), rising without a plateau (甲 ≥ 68, 乙 ≥ 28, 丙 ≥ 12).
pub fn snr_cnr(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_cnr";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let spacing = h.pixel_spacing.map(|s| s.0);
    let side = square_side(spacing);
    let blocks = px.squares(side);
    let mut tissue: Vec<f32> = blocks
        .iter()
        .filter(|b| (-50.0..=150.0).contains(&b.2))
        .map(|b| b.2 as f32)
        .collect();
    let mut air: Vec<f32> = blocks
        .iter()
        .filter(|b| b.2 < -900.0)
        .map(|b| b.2 as f32)
        .collect();
    let (Some(noise), Some(t), Some(a)) = (
        noise_index(px, spacing),
        crate::stats::percentile(&mut tissue, 50.0),
        crate::stats::percentile(&mut air, 50.0),
    ) else {
        return Score::not_assessable(
            NAME,
            "缺少空气或软组织区域",
            "no air or soft-tissue region to compare",
        );
    };
    let cnr = (f64::from(t) - f64::from(a)) / noise.max(0.1);
    let mut score = 100.0 * cnr.max(0.0) / (cnr.max(0.0) + 12.0);
    let mut reasons = Vec::new();
    if score < 85.0 {
        reasons.push(reason(
            "ct_cnr_low",
            &format!("软组织与空气对比噪声比偏低（{cnr:.0}）"),
            &format!("low soft-tissue to air contrast-to-noise ratio ({cnr:.0})"),
        ));
    }
    if (f64::from(a) + 1000.0).abs() > 50.0 {
        score -= 30.0;
        reasons.push(reason(
            "ct_air_offset",
            &format!("空气CT值{a:.0} HU，偏离−1000 HU，CT值可能未校准"),
            &format!("air at {a:.0} HU, not −1000 HU: the HU scale may be off"),
        ));
    }
    Score::new(NAME, score, Some(cnr), reasons)
}

/// Squares of about 6 mm (4–16 pixels; 8 without a pixel spacing).
fn square_side(spacing_mm: Option<f64>) -> usize {
    spacing_mm
        .filter(|s| *s > 0.0)
        .map_or(8, |s| ((6.0 / s).round() as usize).clamp(4, 16))
}

/// How sharp the strongest edges are: at each pixel that is a local maximum of the gradient
/// and lies on an edge of at least `min_contrast` (the 5×5 range around it), the gradient
/// divided by that range. For a step blurred by a Gaussian of σ pixels this is about
/// 1/(σ√(2π)); its median over the edge is the **edge-spread index** (higher is sharper).
pub fn edge_sharpness(px: &Pixels, min_contrast: f32) -> Option<f64> {
    let g = crate::stats::gradient(px);
    let (h, w) = (px.rows, px.columns);
    let mut ratios = Vec::new();
    // An edge of `min_contrast` spread even over 3 px has a gradient of at least a tenth of it:
    // weaker pixels (noise) are not looked at further.
    let floor = min_contrast * 0.1;
    for r in 2..h.saturating_sub(2) {
        for c in 2..w.saturating_sub(2) {
            let v = g[r * w + c];
            if v < floor {
                continue;
            }
            let mut is_max = true;
            'n: for dr in -1isize..=1 {
                for dc in -1isize..=1 {
                    if (dr, dc) != (0, 0)
                        && g[(r as isize + dr) as usize * w + (c as isize + dc) as usize] > v
                    {
                        is_max = false;
                        break 'n;
                    }
                }
            }
            if !is_max {
                continue;
            }
            let (mut lo, mut hi) = (f32::MAX, f32::MIN);
            for y in r - 2..=r + 2 {
                for x in c - 2..=c + 2 {
                    let p = px.at(y, x);
                    lo = lo.min(p);
                    hi = hi.max(p);
                }
            }
            if hi - lo >= min_contrast {
                ratios.push(v / (hi - lo));
            }
        }
    }
    if ratios.len() < 20 {
        return None;
    }
    Some(f64::from(crate::stats::percentile(&mut ratios, 50.0)?))
}

/// **CT sharpness: edge spread across high-contrast edges** (air/tissue, bone), as
/// [`edge_sharpness`] with edges of at least 300 HU. Score: 100·index/(index + 0.05) (甲 from
/// 0.28, about a σ of 1.4 px; 乙 from 0.12; 丙 from 0.05).
pub fn sharpness(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_sharpness";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let Some(index) = edge_sharpness(px, 300.0) else {
        return Score::not_assessable(NAME, "无高对比边缘", "no high-contrast edge");
    };
    let score = 100.0 * index / (index + 0.05);
    let reasons = below_a(
        "ct_blurred",
        &format!("高对比边缘模糊（边缘锐利度{index:.2}）"),
        &format!("blurred high-contrast edges (edge index {index:.2})"),
        score,
    );
    Score::new(NAME, score, Some(index), reasons)
}

/// **CT ring artifacts**: around the image centre (the usual centre of reconstruction), the
/// mean over angles, at each radius, of each soft-tissue sample's difference from the samples
/// two pixels inside and outside it. Noise averages out over the angles; a ring, being the same
/// all around, does not. The ring index is how far the strongest radius stands out from the
/// profile's median, in robust standard deviations (1.4826 × MAD). Score: 100·4/(4 + index)
/// (甲 up to 0.7, 乙 up to 1.7, 丙 up to 4).
pub fn ring(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_ring";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let (cy, cx) = (px.rows as f64 / 2.0, px.columns as f64 / 2.0);
    let max_r = (cy.min(cx) - 3.0).max(0.0) as usize;
    // 256 directions, their sines and cosines computed once: about 200k samples for 512².
    const STEPS: usize = 256;
    let dirs: Vec<(f64, f64)> = (0..STEPS)
        .map(|k| (2.0 * std::f64::consts::PI * k as f64 / STEPS as f64).sin_cos())
        .collect();
    let sample = |r: f64, (s, c): (f64, f64)| -> Option<f32> {
        let (y, x) = (cy + r * s, cx + r * c);
        (y >= 0.0 && x >= 0.0 && (y as usize) < px.rows && (x as usize) < px.columns)
            .then(|| px.at(y as usize, x as usize))
    };
    let soft = |v: f32| (-100.0..=200.0).contains(&v);
    let mut profile: Vec<(f64, usize)> = Vec::new();
    for r in 6..max_r {
        let steps = STEPS;
        let (mut sum, mut n) = (0f64, 0usize);
        for &d in &dirs {
            if let (Some(a), Some(b), Some(c)) = (
                sample(r as f64 - 2.0, d),
                sample(r as f64, d),
                sample(r as f64 + 2.0, d),
            ) && soft(a)
                && soft(b)
                && soft(c)
            {
                sum += f64::from(b) - f64::from(a + c) / 2.0;
                n += 1;
            }
        }
        // Only radii mostly in soft tissue count (at least half the circle).
        if n * 2 >= steps {
            profile.push(((sum / n as f64).abs(), r));
        }
    }
    if profile.len() < 10 {
        return Score::not_assessable(NAME, "软组织区域不足", "too little soft tissue");
    }
    // The strongest ring against the profile's typical level (its median and the median
    // absolute deviation): anatomy gives every radius some structure, a ring one spike.
    let mut levels: Vec<f32> = profile.iter().map(|p| p.0 as f32).collect();
    let median = f64::from(crate::stats::percentile(&mut levels, 50.0).unwrap_or(0.0));
    let mut spread: Vec<f32> = profile
        .iter()
        .map(|p| (p.0 - median).abs() as f32)
        .collect();
    let mad = f64::from(crate::stats::percentile(&mut spread, 50.0).unwrap_or(0.0));
    let (peak, at) = profile
        .iter()
        .copied()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((0.0, 0));
    let index = (peak - median) / (1.4826 * mad + 0.25);
    let score = 100.0 * 4.0 / (4.0 + index.max(0.0));
    let reasons = below_a(
        "ct_ring",
        &format!("环状伪影（半径{at}像素处{peak:.1} HU）"),
        &format!("ring artifact ({peak:.1} HU at a radius of {at} pixels)"),
        score,
    );
    Score::new(NAME, score, Some(index), reasons)
}

/// **CT streak and metal artifacts**: streaks raise the deviation of many soft-tissue squares
/// at once, so the 75th percentile of the squares' SDs is compared with the noise index (their
/// mode); metal (above 3000 HU) is reported. Score: 100 − 20 × (ratio − 1); metal present
/// costs 10 more.
pub fn streak(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_streak";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let spacing = h.pixel_spacing.map(|s| s.0);
    let mut sds: Vec<f32> = px
        .squares(square_side(spacing))
        .iter()
        .filter(|b| (-50.0..=150.0).contains(&b.2))
        .map(|b| b.3 as f32)
        .collect();
    let (Some(mode), Some(p75)) = (
        noise_index(px, spacing),
        crate::stats::percentile(&mut sds, 75.0),
    ) else {
        return Score::not_assessable(NAME, "软组织区域不足", "too little soft tissue");
    };
    let ratio = f64::from(p75) / mode.max(0.1);
    let metal = px.values.iter().filter(|v| **v > 3000.0).count();
    let mut score = 100.0 - 20.0 * (ratio - 1.0).max(0.0);
    let mut reasons = Vec::new();
    if score < 85.0 {
        reasons.push(reason(
            "ct_streaks",
            &format!("条状伪影（软组织区离散度为噪声的{ratio:.1}倍）"),
            &format!("streak artifacts (soft-tissue spread {ratio:.1}× the noise)"),
        ));
    }
    if metal > 20 {
        score -= 10.0;
        reasons.push(reason("ct_metal", "存在金属高密度物", "metal present"));
    }
    Score::new(NAME, score, Some(ratio), reasons)
}

/// **CT field of view**: the patient cut off at the edge of the image (truncation), as the
/// share of the outermost two pixels of the frame that are body (above −500 HU). Score:
/// 100 − 5 per percent.
pub fn field_of_view(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_fov";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let (h, w) = (px.rows, px.columns);
    if h < 8 || w < 8 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
    }
    let (mut body, mut n) = (0usize, 0usize);
    for r in 0..h {
        for c in 0..w {
            if r < 2 || c < 2 || r >= h - 2 || c >= w - 2 {
                n += 1;
                if px.at(r, c) > -500.0 {
                    body += 1;
                }
            }
        }
    }
    let pct = 100.0 * body as f64 / n as f64;
    let score = 100.0 - 5.0 * pct;
    let reasons = below_a(
        "ct_truncated",
        &format!("视野截断（{pct:.0}%边缘为人体）"),
        &format!("truncated field of view ({pct:.0}% of the edge is body)"),
        score,
    );
    Score::new(NAME, score, Some(pct), reasons)
}
