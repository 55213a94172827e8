//! Spool files: an incoming object is streamed to a local file (hashed and size-checked as it
//! arrives) before it is parsed or made durable, so memory stays bounded for any object size
//! and nothing half-received ever reaches the object store.

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
    file: tokio::io::BufWriter<tokio::fs::File>,
    guard: SpoolGuard,
    hasher: Sha256,
    size: u64,
    max: u64,
}

/// A finished spool file. Dropping it removes the file unless [`Spooled::disarm`] was called
/// (after the blob store took it over).
pub struct Spooled {
    guard: SpoolGuard,
    pub sha256: String,
    pub size: u64,
}

struct SpoolGuard(Option<PathBuf>);

impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Spool {
    pub async fn create(dir: &Path, max: u64) -> std::io::Result<Spool> {
        let path = dir.join(format!("{}.part", uuid::Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Spool {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            guard: SpoolGuard(Some(path)),
            hasher: Sha256::new(),
            size: 0,
            max,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        self.size += bytes.len() as u64;
        if self.size > self.max {
            return Err(SpoolError::TooLarge(self.max));
        }
        self.hasher.update(bytes);
        self.file.write_all(bytes).await?;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Spooled, SpoolError> {
        self.file.flush().await?;
        Ok(Spooled {
            guard: self.guard,
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
        })
    }
}

impl Spooled {
    pub fn path(&self) -> &Path {
        self.guard.0.as_deref().unwrap_or(Path::new(""))
    }
    /// The file now belongs to someone else (renamed into the object store).
    pub fn disarm(mut self) {
        self.guard.0 = None;
    }
}
