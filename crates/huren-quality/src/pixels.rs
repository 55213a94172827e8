//! One frame's samples as modality values (after the Modality LUT's rescale, PS3.3 C.11.1), in
//! row-major order.

/// A grey-scale frame.
#[derive(Debug, Clone, PartialEq)]
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
}

impl Pixels {
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
        let sign_extend = |raw: i64| -> i64 {
            let mask = (1i64 << bits_stored) - 1;
            let v = raw & mask;
            if signed && v & (1 << (bits_stored - 1)) != 0 {
                v - (1 << bits_stored)
            } else {
                v
            }
        };
        let stored: Vec<i64> = match bits_allocated {
            8 => bytes
                .get(..n)?
                .iter()
                .map(|b| sign_extend(i64::from(*b)))
                .collect(),
            16 => bytes
                .get(..n * 2)?
                .chunks_exact(2)
                .map(|c| sign_extend(i64::from(u16::from_le_bytes([c[0], c[1]]))))
                .collect(),
            _ => return None,
        };
        Some(Pixels {
            rows,
            columns,
            values: stored
                .iter()
                .map(|v| (*v as f64 * slope + intercept) as f32)
                .collect(),
            stored_min: lo as f32,
            stored_max: hi as f32,
            slope: slope as f32,
            intercept: intercept as f32,
        })
    }

    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.values[r * self.columns + c]
    }
}
