//! MR scorers. Magnitude images: the background is Rayleigh-distributed noise, so its SD
//! understates the noise by 0.655 (Kaufman et al., Radiology 1989;173:265; NEMA MS 1).

use crate::{Header, Pixels, Score, below_a};

/// The smallest matrix ghosting and motion are judged on: an acquired MR is 96² or more (a
/// 64² thumbnail, pydicom's MR_small, read 废片 for motion and 丙 for ghosts from its own
/// coarse edges).
const MIN_MATRIX: usize = 96;

/// The object: pixels above 30% of `top`, the frame's 99th percentile.
fn object(px: &Pixels, top: f32) -> Vec<f32> {
    px.values
        .iter()
        .copied()
        .filter(|v| *v > 0.3 * top)
        .collect()
}

/// Side of the squares the background noise is read in (pixels).
const NOISE_SQUARE: usize = 8;

/// The background noise σ: in every 8×8 square whose mean is under a tenth of the object's
/// bright level, the SD; the median over the squares, over 0.655 (the Rayleigh background
/// understates σ, Kaufman et al.). Squares anywhere in the background rather than the four
/// corners: the corners held anatomy or padding on some crops, and the estimate moved from 296
/// to 48 when a real MR was cropped by a few pixels (issue #18).
///
/// Err when the method does not apply: under 16 background squares, or more than a fifth of
/// them flat (SD under a tenth of their 75th percentile). A masked, zero-filled or filtered
/// background is not the acquisition's noise (NEMA MS 1 warns the background method off
/// parallel-imaging and filtered images): the real shoulder and abdomen MR at hand have a
/// quarter and two fifths of their background flat, and noise added to them read as a better
/// SNR.
fn background_noise(px: &Pixels, bright: f32) -> Result<f64, (&'static str, &'static str)> {
    let mut sds: Vec<f32> = px
        .squares(NOISE_SQUARE)
        .iter()
        .filter(|b| b.2 < 0.1 * f64::from(bright))
        .map(|b| b.3 as f32)
        .collect();
    if sds.len() < 16 {
        return Err((
            "背景区域不足，无法用背景法估计噪声",
            "too little background for the background method",
        ));
    }
    let n = sds.len();
    let p75 = crate::stats::percentile(&mut sds, 75.0).unwrap_or(0.0);
    let flat = sds.iter().filter(|sd| **sd < 0.1 * p75).count();
    if p75 <= 0.0 || flat * 5 > n {
        return Err((
            "背景经过遮蔽或滤波，背景法不适用",
            "the background is masked or filtered: the background method does not apply",
        ));
    }
    let median = crate::stats::median(&mut sds).unwrap_or(0.0);
    Ok(f64::from(median) / 0.655)
}

/// **MR SNR** by the background method (NEMA MS 1): SNR = mean(object) / σ, σ the background
/// noise ([`background_noise`]). Score: 100·SNR/(SNR + 6) (甲 from 34, 乙
/// from 14, 丙 from 6).
pub fn snr(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_snr";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    if px.rows < 20 || px.columns < 20 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
    }
    let mut all = px.values.clone();
    let bright = crate::stats::percentile(&mut all, 99.0).unwrap_or(0.0);
    let Some(signal) = crate::stats::mean_sd(object(px, bright).into_iter()).map(|m| m.0) else {
        return Score::not_assessable(NAME, "无信号区域", "no signal region");
    };
    let sigma = match background_noise(px, bright) {
        Ok(s) => s,
        Err((zh, en)) => return Score::not_assessable(NAME, zh, en),
    };
    let snr = signal / sigma.max(1e-6);
    let score = 100.0 * snr / (snr + 6.0);
    let reasons = below_a(
        "mr_snr_low",
        &format!("信噪比偏低（{snr:.0}）"),
        &format!("low signal-to-noise ratio ({snr:.0})"),
        score,
    );
    Score::new(NAME, score, Some(snr), reasons)
}

/// **MR ghosting: the ghost-to-signal ratio** (Giannelli et al., J Appl Clin Med Phys
/// 2010;11:3237, for the Nyquist N/2 ghost; NEMA MS 3 for the idea of ghost and non-ghost
/// background). The Nyquist ghost is a copy of the object displaced by half the field of view
/// along the phase-encoding direction, (0018,1312). The ghost region is where the displaced
/// object falls on background; the reference is background the displaced object does not reach.
/// GSR = (mean(ghost region) − mean(reference)) / mean(object), in percent (both directions
/// when (0018,1312) is absent, the larger). Because both regions are derived from the object's
/// own outline, anatomy near the edge of the field does not count as ghost. Ghosts at other
/// displacements (periodic motion) are left to `mr_motion`: searching them too read dim anatomy
/// as ghost on a real shoulder MR. Score by bands anchored on the ACR MRI accreditation limit
/// (a ghosting ratio of 2.5% or less passes): 甲 up to 1%, 乙 up to 2.5%, 丙 up to 5%, 0 at
/// 15% ([`GHOST_BANDS`]). The earlier 100·4/(4 + GSR) graded the clean real shoulder MR (0.72%)
/// 乙.
/// Ghost-to-signal ratio (percent) → score.
const GHOST_BANDS: &[(f64, f64)] = &[
    (0.0, 100.0),
    (1.0, 85.0),
    (2.5, 70.0),
    (5.0, 50.0),
    (15.0, 0.0),
];

