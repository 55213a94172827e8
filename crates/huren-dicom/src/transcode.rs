//! Re-encoding between the native (uncompressed) transfer syntaxes — Implicit VR LE, Explicit
//! VR LE, Explicit VR BE, Deflated Explicit VR LE — without any codec (PS3.5 §7, §A.1–A.5).
//! Values are copied (byte-swapped by VR where the byte order changes); bulk values are streamed
//! from the source file, so memory stays bounded except for deflated sources, which are small
//! in practice and must be inflated to be read at all. Encapsulated pixel data needs a codec
//! and is refused here ([`TranscodeError::NeedsCodec`]).

use crate::parse::{
    Dataset, Element, Limits, ParseError, SeekSource, StreamSource, Value, read_dataset,
    read_file_meta,
};
use crate::ts::TransferSyntax;
use crate::vr::Vr;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("{from} → {to} needs a pixel codec, which is not available")]
    NeedsCodec { from: String, to: String },
    #[error("unknown transfer syntax {0}")]
    Unknown(String),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// Compressed syntaxes whose frames huren can decode (`crate::decode`).
pub fn decodable(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70"
            | "1.2.840.10008.1.2.4.80"
            | "1.2.840.10008.1.2.4.81"
            | "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203"
            | "1.2.840.10008.1.2.5"
    )
}

/// True when `from` can be re-encoded to `to` here: between native syntaxes, or from a
/// decodable compressed syntax to a native one.
pub fn can_transcode(from: &str, to: &str) -> bool {
    match (crate::ts::lookup(from), crate::ts::lookup(to)) {
        (Some(f), Some(t)) => {
            !t.encapsulated && !t.deflated && (!f.encapsulated || decodable(f.uid))
        }
        _ => false,
    }
}

/// Writes the Part 10 object at `src` re-encoded in `target` (a native syntax) to `out`.
pub fn transcode_file(
    src: &Path,
    target: &str,
    out: &mut impl Write,
) -> Result<(), TranscodeError> {
    let to = crate::ts::lookup(target).ok_or_else(|| TranscodeError::Unknown(target.to_owned()))?;
    let file = File::open(src)?;
    let mut head = SeekSource::new(BufReader::new(file), 0)?;
    let meta = read_file_meta(&mut head)?;
    let from = crate::ts::lookup(&meta.transfer_syntax_uid)
        .ok_or_else(|| TranscodeError::Unknown(meta.transfer_syntax_uid.clone()))?;
    if (from.encapsulated && !decodable(from.uid)) || to.encapsulated || to.deflated {
        return Err(TranscodeError::NeedsCodec {
            from: from.uid.into(),
            to: to.uid.into(),
        });
    }
    let ds = if from.deflated {
        let mut f = File::open(src)?;
        f.seek(SeekFrom::Start(meta.dataset_offset))?;
        let limits = Limits {
            inline_binary_max: u32::MAX,
            inline_text_max: u32::MAX,
            bulk_pixel_data: false,
            ..Limits::default()
        };
        read_dataset(
            &mut StreamSource::new(flate2::read::DeflateDecoder::new(BufReader::new(f))),
            from,
            &limits,
        )?
    } else {
        let f = File::open(src)?;
        read_dataset(
            &mut SeekSource::new(BufReader::new(f), meta.dataset_offset)?,
            from,
            &Limits::default(),
        )?
    };
    let mut bulk = File::open(src)?;
    let pixel = if ds
        .elements
        .iter()
        .any(|e| matches!(e.value, Value::Fragments { .. }))
    {
        Some(
            plan_decoding(&ds, from, &mut bulk).ok_or_else(|| TranscodeError::NeedsCodec {
                from: from.uid.into(),
                to: to.uid.into(),
            })?,
        )
    } else {
        None
    };
    let mut w = BufWriter::with_capacity(256 * 1024, out);
    w.write_all(&crate::meta::file_meta(
        &meta.media_storage_sop_class_uid,
        &meta.media_storage_sop_instance_uid,
        to.uid,
        meta.source_ae_title.as_deref(),
    ))?;
    let mut enc = Encoder {
        from,
        to,
        bulk: &mut bulk,
        pixel,
    };
    enc.dataset(&ds, &mut w)?;
    w.flush()?;
    Ok(())
}

struct Encoder<'a> {
    from: &'static TransferSyntax,
    to: &'static TransferSyntax,
    bulk: &'a mut File,
    /// Set when encapsulated pixel data is decoded on the way.
    pixel: Option<PixelPlan>,
}

/// How to replace encapsulated pixel data by decoded native frames.
struct PixelPlan {
    transfer_syntax: &'static str,
    module: crate::render::PixelModule,
    frames: Vec<Vec<(u64, u32)>>,
    frame_size: usize,
    /// Attributes the decoding changes (photometric interpretation, planar configuration).
    overrides: Vec<(u32, Vec<u8>)>,
}

