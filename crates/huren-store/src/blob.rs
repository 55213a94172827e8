//! Objects as files under the data directory, through `object_store`'s LocalFileSystem for
//! reads, listing and deletes. Persisting writes an in-memory spool straight to its final name
//! (or renames a spool file): object_store's local `put` does not fsync, and copying a spool
//! file through it would write every byte twice.
//!
//! Two ways to make a persisted object durable (ARCHITECTURE.md, "Durability: one sync a
//! group"): [`LocalBlobs::open`] fsyncs each file and its directory before `persist` returns;
//! [`LocalBlobs::open_grouped`] leaves that to the index writer, which syncs the whole object
//! volume once per group commit ([`VolumeSync`]) before the group's rows commit — so an index
//! row still never names bytes that are not on disk, and the acknowledgment still waits for
//! both.

use async_trait::async_trait;
use futures::TryStreamExt;
use huren_archive::Body;
use huren_archive::ports::{BlobStore, StoreError};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LocalBlobs {
    root: PathBuf,
    spool: PathBuf,
    store: LocalFileSystem,
    /// Each persist syncs its own file and directory (`true`), or the index writer syncs the
    /// volume for a whole group ([`VolumeSync`]).
    sync_each: bool,
}

/// Makes every write on the object volume durable at once: `syncfs(2)` on the data directory
/// (Linux ≥ 5.8 reports write-back errors through it). One call covers every object file,
/// every new directory entry and every rename of a group, whichever association wrote them.
#[derive(Clone)]
pub struct VolumeSync {
    dir: std::sync::Arc<std::fs::File>,
}

impl VolumeSync {
    pub fn sync(&self) -> std::io::Result<()> {
        rustix::fs::syncfs(self.dir.as_ref()).map_err(std::io::Error::from)
    }
}

impl LocalBlobs {
    /// Objects that are durable when `persist` returns (file and directory fsync'd).
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
            sync_each: true,
        })
    }

    /// Objects made durable by the index writer, a group at a time: the returned
    /// [`VolumeSync`] must be given to the index ([`crate::SqliteIndex::open_chained`]), which
    /// syncs the volume before each group of instance rows commits.
    pub fn open_grouped(root: &Path) -> Result<(Self, VolumeSync), StoreError> {
        let mut blobs = Self::open(root)?;
        blobs.sync_each = false;
        let dir = std::fs::File::open(root).map_err(StoreError::from_io)?;
        Ok((
            blobs,
            VolumeSync {
                dir: std::sync::Arc::new(dir),
            },
        ))
    }
}

enum Source {
    Bytes(bytes::Bytes),
    Spool(PathBuf),
}

/// Writes (or moves) the object to `target`; with `sync_each`, then makes it durable: the
/// file's data, then its directory entry (POSIX: a new name is durable only once the directory
/// is fsync'd), and the ancestors' entries when directories were just created. Without it the
/// group's [`VolumeSync`] does all of that at once.
fn persist_blocking(source: Source, target: &Path, sync_each: bool) -> std::io::Result<()> {
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
                if sync_each { f.sync_all() } else { Ok(()) }
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(target);
                return Err(e);
            }
        }
        Source::Spool(spool) => {
            if sync_each {
                std::fs::File::open(&spool)?.sync_all()?;
            }
            std::fs::rename(&spool, target)?;
        }
    }
    if !sync_each {
        return Ok(());
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

fn backend(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
        other => StoreError::backend("object store", other),
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
        let sync_each = self.sync_each;
        tokio::task::spawn_blocking(move || persist_blocking(source, &target, sync_each))
            .await
            .map_err(|e| StoreError::backend("persisting an object", e))?
            .map_err(StoreError::from_io)
    }

    async fn read(&self, key: &str) -> Result<bytes::Bytes, StoreError> {
        let r = self
            .store
            .get(&ObjectPath::from(key))
            .await
            .map_err(backend)?;
        r.bytes().await.map_err(backend)
    }

    async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError> {
        self.store
            .get_range(&ObjectPath::from(key), range)
            .await
            .map_err(backend)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join(prefix);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let p = ObjectPath::from(prefix.trim_end_matches('/'));
        let metas: Vec<_> = self
            .store
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(backend)?;
        Ok(metas.into_iter().map(|m| m.location.to_string()).collect())
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.root.join(key))
    }
}