pub fn ghosting(h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_ghosting";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    if px.rows < MIN_MATRIX || px.columns < MIN_MATRIX {
        return Score::not_assessable(NAME, "图像矩阵过小", "matrix too small");
    }
    // A reformat (PS3.3 C.8.16.1: Image Type value 3 MPR, or REFORMATTED, PROJECTION IMAGE) is
    // not an acquired plane: its rows and columns are not the acquisition's phase and frequency
    // directions, whatever (0018,1312) copied from the source says.
    if h.image_type.iter().skip(2).any(|v| {
        matches!(
            v.trim(),
            "MPR" | "CSA MPR" | "REFORMATTED" | "PROJECTION IMAGE" | "MIP" | "CURVED MPR"
        )
    }) {
        return Score::not_assessable(
            NAME,
            "重建（MPR）图像，非采集平面，无法判断相位编码方向",
            "a reformat (MPR), not the acquired plane: the phase-encoding direction is unknown",
        );
    }
    // Phase encoding along the columns (COL) moves ghosts down the rows: axis 0.
    let axes: &[usize] = match h.phase_encoding.as_deref() {
        Some("COL") => &[0],
        Some("ROW") => &[1],
        _ => &[0, 1],
    };
    let Some(gsr) = ghost_to_signal(px, axes) else {
        return Score::not_assessable(
            NAME,
            "物体周围背景不足",
            "too little background around the object",
        );
    };
    let score = crate::banded(gsr.max(0.0), GHOST_BANDS);
    let reasons = below_a(
        "mr_ghosting",
        &format!("相位编码方向伪影（鬼影信号比{gsr:.1}%）"),
        &format!("ghosting along the phase-encoding direction (ghost-to-signal ratio {gsr:.1}%)"),
        score,
    );
    Score::new(NAME, score, Some(gsr), reasons)
}

/// The object's outline: the 5×5 mean above 15% of the way from its 5th percentile (background)
/// to the image's 99th, filled (a pixel between object pixels in both its row and its column is
/// object: dark anatomy inside is not background). A ghost brighter than about 15% of the signal
/// joins the outline and is not measured; such a failure is plain to see.
fn outline(px: &Pixels) -> Option<Vec<bool>> {
    let (h, w) = (px.rows, px.columns);
    let smooth = crate::stats::box_mean(px, 2);
    let mut sorted = smooth.clone();
    let low = crate::stats::percentile(&mut sorted, 5.0)?;
    let mut all = px.values.clone();
    let high = crate::stats::percentile(&mut all, 99.0)?;
    let cut = low + 0.15 * (high - low);
    let raw: Vec<bool> = smooth.iter().map(|v| *v > cut).collect();
    let mut in_row = vec![false; h * w];
    for r in 0..h {
        let line = &raw[r * w..(r + 1) * w];
        if let (Some(a), Some(b)) = (line.iter().position(|v| *v), line.iter().rposition(|v| *v)) {
            in_row[r * w + a..=r * w + b].fill(true);
        }
    }
    let mut mask = vec![false; h * w];
    for c in 0..w {
        let first = (0..h).find(|r| raw[r * w + c]);
        let last = (0..h).rev().find(|r| raw[r * w + c]);
        if let (Some(a), Some(b)) = (first, last) {
            for r in a..=b {
                mask[r * w + c] = in_row[r * w + c];
            }
        }
    }
    Some(mask)
}

/// The mask grown by `steps` pixels (4-neighbourhood per step).
fn grow(mask: &[bool], h: usize, w: usize, steps: usize) -> Vec<bool> {
    let mut cur = mask.to_vec();
    for _ in 0..steps {
        let mut next = cur.clone();
        for r in 0..h {
            for c in 0..w {
                if cur[r * w + c] {
                    continue;
                }
                next[r * w + c] = (r > 0 && cur[(r - 1) * w + c])
                    || (r + 1 < h && cur[(r + 1) * w + c])
                    || (c > 0 && cur[r * w + c - 1])
                    || (c + 1 < w && cur[r * w + c + 1]);
            }
        }
        cur = next;
    }
    cur
}

