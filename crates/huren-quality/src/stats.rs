//! Small image statistics the scorers share.

use crate::Pixels;

/// The `k`-th smallest (0-based) of `v`, which is reordered in place: by selection, not a
/// full sort.
fn kth(v: &mut [f32], k: usize) -> f32 {
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// The `p`-th percentile (0–100) of `v` (reordered in place), nearest rank.
pub fn percentile(v: &mut [f32], p: f64) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    let k = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    Some(kth(v, k.min(v.len() - 1)))
}

/// The median of `v` (reordered in place); the lower middle value of an even count.
pub fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    Some(kth(v, (v.len() - 1) / 2))
}

/// The lowest and highest value of a frame.
pub fn extent(px: &Pixels) -> (f32, f32) {
    px.values
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)))
}

/// Mean and sample standard deviation.
pub fn mean_sd(v: impl Iterator<Item = f32>) -> Option<(f64, f64)> {
    let (mut n, mut s, mut q) = (0f64, 0f64, 0f64);
    for x in v {
        let x = f64::from(x);
        n += 1.0;
        s += x;
        q += x * x;
    }
    if n < 2.0 {
        return None;
    }
    let m = s / n;
    Some((m, ((q / n - m * m).max(0.0) * n / (n - 1.0)).sqrt()))
}

/// Sobel gradient magnitude at every interior pixel (borders 0), in value units per pixel.
/// Row by row over slices of the three rows, so the compiler can keep it in vector registers.
pub fn gradient(px: &Pixels) -> Vec<f32> {
    let (h, w) = (px.rows, px.columns);
    let mut g = crate::pixels::recycled(h * w);
    g.resize(h * w, 0.0);
    if h < 3 || w < 3 {
        return g;
    }
    for r in 1..h - 1 {
        let up = &px.values[(r - 1) * w..r * w];
        let mid = &px.values[r * w..(r + 1) * w];
        let down = &px.values[(r + 1) * w..(r + 2) * w];
        let out = &mut g[r * w + 1..(r + 1) * w - 1];
        for (c, o) in out.iter_mut().enumerate() {
            // c is the column less one: the 3×3 window spans c..c+3.
            let gx =
                (up[c + 2] + 2.0 * mid[c + 2] + down[c + 2]) - (up[c] + 2.0 * mid[c] + down[c]);
            let gy =
                (down[c] + 2.0 * down[c + 1] + down[c + 2]) - (up[c] + 2.0 * up[c + 1] + up[c + 2]);
            // The Sobel kernel weighs a unit step ×8 across its three rows and two columns.
            *o = (gx * gx + gy * gy).sqrt() / 8.0;
        }
    }
    g
}

/// One square: (row, column, mean, SD).
pub type Block = (usize, usize, f64, f64);

/// Per-block mean and SD over non-overlapping `side`×`side` blocks: (row, col, mean, sd).
pub fn blocks(px: &Pixels, side: usize) -> Vec<Block> {
    let mut out = Vec::new();
    if side < 2 {
        return out;
    }
    let n = (side * side) as f64;
    let mut r = 0;
    while r + side <= px.rows {
        let mut c = 0;
        while c + side <= px.columns {
            let (mut s, mut q) = (0f64, 0f64);
            for y in r..r + side {
                for &v in &px.values[y * px.columns + c..y * px.columns + c + side] {
                    let v = f64::from(v);
                    s += v;
                    q += v * v;
                }
            }
            let m = s / n;
            out.push((r, c, m, ((q / n - m * m).max(0.0) * n / (n - 1.0)).sqrt()));
            c += side;
        }
        r += side;
    }
    out
}

/// Shannon-style entropy focus criterion of the magnitudes (Atkinson et al., IEEE TMI 1997),
/// normalised to 0–1 by its maximum for this many pixels: higher is blurrier or more ghosted.
pub fn entropy_focus(values: &[f32]) -> Option<f64> {
    let total: f64 = values
        .iter()
        .map(|v| f64::from(v.max(0.0)).powi(2))
        .sum::<f64>()
        .sqrt();
    if total <= 0.0 || values.len() < 2 {
        return None;
    }
    let e: f64 = values
        .iter()
        .map(|v| f64::from(v.max(0.0)) / total)
        .filter(|b| *b > 0.0)
        .map(|b| -b * b.ln())
        .sum();
    let n = values.len() as f64;
    let max = n.sqrt() * (n.sqrt()).ln();
    Some(e / max)
}

