//! Where each frame's bytes lie in the stored object, computed once at ingest so frames can be
//! served by range reads without decoding or loading the whole object (PS3.5 §8.2, §A.4).

use crate::parse::{Dataset, Fragment, PIXEL_DATA, Value};
use crate::values::TextContext;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PixelLayout {
    /// No pixel data (SR, ECG, RT plan…).
    None,
    /// Native pixel data: frame *i* is `[offset + i·frame_length, +frame_length)`.
    /// `frame_length` is in bits ÷ 8 rounded up per frame only for BitsAllocated ≥ 8; 1-bit
    /// frames are packed across byte boundaries (PS3.5 §8.1.1) and are marked `packed_bits`.
    Native {
        offset: u64,
        length: u64,
        frame_length: u64,
        frames: u32,
        packed_bits: bool,
    },
    /// Encapsulated: the fragments making up each frame, as (offset, length) of fragment values.
    Encapsulated { frames: Vec<Vec<(u64, u32)>> },
    /// Encapsulated, but the fragment→frame mapping cannot be derived from the header (several
    /// fragments per frame and no offset table): frames must be found by scanning codestreams.
    EncapsulatedUnmapped {
        fragments: Vec<(u64, u32)>,
        frames: u32,
    },
    /// The dataset is deflated: offsets do not address the stored bytes.
    Deflated,
}

impl PixelLayout {
    pub fn frame_count(&self) -> u32 {
        match self {
            PixelLayout::None | PixelLayout::Deflated => 0,
            PixelLayout::Native { frames, .. } => *frames,
            PixelLayout::Encapsulated { frames } => frames.len() as u32,
            PixelLayout::EncapsulatedUnmapped { frames, .. } => *frames,
        }
    }

    /// Where frame `idx` (0-based) lies in the stored object: one range for a native frame, the
    /// fragments' value ranges in order for an encapsulated one. `None` for a frame that does
    /// not exist, or whose bytes are not whole ranges (packed bits, unmapped fragments,
    /// deflated, no pixels).
    pub fn frame_ranges(&self, idx: u32) -> Option<Vec<std::ops::Range<u64>>> {
        match self {
            PixelLayout::Native {
                offset,
                frame_length,
                frames,
                packed_bits: false,
                ..
            } if idx < *frames => {
                let start = offset + frame_length * u64::from(idx);
                Some(std::iter::once(start..start + frame_length).collect())
            }
            PixelLayout::Encapsulated { frames } => Some(
                frames
                    .get(idx as usize)?
                    .iter()
                    .map(|(off, len)| *off..off + u64::from(*len))
                    .collect(),
            ),
            _ => None,
        }
    }
}

pub fn layout(ds: &Dataset, cx: &TextContext, deflated: bool) -> PixelLayout {
    let Some(pixel) = ds.get(PIXEL_DATA) else {
        return PixelLayout::None;
    };
    if deflated {
        return PixelLayout::Deflated;
    }
    let frames = cx.int(ds, 0x0028_0008).filter(|n| *n > 0).unwrap_or(1) as u32;
    match &pixel.value {
        Value::Bulk { offset, length } => {
            let rows = cx.int(ds, 0x0028_0010).unwrap_or(0) as u64;
            let cols = cx.int(ds, 0x0028_0011).unwrap_or(0) as u64;
            let spp = cx.int(ds, 0x0028_0002).unwrap_or(1) as u64;
            let bits = cx.int(ds, 0x0028_0100).unwrap_or(16) as u64;
            let frame_bits = rows * cols * spp * bits;
            let packed_bits = bits < 8 || !frame_bits.is_multiple_of(8);
            let frame_length = frame_bits.div_ceil(8);
            PixelLayout::Native {
                offset: *offset,
                length: *length,
                frame_length,
                frames,
                packed_bits,
            }
        }
        // The scan always leaves native pixel data on storage (see `parse`), never inline.
        Value::Bytes(_) => PixelLayout::None,
        Value::Fragments {
            offset_table,
            fragments,
        } => map_fragments(offset_table, fragments, frames),
        Value::Sequence(_) => PixelLayout::None,
    }
}