fn read_fragments(bulk: &mut File, frame: &[(u64, u32)]) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    for (off, len) in frame {
        bulk.seek(SeekFrom::Start(*off))?;
        let at = data.len();
        data.resize(at + *len as usize, 0);
        bulk.read_exact(&mut data[at..])?;
    }
    Ok(data)
}

/// Decodes the first frame to learn what the decoder produces; `None` when the fragments
/// cannot be mapped to frames or the first frame does not decode.
fn plan_decoding(
    ds: &Dataset,
    from: &'static TransferSyntax,
    bulk: &mut File,
) -> Option<PixelPlan> {
    let cx = crate::values::TextContext::for_dataset(
        ds,
        crate::charset::Assumed::Declared,
        from.big_endian,
    );
    let frames = match crate::pixel::layout(ds, &cx, false) {
        crate::pixel::PixelLayout::Encapsulated { frames } => frames,
        crate::pixel::PixelLayout::EncapsulatedUnmapped {
            fragments,
            frames: 1,
        } => vec![fragments],
        _ => return None,
    };
    let json = crate::json::to_json(ds, &cx);
    let module = crate::render::PixelModule::from_json(&json)?;
    let first = crate::decode::decode_frame(
        from.uid,
        &module,
        read_fragments(bulk, frames.first()?).ok()?,
    )
    .ok()?;
    let mut photometric = first.photometric.clone().into_bytes();
    if photometric.len() % 2 == 1 {
        photometric.push(b' ');
    }
    let mut overrides = vec![(0x0028_0004, photometric)];
    if first.samples_per_pixel > 1 {
        overrides.push((
            0x0028_0006,
            (first.planar_configuration as u16).to_le_bytes().to_vec(),
        ));
    }
    Some(PixelPlan {
        transfer_syntax: from.uid,
        module,
        frame_size: first.bytes.len(),
        frames,
        overrides,
    })
}

/// Size of the unit whose byte order a VR's binary values follow (PS3.5 §7.3).
fn swap_unit(vr: Vr) -> usize {
    match &vr.0 {
        b"US" | b"SS" | b"OW" | b"AT" => 2,
        b"UL" | b"SL" | b"FL" | b"OL" | b"OF" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => 1,
    }
}

impl Encoder<'_> {
    fn swapping(&self) -> bool {
        self.from.big_endian != self.to.big_endian
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.to.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.to.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn header(&self, w: &mut impl Write, tag: u32, vr: Vr, len: u32) -> io::Result<()> {
        w.write_all(&self.u16b((tag >> 16) as u16))?;
        w.write_all(&self.u16b(tag as u16))?;
        if !self.to.explicit_vr || (tag >> 16) == 0xFFFE {
            return w.write_all(&self.u32b(len));
        }
        // A short-header VR cannot carry more than 0xFFFF bytes: such a value is written as UN.
        let vr = if !vr.has_long_header() && len > 0xFFFF && len != u32::MAX {
            Vr::UN
        } else {
            vr
        };
        w.write_all(&vr.0)?;
        if vr.has_long_header() {
            w.write_all(&[0, 0])?;
            w.write_all(&self.u32b(len))
        } else {
            w.write_all(&self.u16b(len as u16))
        }
    }

    fn dataset(&mut self, ds: &Dataset, w: &mut impl Write) -> io::Result<()> {
        for el in &ds.elements {
            // Group lengths would be wrong after re-encoding; they are retired (PS3.5 §7.2).
            if el.tag & 0xFFFF == 0 {
                continue;
            }
            self.element(el, w)?;
        }
        Ok(())
    }

    fn element(&mut self, el: &Element, w: &mut impl Write) -> io::Result<()> {
        match &el.value {
            Value::Sequence(items) => {
                self.header(w, el.tag, Vr::SQ, u32::MAX)?;
                for item in items {
                    self.header(w, 0xFFFE_E000, Vr::UN, u32::MAX)?;
                    self.dataset(item, w)?;
                    self.header(w, 0xFFFE_E00D, Vr::UN, 0)?;
                }
                self.header(w, 0xFFFE_E0DD, Vr::UN, 0)
            }
            Value::Bytes(b) => {
                if let Some(new) = self
                    .pixel
                    .as_ref()
                    .and_then(|p| p.overrides.iter().find(|o| o.0 == el.tag))
                {
                    let v = if self.to.big_endian && el.vr == Vr::US {
                        new.1.iter().rev().copied().collect()
                    } else {
                        new.1.clone()
                    };
                    self.header(w, el.tag, el.vr, v.len() as u32)?;
                    return w.write_all(&v);
                }
                self.header(w, el.tag, el.vr, b.len() as u32)?;
                if self.swapping() && swap_unit(el.vr) > 1 {
                    w.write_all(&swapped(b, swap_unit(el.vr)))
                } else {
                    w.write_all(b)
                }
            }
            Value::Bulk { offset, length } => {
                self.header(w, el.tag, el.vr, *length as u32)?;
                self.bulk.seek(SeekFrom::Start(*offset))?;
                let unit = if self.swapping() { swap_unit(el.vr) } else { 1 };
                let mut left = *length;
                let mut buf = vec![0u8; 1 << 20];
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    self.bulk.read_exact(&mut buf[..n])?;
                    if unit > 1 {
                        w.write_all(&swapped(&buf[..n], unit))?;
                    } else {
                        w.write_all(&buf[..n])?;
                    }
                    left -= n as u64;
                }
                Ok(())
            }
            Value::Fragments { .. } => {
                let Some(plan) = self.pixel.take() else {
                    return Err(io::Error::other("encapsulated pixel data needs a codec"));
                };
                let vr = if plan.module.bits_allocated > 8 {
                    Vr::OW
                } else {
                    Vr::OB
                };
                let total = plan.frame_size * plan.frames.len();
                self.header(w, el.tag, vr, total as u32)?;
                for frame in &plan.frames {
                    let data = read_fragments(self.bulk, frame)?;
                    let decoded =
                        crate::decode::decode_frame(plan.transfer_syntax, &plan.module, data)
                            .map_err(io::Error::other)?;
                    if decoded.bytes.len() != plan.frame_size {
                        return Err(io::Error::other("decoded frames differ in size"));
                    }
                    if self.to.big_endian && vr == Vr::OW {
                        w.write_all(&swapped(&decoded.bytes, 2))?;
                    } else {
                        w.write_all(&decoded.bytes)?;
                    }
                }
                self.pixel = Some(plan);
                Ok(())
            }
        }
    }
}