/// The mean over the (2k+1)² square around every pixel (clamped at the borders), by a summed-area
/// table.
pub fn box_mean(px: &Pixels, k: usize) -> Vec<f32> {
    let (h, w) = (px.rows, px.columns);
    let mut sat = vec![0f64; (h + 1) * (w + 1)];
    for r in 0..h {
        let mut row = 0f64;
        for c in 0..w {
            row += f64::from(px.values[r * w + c]);
            sat[(r + 1) * (w + 1) + c + 1] = sat[r * (w + 1) + c + 1] + row;
        }
    }
    let mut out = vec![0f32; h * w];
    for r in 0..h {
        let (r0, r1) = (r.saturating_sub(k), (r + k + 1).min(h));
        for c in 0..w {
            let (c0, c1) = (c.saturating_sub(k), (c + k + 1).min(w));
            let s = sat[r1 * (w + 1) + c1] - sat[r0 * (w + 1) + c1] - sat[r1 * (w + 1) + c0]
                + sat[r0 * (w + 1) + c0];
            out[r * w + c] = (s / ((r1 - r0) * (c1 - c0)) as f64) as f32;
        }
    }
    out
}

/// (median σ in pixels of all edges, of those with gradients along the rows, along the columns).
pub type EdgeSpread = (f64, Option<f64>, Option<f64>);

