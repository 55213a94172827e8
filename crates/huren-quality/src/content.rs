//! Whether a frame holds an image at all (issue #18). A blank frame — every sample equal, noise
//! alone, all air — or one with almost nothing in it is 废片 whatever the other scorers say:
//! most of them cannot judge it, and those that read the header alone would otherwise grade it.

use crate::{Header, Pixels, Score, reason, stats};

/// Below this share of the frame holding anything, the frame is "nearly empty".
const MIN_CONTENT_SHARE: f64 = 0.01;

/// The frame's fine-scale noise SD, robustly: the median absolute difference of horizontal
/// neighbours, which is √2·σ·0.6745 for white noise and barely moved by edges (they are few).
fn neighbour_noise(px: &Pixels, sample: &[usize]) -> f64 {
    let mut d: Vec<f32> = sample
        .iter()
        .filter(|&&i| (i + 1) % px.columns != 0 && i + 1 < px.values.len())
        .map(|&i| (px.values[i + 1] - px.values[i]).abs())
        .collect();
    stats::median(&mut d).map_or(0.0, |m| f64::from(m) / (0.6745 * std::f64::consts::SQRT_2))
}

/// **Image content**: the share of the frame that differs from its background.
/// - Spread: the 0.5th to 99.5th percentile. Not above eight times the fine-scale noise (or one
///   stored unit): the frame is constant or noise alone.
/// - Content: on CT, the share above −500 HU (anything but air); otherwise the share more than a
///   tenth of the spread away from the median (the background, where it dominates).
///
/// Blank or under 1% content: 0 (废片) with `image_blank`; otherwise 100, the share as the value.
/// A rule, not a measurement: it is tested on exact cases rather than calibrated.
pub fn content(h: &Header, px: Option<&Pixels>) -> Score {
    let Some(px) = px else {
        return Score::not_assessable("image_content", "无像素数据", "no pixels");
    };
    let n = px.values.len();
    if n < 16 {
        return Score::not_assessable("image_content", "图像过小", "the frame is too small");
    }
    // A regular sample of some 16,000 pixels: enough for a 0.5th percentile and a 1% share, and
    // cheap beside the other scorers (every pixel of a 512² slice took 6 ms).
    let step = (n / 16_384).max(1);
    let sample: Vec<usize> = (0..n).step_by(step).collect();
    let mut v: Vec<f32> = sample.iter().map(|&i| px.values[i]).collect();
    let lo = stats::percentile(&mut v, 0.5).unwrap_or(0.0);
    let hi = stats::percentile(&mut v, 99.5).unwrap_or(0.0);
    let mid = stats::median(&mut v).unwrap_or(0.0);
    let spread = f64::from(hi - lo);
    let noise = neighbour_noise(px, &sample);
    let unit = f64::from(px.slope.abs()).max(f64::MIN_POSITIVE);
    let share = if spread <= (8.0 * noise).max(unit) {
        0.0
    } else if h.modality == "CT" {
        v.iter().filter(|x| **x > -500.0).count() as f64 / v.len() as f64
    } else {
        let away = 0.1 * spread;
        v.iter()
            .filter(|x| (f64::from(**x) - f64::from(mid)).abs() > away)
            .count() as f64
            / v.len() as f64
    };
    if share < MIN_CONTENT_SHARE {
        return Score::new(
            "image_content",
            0.0,
            Some(100.0 * share),
            vec![reason(
                "image_blank",
                "空白或几乎无内容的图像",
                "a blank or nearly empty image",
            )],
        );
    }
    Score::new("image_content", 100.0, Some(100.0 * share), Vec::new())
}
