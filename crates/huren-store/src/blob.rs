//! Objects as files under the data directory, through `object_store`'s LocalFileSystem for
//! reads, listing and deletes. Persisting writes an in-memory spool straight to its final name
//! (or renames a spool file) and fsyncs the file and its directory: object_store's local `put`
//! does not fsync, and copying a spool file through it would write every byte twice.

use async_trait::async_trait;
use futures::TryStreamExt;
use huren_archive::Body;
use huren_archive::ports::{BlobStore, Listed, StoreError};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LocalBlobs {
    root: PathBuf,
    spool: PathBuf,
    store: LocalFileSystem,
}

impl LocalBlobs {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(StoreError::from_io)?;
        let spool = root.join("spool");
        std::fs::create_dir_all(&spool).map_err(StoreError::from_io)?;
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| StoreError::backend("opening the object store", e))?;
        Ok(LocalBlobs {
            root: root.to_path_buf(),
            spool,
            store,
        })
    }
}

enum Source {
    Bytes(bytes::Bytes),
    Spool(PathBuf),
}

/// Writes (or moves) the object to `target`, then makes it durable: the file's data, then its
/// directory entry (POSIX: a new name is durable only once the directory is fsync'd), and the
/// ancestors' entries when directories were just created.
fn persist_blocking(source: Source, target: &Path) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("key has no directory"))?;
    // The nearest existing ancestor: every directory below it is created now and its entry
    // must be made durable too (a new day, month or year).
    let mut existing = dir;
    while !existing.exists() {
        existing = existing
            .parent()
            .ok_or_else(|| std::io::Error::other("no existing ancestor"))?;
    }
    if existing != dir {
        std::fs::create_dir_all(dir)?;
    }
    match source {
        Source::Bytes(bytes) => {
            // Written in place: a crash mid-write leaves a file no index row names, which the
            // start-up sweep removes; an error here removes it at once.
            let written = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(target)?;
                f.write_all(&bytes)?;
                f.sync_all()
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(target);
                return Err(e);
            }
        }
        Source::Spool(spool) => {
            std::fs::File::open(&spool)?.sync_all()?;
            std::fs::rename(&spool, target)?;
        }
    }
    let mut d = dir;
    loop {
        std::fs::File::open(d)?.sync_all()?;
        if d == existing {
            break;
        }
        d = d.parent().unwrap_or(existing);
    }
    Ok(())
}

pub(crate) fn backend(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
        object_store::Error::AlreadyExists { path, .. } => {
            StoreError::Conflict(format!("object {path} already exists"))
        }
        other => StoreError::backend("object store", other),
    }
}

/// Reads, deletes and listings through object_store, the same for files and buckets.
pub(crate) mod through {
    use super::*;

    pub async fn read(store: &dyn ObjectStore, key: &str) -> Result<bytes::Bytes, StoreError> {
        let r = store.get(&ObjectPath::from(key)).await.map_err(backend)?;
        r.bytes().await.map_err(backend)
    }

    pub async fn read_range(
        store: &dyn ObjectStore,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError> {
        store
            .get_range(&ObjectPath::from(key), range)
            .await
            .map_err(backend)
    }

    /// Deleting what is not there is done.
    pub async fn delete(store: &dyn ObjectStore, key: &str) -> Result<(), StoreError> {
        match store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    pub async fn list(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let p = ObjectPath::from(prefix.trim_end_matches('/'));
        let metas: Vec<_> = store.list(Some(&p)).try_collect().await.map_err(backend)?;
        Ok(metas
            .into_iter()
            .map(|m| Listed {
                key: m.location.to_string(),
                modified: m.last_modified.into(),
            })
            .collect())
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn persist(&self, body: &Body, key: &str) -> Result<(), StoreError> {
        let target = self.root.join(key);
        let source = match body {
            Body::Memory(bytes) => Source::Bytes(bytes.clone()),
            Body::File(guard) => Source::Spool(guard.path().to_path_buf()),
        };
        tokio::task::spawn_blocking(move || persist_blocking(source, &target))
            .await
            .map_err(|e| StoreError::backend("persisting an object", e))?
            .map_err(StoreError::from_io)
    }

    async fn read(&self, key: &str) -> Result<bytes::Bytes, StoreError> {
        through::read(&self.store, key).await
    }

    async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError> {
        through::read_range(&self.store, key, range).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        through::delete(&self.store, key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        // A partition not yet written is an empty listing, not an error.
        if !self.root.join(prefix).exists() {
            return Ok(Vec::new());
        }
        through::list(&self.store, prefix).await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.root.join(key))
    }
}
