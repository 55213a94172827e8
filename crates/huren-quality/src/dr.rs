//! Projection radiography (DX/CR) scorers.

use crate::{Header, Pixels, Score, reason};

/// **DR exposure from the header** (IEC 62494-1; DICOM (0018,1411) Exposure Index, (0018,1412)
/// Target Exposure Index, (0018,1413) Deviation Index). Not assessable without an exposure
/// index; the deviation index is taken as sent, or computed as 10·log10(EI/EI_T) only when a
/// target is present. |DI| ≤ 1 (within about 25% of the target) scores 100; each further unit
/// costs 25 points (甲 |DI| ≤ 1.6, 乙 ≤ 2.2, 丙 ≤ 3).
pub fn exposure(h: &Header, _px: Option<&Pixels>) -> Score {
    const NAME: &str = "dr_exposure";
    let Some(ei) = h.exposure_index.filter(|v| *v > 0.0) else {
        return Score::not_assessable(
            NAME,
            "无曝光指数（0018,1411），无法评价",
            "no exposure index (0018,1411): not assessable",
        );
    };
    let di = match (
        h.deviation_index,
        h.target_exposure_index.filter(|t| *t > 0.0),
    ) {
        (Some(di), _) => di,
        (None, Some(target)) => 10.0 * (ei / target).log10(),
        (None, None) => {
            return Score::not_assessable(
                NAME,
                "有曝光指数但无目标值，偏差指数无法计算",
                "an exposure index without a target: no deviation index",
            );
        }
    };
    let score = 100.0 - (di.abs() - 1.0).max(0.0) * 25.0;
    let reasons = if score < 85.0 {
        let (zh, en) = if di > 0.0 {
            ("曝光过度", "overexposed")
        } else {
            ("曝光不足", "underexposed")
        };
        vec![reason(
            if di > 0.0 {
                "dr_overexposed"
            } else {
                "dr_underexposed"
            },
            &format!("{zh}（偏差指数{di:.1}）"),
            &format!("{en} (deviation index {di:.1})"),
        )]
    } else {
        Vec::new()
    };
    Score::new(NAME, score, Some(di), reasons)
}

/// **DR saturation and clipping**: the share of the central half of the image (where the
/// anatomy is; the unattenuated background outside it is often saturated on purpose) that sits
/// at the frame's lowest or highest value. Up to 0.5% scores 100; each further percent costs 5
/// points (甲 ≤ 3.5%, 乙 ≤ 6.5%, 丙 ≤ 10.5%).
pub fn saturation(_h: &Header, px: Option<&Pixels>) -> Score {
    const NAME: &str = "dr_saturation";
    let Some(px) = px else {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    };
    if px.values.is_empty() {
        return Score::not_assessable(NAME, "无可读像素", "no readable pixels");
    }
    let (lo, hi) = px
        .values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if lo == hi {
        return Score::new(
            NAME,
            0.0,
            Some(100.0),
            vec![reason(
                "dr_blank",
                "图像为单一灰度",
                "the image is a single grey level",
            )],
        );
    }
    let (r0, r1) = (px.rows / 4, px.rows - px.rows / 4);
    let (c0, c1) = (px.columns / 4, px.columns - px.columns / 4);
    let (mut at, mut n) = (0usize, 0usize);
    for r in r0..r1 {
        for c in c0..c1 {
            let v = px.at(r, c);
            n += 1;
            if v == lo || v == hi {
                at += 1;
            }
        }
    }
    let pct = 100.0 * at as f64 / n.max(1) as f64;
    let score = 100.0 - (pct - 0.5).max(0.0) * 5.0;
    let reasons = if score < 85.0 {
        vec![reason(
            "dr_clipped",
            &format!("中心区域{pct:.1}%像素饱和或截断"),
            &format!("{pct:.1}% of the central region saturated or clipped"),
        )]
    } else {
        Vec::new()
    };
    Score::new(NAME, score, Some(pct), reasons)
}
