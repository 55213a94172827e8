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
    if gni < PROCESSED_NOISE_HU {
        return Score::not_assessable(
            NAME,
            "噪声已被处理去除（有损压缩或降噪），无法测量",
            "the noise was removed by processing (lossy compression or denoising): not measurable",
        );
    }
    let thickness = h.slice_thickness.filter(|t| *t > 0.0).unwrap_or(5.0);
    // At a matched resolution: a smoother image is quieter for the sharpness it gave up (noise
    // falls about as the edge spread grows), so an image whose edges spread beyond the 甲 band
    // of ct_sharpness has its noise brought to that spread. Blurring a noisy image no longer
    // makes it better (issue #18).
    let spread = px
        .edge_spread(EDGE_CONTRAST_HU)
        .map(|e| e.0 * spacing_mm(h));
    let resolution = spread.map_or(1.0, |s| (s / MATCHED_EDGE_MM).max(1.0));
    let equivalent = gni * (thickness / 5.0).sqrt() * resolution;
    let score = 100.0 - 1.5 * equivalent;
    let reasons = below_a(
        "ct_noise_high",
        &format!("图像噪声偏高（噪声指数{gni:.1} HU，折合5 mm及0.8 mm边缘{equivalent:.1} HU）"),
        &format!(
            "high image noise (noise index {gni:.1} HU, {equivalent:.1} HU at 5 mm and a 0.8 mm edge)"
        ),
        score,
    );
    Score::new(NAME, score, Some(gni), reasons)
}

/// The edge spread (mm) noise is judged at: ct_sharpness's 甲 limit.
const MATCHED_EDGE_MM: f64 = 0.8;

/// The least contrast (HU) of the edges ct_sharpness reads.
const EDGE_CONTRAST_HU: f32 = 300.0;

/// The pixel spacing in mm, 0.7 when the header gives none.
fn spacing_mm(h: &Header) -> f64 {
    h.pixel_spacing
        .map(|s| s.0)
        .filter(|s| *s > 0.0)
        .unwrap_or(DEFAULT_SPACING_MM)
}

/// Below this noise index (HU) the noise is not the acquisition's: lossy compression or a
/// denoising filter flattened it (a 5 mm clinical CT has some 3 HU or more of quantum noise).
/// 693_J2KI, a lossy JPEG 2000 of a clean head CT, reads 0.02 HU.
const PROCESSED_NOISE_HU: f64 = 1.0;

/// Scorers that divide by the noise index divide by at least this (HU): on a processed image
/// the index says nothing, and a ratio to 0.02 HU made a clean CT read as streaked 254×.
const NOISE_FLOOR_HU: f64 = 4.0;

/// The fewest soft-tissue squares the noise index is read from: a mode in 0.5 HU bins needs
/// some hundred squares to settle (the AJR method reads whole slices, hundreds of squares). On
/// a 128² crop with 89 of them it moved by up to 15 HU between crops of the same image (found
/// by the held-out validation set, issue #18; the limit was 30).
const MIN_NOISE_SQUARES: usize = 100;

