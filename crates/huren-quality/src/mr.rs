//! MR scorers. Magnitude images: the background is Rayleigh-distributed noise, so its SD
//! understates the noise by 0.655 (Kaufman et al., Radiology 1989;173:265; NEMA MS 1).

use crate::{Header, Pixels, Score, below_a};

/// The four corner patches (a tenth of each side): the background of a centred object.
fn corners(px: &Pixels) -> Vec<f32> {
    let (h, w) = (px.rows, px.columns);
    let (dh, dw) = ((h / 10).max(2), (w / 10).max(2));
    let mut v = Vec::new();
    for (r0, c0) in [(0, 0), (0, w - dw), (h - dh, 0), (h - dh, w - dw)] {
        for r in r0..r0 + dh {
            for c in c0..c0 + dw {
                v.push(px.at(r, c));
            }
        }
    }
    v
}

/// The object: pixels above 30% of the 99th percentile.
fn object(px: &Pixels) -> Vec<f32> {
    let mut all = px.values.clone();
    let top = crate::stats::percentile(&mut all, 99.0).unwrap_or(0.0);
    px.values
        .iter()
        .copied()
        .filter(|v| *v > 0.3 * top)
        .collect()
}

/// **MR SNR** by the background method: SNR = 0.655 × mean(object) / SD(background corners).
/// Score: 100·SNR/(SNR + 6) (甲 from 34, 乙 from 14, 丙 from 6).
pub fn snr(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_snr";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    if px.rows < 20 || px.columns < 20 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
    }
    let (Some((signal, _)), Some((background, sd))) = (
        crate::stats::mean_sd(object(px).into_iter()),
        crate::stats::mean_sd(corners(px).into_iter()),
    ) else {
        return Score::not_assessable(NAME, "无信号或背景区域", "no signal or background region");
    };
    if background > 0.1 * signal {
        return Score::not_assessable(
            NAME,
            "图像四角不是背景，无法用背景法估计噪声",
            "the corners are not background: the background method does not apply",
        );
    }
    let snr = 0.655 * signal / sd.max(1e-6);
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
    if px.rows < 20 || px.columns < 20 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
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