fn swapped(b: &[u8], unit: usize) -> Vec<u8> {
    let mut out = b.to_vec();
    for chunk in out.chunks_exact_mut(unit) {
        chunk.reverse();
    }
    out
}

/// Bytes `[start, start + len)` of a deflated object's inflated data set: the coordinates its
/// BulkDataURIs use (the scan reads deflated objects through an inflating stream).
pub fn read_deflated_range(src: &Path, start: u64, len: u64) -> Result<Vec<u8>, TranscodeError> {
    let mut head = SeekSource::new(BufReader::new(File::open(src)?), 0)?;
    let meta = read_file_meta(&mut head)?;
    let mut f = File::open(src)?;
    f.seek(SeekFrom::Start(meta.dataset_offset))?;
    let mut inflater = flate2::read::DeflateDecoder::new(BufReader::new(f));
    io::copy(&mut (&mut inflater).take(start), &mut io::sink())?;
    let mut out = vec![0u8; len as usize];
    inflater.read_exact(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::DatasetWriter;

    fn part10(ts: &str, body: &[u8]) -> Vec<u8> {
        let mut v = crate::meta::file_meta("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", ts, None);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn explicit_to_implicit_and_back_is_lossless() {
        let mut w = DatasetWriter::new();
        w.str(0x0008_0016, b"UI", "1.2.840.10008.5.1.4.1.1.7")
            .str(0x0010_0010, b"PN", "Li^Si")
            .us(0x0028_0010, 2);
        w.raw(
            0x7FE0_0010,
            b"OW",
            &(0u16..2048)
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let dir = std::env::temp_dir().join(format!("huren-tc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.dcm");
        std::fs::write(&a, part10(crate::ts::EXPLICIT_VR_LE, w.bytes())).unwrap();
        let b = dir.join("b.dcm");
        transcode_file(
            &a,
            crate::ts::IMPLICIT_VR_LE,
            &mut File::create(&b).unwrap(),
        )
        .unwrap();
        let c = dir.join("c.dcm");
        transcode_file(
            &b,
            crate::ts::EXPLICIT_VR_LE,
            &mut File::create(&c).unwrap(),
        )
        .unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), std::fs::read(&a).unwrap());
        // Big endian swaps 16-bit pixel words and US values.
        let d = dir.join("d.dcm");
        transcode_file(&a, "1.2.840.10008.1.2.2", &mut File::create(&d).unwrap()).unwrap();
        let e = dir.join("e.dcm");
        transcode_file(
            &d,
            crate::ts::EXPLICIT_VR_LE,
            &mut File::create(&e).unwrap(),
        )
        .unwrap();
        assert_eq!(std::fs::read(&e).unwrap(), std::fs::read(&a).unwrap());
        assert_ne!(
            std::fs::read(&d).unwrap()[400..],
            std::fs::read(&a).unwrap()[400..]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jpeg_xl_needs_a_codec_others_decode() {
        assert!(!can_transcode(
            "1.2.840.10008.1.2.4.112",
            crate::ts::EXPLICIT_VR_LE
        ));
        assert!(can_transcode(
            "1.2.840.10008.1.2.4.50",
            crate::ts::EXPLICIT_VR_LE
        ));
        assert!(can_transcode(
            crate::ts::IMPLICIT_VR_LE,
            crate::ts::EXPLICIT_VR_LE
        ));
        assert!(can_transcode(
            "1.2.840.10008.1.2.1.99",
            crate::ts::EXPLICIT_VR_LE
        ));
        assert!(!can_transcode(
            crate::ts::EXPLICIT_VR_LE,
            "1.2.840.10008.1.2.1.99"
        ));
    }
}