/// The global noise index in HU, or none when fewer than [`MIN_NOISE_SQUARES`] squares are
/// soft tissue.
pub fn noise_index(px: &Pixels, spacing_mm: Option<f64>) -> Option<f64> {
    let deviations: Vec<f64> = px
        .squares(square_side(spacing_mm))
        .iter()
        .filter(|b| (-50.0..=150.0).contains(&b.2))
        .map(|b| b.3)
        .collect();
    if deviations.len() < MIN_NOISE_SQUARES {
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
    // Below the processed-noise level the noise is not the acquisition's (see ct_noise): a
    // ratio to it says nothing (a lossy head CT read a CNR of 1037 whatever noise was added).
    if noise < PROCESSED_NOISE_HU {
        return Score::not_assessable(
            NAME,
            "噪声已被处理去除（有损压缩或降噪），无法测量对比噪声比",
            "the noise was removed by processing (lossy compression or denoising): CNR not measurable",
        );
    }
    let cnr = (f64::from(t) - f64::from(a)) / noise.max(PROCESSED_NOISE_HU);
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

/// The in-plane pixel spacing assumed when the header gives none (mm): a typical body CT.
const DEFAULT_SPACING_MM: f64 = 0.7;

/// Edge spread (mm) → score: 甲 up to 0.8 mm, 乙 up to 1.3 mm, 丙 up to 1.9 mm. A Gaussian blur
/// of σ has its MTF at 50% at √(ln 2 / 2)/(πσ): σ 0.54 mm is a standard body kernel's
/// 3.5 lp/cm, 0.8 mm 2.3 lp/cm, 1.3 mm 1.4 lp/cm, 1.9 mm under 1 lp/cm. Anatomical edges are
/// never perfect steps, so an image reads somewhat wider than its kernel (the real head CT of
/// the validation suite reads 0.42 mm); and edges wider than about 2 mm are read short (their
/// levels lie beyond the 8 pixels looked at), so the bands end there.
const CT_EDGE_BANDS: &[(f64, f64)] = &[
    (0.3, 100.0),
    (0.8, 85.0),
    (1.3, 70.0),
    (1.9, 50.0),
    (3.0, 0.0),
];

/// **CT sharpness: how far high-contrast edges spread** (air/tissue, bone: at least 300 HU
/// across), as the σ of the Gaussian blur that would give them, in mm
/// ([`crate::stats::edge_spread`] × the pixel spacing, 0.7 mm when the header gives none), so
/// images of any matrix and field of view are judged alike. Bands: [`CT_EDGE_BANDS`].
pub fn sharpness(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_sharpness";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let Some((sigma_px, _, _)) = px.edge_spread(EDGE_CONTRAST_HU) else {
        return Score::not_assessable(NAME, "无高对比边缘", "no high-contrast edge");
    };
    let sigma = sigma_px * spacing_mm(h);
    let score = crate::banded(sigma, CT_EDGE_BANDS);
    let reasons = below_a(
        "ct_blurred",
        &format!("高对比边缘模糊（边缘扩展{sigma:.2} mm）"),
        &format!("blurred high-contrast edges (edge spread {sigma:.2} mm)"),
        score,
    );
    Score::new(NAME, score, Some(sigma), reasons)
}

/// **CT ring artifacts** (detector-channel faults: a ring about the centre of rotation, the
/// image centre in an axial reconstruction). At every soft-tissue pixel (−80…180 HU) whose
/// samples 2 and 4 pixels inward and outward are soft tissue too, the second difference across
/// the ring d = v − (v₋₂ + v₊₂)/2, taken along the row or the column nearer the radius (within
/// 45° of it, the 2-pixel steps still leave a ring of a pixel or two: the response is the
/// radial one's, and rows and columns are read as slices rather than gathered along each
/// radius: the scorer went from 1.7 to 0.9 ms a 512² slice); a ring is the same all around, noise and anatomy are
/// not. d is clipped at 2.5 robust SDs (1.4826 × MAD), so a vessel or a partial-volume pixel
/// counts no more than noise, and averaged per 1-pixel radius. Each radius's mean, less the
/// median of its neighbours within 6 pixels (slow anatomy and edge trends), in standard errors
/// (√n / SD), for single radii and adjacent pairs pooled (rings are one to a few detector
/// channels wide): the **ring index** is the largest |z|. Radii with fewer than 40 such pixels or
/// under 15% of their circle are left out.
/// Score: 100·90/(90 + index) (甲 up to 16, 乙 up to 39, 丙 up to 90). A clean quiet real head CT
/// reads 9–16 from its anatomy; a 4 HU ring reads 5–7 on a 12 HU-noise phantom and 20–24 on that
/// head CT (docs/quality.md).
pub fn ring(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_ring";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    // Rings are centred on the scanner's axis, taken to be the image centre: on a crop of the
    // reconstruction it is elsewhere.
    if let Some(field) = crop_of(h, px) {
        return Score::not_assessable(
            NAME,
            &format!("图像为重建视野（{field:.0} mm）的一部分，旋转中心未知"),
            &format!(
                "the frame is part of the reconstructed field ({field:.0} mm): the rotation centre is unknown"
            ),
        );
    }
    match ring_index(px) {
        Some((index, at, amplitude)) => {
            let score = 100.0 * 120.0 / (120.0 + index);
            let reasons = below_a(
                "ct_ring",
                &format!("环状伪影（半径{at}像素处{amplitude:.1} HU）"),
                &format!("ring artifact ({amplitude:.1} HU at a radius of {at} pixels)"),
                score,
            );
            Score::new(NAME, score, Some(index), reasons)
        }
        None => Score::not_assessable(NAME, "软组织区域不足", "too little soft tissue"),
    }
}

/// Where each pixel of a frame of one size looks for [`ring_index`]: its radius from the centre
/// (0: not used) and the row-major offsets of the samples 2 and 4 pixels out along that radius.
/// The same for every slice of that size, so it is worked out once per size.
struct RingGeometry {
    /// Per pixel: its radius in whole pixels (0: not used, too near the centre or the edge), and
    /// whether the radius runs nearer the rows than the columns (the second difference is then
    /// taken along the row), in the top bit.
    at: Vec<u16>,
    /// Where each radius's samples start in the buffer they are sorted into: the running count
    /// of the pixels at smaller radii (a radius has at most that many samples).
    slots: Vec<usize>,
    max_r: f32,
}

/// The flag in [`RingGeometry::at`] for a radius nearer the rows.
const ALONG_ROW: u16 = 1 << 15;

fn ring_geometry(h: usize, w: usize) -> Option<std::sync::Arc<RingGeometry>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type BySize = HashMap<(usize, usize), Arc<RingGeometry>>;
    static SIZES: OnceLock<Mutex<BySize>> = OnceLock::new();
    let (cy, cx) = (h as f32 / 2.0, w as f32 / 2.0);
    // Samples up to 4 pixels further out must stay inside the frame.
    let max_r = cy.min(cx) - 6.0;
    if !(20.0..60_000.0).contains(&max_r) {
        return None;
    }
    let sizes = SIZES.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked while inserting: the map is still whole.
    if let Some(g) = sizes.lock().unwrap_or_else(|e| e.into_inner()).get(&(h, w)) {
        return Some(g.clone());
    }
    let mut g = RingGeometry {
        at: vec![0; h * w],
        slots: Vec::new(),
        max_r,
    };
    for y in 0..h {
        let dy = y as f32 - cy + 0.5;
        for x in 0..w {
            let dx = x as f32 - cx + 0.5;
            let r = (dy * dy + dx * dx).sqrt();
            if r <= 6.0 || r >= max_r {
                continue;
            }
            let along_row = if dx.abs() >= dy.abs() { ALONG_ROW } else { 0 };
            g.at[y * w + x] = r as u16 | along_row;
        }
    }
    let mut per_radius = vec![0usize; g.max_r as usize + 1];
    for &a in &g.at {
        per_radius[usize::from(a & !ALONG_ROW)] += 1;
    }
    g.slots = std::iter::once(0)
        .chain(per_radius.iter().scan(0, |total, n| {
            *total += n;
            Some(*total)
        }))
        .collect();
    let g = Arc::new(g);
    let mut map = sizes.lock().unwrap_or_else(|e| e.into_inner());
    // Only a few sizes occur in practice (2 bytes a pixel: 0.5 MB for 512²); an odd one must
    // not make the map grow without end.
    if map.len() >= 8 {
        map.clear();
    }
    map.insert((h, w), g.clone());
    Some(g)
}

