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
            let bits = cx.int(ds, 0x0028_0100).unwrap_or(16) as u64;
            let frame_bits = native_frame_bits(ds, cx);
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

/// Bits of one native frame: Rows × Columns × Samples per Pixel × Bits Allocated (PS3.5
/// §8.1.1), except YBR_FULL_422, whose uncompressed form keeps two samples per pixel (the
/// chroma pair shared by two pixels, PS3.3 §C.7.6.3.1.2).
fn native_frame_bits(ds: &Dataset, cx: &TextContext) -> u64 {
    let rows = cx.int(ds, 0x0028_0010).unwrap_or(0).max(0) as u64;
    let cols = cx.int(ds, 0x0028_0011).unwrap_or(0).max(0) as u64;
    let mut spp = cx.int(ds, 0x0028_0002).unwrap_or(1).max(0) as u64;
    let bits = cx.int(ds, 0x0028_0100).unwrap_or(16).max(0) as u64;
    let photometric = cx.string(ds, 0x0028_0004).unwrap_or_default();
    if spp == 3 && photometric.trim() == "YBR_FULL_422" {
        spp = 2;
    }
    rows.saturating_mul(cols)
        .saturating_mul(spp)
        .saturating_mul(bits)
}

/// Why the Pixel Data cannot be the image its header describes, or `None` when it can. A
/// native value must hold exactly the frames the header declares — ⌈Rows × Columns × Samples
/// per Pixel × Bits Allocated × Number of Frames ÷ 8⌉ bytes, plus the one pad byte that makes
/// an odd length even (PS3.5 §7.1.1, §8.1.1; 1-bit frames packed across frames). An
/// encapsulated value must carry at least one fragment per frame (PS3.5 §A.4: a frame is one
/// or more fragments, never none); a sequence without its delimiter is refused by the parser
/// already. A shorter value would be served as an image with missing rows, a longer one with
/// bytes that belong to no frame.
pub fn damage(ds: &Dataset, cx: &TextContext) -> Option<String> {
    let pixel = ds.get(PIXEL_DATA)?;
    let frames = cx.int(ds, 0x0028_0008).filter(|n| *n > 0).unwrap_or(1) as u64;
    let length = match &pixel.value {
        Value::Bulk { length, .. } => *length,
        Value::Bytes(b) => b.len() as u64,
        Value::Fragments { fragments, .. } => {
            return if fragments.is_empty() {
                Some("encapsulated Pixel Data has no fragments".into())
            } else if (fragments.len() as u64) < frames {
                Some(format!(
                    "Pixel Data has {} fragments for {frames} frames",
                    fragments.len()
                ))
            } else {
                None
            };
        }
        Value::Sequence(_) => return Some("Pixel Data is a sequence".into()),
    };
    let frame_bits = native_frame_bits(ds, cx);
    if frame_bits == 0 {
        return Some("Pixel Data without Rows, Columns or Bits Allocated".into());
    }
    let expected = frame_bits.saturating_mul(frames).div_ceil(8);
    let padded = expected % 2 == 1 && length == expected + 1;
    (length != expected && !padded).then(|| {
        // Short enough for a DIMSE ErrorComment (64 characters, PS3.7 §C.4.2.1.4).
        format!("Pixel Data is {length} bytes; its header says {expected}")
    })
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

    /// A Part 10 object of `rows`×`cols` pixels, `bits` allocated, `frames` frames, whose
    /// Pixel Data (OB) holds `pixels` as given; `encapsulated` writes it as fragments instead.
    fn object(
        (rows, cols, bits, frames): (u16, u16, u16, u32),
        photometric: &str,
        pixel: Pixel,
    ) -> Option<String> {
        let mut w = crate::synth::DatasetWriter::new();
        w.str(0x0008_0016, b"UI", crate::synth::CT_IMAGE_STORAGE)
            .str(0x0008_0018, b"UI", "1.2.3.4")
            .str(0x0020_000D, b"UI", "1.2.3")
            .str(0x0020_000E, b"UI", "1.2.3.1")
            .us(
                0x0028_0002,
                if photometric == "MONOCHROME2" { 1 } else { 3 },
            )
            .str(0x0028_0004, b"CS", photometric)
            .str(0x0028_0008, b"IS", &frames.to_string())
            .us(0x0028_0010, rows)
            .us(0x0028_0011, cols)
            .us(0x0028_0100, bits);
        let ts = match &pixel {
            Pixel::Native(bytes) => {
                w.raw(0x7FE0_0010, b"OB", bytes);
                crate::ts::EXPLICIT_VR_LE
            }
            Pixel::Fragments(n) => {
                let mut v = Vec::new();
                // The pixel element: undefined length, an empty offset table, n fragments.
                v.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
                v.extend_from_slice(&u32::MAX.to_le_bytes());
                v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
                for _ in 0..*n {
                    v.extend_from_slice(&[
                        0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 0xFF, 0xD8, 0xFF, 0xD9,
                    ]);
                }
                v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
                let mut all = w.bytes().to_vec();
                all.extend_from_slice(&v);
                return scan(all, "1.2.840.10008.1.2.4.50");
            }
        };
        scan(w.bytes().to_vec(), ts)
    }

    enum Pixel {
        Native(Vec<u8>),
        Fragments(usize),
    }

    fn scan(dataset: Vec<u8>, ts: &str) -> Option<String> {
        let mut out = crate::meta::file_meta(crate::synth::CT_IMAGE_STORAGE, "1.2.3.4", ts, None);
        out.extend_from_slice(&dataset);
        crate::scan_part10_bytes(&out, crate::charset::Assumed::Declared)
            .expect("scans")
            .pixel_damage
    }

    #[test]
    fn pixel_data_must_hold_the_frames_its_header_declares() {
        let mono = "MONOCHROME2";
        let native = |n: usize| Pixel::Native(vec![0; n]);
        // 4×4, 16 bits, 2 frames: 64 bytes exactly.
        assert_eq!(object((4, 4, 16, 2), mono, native(64)), None);
        let short = object((4, 4, 16, 2), mono, native(62)).expect("short refused");
        assert!(
            short.contains("62 bytes") && short.contains("64"),
            "{short}"
        );
        assert!(short.len() <= 64, "fits an ErrorComment: {short}");
        assert!(
            object((4, 4, 16, 2), mono, native(66)).is_some(),
            "long refused"
        );
        // 3×3, 8 bits: 9 bytes, written with the one pad byte (OB pads odd lengths).
        assert_eq!(object((3, 3, 8, 1), mono, native(9)), None);
        // 1-bit frames pack across frames: 3×3×3 = 27 bits, 4 bytes (+ pad).
        assert_eq!(object((3, 3, 1, 3), mono, native(4)), None);
        // YBR_FULL_422 keeps two samples a pixel uncompressed: 4×4×2 bytes.
        assert_eq!(object((4, 4, 8, 1), "YBR_FULL_422", native(32)), None);
        assert!(object((4, 4, 8, 1), "RGB", native(32)).is_some());
        assert_eq!(object((4, 4, 8, 1), "RGB", native(48)), None);
        // Encapsulated: one fragment a frame at least.
        assert_eq!(object((4, 4, 8, 2), mono, Pixel::Fragments(2)), None);
        assert_eq!(object((4, 4, 8, 1), mono, Pixel::Fragments(3)), None);
        assert!(object((4, 4, 8, 3), mono, Pixel::Fragments(2)).is_some());
        assert!(object((4, 4, 8, 1), mono, Pixel::Fragments(0)).is_some());
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
