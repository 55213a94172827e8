//! Objects in an S3-compatible object store (issue 23): any number of huren nodes share one
//! bucket, so nothing about an object is local to the node that received it. Keys are the
//! same as on the file system (`objects/YYYY/MM/DD/XX/<uuid>.dcm`), under an optional prefix.
//!
//! What "durable" means here: S3's PutObject and CompleteMultipartUpload answer only once the
//! object is stored (AWS S3 user guide, "Amazon S3 data consistency model"), so `persist`
//! returning is the point at which the writer may commit the instance's row — the same
//! contract as the local store's fsyncs.
//!
//! Writes are `If-None-Match: *` (PutObject's conditional write) where the server supports
//! it: an object is written once and never replaced, and a key generated twice (it cannot
//! be, being a UUIDv7, but a bug could) fails instead of overwriting an image a row already
//! names. Spool files above `MULTIPART_FROM` go up as a multipart upload in parts of that
//! size, read from the spool file a part at a time, so a large object never sits whole in
//! memory; the node's only local disk use is that bounded spool.

use crate::blob::{backend, through};
use async_trait::async_trait;
use huren_archive::Body;
use huren_archive::ports::{BlobStore, Listed, StoreError};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    WriteMultipart,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// S3's smallest part but the last (5 MiB, "Amazon S3 multipart upload limits"): objects
/// up to this size go up in one PutObject.
const MULTIPART_FROM: u64 = 5 * 1024 * 1024;
/// Parts of one upload in flight at once: bounds its memory to about this many parts.
const PARTS_IN_FLIGHT: usize = 2;

/// Where the bucket is and how to reach it (`[storage]` in huren.toml, docs/deploy.md).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// The service's address for a store other than AWS (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Credentials; when absent, the `AWS_*` environment variables are read.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain HTTP to the endpoint (a store on loopback or a private network).
    pub allow_http: bool,
    /// Write with `If-None-Match: *`; off for servers that refuse the header.
    pub conditional_put: bool,
    /// One request's limit, and how long failed requests are retried.
    pub request_timeout: Duration,
    pub retry_for: Duration,
    /// An object without an index row younger than this is left by the start-up sweep: it
    /// may be another node's ingest, persisted and not yet committed.
    pub orphan_grace: Duration,
}

pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    spool: PathBuf,
    mode: PutMode,
    described: String,
    orphan_grace: Duration,
}

/// `s3://bucket/some/prefix` → (`bucket`, `some/prefix`).
fn bucket_and_prefix(url: &str) -> Result<(String, String), StoreError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| StoreError::Invalid(format!("storage.url {url:?}: not an s3:// URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::Invalid(format!(
            "storage.url {url:?}: no bucket"
        )));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl S3Blobs {
    /// Connects to the bucket (no request is made until the first object) and makes the local
    /// spool directory under `spool_parent`.
    pub fn open(settings: &S3Settings, spool_parent: &Path) -> Result<Self, StoreError> {
        // reqwest is built without a TLS provider of its own: ring, as everywhere in huren.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (bucket, prefix) = bucket_and_prefix(&settings.url)?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_allow_http(settings.allow_http)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(settings.request_timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(settings.allow_http),
            )
            .with_retry(RetryConfig {
                max_retries: 6,
                retry_timeout: settings.retry_for,
                ..RetryConfig::default()
            })
            .with_conditional_put(if settings.conditional_put {
                S3ConditionalPut::ETagMatch
            } else {
                S3ConditionalPut::Disabled
            });
        if let Some(e) = &settings.endpoint {
            // A self-hosted store (Garage, Ceph RGW, MinIO…) answers at a path, not at a
            // bucket's own host name.
            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
        }
        if let Some(r) = &settings.region {
            b = b.with_region(r);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            b = b.with_region("us-east-1");
        }
        if let Some(k) = &settings.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = &settings.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let s3 = b
            .build()
            .map_err(|e| StoreError::backend("configuring the S3 store", e))?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix.as_str()))
        };
        let spool = spool_parent.join("spool");
        std::fs::create_dir_all(&spool).map_err(StoreError::from_io)?;
        Ok(S3Blobs {
            store,
            spool,
            mode: if settings.conditional_put {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            described: settings.url.clone(),
            orphan_grace: settings.orphan_grace,
        })
    }

    pub fn describe(&self) -> &str {
        &self.described
    }

    /// Uploads a local file under `key` (one PutObject up to 5 MiB, else in parts), leaving
    /// the file in place: persisting a spool file, and `huren migrate objects`.
    pub async fn upload_file(&self, path: &Path, key: &str) -> Result<(), StoreError> {
        let location = ObjectPath::from(key);
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StoreError::from_io)?
            .len();
        if size <= MULTIPART_FROM {
            let bytes = tokio::fs::read(path).await.map_err(StoreError::from_io)?;
            self.put_once(&location, bytes.into()).await
        } else {
            self.put_multipart(&location, path).await
        }
    }

    /// The stored size of `key`, or `None` when there is no such object.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn put_once(&self, location: &ObjectPath, bytes: bytes::Bytes) -> Result<(), StoreError> {
        let opts = PutOptions {
            mode: self.mode.clone(),
            ..PutOptions::default()
        };
        self.store
            .put_opts(location, PutPayload::from(bytes), opts)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    /// A spool file as a multipart upload, one part read at a time; an upload that fails is
    /// aborted, so no parts are left for the bucket to keep (and bill).
    async fn put_multipart(&self, location: &ObjectPath, path: &Path) -> Result<(), StoreError> {
        let upload = self.store.put_multipart(location).await.map_err(backend)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_FROM as usize);
        let read = async {
            let mut f = tokio::fs::File::open(path).await?;
            let mut buf = vec![0u8; 1024 * 1024];
            loop {
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(std::io::Error::other)?;
                w.write(&buf[..n]);
            }
        }
        .await;
        if let Err(e) = read {
            let _ = w.abort().await;
            return Err(StoreError::backend("uploading an object", e));
        }
        w.finish().await.map(|_| ()).map_err(backend)
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn persist(&self, body: &Body, key: &str) -> Result<(), StoreError> {
        let location = ObjectPath::from(key);
        match body {
            Body::Memory(bytes) => self.put_once(&location, bytes.clone()).await,
            Body::File(guard) => {
                let path = guard.path();
                self.upload_file(path, key).await?;
                // The caller disarms the spool guard once persisted (the local store moved the
                // file); here the bytes were copied up, so the spool file goes now.
                let _ = tokio::fs::remove_file(path).await;
                Ok(())
            }
        }
    }

    async fn read(&self, key: &str) -> Result<bytes::Bytes, StoreError> {
        through::read(self.store.as_ref(), key).await
    }

    async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError> {
        through::read_range(self.store.as_ref(), key, range).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        through::delete(self.store.as_ref(), key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        through::list(self.store.as_ref(), prefix).await
    }

    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    fn orphan_grace(&self) -> Duration {
        self.orphan_grace
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_and_prefix;

    #[test]
    fn a_storage_url_names_a_bucket_and_an_optional_prefix() {
        assert_eq!(
            bucket_and_prefix("s3://huren").ok(),
            Some(("huren".into(), String::new()))
        );
        assert_eq!(
            bucket_and_prefix("s3://huren/region-a/").ok(),
            Some(("huren".into(), "region-a".into()))
        );
        assert!(bucket_and_prefix("s3:///x").is_err());
        assert!(bucket_and_prefix("file:///data").is_err());
    }
}