/// The ring index of [`ring`], with the radius (pixels) and amplitude (HU) of the strongest ring.
pub fn ring_index(px: &Pixels) -> Option<(f64, usize, f64)> {
    let (h, w) = (px.rows, px.columns);
    let geometry = ring_geometry(h, w)?;
    let soft = |v: f32| (-80.0..=180.0).contains(&v);
    let values = &px.values;
    // Which pixels are soft tissue, once: each pixel's test reads four neighbours along its
    // radius.
    let bins = geometry.max_r as usize + 1;
    // The buffers are taken out of the scratch for the pass and put back after: as locals the
    // compiler knows nothing else writes them.
    let (mut is_soft, mut by_radius) = RING_SCRATCH.take();
    is_soft.clear();
    is_soft.extend(values.iter().map(|v| soft(*v)));
    // The second difference of every usable pixel, written straight into its radius's slots.
    by_radius.clear();
    by_radius.resize(geometry.slots[bins], 0.0);
    let mut fill = geometry.slots[..bins].to_vec();
    // Row by row over slices of the rows 2 and 4 above and below (radii stop 6 pixels short of
    // the frame's edge, so every sample is inside it).
    for y in 4..h.saturating_sub(4) {
        let line = |dy: isize| {
            let start = (y as isize + dy) as usize * w;
            start..start + w
        };
        let (v, up2, down2) = (&values[line(0)], &values[line(-2)], &values[line(2)]);
        let (s, s_up2, s_down2) = (&is_soft[line(0)], &is_soft[line(-2)], &is_soft[line(2)]);
        let (s_up4, s_down4) = (&is_soft[line(-4)], &is_soft[line(4)]);
        let at = &geometry.at[line(0)];
        for x in 4..w - 4 {
            let a = at[x];
            if a == 0 || !s[x] {
                continue;
            }
            let (usable, inner, outer) = if a & ALONG_ROW != 0 {
                (
                    s[x - 2] & s[x + 2] & s[x - 4] & s[x + 4],
                    v[x - 2],
                    v[x + 2],
                )
            } else {
                (
                    s_up2[x] & s_down2[x] & s_up4[x] & s_down4[x],
                    up2[x],
                    down2[x],
                )
            };
            if !usable {
                continue;
            }
            let slot = &mut fill[usize::from(a & !ALONG_ROW)];
            by_radius[*slot] = v[x] - (inner + outer) / 2.0;
            *slot += 1;
        }
    }
    let count: Vec<usize> = (0..bins).map(|r| fill[r] - geometry.slots[r]).collect();
    let index = ring_index_of(&mut by_radius, &geometry.slots, &count, bins);
    RING_SCRATCH.set((is_soft, by_radius));
    index
}

