//! Spools: an incoming object is received (hashed and size-checked as it arrives) before it is
//! parsed or made durable, so nothing half-received ever reaches the object store.
//!
//! Objects up to `memory_limit` bytes (a CT or MR slice, a CR) stay in memory: scanning and
//! persisting them then costs no extra file writes or reads, which on a single association is
//! most of what ingest does besides the fsyncs. Larger objects spill to a file in the spool
//! directory, so memory per association stays bounded for any object size.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("object exceeds the configured maximum of {0} bytes")]
    TooLarge(u64),
    #[error("spool write failed: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Spool {
    sink: Sink,
    dir: PathBuf,
    hasher: Sha256,
    size: u64,
    max: u64,
    memory_limit: u64,
}

enum Sink {
    Memory(Vec<u8>),
    File {
        file: tokio::io::BufWriter<tokio::fs::File>,
        guard: SpoolGuard,
    },
}

/// A finished spool: the object's bytes (in memory or in a spool file), SHA-256 and size.
pub struct Spooled {
    body: Body,
    pub sha256: String,
    pub size: u64,
}

/// Where a finished spool's bytes are.
pub enum Body {
    Memory(bytes::Bytes),
    /// A spool file; dropping the guard removes it unless the blob store took it over.
    File(SpoolGuard),
}

pub struct SpoolGuard(Option<PathBuf>);

impl SpoolGuard {
    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
}

impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Spool {
    /// A new spool; objects above `memory_limit` bytes spill to a file in `dir`.
    pub fn new(dir: &Path, max: u64, memory_limit: u64) -> Spool {
        Spool {
            sink: Sink::Memory(Vec::new()),
            dir: dir.to_path_buf(),
            hasher: Sha256::new(),
            size: 0,
            max,
            memory_limit,
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        self.size += bytes.len() as u64;
        if self.size > self.max {
            return Err(SpoolError::TooLarge(self.max));
        }
        self.hasher.update(bytes);
        if let Sink::Memory(buf) = &mut self.sink
            && self.size > self.memory_limit
        {
            let path = self.dir.join(format!("{}.part", uuid::Uuid::now_v7()));
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await?;
            let guard = SpoolGuard(Some(path));
            let mut file = tokio::io::BufWriter::with_capacity(256 * 1024, f);
            file.write_all(buf).await?;
            self.sink = Sink::File { file, guard };
        }
        match &mut self.sink {
            Sink::Memory(buf) => buf.extend_from_slice(bytes),
            Sink::File { file, .. } => file.write_all(bytes).await?,
        }
        Ok(())
    }

    pub async fn finish(self) -> Result<Spooled, SpoolError> {
        let body = match self.sink {
            Sink::Memory(buf) => Body::Memory(bytes::Bytes::from(buf)),
            Sink::File { mut file, guard } => {
                file.flush().await?;
                Body::File(guard)
            }
        };
        Ok(Spooled {
            body,
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
        })
    }
}

impl Spooled {
    pub fn body(&self) -> &Body {
        &self.body
    }
    /// The spool file now belongs to someone else (renamed into the object store).
    pub fn disarm(self) {
        if let Body::File(mut g) = self.body {
            g.0 = None;
        }
    }
}