/// The larger Nyquist ghost-to-signal ratio (percent) along `axes`, or `None` when no direction
/// leaves 100 pixels of ghost region and of reference.
pub fn ghost_to_signal(px: &Pixels, axes: &[usize]) -> Option<f64> {
    let (h, w) = (px.rows, px.columns);
    let object = outline(px)?;
    let (signal, _) = crate::stats::mean_sd(
        px.values
            .iter()
            .zip(&object)
            .filter(|(_, m)| **m)
            .map(|(v, _)| *v),
    )?;
    // A margin of 4 pixels keeps the object's blurred edge out of the background; the reference
    // keeps 2 more from where displaced objects fall.
    let near = grow(&object, h, w, 4);
    let reach = grow(&near, h, w, 2);
    // The mask displaced by `s` along `axis`, cyclically (ghosts wrap around the field).
    let at = |m: &[bool], r: usize, c: usize, axis: usize, s: isize| -> bool {
        let (n, i) = if axis == 0 { (h, r) } else { (w, c) };
        let j = (i as isize - s).rem_euclid(n as isize) as usize;
        if axis == 0 {
            m[j * w + c]
        } else {
            m[r * w + j]
        }
    };
    let mut best: Option<f64> = None;
    for &axis in axes {
        // Half the field along that axis.
        let s = (if axis == 0 { h } else { w } / 2) as isize;
        let (mut ghost, mut reference) = ((0f64, 0usize), (0f64, 0usize));
        for r in 0..h {
            for c in 0..w {
                if near[r * w + c] {
                    continue;
                }
                let v = f64::from(px.values[r * w + c]);
                if at(&object, r, c, axis, s) || at(&object, r, c, axis, -s) {
                    ghost = (ghost.0 + v, ghost.1 + 1);
                } else if !at(&reach, r, c, axis, s) && !at(&reach, r, c, axis, -s) {
                    reference = (reference.0 + v, reference.1 + 1);
                }
            }
        }
        if ghost.1 < 100 || reference.1 < 100 {
            continue;
        }
        let gsr = 100.0 * (ghost.0 / ghost.1 as f64 - reference.0 / reference.1 as f64)
            / signal.max(1e-6);
        best = Some(best.map_or(gsr, |b: f64| b.max(gsr)));
    }
    best
}

/// **MR motion: the entropy focus criterion** (Atkinson et al., IEEE TMI 1997;16:903), over
/// the image normalised to its maximum entropy: motion spreads energy into blur and ghosts and
/// raises it. Score: a logistic step, 50 at 0.70, falling by half every 0.05 beyond.
pub fn motion(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_motion";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    if px.rows < MIN_MATRIX || px.columns < MIN_MATRIX {
        return Score::not_assessable(NAME, "图像矩阵过小", "matrix too small");
    }
    let Some(efc) = crate::stats::entropy_focus(&px.values) else {
        return Score::not_assessable(NAME, "图像为空", "empty image");
    };
    let score = 100.0 / (1.0 + ((efc - 0.70) / 0.05).exp());
    let reasons = below_a(
        "mr_motion",
        &format!("疑似运动伪影（熵聚焦指数{efc:.2}）"),
        &format!("likely motion (entropy focus criterion {efc:.2})"),
        score,
    );
    Score::new(NAME, score, Some(efc), reasons)
}

/// Detail ratio → score: the radiographs' bands ([`crate::dr`]), which the MR images at hand
/// fit: the real shoulder and abdomen read 0.11–2.0, the two phantoms (blurred σ 0.8–0.9 px by
/// design) 0.055–0.07, and a Gaussian blur of σ 0.7 px brings the real ones to 0.056–0.07.
const MR_DETAIL_BANDS: &[(f64, f64)] = &[
    (0.15, 100.0),
    (0.05, 85.0),
    (0.012, 70.0),
    (0.005, 50.0),
    (0.0, 0.0),
];

/// **MR sharpness: fine detail where there is anatomy**, measured as for radiographs (at the
/// image's own pixel size): in each 16×16 tile whose SD is at least 5% of the image's
/// 2nd–98th percentile spread, the Laplacian's variance less the noise's over the tile's
/// variance; the median over the tiles. Without it a blurred MR graded better than its original,
/// blur having smoothed the ghosts and the motion the other scorers see (issue #18).
pub fn sharpness(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_sharpness";
    let tiles = match crate::stats::anatomy_tiles(px, 1, crate::stats::Keep::Detailed) {
        Ok(t) => t,
        Err((zh, en)) => return Score::not_assessable(NAME, zh, en),
    };
    let l = tiles.detail();
    let score = crate::banded(l, MR_DETAIL_BANDS);
    let reasons = below_a(
        "mr_blurred",
        &format!("细节模糊（局部拉普拉斯能量比{l:.3}）"),
        &format!("blurred detail (local Laplacian energy ratio {l:.3})"),
        score,
    );
    Score::new(NAME, score, Some(l), reasons)
}