/// Scratch for [`ring_index`], kept between the slices a worker scores: allocated afresh, its
/// pages (some 2 MB a slice) were faulted in and zeroed every time.
type RingScratch = (Vec<bool>, Vec<f32>);

thread_local! {
    static RING_SCRATCH: std::cell::Cell<RingScratch> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// The ring index from the second differences grouped by radius (radius r's are the `count[r]`
/// from `start[r]`).
fn ring_index_of(
    by_radius: &mut [f32],
    start: &[usize],
    count: &[usize],
    bins: usize,
) -> Option<(f64, usize, f64)> {
    // The clipping scale from every 8th sample's spread about its own radius's median: a ring
    // moves a whole radius, so it does not widen this, however strong or however many rings.
    let mut medians = vec![0f32; bins];
    let mut spread: Vec<f32> = Vec::new();
    let mut quarter: Vec<f32> = Vec::new();
    for r in 0..bins {
        let part = &mut by_radius[start[r]..start[r] + count[r]];
        if part.is_empty() {
            continue;
        }
        // The median of every 4th sample: the clipping centre need not be exact, and a radius's
        // full median cost a quarter of the scorer set's time.
        quarter.clear();
        quarter.extend(part.iter().step_by(4));
        medians[r] = crate::stats::median(&mut quarter)?;
        spread.extend(part.iter().step_by(8).map(|v| (v - medians[r]).abs()));
    }
    let clip = 2.5 * (1.4826 * crate::stats::median(&mut spread)?).max(0.5);
    // Per radius: the mean of the samples clipped about that radius's median (a vessel counts no
    // more than noise; the ring's own offset is kept whole), and the pooled spread within radii
    // (the ring index's standard error: rings are the same all around, so they add nothing to
    // it).
    let (mut means, mut within, mut dof) = (vec![0f64; bins], 0f64, 0usize);
    for r in 0..bins {
        let part = &by_radius[start[r]..start[r] + count[r]];
        if part.len() < 2 {
            continue;
        }
        let m = medians[r];
        let clipped = part.iter().map(|v| f64::from(v.clamp(m - clip, m + clip)));
        let (mean, sd) = crate::stats::mean_sd(clipped.map(|v| v as f32)).unwrap_or((0.0, 0.0));
        means[r] = mean;
        within += sd * sd * (part.len() - 1) as f64;
        dof += part.len() - 1;
    }
    let sd = (within / dof.max(1) as f64).sqrt().max(0.5);
    let good: Vec<(usize, f64)> = (0..bins)
        .filter(|r| count[*r] >= 40 && count[*r] as f64 >= 0.15 * std::f64::consts::TAU * *r as f64)
        .map(|r| (r, means[r]))
        .collect();
    // A ring one or two pixels wide: single radii, and adjacent pairs pooled.
    let mut best: Option<(f64, usize, f64)> = None;
    for (i, &(r, _)) in good.iter().enumerate() {
        for width in 1..=2usize {
            let group = &good[i..(i + width).min(good.len())];
            if group.len() < width || group[width - 1].0 != r + width - 1 {
                continue;
            }
            // Radii are distinct and increasing: neighbours within 7 radii are within 8 places.
            let mut around: Vec<f32> = good[i.saturating_sub(8)..(i + width + 8).min(good.len())]
                .iter()
                .filter(|(q, _)| !(r..r + width).contains(q) && q.abs_diff(r) < 6 + width)
                .map(|(_, m)| *m as f32)
                .collect();
            if around.len() < 4 {
                continue;
            }
            let level = f64::from(crate::stats::percentile(&mut around, 50.0)?);
            let n: usize = group.iter().map(|(q, _)| count[*q]).sum();
            let mean = group.iter().map(|(q, m)| m * count[*q] as f64).sum::<f64>() / n as f64;
            let e = (mean - level).abs();
            let z = e * (n as f64).sqrt() / sd;
            if best.is_none_or(|b| z > b.0) {
                best = Some((z, r, e));
            }
        }
    }
    best
}

/// **CT streak and metal artifacts**: streaks raise the deviation of many soft-tissue squares
/// at once, so the 75th percentile of the squares' SDs is compared with the noise index (their
/// mode); metal (above 3000 HU) is reported. Score: 100·10/(10 + ratio − 1), without a floor so
/// that worse streaks always score lower (甲 up to a ratio of 2.8, 乙 up to 5.3, 丙 up to 11: a
/// quiet real head CT reads 1.9–2.5 from its anatomy's texture alone); metal present costs 10
/// more.
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
    let ratio = ratio_of(p75, mode);
    let metal = px.values.iter().filter(|v| **v > 3000.0).count();
    let mut score = 100.0 * 10.0 / (10.0 + (ratio - 1.0).max(0.0));
    let mut reasons = Vec::new();
    if score < 85.0 {
        // On a lossily compressed image the same spread is the compression's ringing and
        // blocking as likely as streaks: the reason says which it may be.
        let spread = ratio;
        reasons.push(match h.lossy {
            Some(compression) => {
                let (zh, en) = if compression > 1.0 {
                    (
                        format!("，压缩比{compression:.0}:1"),
                        format!(", ratio {compression:.0}:1"),
                    )
                } else {
                    (String::new(), String::new())
                };
                reason(
                    "compression_artifacts",
                    &format!("有损压缩伪影或条状伪影（软组织区离散度为噪声的{spread:.1}倍{zh}）"),
                    &format!(
                        "lossy-compression or streak artifacts (soft-tissue spread {spread:.1}× the noise{en})"
                    ),
                )
            }
            None => reason(
                "ct_streaks",
                &format!("条状伪影（软组织区离散度为噪声的{ratio:.1}倍）"),
                &format!("streak artifacts (soft-tissue spread {ratio:.1}× the noise)"),
            ),
        });
    }
    if metal > 20 {
        score -= 10.0;
        reasons.push(reason("ct_metal", "存在金属高密度物", "metal present"));
    }
    Score::new(NAME, score, Some(ratio), reasons)
}