fn map_fragments(bot: &[u32], fragments: &[Fragment], frames: u32) -> PixelLayout {
    let pairs: Vec<(u64, u32)> = fragments.iter().map(|f| (f.offset, f.length)).collect();
    if frames == 1 {
        return PixelLayout::Encapsulated {
            frames: vec![pairs],
        };
    }
    if pairs.len() == frames as usize {
        return PixelLayout::Encapsulated {
            frames: pairs.into_iter().map(|p| vec![p]).collect(),
        };
    }
    // Basic Offset Table: byte offsets of each frame's first fragment item, relative to the
    // first byte of the first fragment item's tag (PS3.5 §A.4, Table A.4-1).
    if bot.len() == frames as usize && !pairs.is_empty() {
        let first_item = pairs[0].0 - 8;
        let mut out: Vec<Vec<(u64, u32)>> = vec![Vec::new(); frames as usize];
        for &(off, len) in &pairs {
            let rel = (off - 8 - first_item) as u32;
            let frame = bot.iter().rposition(|&start| start <= rel).unwrap_or(0);
            out[frame].push((off, len));
        }
        if out.iter().all(|f| !f.is_empty()) {
            return PixelLayout::Encapsulated { frames: out };
        }
    }
    PixelLayout::EncapsulatedUnmapped {
        fragments: pairs,
        frames,
    }
}

/// Bits `[shift, shift + bits)` of `src` (little-endian bit order: the first pixel is the least
/// significant bit, PS3.5 §8.1.1) moved to start at bit 0; unused high bits of the last byte are 0.
pub fn realign_bits(src: &[u8], shift: u32, bits: u64) -> Vec<u8> {
    let n = bits.div_ceil(8) as usize;
    let mut out = vec![0u8; n];
    for (k, o) in out.iter_mut().enumerate() {
        let lo = src.get(k).copied().unwrap_or(0) >> shift;
        let hi = if shift == 0 {
            0
        } else {
            src.get(k + 1)
                .copied()
                .unwrap_or(0)
                .checked_shl(8 - shift)
                .unwrap_or(0)
        };
        *o = lo | hi;
    }
    let rem = (bits % 8) as u32;
    if rem != 0
        && let Some(last) = out.last_mut()
    {
        *last &= (1u8 << rem) - 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ranges_address_whole_frames_only() {
        let native = PixelLayout::Native {
            offset: 100,
            length: 30,
            frame_length: 10,
            frames: 3,
            packed_bits: false,
        };
        let second = 110..120;
        assert_eq!(native.frame_ranges(1), Some(vec![second]));
        assert_eq!(native.frame_ranges(3), None);
        let packed = PixelLayout::Native {
            offset: 0,
            length: 2,
            frame_length: 1,
            frames: 2,
            packed_bits: true,
        };
        assert_eq!(packed.frame_ranges(0), None);
        let fragments = PixelLayout::Encapsulated {
            frames: vec![vec![(8, 4)], vec![(20, 6), (34, 2)]],
        };
        assert_eq!(fragments.frame_ranges(1), Some(vec![20..26, 34..36]));
        assert_eq!(fragments.frame_ranges(2), None);
        assert_eq!(PixelLayout::Deflated.frame_ranges(0), None);
    }

    #[test]
    fn realigns_packed_frames() {
        // Two 6-pixel frames packed: frame 0 = 101101, frame 1 = 110011 (first pixel first).
        let bits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1];
        let mut packed = vec![0u8; 2];
        for (i, b) in bits.iter().enumerate() {
            packed[i / 8] |= b << (i % 8);
        }
        let f1 = realign_bits(&packed, 6, 6);
        let expect: u8 = [1u8, 1, 0, 0, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, b)| b << i)
            .sum();
        assert_eq!(f1, vec![expect]);
        assert_eq!(realign_bits(&packed, 0, 6), vec![0b101101 & 0x3F]);
    }
}