/// How far the strongest edges spread, as the σ (pixels) of the Gaussian blur that would give
/// them: `(median σ of all, of those whose gradient runs along the rows, along the columns)`
/// (the two directions apart show motion).
///
/// At each pixel that is a local maximum of the Sobel gradient, the profile along the gradient
/// direction is read 8 pixels either side (bilinear; further out, the anatomy beside an edge spoils its levels). The edge's two levels are the means of
/// its three outermost samples each side; where they differ by at least `min_contrast`, the
/// edge is kept and its width is the distance between the profile's 10% and 90% crossings,
/// which is 2.563σ for a Gaussian-blurred step. Plateau means and crossings are little moved by
/// noise, unlike a largest slope, which noise steepens: more noise must not read as sharper.
/// The whole profile is read, not a fixed window about the pixel, so wide edges are measured as
/// wide. At least 20 edges, else `None`.
pub fn edge_spread(px: &Pixels, min_contrast: f32) -> Option<EdgeSpread> {
    const REACH: isize = 8;
    let (h, w) = (px.rows, px.columns);
    if h < 2 * REACH as usize + 3 || w < 2 * REACH as usize + 3 {
        return None;
    }
    let g = gradient(px);
    // A step of `min_contrast` spread over 4σ = 8 px still has a slope of a tenth of it.
    let floor = min_contrast * 0.1;
    let (mut all, mut along_rows, mut along_columns) = (Vec::new(), Vec::new(), Vec::new());
    let reach = REACH as usize;
    let at = |y: usize, x: usize| px.values[y * w + x];
    // Bilinear, inside the frame by construction (reach from a pixel at least `reach` in).
    let sample = |y: f32, x: f32| {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let (y0, x0) = (y0 as usize, x0 as usize);
        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
        let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
        let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    let mut profile = [0f32; 2 * REACH as usize + 1];
    for r in reach..h - reach {
        let row = &g[r * w..(r + 1) * w];
        for c in reach..w - reach {
            let v = row[c];
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
            // The gradient's direction (Sobel), pointing up the edge.
            let gx = (at(r - 1, c + 1) + 2.0 * at(r, c + 1) + at(r + 1, c + 1))
                - (at(r - 1, c - 1) + 2.0 * at(r, c - 1) + at(r + 1, c - 1));
            let gy = (at(r + 1, c - 1) + 2.0 * at(r + 1, c) + at(r + 1, c + 1))
                - (at(r - 1, c - 1) + 2.0 * at(r - 1, c) + at(r - 1, c + 1));
            let norm = (gx * gx + gy * gy).sqrt();
            if norm <= 0.0 {
                continue;
            }
            let (uy, ux) = (gy / norm, gx / norm);
            for (k, slot) in profile.iter_mut().enumerate() {
                let t = k as f32 - REACH as f32;
                *slot = sample(
                    (r as f32 + uy * t).clamp(0.0, (h - 1) as f32),
                    (c as f32 + ux * t).clamp(0.0, (w - 1) as f32),
                );
            }
            let n = profile.len();
            let lo = (profile[0] + profile[1] + profile[2]) / 3.0;
            let hi = (profile[n - 1] + profile[n - 2] + profile[n - 3]) / 3.0;
            let step = hi - lo;
            if step < min_contrast {
                continue;
            }
            // The crossings of 10% and 90% nearest the centre (upward crossings: the profile
            // runs up the edge), interpolated between samples.
            let centre = REACH as f32;
            let (low, high) = (lo + 0.1 * step, lo + 0.9 * step);
            let crossing = |level: f32| {
                let mut best: Option<f32> = None;
                for k in 0..n - 1 {
                    let (a, b) = (profile[k], profile[k + 1]);
                    if a <= level && level < b {
                        let at = k as f32 + (level - a) / (b - a);
                        if best.is_none_or(|x| (at - centre).abs() < (x - centre).abs()) {
                            best = Some(at);
                        }
                    }
                }
                best
            };
            let (Some(t10), Some(t90)) = (crossing(low), crossing(high)) else {
                continue;
            };
            if t90 <= t10 {
                continue;
            }
            let sigma = (t90 - t10) / 2.563;
            all.push(sigma);
            if ux.abs() > 0.9 {
                along_rows.push(sigma);
            } else if uy.abs() > 0.9 {
                along_columns.push(sigma);
            }
        }
    }
    crate::pixels::recycle(g);
    if all.len() < 20 {
        return None;
    }
    let med = |v: &mut Vec<f32>| (v.len() >= 10).then(|| median(v).map(f64::from)).flatten();
    Some((
        f64::from(median(&mut all)?),
        med(&mut along_rows),
        med(&mut along_columns),
    ))
}

/// The mean of each `k`×`k` block (the remainder at the edges dropped).
fn downsample(px: &Pixels, k: usize) -> Pixels {
    let (h, w) = (px.rows / k, px.columns / k);
    let mut values = vec![0f32; h * w];
    for r in 0..h * k {
        let row = &px.values[r * px.columns..r * px.columns + w * k];
        let out = &mut values[(r / k) * w..(r / k + 1) * w];
        for (c, v) in row.iter().enumerate() {
            out[c / k] += v;
        }
    }
    let n = (k * k) as f32;
    for v in &mut values {
        *v /= n;
    }
    Pixels::new(
        h,
        w,
        values,
        (px.stored_min, px.stored_max),
        px.slope,
        px.intercept,
    )
}

/// One tile's variances: of the pixels and of their 5-point Laplacian.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    pub(crate) var: f64,
    pub(crate) laplacian: f64,
}

/// The tiles of a radiograph that hold anatomy.
pub(crate) struct AnatomyTiles {
    pub(crate) tiles: Vec<Tile>,
    /// The frame's 2nd–98th percentile spread, the scale of its anatomy's contrast.
    pub(crate) spread: f64,
}

impl AnatomyTiles {
    /// The median over the tiles of the Laplacian's variance, less the least detailed tenth's
    /// (the noise's), over the tile's variance.
    pub(crate) fn detail(&self) -> f64 {
        let noise = self.percentile(10.0, |t| t.laplacian);
        let mut ratios: Vec<f32> = self
            .tiles
            .iter()
            .map(|t| ((t.laplacian - noise).max(0.0) / t.var) as f32)
            .collect();
        f64::from(median(&mut ratios).unwrap_or(0.0))
    }

