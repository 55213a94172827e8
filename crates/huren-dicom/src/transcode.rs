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

/// True when `from` can be re-encoded to `to` here.
pub fn can_transcode(from: &str, to: &str) -> bool {
    match (crate::ts::lookup(from), crate::ts::lookup(to)) {
        (Some(f), Some(t)) => !f.encapsulated && !t.encapsulated && !t.deflated,
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
    if from.encapsulated || to.encapsulated || to.deflated {
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
    if ds
        .elements
        .iter()
        .any(|e| matches!(e.value, Value::Fragments { .. }))
    {
        return Err(TranscodeError::NeedsCodec {
            from: from.uid.into(),
            to: to.uid.into(),
        });
    }
    let mut w = BufWriter::with_capacity(256 * 1024, out);
    w.write_all(&crate::meta::file_meta(
        &meta.media_storage_sop_class_uid,
        &meta.media_storage_sop_instance_uid,
        to.uid,
        meta.source_ae_title.as_deref(),
    ))?;
    let mut bulk = File::open(src)?;
    let mut enc = Encoder {
        from,
        to,
        bulk: &mut bulk,
    };
    enc.dataset(&ds, &mut w)?;
    w.flush()?;
    Ok(())
}

struct Encoder<'a> {
    from: &'static TransferSyntax,
    to: &'static TransferSyntax,
    bulk: &'a mut File,
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
                Err(io::Error::other("encapsulated pixel data needs a codec"))
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
    fn encapsulated_needs_a_codec() {
        assert!(!can_transcode(
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
