//! Retrieval as a use case (WADO-RS, WADO-URI, rendered images, C-GET/C-MOVE): an instance a
//! reader matched under a `ReadGrant` is opened here, in the transfer syntax asked, and read
//! as byte ranges — whole objects chunk by chunk, frames and bulk data at the offsets indexed
//! at ingest. Adapters only format what comes back (multipart parts, C-STORE sub-operations).
//!
//! Nothing here assumes that an object is a local file: stored bytes are read through
//! `BlobStore::read_range`. Only re-encoding (`huren_dicom::transcode`) works on a file; it
//! gets the object's local path when the store has one, else a copy fetched into the spool,
//! and writes its output to a temporary file that lives as long as the [`Opened`] object.

use crate::Archive;
use crate::ports::{BlobStore, StoreError};
use crate::query::Match;
use bytes::Bytes;
use huren_access::ReadGrant;
use huren_dicom::pixel::PixelLayout;
use huren_dicom::render::PixelModule;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Explicit VR Little Endian (PS3.5 §A.2), what deflated objects are inflated into.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// Why a retrieval step failed, in terms an adapter can answer in its own protocol.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// What was asked does not exist (a frame number past the last, a bulk range outside the
    /// object): WADO 404.
    #[error("{0}")]
    NotFound(String),
    /// The object cannot be given in the form asked (no codec for the syntax, no pixel
    /// module): WADO 406, a failed C-STORE sub-operation.
    #[error("{0}")]
    NotAcceptable(String),
    /// Re-encoding or inflating the object failed.
    #[error("re-encoding the object failed: {0}")]
    Transcode(#[source] huren_dicom::transcode::TranscodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An instance opened for sending. Its bytes are read by range; `preamble` goes before them
/// (objects stored without the 128-byte preamble, as some STOW clients send them, get it
/// here, so every object leaves as a Part 10 file).
pub struct Opened {
    pub transfer_syntax: String,
    pub preamble: Vec<u8>,
    /// Bytes of the object (without `preamble`).
    pub size: u64,
    source: Source,
}

enum Source {
    /// The stored object, read through the blob store.
    Stored {
        key: String,
        blobs: Arc<dyn BlobStore>,
    },
    /// A re-encoded copy; removed when the `Opened` is dropped.
    Copy(tempfile::TempPath),
}

impl Opened {
    /// Bytes `range` of the object (offsets without the preamble). A short read is an error:
    /// an object cut off on the store must not leave as a truncated body.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        let want = range.end.saturating_sub(range.start);
        let b = match &self.source {
            Source::Stored { key, blobs } => blobs.read_range(key, range).await?,
            Source::Copy(path) => read_file_range(path.to_path_buf(), range).await?,
        };
        if b.len() as u64 != want {
            return Err(StoreError::broken(format!(
                "object is shorter than indexed: {} of {want} bytes",
                b.len()
            )));
        }
        Ok(b)
    }

    /// Where the data set starts, after the File Meta Information (PS3.10 §7.1): DIMSE sends
    /// data sets, not files.
    pub async fn dataset_offset(&self) -> Result<u64, RetrieveError> {
        // File Meta is small: 4 KiB holds a usual one (read for every C-STORE sub-operation,
        // so not more), 64 KiB any real one.
        let mut last = None;
        for window in [4 * 1024, 64 * 1024] {
            let head = self.read(0..self.size.min(window)).await?;
            let mut src = huren_dicom::parse::SeekSource::new(std::io::Cursor::new(head), 0)
                .map_err(|e| StoreError::backend("reading File Meta", e))?;
            match huren_dicom::parse::read_file_meta(&mut src) {
                Ok(meta) => return Ok(meta.dataset_offset),
                Err(e) => last = Some(e),
            }
            if self.size <= window {
                break;
            }
        }
        Err(RetrieveError::NotAcceptable(format!(
            "stored object: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

async fn read_file_range(path: PathBuf, range: Range<u64>) -> Result<Bytes, StoreError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(StoreError::from_io)?;
    f.seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(StoreError::from_io)?;
    let mut buf = Vec::with_capacity(range.end.saturating_sub(range.start) as usize);
    f.take(range.end.saturating_sub(range.start))
        .read_to_end(&mut buf)
        .await
        .map_err(StoreError::from_io)?;
    Ok(Bytes::from(buf))
}

/// An object as a file for the re-encoder: its own path on a local store, else a copy in the
/// spool (kept alive by the returned guard).
struct LocalObject {
    path: PathBuf,
    _copy: Option<tempfile::TempPath>,
}

impl Archive {
    /// Opens instance `m` for sending, re-encoded into `convert_to` when given (the caller has
    /// checked `huren_dicom::transcode::can_transcode`).
    pub async fn open_instance(
        &self,
        _grant: &ReadGrant,
        m: &Match,
        convert_to: Option<&str>,
    ) -> Result<Opened, RetrieveError> {
        let key = m.blob_key.clone().unwrap_or_default();
        let stored = m.transfer_syntax_uid.clone().unwrap_or_default();
        if let Some(target) = convert_to {
            let local = self.local_object(m).await?;
            let spool = self.blobs.spool_dir().to_path_buf();
            let target = target.to_owned();
            let (temp, size) = tokio::task::spawn_blocking(
                move || -> Result<(tempfile::TempPath, u64), RetrieveError> {
                    let mut tmp =
                        tempfile::NamedTempFile::new_in(spool).map_err(StoreError::from_io)?;
                    huren_dicom::transcode::transcode_file(&local.path, &target, tmp.as_file_mut())
                        .map_err(RetrieveError::Transcode)?;
                    let size = tmp.as_file().metadata().map_err(StoreError::from_io)?.len();
                    Ok((tmp.into_temp_path(), size))
                },
            )
            .await
            .map_err(|e| StoreError::backend("re-encoding task", e))??;
            return Ok(Opened {
                transfer_syntax: convert_to.unwrap_or_default().to_owned(),
                preamble: Vec::new(),
                size,
                source: Source::Copy(temp),
            });
        }
        let size = match m.object_size {
            Some(s) => s as u64,
            None => return Err(StoreError::broken("object size not indexed").into()),
        };
        let head = self.blobs.read_range(&key, 0..size.min(132)).await?;
        let mut preamble = Vec::new();
        if head.len() < 132 || &head[128..132] != b"DICM" {
            preamble = vec![0u8; 128];
            if !head.starts_with(b"DICM") {
                preamble.extend_from_slice(b"DICM");
            }
        }
        Ok(Opened {
            transfer_syntax: stored,
            preamble,
            size,
            source: Source::Stored {
                key,
                blobs: self.blobs.clone(),
            },
        })
    }

    /// The object as a local file, for re-encoding: the file itself on a local store, else a
    /// spool copy fetched by ranges of `COPY_CHUNK`, so that a large object from S3 never sits
    /// whole in memory.
    async fn local_object(&self, m: &Match) -> Result<LocalObject, StoreError> {
        const COPY_CHUNK: u64 = 8 * 1024 * 1024;
        let key = m.blob_key.as_deref().unwrap_or("");
        if let Some(path) = self.blobs.local_path(key) {
            return Ok(LocalObject { path, _copy: None });
        }
        let spool = self.blobs.spool_dir().to_path_buf();
        let tmp = tokio::task::spawn_blocking(move || tempfile::NamedTempFile::new_in(spool))
            .await
            .map_err(|e| StoreError::backend("copying an object to the spool", e))?
            .map_err(StoreError::from_io)?;
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(StoreError::from_io)?);
        let copy = tmp.into_temp_path();
        match m.object_size.and_then(|s| u64::try_from(s).ok()) {
            Some(size) => {
                let mut at = 0u64;
                while at < size {
                    let end = (at + COPY_CHUNK).min(size);
                    let chunk = self.blobs.read_range(key, at..end).await?;
                    file.write_all(&chunk).await.map_err(StoreError::from_io)?;
                    at = end;
                }
            }
            None => {
                let bytes = self.blobs.read(key).await?;
                file.write_all(&bytes).await.map_err(StoreError::from_io)?;
            }
        }
        file.flush().await.map_err(StoreError::from_io)?;
        Ok(LocalObject {
            path: copy.to_path_buf(),
            _copy: Some(copy),
        })
    }

    /// The image pixel module of an instance, from its stored JSON.
    pub async fn pixel_module(
        &self,
        grant: &ReadGrant,
        m: &Match,
    ) -> Result<PixelModule, RetrieveError> {
        let doc = self
            .instance_metadata(grant, std::slice::from_ref(m))
            .await?
            .into_iter()
            .next()
            .map(serde_json::Value::Object)
            .unwrap_or_default();
        PixelModule::from_json(&doc)
            .ok_or_else(|| RetrieveError::NotAcceptable("no image pixel module".into()))
    }

    /// Frame `idx` (0-based) as stored: a native frame by range read (packed 1-bit frames
    /// re-aligned to bit 0, PS3.5 §8.1.1; big-endian samples swapped to little endian when
    /// `swap_big_endian`, PS3.5 §A.3), or the concatenated fragments of an encapsulated frame.
    /// The pixel module is read (once, into `pm`) only when the layout needs it.
    pub async fn read_frame(
        &self,
        grant: &ReadGrant,
        m: &Match,
        layout: &PixelLayout,
        idx: usize,
        pm: &mut Option<PixelModule>,
        swap_big_endian: bool,
    ) -> Result<Vec<u8>, RetrieveError> {
        let key = m.blob_key.clone().unwrap_or_default();
        let big_endian = m.transfer_syntax_uid.as_deref() == Some(BIG_ENDIAN);
        if let PixelLayout::Native {
            offset,
            packed_bits: true,
            ..
        } = layout
        {
            if pm.is_none() {
                *pm = Some(self.pixel_module(grant, m).await?);
            }
            let Some(x) = pm.as_ref() else {
                return Err(RetrieveError::NotAcceptable("no image pixel module".into()));
            };
            let frame_bits = u64::from(x.rows)
                * u64::from(x.columns)
                * u64::from(x.samples_per_pixel)
                * u64::from(x.bits_allocated);
            let first_bit = frame_bits * idx as u64;
            let start = offset + first_bit / 8;
            let shift = (first_bit % 8) as u32;
            let len = (frame_bits + u64::from(shift)).div_ceil(8);
            let b = self.blobs.read_range(&key, start..start + len).await?;
            return Ok(huren_dicom::pixel::realign_bits(&b, shift, frame_bits));
        }
        let Some(ranges) = layout.frame_ranges(idx as u32) else {
            return Err(RetrieveError::NotAcceptable(
                "this frame layout (deflated, or fragments that cannot be mapped to frames) is not served here".into(),
            ));
        };
        let mut b = Vec::new();
        for r in ranges {
            b.extend_from_slice(&self.blobs.read_range(&key, r).await?);
        }
        if matches!(layout, PixelLayout::Native { .. }) && big_endian && swap_big_endian {
            if pm.is_none() {
                *pm = Some(self.pixel_module(grant, m).await?);
            }
            let bits = pm.as_ref().map_or(16, |x| x.bits_allocated);
            if bits > 8 {
                b.chunks_exact_mut((bits / 8) as usize)
                    .for_each(<[u8]>::reverse);
            }
        }
        Ok(b)
    }

    /// Frames `numbers` (1-based) of a deflated object (PS3.5 §A.5): the data set is inflated
    /// into a temporary Explicit VR Little Endian copy, whose frames are then read like any
    /// native frames.
    pub async fn deflated_frames(
        &self,
        _grant: &ReadGrant,
        m: &Match,
        numbers: &[u32],
    ) -> Result<Vec<Vec<u8>>, RetrieveError> {
        let local = self.local_object(m).await?;
        let spool = self.blobs.spool_dir().to_path_buf();
        let numbers = numbers.to_vec();
        tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>, RetrieveError> {
            use std::io::{Read, Seek};
            let mut tmp = tempfile::NamedTempFile::new_in(spool).map_err(StoreError::from_io)?;
            huren_dicom::transcode::transcode_file(&local.path, EXPLICIT_VR_LE, tmp.as_file_mut())
                .map_err(RetrieveError::Transcode)?;
            let scanned =
                huren_dicom::scan_part10(tmp.path(), huren_dicom::charset::Assumed::Declared)
                    .map_err(|e| RetrieveError::NotAcceptable(e.to_string()))?;
            let PixelLayout::Native {
                offset,
                frame_length,
                frames,
                packed_bits: false,
                ..
            } = scanned.pixel
            else {
                return Err(RetrieveError::NotAcceptable(
                    "no byte-aligned native pixel data".into(),
                ));
            };
            let mut f = tmp.reopen().map_err(StoreError::from_io)?;
            numbers
                .iter()
                .map(|n| {
                    if *n == 0 || *n > frames {
                        return Err(RetrieveError::NotFound(format!(
                            "frame {n} does not exist; the instance has {frames}"
                        )));
                    }
                    let mut buf = vec![0u8; frame_length as usize];
                    f.seek(std::io::SeekFrom::Start(
                        offset + frame_length * u64::from(*n - 1),
                    ))
                    .map_err(StoreError::from_io)?;
                    f.read_exact(&mut buf).map_err(StoreError::from_io)?;
                    Ok(buf)
                })
                .collect()
        })
        .await
        .map_err(|e| StoreError::backend("inflate task", e))?
    }

    /// `count` bytes of a bulk data value at `begin` (PS3.18 §8.7.5): offsets into the object
    /// as stored, or into the inflated data set of a deflated object. A range that is not
    /// wholly inside is `NotFound`.
    pub async fn read_bulk(
        &self,
        _grant: &ReadGrant,
        m: &Match,
        begin: u64,
        count: u64,
    ) -> Result<Vec<u8>, RetrieveError> {
        let gone = || RetrieveError::NotFound("no such bulk data".into());
        let key = m.blob_key.clone().unwrap_or_default();
        if m.transfer_syntax_uid.as_deref() == Some(DEFLATED) {
            let local = self.local_object(m).await?;
            return tokio::task::spawn_blocking(move || {
                huren_dicom::transcode::read_deflated_range(&local.path, begin, count)
            })
            .await
            .map_err(|e| StoreError::backend("inflate task", e))?
            .map_err(|_| gone());
        }
        let end = begin.checked_add(count).ok_or_else(gone)?;
        let b = self
            .blobs
            .read_range(&key, begin..end)
            .await
            .map_err(|_| gone())?;
        if b.len() as u64 != count {
            return Err(gone());
        }
        Ok(b.to_vec())
    }
}
