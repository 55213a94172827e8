//! One frame's samples as modality values (after the Modality LUT's rescale, PS3.3 C.11.1), in
//! row-major order.

/// A grey-scale frame.
#[derive(Debug)]
pub struct Pixels {
    pub rows: usize,
    pub columns: usize,
    /// Modality values (HU for CT), row-major.
    pub values: Vec<f32>,
    /// The stored values' range limits (before rescale), for clipping checks.
    pub stored_min: f32,
    pub stored_max: f32,
    pub slope: f32,
    pub intercept: f32,
    /// The ~6 mm squares' statistics, computed once for the scorers that share them.
    squares: std::sync::OnceLock<(usize, Vec<crate::stats::Block>)>,
    /// The edge spread at the usual contrast, computed once (CT sharpness and noise share it).
    edges: std::sync::OnceLock<(f32, Option<crate::stats::EdgeSpread>)>,
}

/// A copy starts without the cached statistics: its values may be changed before it is scored.
impl Clone for Pixels {
    fn clone(&self) -> Pixels {
        Pixels::new(
            self.rows,
            self.columns,
            self.values.clone(),
            (self.stored_min, self.stored_max),
            self.slope,
            self.intercept,
        )
    }
}

impl Pixels {
    pub fn new(
        rows: usize,
        columns: usize,
        values: Vec<f32>,
        stored: (f32, f32),
        slope: f32,
        intercept: f32,
    ) -> Pixels {
        Pixels {
            rows,
            columns,
            values,
            stored_min: stored.0,
            stored_max: stored.1,
            slope,
            intercept,
            squares: std::sync::OnceLock::new(),
            edges: std::sync::OnceLock::new(),
        }
    }

    /// [`crate::stats::edge_spread`] over edges of at least `min_contrast`, computed once for
    /// the first contrast asked (the scorers of one modality share theirs).
    pub fn edge_spread(&self, min_contrast: f32) -> Option<crate::stats::EdgeSpread> {
        let (c, v) = self
            .edges
            .get_or_init(|| (min_contrast, crate::stats::edge_spread(self, min_contrast)));
        if *c == min_contrast {
            *v
        } else {
            crate::stats::edge_spread(self, min_contrast)
        }
    }

    /// Mean and SD of each `side`×`side` square, computed once per image for the usual side
    /// (several scorers use them).
    pub fn squares(&self, side: usize) -> std::borrow::Cow<'_, [crate::stats::Block]> {
        let (s, v) = self
            .squares
            .get_or_init(|| (side, crate::stats::blocks(self, side)));
        if *s == side {
            std::borrow::Cow::Borrowed(v)
        } else {
            std::borrow::Cow::Owned(crate::stats::blocks(self, side))
        }
    }

    /// From native little-endian bytes of one grey-scale frame (8 or 16 bits allocated).
    /// `None` for layouts the scorers do not read (colour, other bit depths).
    #[allow(clippy::too_many_arguments)]
    pub fn from_native(
        bytes: &[u8],
        rows: usize,
        columns: usize,
        bits_allocated: u32,
        bits_stored: u32,
        signed: bool,
        slope: f64,
        intercept: f64,
    ) -> Option<Pixels> {
        let n = rows.checked_mul(columns)?;
        let bits_stored = bits_stored.clamp(1, bits_allocated.max(1));
        let (lo, hi) = if signed {
            (
                -(1i64 << (bits_stored - 1)),
                (1i64 << (bits_stored - 1)) - 1,
            )
        } else {
            (0, (1i64 << bits_stored) - 1)
        };
        // Stored value → modality value in one pass (PS3.3 C.11.1.1.2: v = m·SV + b). The
        // stored bits are the low `bits_stored` (PS3.5 8.1.1); shifting them to the top and back
        // extends the sign without a branch, so the loop vectorises. f32 holds every 16-bit value
        // exactly.
        let shift = 32 - bits_stored;
        let (m, b) = (slope as f32, intercept as f32);
        let value = |raw: u32| -> f32 {
            let v = if signed {
                ((raw << shift) as i32) >> shift
            } else {
                ((raw << shift) >> shift) as i32
            };
            v as f32 * m + b
        };
        // Into a recycled buffer (a frame's worth of fresh pages cost more to fault in than
        // to fill), one loop per sign so each is a plain vectorisable loop.
        let mut values = recycled(n);
        let shift = shift as i32;
        match (bits_allocated, signed) {
            (8, _) => {
                let bytes = bytes.get(..n)?;
                values.extend(bytes.iter().map(|b| value(u32::from(*b))));
            }
            (16, true) => {
                let bytes = bytes.get(..n * 2)?;
                values.extend(bytes.chunks_exact(2).map(|c| {
                    let v = (i16::from_le_bytes([c[0], c[1]]) as i32) << shift >> shift;
                    v as f32 * m + b
                }));
            }
            (16, false) => {
                let bytes = bytes.get(..n * 2)?;
                values.extend(bytes.chunks_exact(2).map(|c| {
                    let v =
                        ((u32::from(u16::from_le_bytes([c[0], c[1]])) << shift) >> shift) as i32;
                    v as f32 * m + b
                }));
            }
            _ => return None,
        }
        Some(Pixels::new(
            rows,
            columns,
            values,
            (lo as f32, hi as f32),
            slope as f32,
            intercept as f32,
        ))
    }

    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.values[r * self.columns + c]
    }
}

thread_local! {
    /// Frame buffers of dropped frames, for the next frame this thread reads.
    static RECYCLED: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `n` values, recycled when one is at hand.
pub(crate) fn recycled(n: usize) -> Vec<f32> {
    let mut v = RECYCLED
        .with_borrow_mut(|pool| pool.pop())
        .unwrap_or_default();
    v.clear();
    v.reserve(n);
    v
}

/// Gives a frame-sized buffer back for the next frame or scorer to reuse.
pub(crate) fn recycle(values: Vec<f32>) {
    if values.capacity() > 0 {
        RECYCLED.with_borrow_mut(|pool| {
            if pool.len() < 4 {
                pool.push(values);
            }
        });
    }
}

/// A dropped frame's buffer goes back for the next (a few at most: a worker scores one frame
/// at a time, a test or a caller may hold some more).
impl Drop for Pixels {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.values));
    }
}