/// The streak ratio: the soft-tissue squares' 75th-percentile SD over the noise index, floored.
fn ratio_of(p75: f32, mode: f64) -> f64 {
    f64::from(p75) / mode.max(NOISE_FLOOR_HU)
}

/// The reconstruction diameter (mm) when the frame is less than 90% of it across: a crop of
/// the reconstructed field, whose centre and edges are not the scanner's.
fn crop_of(hd: &Header, px: &Pixels) -> Option<f64> {
    let width = hd
        .pixel_spacing
        .filter(|s| s.1 > 0.0)
        .map(|s| s.1 * px.columns as f64)?;
    hd.reconstruction_diameter
        .filter(|d| *d > 0.0 && width < 0.9 * d)
}

/// **CT field of view**: the patient cut off at the edge of the image (truncation), as the
/// share of the outermost two pixels of the frame that are body (above −500 HU). Score:
/// 100 − 5 per percent. Not assessable when the frame is not the whole reconstructed field —
/// its width (pixel spacing × columns) falls short of Reconstruction Diameter (0018,1100) by
/// more than a tenth, a crop — or when that field is under 200 mm (a targeted reconstruction of
/// the spine or the ear, where the body fills the frame by design).
pub fn field_of_view(hd: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "ct_fov";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let (h, w) = (px.rows, px.columns);
    if h < 8 || w < 8 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
    }
    let width = hd
        .pixel_spacing
        .filter(|s| s.1 > 0.0)
        .map(|s| s.1 * w as f64);
    if let Some(field) = crop_of(hd, px) {
        return Score::not_assessable(
            NAME,
            &format!("图像为重建视野（{field:.0} mm）的一部分，无法判断截断"),
            &format!(
                "the frame is part of the reconstructed field ({field:.0} mm): truncation cannot be judged"
            ),
        );
    }
    if let Some(field) = hd.reconstruction_diameter.filter(|d| *d > 0.0).or(width)
        && field < 200.0
    {
        return Score::not_assessable(
            NAME,
            &format!("靶重建（视野{field:.0} mm），人体充满视野属正常"),
            &format!(
                "a targeted reconstruction ({field:.0} mm field): the body fills it by design"
            ),
        );
    }
    // The outermost two rows and columns (corners once).
    let border = (0..h).flat_map(|r| {
        let columns: Box<dyn Iterator<Item = usize>> = if r < 2 || r >= h - 2 {
            Box::new(0..w)
        } else {
            Box::new((0..2).chain(w - 2..w))
        };
        columns.map(move |c| (r, c))
    });
    let (mut body, mut n) = (0usize, 0usize);
    for (r, c) in border {
        n += 1;
        if px.at(r, c) > -500.0 {
            body += 1;
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
