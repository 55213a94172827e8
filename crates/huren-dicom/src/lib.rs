//! DICOM encoding glue for huren: everything that touches encoded bytes, and nothing else.
//!
//! Owns: a streaming scan of Part 10 objects into a light element tree ([`parse`]),
//! Specific Character Set decoding including ISO 2022 escapes and GBK delimiter bytes
//! ([`charset`]), the attributes the index keeps ([`attrs`]), the DICOM JSON model built once
//! at ingest ([`json`]), frame locations ([`pixel`]) and File Meta for DIMSE-received objects
//! ([`meta`]). Does not own: storage, networking, or any policy about what to accept —
//! [`scan_part10`] reports what it found (including problems) and the archive decides.
//!
//! ```no_run
//! use huren_dicom::{scan_part10, charset::Assumed};
//! let scanned = scan_part10(std::path::Path::new("ct.dcm"), Assumed::Declared).unwrap();
//! println!("{:?} frames", scanned.pixel.frame_count());
//! ```

pub mod attrs;
pub mod charset;
pub mod decode;
pub mod encode;
pub mod json;
pub mod meta;
pub mod parse;
pub mod pixel;
pub mod render;
pub mod synth;
pub mod transcode;
pub mod ts;
pub mod values;
pub mod vr;

use attrs::IndexAttributes;
use charset::Assumed;
use parse::{Dataset, FileMeta, Limits, ParseError, SeekSource, StreamSource};
use pixel::PixelLayout;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use values::TextContext;

/// Everything ingest needs to know about one stored object, from a single pass over it.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub meta: FileMeta,
    pub transfer_syntax: &'static ts::TransferSyntax,
    pub attrs: IndexAttributes,
    pub json: serde_json::Value,
    pub pixel: PixelLayout,
    pub has_pixel_data: bool,
    /// Why the Pixel Data cannot be the image its header describes (`pixel::damage`).
    pub pixel_damage: Option<String>,
    /// Elements out of ascending order or repeated: the index keeps the first occurrence.
    pub misordered_elements: bool,
    /// The declared Specific Character Set named terms huren does not know.
    pub unknown_charset_terms: Vec<String>,
    /// Text was decoded with the sender's assumed charset instead of the declared one.
    pub charset_overridden: bool,
    /// Bytes of the object (file meta included).
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open stored object: {0}")]
    Open(std::io::Error),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("reading stored object: {0}")]
    Io(#[from] std::io::Error),
    #[error("transfer syntax {0} is not one huren accepts")]
    UnknownTransferSyntax(String),
}

/// Scans a Part 10 object on disk: file meta, then the whole dataset (so truncation and absurd
/// lengths are found now, not when a doctor opens the image).
pub fn scan_part10(path: &Path, assumed: Assumed) -> Result<Scanned, ScanError> {
    scan_with(
        || {
            File::open(path)
                .map(|f| BufReader::with_capacity(64 * 1024, f))
                .map_err(ScanError::Open)
        },
        assumed,
    )
}

/// Scans a Part 10 object held in memory (ingest keeps objects up to a configured size in
/// memory until they are persisted, so scanning costs no file reads).
pub fn scan_part10_bytes(bytes: &[u8], assumed: Assumed) -> Result<Scanned, ScanError> {
    scan_with(|| Ok(std::io::Cursor::new(bytes)), assumed)
}

/// The scan over any seekable source; `open` gives a fresh reader positioned at the start
/// (the dataset and the fragment markers are read through separate readers).
fn scan_with<R: Read + Seek>(
    open: impl Fn() -> Result<R, ScanError>,
    assumed: Assumed,
) -> Result<Scanned, ScanError> {
    let mut src = SeekSource::new(open()?, 0)?;
    let meta = parse::read_file_meta(&mut src)?;
    let size = src.position() + src.remaining().unwrap_or(0);
    let ts = ts::lookup(&meta.transfer_syntax_uid)
        .ok_or_else(|| ScanError::UnknownTransferSyntax(meta.transfer_syntax_uid.clone()))?;
    let limits = Limits::default();
    let ds = if ts.deflated {
        let mut reader = open()?;
        reader
            .seek(SeekFrom::Start(meta.dataset_offset))
            .map_err(ScanError::Open)?;
        // PS3.5 §A.5: raw deflate (RFC 1951), no zlib header.
        let inflater = flate2::read::DeflateDecoder::new(reader);
        parse::read_dataset(&mut StreamSource::new(inflater), ts, &limits)?
    } else {
        let mut src = SeekSource::new(open()?, meta.dataset_offset)?;
        parse::read_dataset(&mut src, ts, &limits)?
    };
    let mut scanned = describe(meta, ts, &ds, assumed, size);
    if let PixelLayout::EncapsulatedUnmapped { fragments, frames } = &scanned.pixel
        && let Some(mapped) = open()
            .ok()
            .and_then(|r| map_by_markers(r, fragments, *frames))
    {
        scanned.pixel = PixelLayout::Encapsulated { frames: mapped };
    }
    Ok(scanned)
}

/// Several fragments per frame and no offset table (PS3.5 §A.4 allows it): a frame starts at
/// each fragment that begins a codestream — JPEG SOI (FFD8, ITU-T T.81 B.1.1.3) or JPEG 2000
/// SOC (FF4F, ISO 15444-1 A.4.1). Used only when that yields exactly the declared number of
/// frames.
fn map_by_markers<R: Read + Seek>(
    mut f: R,
    fragments: &[(u64, u32)],
    frames: u32,
) -> Option<Vec<Vec<(u64, u32)>>> {
    let mut out: Vec<Vec<(u64, u32)>> = Vec::new();
    for &(off, len) in fragments {
        let mut head = [0u8; 2];
        f.seek(SeekFrom::Start(off)).ok()?;
        let starts = len >= 2
            && f.read_exact(&mut head).is_ok()
            && (head == [0xFF, 0xD8] || head == [0xFF, 0x4F]);
        if starts || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut()?.push((off, len));
    }
    (out.len() == frames as usize).then_some(out)
}

use parse::Source as _;

fn describe(
    meta: FileMeta,
    ts: &'static ts::TransferSyntax,
    ds: &Dataset,
    assumed: Assumed,
    size: u64,
) -> Scanned {
    let cx = TextContext::for_dataset(ds, assumed, ts.big_endian);
    let charset_overridden = matches!(assumed, Assumed::Override(_))
        && (cx.charset.is_default()
            || cx
                .charset
                .terms()
                .first()
                .is_some_and(|t| t == "ISO_IR 100"))
        && has_non_ascii_text(ds);
    let unknown_charset_terms = cx
        .charset
        .unknown_terms()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let misordered_elements = ds.elements.windows(2).any(|w| w[0].tag >= w[1].tag);
    Scanned {
        attrs: IndexAttributes::extract(ds, &cx),
        json: json::to_json(ds, &cx),
        pixel: pixel::layout(ds, &cx, ts.deflated),
        has_pixel_data: ds.get(parse::PIXEL_DATA).is_some(),
        pixel_damage: pixel::damage(ds, &cx),
        misordered_elements,
        unknown_charset_terms,
        charset_overridden,
        meta,
        transfer_syntax: ts,
        size,
    }
}

fn has_non_ascii_text(ds: &Dataset) -> bool {
    ds.elements.iter().any(|e| match &e.value {
        parse::Value::Bytes(b) => e.vr.is_charset_text() && !b.is_ascii(),
        parse::Value::Sequence(items) => items.iter().any(has_non_ascii_text),
        _ => false,
    })
}
