//! Objects as files under the data directory, through `object_store`'s LocalFileSystem for
//! reads, listing and deletes. Persisting is a rename of the spool file plus fsync of the file
//! and of its directory: object_store's local `put` does not fsync, and copying through it
//! would write every byte twice.

use async_trait::async_trait;
use futures::TryStreamExt;
use huren_archive::ports::{BlobStore, StoreError};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
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
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(LocalBlobs {
            root: root.to_path_buf(),
            spool,
            store,
        })
    }
}

fn backend(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
        other => StoreError::Backend(other.to_string()),
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn persist(&self, spool: &Path, key: &str) -> Result<(), StoreError> {
        let target = self.root.join(key);
        let spool = spool.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&spool)?.sync_all()?;
            let dir = target
                .parent()
                .ok_or_else(|| std::io::Error::other("key has no directory"))?;
            let created = !dir.exists();
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&spool, &target)?;
            // The rename is durable only once the directory entry is (POSIX: fsync the dir).
            std::fs::File::open(dir)?.sync_all()?;
            if created && let Some(parent) = dir.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
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
