//! A streaming, bounded-memory scan of an encoded dataset (PS3.5 §7) into a light element tree.
//!
//! Why our own scan rather than `dicom-object`: the index needs the *raw* bytes of text
//! values (to decode GBK names whose second bytes are `\` or `^` before splitting, and to apply a
//! per-sender assumed character set), the byte offsets of bulk values and pixel-data fragments
//! (so frames and bulk data can later be served by range reads), and a strict notion of
//! "malformed" (absurd lengths, truncation) that maps onto DIMSE status 0xC000. Large values are
//! skipped by seeking, so memory stays bounded whatever the object size.

use crate::ts::TransferSyntax;
use crate::vr::{Vr, implicit_vr};
use std::io::{self, Read, Seek, SeekFrom};

pub const PIXEL_DATA: u32 = 0x7FE0_0010;
const ITEM: u32 = 0xFFFE_E000;
const ITEM_DELIMITATION: u32 = 0xFFFE_E00D;
const SEQUENCE_DELIMITATION: u32 = 0xFFFE_E0DD;
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How far the scan may go before it calls the input hostile rather than merely large.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Values larger than this (binary VRs) are not loaded; their offset and length are kept.
    pub inline_binary_max: u32,
    /// Text values larger than this are not loaded either (a 100 MB UT is bulk too).
    pub inline_text_max: u32,
    pub max_depth: usize,
    pub max_elements: usize,
    /// Leave native pixel data and trailing padding on storage whatever their size (their
    /// offsets are what frame serving needs). Off only when reading an inflated stream, whose
    /// offsets address nothing on disk.
    pub bulk_pixel_data: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            inline_binary_max: 1024,
            inline_text_max: 64 * 1024,
            max_depth: 24,
            max_elements: 200_000,
            bulk_pixel_data: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("dataset truncated at byte {at}: {what}")]
    Truncated { at: u64, what: &'static str },
    #[error(
        "element ({tag:08X}) at byte {at} declares length {len}, beyond the {remaining} bytes left"
    )]
    AbsurdLength {
        tag: u32,
        at: u64,
        len: u64,
        remaining: u64,
    },
    #[error("element ({tag:08X}) at byte {at} has unknown VR {vr:?}")]
    UnknownVr { tag: u32, at: u64, vr: String },
    #[error(
        "element ({tag:08X}) at byte {at} has undefined length but VR {vr} cannot be undefined-length"
    )]
    UndefinedLength { tag: u32, at: u64, vr: &'static str },
    #[error("unexpected tag ({tag:08X}) at byte {at} inside {context}")]
    UnexpectedTag {
        tag: u32,
        at: u64,
        context: &'static str,
    },
    #[error("sequences nested deeper than {0}")]
    TooDeep(usize),
    #[error("more than {0} elements")]
    TooManyElements(usize),
    #[error("not a DICOM Part 10 file: {0}")]
    NotPart10(&'static str),
    #[error("file meta information: {0}")]
    Meta(String),
    #[error("I/O while scanning: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone)]
pub enum Value {
    /// The raw encoded bytes, in the dataset's byte order, padding included.
    Bytes(Vec<u8>),
    /// A value left on storage: byte offset within the scanned stream and length.
    Bulk {
        offset: u64,
        length: u64,
    },
    Sequence(Vec<Dataset>),
    /// Encapsulated pixel data (PS3.5 §A.4): the Basic Offset Table item, then fragments.
    Fragments {
        offset_table: Vec<u32>,
        fragments: Vec<Fragment>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of the fragment's value (after its 8-byte item header) within the scanned stream.
    pub offset: u64,
    pub length: u32,
}

#[derive(Debug, Clone)]
pub struct Element {
    pub tag: u32,
    pub vr: Vr,
    pub value: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub elements: Vec<Element>,
}

impl Dataset {
    pub fn get(&self, tag: u32) -> Option<&Element> {
        self.elements.iter().find(|e| e.tag == tag)
    }
    pub fn bytes(&self, tag: u32) -> Option<&[u8]> {
        match &self.get(tag)?.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    pub fn items(&self, tag: u32) -> &[Dataset] {
        match self.get(tag).map(|e| &e.value) {
            Some(Value::Sequence(items)) => items,
            _ => &[],
        }
    }
}

/// Byte source with cheap skipping: a seekable file skips by seeking, an inflating reader
/// skips by reading through.
pub trait Source {
    fn read_exact_at_cursor(&mut self, buf: &mut [u8]) -> io::Result<()>;
    fn skip(&mut self, n: u64) -> io::Result<()>;
    fn position(&self) -> u64;
    /// Bytes left, when known (files); `None` for streams (deflate).
    fn remaining(&self) -> Option<u64>;
}

pub struct SeekSource<R> {
    inner: R,
    pos: u64,
    end: u64,
}

impl<R: Read + Seek> SeekSource<R> {
    pub fn new(mut inner: R, start: u64) -> io::Result<Self> {
        let end = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(start))?;
        Ok(SeekSource {
            inner,
            pos: start,
            end,
        })
    }
}

impl<R: Read + Seek> SeekSource<R> {
    pub fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(pos))?;
        self.pos = pos;
        Ok(())
    }
}

impl<R: Read + Seek> Source for SeekSource<R> {
    fn read_exact_at_cursor(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        if n > self.end.saturating_sub(self.pos) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.seek(SeekFrom::Current(n as i64))?;
        self.pos += n;
        Ok(())
    }
    fn position(&self) -> u64 {
        self.pos
    }
    fn remaining(&self) -> Option<u64> {
        Some(self.end.saturating_sub(self.pos))
    }
}

pub struct StreamSource<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> StreamSource<R> {
    pub fn new(inner: R) -> Self {
        StreamSource { inner, pos: 0 }
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn read_exact_at_cursor(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.pos += copied;
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    fn position(&self) -> u64 {
        self.pos
    }
    fn remaining(&self) -> Option<u64> {
        None
    }
}

/// Reads a dataset to its end (or, with `stop_at_pixel_data`, also past pixel data — the
/// scan always covers the whole stream so truncation is caught at ingest).
pub fn read_dataset<S: Source>(
    src: &mut S,
    ts: &'static TransferSyntax,
    limits: &Limits,
) -> Result<Dataset, ParseError> {
    let mut p = Parser {
        src,
        ts,
        limits,
        count: 0,
    };
    p.dataset(0, None)
}

struct Parser<'a, S> {
    src: &'a mut S,
    ts: &'static TransferSyntax,
    limits: &'a Limits,
    count: usize,
}

struct Header {
    tag: u32,
    vr: Vr,
    len: u32,
    at: u64,
}

fn eof_at(at: u64, what: &'static str) -> impl Fn(io::Error) -> ParseError {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ParseError::Truncated { at, what }
        } else {
            ParseError::Io(e)
        }
    }
}

