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

/// **MR ghosting** (NEMA MS 3, simplified): ghosts of a moving or unstable object repeat along
/// the phase-encoding direction, so the background beside the object along that direction is
/// brighter than along the frequency direction. Ghost ratio = |mean(phase-side background) −
/// mean(frequency-side background)| / mean(object). The difference is symmetric in the two
/// directions, so (0018,1312) In-plane Phase Encoding Direction is not needed. Score:
/// 100·4/(4 + ratio in percent) (甲 up to 0.7%, 乙 up to 1.7%, 丙 up to 4%).
pub fn ghosting(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "mr_ghosting";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    let (rows, cols) = (px.rows, px.columns);
    if rows < 20 || cols < 20 {
        return Score::not_assessable(NAME, "图像过小", "image too small");
    }
    let Some((signal, _)) = crate::stats::mean_sd(object(px).into_iter()) else {
        return Score::not_assessable(NAME, "无信号区域", "no signal region");
    };
    // Strips one tenth deep along the middle of each edge, half the side long.
    let (dr, dc) = ((rows / 10).max(2), (cols / 10).max(2));
    // Only background pixels count (below the object threshold), and a strip must be mostly
    // background to count at all.
    let mut all = px.values.clone();
    let cut = 0.3 * crate::stats::percentile(&mut all, 99.0).unwrap_or(0.0);
    let strip = |rs: std::ops::Range<usize>, cs: std::ops::Range<usize>| -> Option<f64> {
        let cells: Vec<f32> = rs
            .flat_map(|r| cs.clone().map(move |c| (r, c)))
            .map(|(r, c)| px.at(r, c))
            .collect();
        let n = cells.len();
        let bg: Vec<f32> = cells.into_iter().filter(|v| *v < cut).collect();
        (bg.len() * 10 >= n * 7).then(|| crate::stats::mean_sd(bg.into_iter()).map_or(0.0, |m| m.0))
    };
    // Top and bottom strips (beside the object along the columns' direction) …
    let (Some(top), Some(bottom), Some(left), Some(right)) = (
        strip(0..dr, cols / 4..cols * 3 / 4),
        strip(rows - dr..rows, cols / 4..cols * 3 / 4),
        // … and left and right strips (along the rows' direction).
        strip(rows / 4..rows * 3 / 4, 0..dc),
        strip(rows / 4..rows * 3 / 4, cols - dc..cols),
    ) else {
        return Score::not_assessable(
            NAME,
            "物体周围背景不足",
            "too little background around the object",
        );
    };
    let vertical = (top + bottom) / 2.0;
    let horizontal = (left + right) / 2.0;
    let ratio = 100.0 * (vertical - horizontal).abs() / signal.max(1e-6);
    let score = 100.0 * 4.0 / (4.0 + ratio);
    let reasons = below_a(
        "mr_ghosting",
        &format!("相位编码方向伪影（鬼影比{ratio:.1}%）"),
        &format!("ghosting along the phase-encoding direction (ghost ratio {ratio:.1}%)"),
        score,
    );
    Score::new(NAME, score, Some(ratio), reasons)
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