    /// The `p`-th percentile of one of the tiles' variances.
    pub(crate) fn percentile(&self, p: f64, of: impl Fn(&Tile) -> f64) -> f64 {
        let mut v: Vec<f32> = self.tiles.iter().map(|t| of(t) as f32).collect();
        f64::from(percentile(&mut v, p).unwrap_or(0.0))
    }
}

/// Which tiles [`anatomy_tiles`] keeps.
#[derive(Clone, Copy)]
pub(crate) enum Keep {
    /// Those whose SD is at least 5% of the frame's 2nd–98th percentile spread: where there is
    /// detail to judge (collimated and empty areas are flat).
    Detailed,
    /// Those whose mean lies inside the 2nd–98th percentiles, a twentieth of their spread in
    /// from each: the exposed anatomy, flat parts included (where noise is read), without the
    /// collimated border, zero-filled areas or raw background.
    Inside,
}

/// Cuts the frame into 16×16 tiles — after averaging `factor`×`factor` blocks when `factor` is
/// over 1 — and keeps those `keep` says. Err: why the image cannot be judged, in Chinese
/// and English.
pub(crate) fn anatomy_tiles(
    px: Option<&Pixels>,
    factor: usize,
    keep: Keep,
) -> Result<AnatomyTiles, (&'static str, &'static str)> {
    const TILE: usize = 16;
    let px = px.ok_or(("无可读像素", "no readable pixels"))?;
    let averaged;
    let px = if factor > 1 {
        averaged = downsample(px, factor);
        &averaged
    } else {
        px
    };
    let (h, w) = (px.rows, px.columns);
    if h < 4 * TILE || w < 4 * TILE {
        return Err(("图像过小", "image too small"));
    }
    let mut sample: Vec<f32> = px.values.iter().step_by(5).copied().collect();
    let (Some(p2), Some(p98)) = (percentile(&mut sample, 2.0), percentile(&mut sample, 98.0))
    else {
        return Err(("图像过小", "image too small"));
    };
    let spread = f64::from(p98 - p2);
    let floor = 0.05 * spread;
    // A twentieth of the spread in from each end: a zero-filled or collimated area sits at the
    // 2nd percentile, and noise added to it must not make it count as anatomy.
    let margin = 0.05 * spread;
    let mut tiles: Vec<Tile> = Vec::new();
    let v = &px.values;
    let variance =
        |sum: f64, squares: f64, n: f64| ((squares - sum * sum / n) / (n - 1.0)).max(0.0);
    let mut r = 1;
    while r + TILE < h {
        let mut c = 1;
        while c + TILE < w {
            // Sums and sums of squares of the pixels and of the Laplacian.
            let mut acc = [0f64; 4];
            for y in r..r + TILE {
                let (up, row, down) = (
                    &v[(y - 1) * w..y * w],
                    &v[y * w..(y + 1) * w],
                    &v[(y + 1) * w..(y + 2) * w],
                );
                for x in c..c + TILE {
                    let p = f64::from(row[x]);
                    let lap = 4.0 * p
                        - f64::from(row[x - 1])
                        - f64::from(row[x + 1])
                        - f64::from(up[x])
                        - f64::from(down[x]);
                    acc[0] += p;
                    acc[1] += p * p;
                    acc[2] += lap;
                    acc[3] += lap * lap;
                }
            }
            let n = (TILE * TILE) as f64;
            let var = variance(acc[0], acc[1], n);
            let mean = acc[0] / n;
            let kept = match keep {
                Keep::Detailed => var.sqrt() >= floor,
                Keep::Inside => mean > f64::from(p2) + margin && mean < f64::from(p98) - margin,
            };
            if var > 0.0 && kept {
                tiles.push(Tile {
                    var,
                    laplacian: variance(acc[2], acc[3], n),
                });
            }
            c += TILE;
        }
        r += TILE;
    }
    if tiles.len() < 8 {
        return Err(("解剖区域不足", "too little anatomy to judge"));
    }
    Ok(AnatomyTiles { tiles, spread })
}