impl<S: Source> Parser<'_, S> {
    fn u16(&self, b: [u8; 2]) -> u16 {
        if self.ts.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.ts.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn read<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ParseError> {
        let mut b = [0u8; N];
        let at = self.src.position();
        self.src.read_exact_at_cursor(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ParseError::Truncated { at, what }
            } else {
                ParseError::Io(e)
            }
        })?;
        Ok(b)
    }

    /// Reads a tag and, unless `implicit` (items and delimiters are always implicit), a VR.
    /// Returns `None` at a clean end of stream.
    fn header(&mut self, implicit: bool) -> Result<Option<Header>, ParseError> {
        let at = self.src.position();
        if self.src.remaining() == Some(0) {
            return Ok(None);
        }
        let mut tb = [0u8; 4];
        match self.src.read_exact_at_cursor(&mut tb) {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::UnexpectedEof && self.src.remaining().is_none() =>
            {
                // Deflated streams: a clean EOF is the end. A partial tag read is still an error
                // but indistinguishable here; the surrounding checks catch truncated values.
                return Ok(None);
            }
            Err(e) => return Err(eof_at(at, "tag")(e)),
        }
        let group = self.u16([tb[0], tb[1]]);
        let element = self.u16([tb[2], tb[3]]);
        let tag = (u32::from(group) << 16) | u32::from(element);
        self.header_after_tag(tag, at, implicit).map(Some)
    }

    /// The rest of an element header once its tag is read: the VR (explicit syntaxes, not for
    /// items/delimiters) and the length.
    fn header_after_tag(
        &mut self,
        tag: u32,
        at: u64,
        implicit: bool,
    ) -> Result<Header, ParseError> {
        // Items and delimiters carry no VR in any transfer syntax (PS3.5 §7.5).
        if (tag >> 16) == 0xFFFE || implicit || !self.ts.explicit_vr {
            let lb = self.read::<4>("length")?;
            let len = self.u32(lb);
            let vr = if (tag >> 16) == 0xFFFE {
                Vr::UN
            } else {
                implicit_vr(tag)
            };
            return Ok(Header { tag, vr, len, at });
        }
        let vb = self.read::<2>("VR")?;
        let vr = Vr::from_bytes(vb).ok_or_else(|| ParseError::UnknownVr {
            tag,
            at,
            vr: String::from_utf8_lossy(&vb).into_owned(),
        })?;
        let len = if vr.has_long_header() {
            let _reserved = self.read::<2>("reserved")?;
            let lb = self.read::<4>("length")?;
            self.u32(lb)
        } else {
            let lb = self.read::<2>("length")?;
            u32::from(self.u16(lb))
        };
        Ok(Header { tag, vr, len, at })
    }

    fn check_len(&self, h: &Header, len: u64) -> Result<(), ParseError> {
        if let Some(rem) = self.src.remaining()
            && len > rem
        {
            return Err(ParseError::AbsurdLength {
                tag: h.tag,
                at: h.at,
                len,
                remaining: rem,
            });
        }
        Ok(())
    }

    /// Reads elements until the end of stream, until `end` (defined-length item), or until an
    /// item delimitation (undefined-length item: `end == None` and depth > 0).
    fn dataset(&mut self, depth: usize, end: Option<u64>) -> Result<Dataset, ParseError> {
        if depth > self.limits.max_depth {
            return Err(ParseError::TooDeep(self.limits.max_depth));
        }
        let mut ds = Dataset::default();
        loop {
            if let Some(end) = end
                && self.src.position() >= end
            {
                break;
            }
            let Some(h) = self.header(false)? else {
                if depth > 0 {
                    return Err(ParseError::Truncated {
                        at: self.src.position(),
                        what: "item",
                    });
                }
                break;
            };
            if h.tag == ITEM_DELIMITATION {
                if depth > 0 && end.is_none() {
                    break;
                }
                return Err(ParseError::UnexpectedTag {
                    tag: h.tag,
                    at: h.at,
                    context: "dataset",
                });
            }
            if (h.tag >> 16) == 0xFFFE {
                return Err(ParseError::UnexpectedTag {
                    tag: h.tag,
                    at: h.at,
                    context: "dataset",
                });
            }
            // Trailing padding (FFFC,FFFC) is kept but never loaded (PS3.10 §7.2).
            self.count += 1;
            if self.count > self.limits.max_elements {
                return Err(ParseError::TooManyElements(self.limits.max_elements));
            }
            let el = self.element(h, depth)?;
            ds.elements.push(el);
        }
        Ok(ds)
    }

    fn element(&mut self, h: Header, depth: usize) -> Result<Element, ParseError> {
        let is_sq = h.vr == Vr::SQ
            // An undefined-length UN is a sequence encoded implicit VR LE (PS3.5 §6.2.2).
            || (h.vr == Vr::UN && h.len == UNDEFINED && h.tag != PIXEL_DATA);
        if is_sq {
            let items = self.sequence(&h, depth)?;
            return Ok(Element {
                tag: h.tag,
                vr: Vr::SQ,
                value: Value::Sequence(items),
            });
        }
        if h.len == UNDEFINED {
            if h.tag == PIXEL_DATA && (h.vr == Vr::OB || h.vr == Vr::OW || h.vr == Vr::UN) {
                let (offset_table, fragments) = self.fragments(&h)?;
                return Ok(Element {
                    tag: h.tag,
                    vr: Vr::OB,
                    value: Value::Fragments {
                        offset_table,
                        fragments,
                    },
                });
            }
            let vr: &'static str = match h.vr.as_str() {
                "OB" => "OB",
                "OW" => "OW",
                _ => "non-SQ",
            };
            return Err(ParseError::UndefinedLength {
                tag: h.tag,
                at: h.at,
                vr,
            });
        }
        let len = u64::from(h.len);
        self.check_len(&h, len)?;
        let inline_max = if h.vr.is_binary() || h.tag == PIXEL_DATA || h.tag == 0xFFFC_FFFC {
            self.limits.inline_binary_max
        } else {
            self.limits.inline_text_max
        };
        let always_bulk =
            self.limits.bulk_pixel_data && (h.tag == PIXEL_DATA || h.tag == 0xFFFC_FFFC);
        if h.len > inline_max || always_bulk {
            let offset = self.src.position();
            self.src
                .skip(len)
                .map_err(eof_at(self.src.position(), "value"))?;
            return Ok(Element {
                tag: h.tag,
                vr: h.vr,
                value: Value::Bulk {
                    offset,
                    length: len,
                },
            });
        }
        let mut buf = vec![0u8; h.len as usize];
        let at = self.src.position();
        self.src.read_exact_at_cursor(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ParseError::Truncated { at, what: "value" }
            } else {
                ParseError::Io(e)
            }
        })?;
        Ok(Element {
            tag: h.tag,
            vr: h.vr,
            value: Value::Bytes(buf),
        })
    }

    fn sequence(&mut self, h: &Header, depth: usize) -> Result<Vec<Dataset>, ParseError> {
        let seq_end = if h.len == UNDEFINED {
            None
        } else {
            self.check_len(h, u64::from(h.len))?;
            Some(self.src.position() + u64::from(h.len))
        };
        // Contents of an undefined-length UN are implicit VR little endian (PS3.5 §6.2.2).
        let saved_ts = self.ts;
        if h.vr == Vr::UN {
            self.ts = &crate::ts::ACCEPTED[1];
        }
        let mut items = Vec::new();
        let result = loop {
            if let Some(end) = seq_end
                && self.src.position() >= end
            {
                break Ok(());
            }
            let ih = match self.header(true)? {
                Some(ih) => ih,
                None => {
                    break Err(ParseError::Truncated {
                        at: self.src.position(),
                        what: "sequence",
                    });
                }
            };
            match ih.tag {
                SEQUENCE_DELIMITATION if seq_end.is_none() => break Ok(()),
                ITEM => {
                    let item_end = if ih.len == UNDEFINED {
                        None
                    } else {
                        self.check_len(&ih, u64::from(ih.len))?;
                        Some(self.src.position() + u64::from(ih.len))
                    };
                    let item = self.dataset(depth + 1, item_end)?;
                    items.push(item);
                }
                _ => {
                    break Err(ParseError::UnexpectedTag {
                        tag: ih.tag,
                        at: ih.at,
                        context: "sequence",
                    });
                }
            }
        };
        self.ts = saved_ts;
        result.map(|()| items)
    }

    fn fragments(&mut self, h: &Header) -> Result<(Vec<u32>, Vec<Fragment>), ParseError> {
        let mut offset_table = Vec::new();
        let mut fragments = Vec::new();
        let mut first = true;
        loop {
            let Some(ih) = self.header(true)? else {
                return Err(ParseError::Truncated {
                    at: self.src.position(),
                    what: "pixel data fragments",
                });
            };
            match ih.tag {
                SEQUENCE_DELIMITATION => break,
                ITEM => {
                    if ih.len == UNDEFINED {
                        return Err(ParseError::UndefinedLength {
                            tag: ih.tag,
                            at: ih.at,
                            vr: "fragment item",
                        });
                    }
                    self.check_len(&ih, u64::from(ih.len))?;
                    if first {
                        // Basic Offset Table (PS3.5 §A.4): 32-bit offsets, may be empty.
                        if ih.len % 4 != 0 || ih.len > 64 * 1024 * 1024 {
                            return Err(ParseError::AbsurdLength {
                                tag: ih.tag,
                                at: ih.at,
                                len: u64::from(ih.len),
                                remaining: 0,
                            });
                        }
                        let mut raw = vec![0u8; ih.len as usize];
                        self.src
                            .read_exact_at_cursor(&mut raw)
                            .map_err(eof_at(self.src.position(), "offset table"))?;
                        offset_table = raw
                            .chunks_exact(4)
                            .map(|c| self.u32([c[0], c[1], c[2], c[3]]))
                            .collect();
                        first = false;
                    } else {
                        let offset = self.src.position();
                        self.src
                            .skip(u64::from(ih.len))
                            .map_err(eof_at(self.src.position(), "fragment"))?;
                        fragments.push(Fragment {
                            offset,
                            length: ih.len,
                        });
                    }
                }
                _ => {
                    return Err(ParseError::UnexpectedTag {
                        tag: ih.tag,
                        at: ih.at,
                        context: "pixel data fragments",
                    });
                }
            }
        }
        let _ = h;
        Ok((offset_table, fragments))
    }
}

/// The parts of a Part 10 file that precede the dataset (PS3.10 §7.1).
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub media_storage_sop_class_uid: String,
    pub media_storage_sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub source_ae_title: Option<String>,
    /// Byte offset at which the dataset begins.
    pub dataset_offset: u64,
}

/// Reads the preamble and file meta group (always explicit VR little endian, PS3.10 §7.1).
///
/// Lenient where senders commonly deviate: some writers (pydicom 3's `dcmwrite` without
/// `enforce_file_format`, hence dicomweb-client) omit the 128-byte preamble and `DICM`, or
/// only the preamble. The meta group itself is required: without it the transfer syntax
/// is unknown.
pub fn read_file_meta<R: Read + Seek>(src: &mut SeekSource<R>) -> Result<FileMeta, ParseError> {
    let mut pre = [0u8; 132];
    let mut n = 0;
    while n < pre.len() {
        match src.inner.read(&mut pre[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(ParseError::Io(e)),
        }
    }
    let start = if n >= 132 && &pre[128..132] == b"DICM" {
        132
    } else if n >= 4 && &pre[0..4] == b"DICM" {
        4
    } else if n >= 6
        && pre[0] == 0x02
        && pre[1] == 0x00
        && pre[4..6].iter().all(u8::is_ascii_uppercase)
    {
        0
    } else {
        return Err(ParseError::NotPart10(
            "no File Meta Information (no DICM prefix and no group 0002 at the start)",
        ));
    };
    src.seek_to(start)?;
    let ts =
        crate::ts::lookup(crate::ts::EXPLICIT_VR_LE).ok_or(ParseError::Meta("table".into()))?;
    let limits = Limits::default();
    let mut p = Parser {
        src,
        ts,
        limits: &limits,
        count: 0,
    };
    let mut meta = Dataset::default();
    loop {
        let at = p.src.position();
        if p.src.remaining() == Some(0) {
            return finish_meta(meta, at);
        }
        // Peek the group: the meta group ends at the first non-0002 element.
        let mut tb = [0u8; 2];
        p.src
            .read_exact_at_cursor(&mut tb)
            .map_err(eof_at(p.src.position(), "file meta"))?;
        if u16::from_le_bytes(tb) != 0x0002 {
            // The data set starts at `at`; callers read it from `dataset_offset`.
            return finish_meta(meta, at);
        }
        let mut rest = [0u8; 2];
        p.src
            .read_exact_at_cursor(&mut rest)
            .map_err(eof_at(p.src.position(), "file meta"))?;
        let tag = 0x0002_0000 | u32::from(u16::from_le_bytes(rest));
        let Header { vr, len, .. } = p.header_after_tag(tag, at, false)?;
        if len > 64 * 1024 {
            return Err(ParseError::Meta(format!(
                "element ({tag:08X}) length {len} is implausible"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        p.src
            .read_exact_at_cursor(&mut buf)
            .map_err(eof_at(p.src.position(), "file meta value"))?;
        meta.elements.push(Element {
            tag,
            vr,
            value: Value::Bytes(buf),
        });
    }
}

fn finish_meta(meta: Dataset, dataset_offset: u64) -> Result<FileMeta, ParseError> {
    let text = |tag: u32| -> Option<String> {
        meta.bytes(tag).map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' '])
                .trim_start()
                .to_owned()
        })
    };
    Ok(FileMeta {
        media_storage_sop_class_uid: text(0x0002_0002)
            .ok_or(ParseError::Meta("no MediaStorageSOPClassUID".into()))?,
        media_storage_sop_instance_uid: text(0x0002_0003)
            .ok_or(ParseError::Meta("no MediaStorageSOPInstanceUID".into()))?,
        transfer_syntax_uid: text(0x0002_0010)
            .ok_or(ParseError::Meta("no TransferSyntaxUID".into()))?,
        source_ae_title: text(0x0002_0016).filter(|s| !s.is_empty()),
        dataset_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::DatasetWriter;
    use std::io::Cursor;

    fn explicit() -> &'static TransferSyntax {
        crate::ts::lookup(crate::ts::EXPLICIT_VR_LE).unwrap()
    }

    fn scan(bytes: &[u8], ts: &'static TransferSyntax) -> Result<Dataset, ParseError> {
        let mut src = SeekSource::new(Cursor::new(bytes.to_vec()), 0).unwrap();
        read_dataset(&mut src, ts, &Limits::default())
    }

    fn sample() -> DatasetWriter {
        let mut w = DatasetWriter::new();
        w.str(0x0008_0016, b"UI", "1.2.840.10008.5.1.4.1.1.2")
            .str(0x0010_0010, b"PN", "Wang^Wu");
        w
    }

    #[test]
    fn reads_values_and_skips_bulk_by_offset() {
        let mut w = sample();
        w.raw(PIXEL_DATA, b"OW", &[7u8; 4096]);
        let bytes = w.into_bytes();
        let ds = scan(&bytes, explicit()).unwrap();
        assert_eq!(ds.bytes(0x0010_0010), Some(&b"Wang^Wu "[..]));
        match ds.get(PIXEL_DATA).unwrap().value {
            Value::Bulk { offset, length } => {
                assert_eq!(length, 4096);
                assert_eq!(&bytes[offset as usize..offset as usize + 4], &[7, 7, 7, 7]);
            }
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncation_and_absurd_lengths_are_errors() {
        let mut w = sample();
        w.raw(PIXEL_DATA, b"OW", &[0u8; 64]);
        let bytes = w.into_bytes();
        assert!(matches!(
            scan(&bytes[..bytes.len() - 10], explicit()),
            Err(ParseError::AbsurdLength { .. })
        ));
        assert!(matches!(
            scan(&bytes[..bytes.len() - 70], explicit()),
            Err(ParseError::AbsurdLength { .. } | ParseError::Truncated { .. })
        ));
        // A header cut in the middle.
        let cut = &bytes[..bytes.len() - 64 - 5];
        assert!(scan(cut, explicit()).is_err());
        // Unknown VR.
        let mut bad = sample().into_bytes();
        bad.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, b'Z', b'Z', 2, 0, b'A', b'B']);
        assert!(matches!(
            scan(&bad, explicit()),
            Err(ParseError::UnknownVr { .. })
        ));
    }

    #[test]
    fn sequences_defined_and_undefined_length() {
        let mut item = DatasetWriter::new();
        item.str(0x0010_0020, b"LO", "110101199003077777");
        let mut w = sample();
        w.seq(0x0010_1002, &[item.into_bytes()]);
        let ds = scan(&w.into_bytes(), explicit()).unwrap();
        assert_eq!(ds.items(0x0010_1002).len(), 1);
        // Undefined-length sequence and item.
        let mut b = sample().into_bytes();
        b.extend_from_slice(&[
            0x10, 0x00, 0x02, 0x10, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        b.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, b'L', b'O', 2, 0, b'I', b'D']);
        b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let ds = scan(&b, explicit()).unwrap();
        assert_eq!(
            ds.items(0x0010_1002)[0].bytes(0x0010_0020),
            Some(&b"ID"[..])
        );
        // Missing sequence delimiter: truncated.
        assert!(scan(&b[..b.len() - 8], explicit()).is_err());
    }

    #[test]
    fn encapsulated_fragments_and_offset_table() {
        let mut b = sample().into_bytes();
        b.extend_from_slice(&[
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        // BOT with two frames: offsets 0 and 16 (item header 8 + 8 bytes).
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0]);
        for f in 0..2u8 {
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0]);
            b.extend_from_slice(&[f; 8]);
        }
        b.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let ds = scan(&b, explicit()).unwrap();
        let Value::Fragments {
            offset_table,
            fragments,
        } = &ds.get(PIXEL_DATA).unwrap().value
        else {
            panic!()
        };
        assert_eq!(offset_table, &vec![0, 16]);
        assert_eq!(fragments.len(), 2);
        assert_eq!(b[fragments[1].offset as usize], 1);
    }

    #[test]
    fn implicit_vr_uses_the_dictionary() {
        let mut b = Vec::new();
        // (0010,0010) PN "Li^Si" implicit: tag, 4-byte length.
        b.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 6, 0, 0, 0]);
        b.extend_from_slice(b"Li^Si ");
        let ts = crate::ts::lookup(crate::ts::IMPLICIT_VR_LE).unwrap();
        let ds = scan(&b, ts).unwrap();
        assert_eq!(ds.get(0x0010_0010).unwrap().vr, Vr::PN);
    }

    #[test]
    fn file_meta_with_and_without_preamble() {
        let meta = crate::meta::file_meta("1.2.3", "1.2.3.4", crate::ts::EXPLICIT_VR_LE, None);
        let mut src = SeekSource::new(Cursor::new(meta.clone()), 0).unwrap();
        let m = read_file_meta(&mut src).unwrap();
        assert_eq!(m.media_storage_sop_instance_uid, "1.2.3.4");
        assert_eq!(m.dataset_offset, meta.len() as u64);
        let bare = meta[132..].to_vec();
        let mut src = SeekSource::new(Cursor::new(bare.clone()), 0).unwrap();
        assert_eq!(
            read_file_meta(&mut src).unwrap().dataset_offset,
            bare.len() as u64
        );
        let mut src = SeekSource::new(Cursor::new(b"garbage".to_vec()), 0).unwrap();
        assert!(read_file_meta(&mut src).is_err());
    }
}
