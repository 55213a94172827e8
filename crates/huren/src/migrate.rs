//! `huren migrate objects` (issue 23, item 5): copies a data directory's objects into the S3
//! bucket that `[storage]` names, so that a node that kept its objects as files can keep them
//! in the bucket instead. Every object the index names (deleted ones excepted) is read from its
//! file, checked against the size and SHA-256 the index recorded at ingest, and uploaded under
//! the same key; an object already in the bucket with its recorded size is counted as copied
//! (`--verify` downloads it and checks its hash too). Resumable: run it while the node still
//! serves from files, then again after stopping it (only what arrived since is copied), then
//! set `storage.url` and start the node. Exits non-zero when any object is missing or differs.

use anyhow::{Context, bail};
use futures::StreamExt;
use huren_archive::ports::BlobStore;
use huren_store::{S3Blobs, SqliteIndex, StoredObject};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

/// Objects copied at once: each is one request in flight (two parts for a large one).
const IN_FLIGHT: usize = 8;
const PAGE: i64 = 1000;

#[derive(Debug, Default)]
pub struct Report {
    pub objects: u64,
    pub uploaded: u64,
    pub already: u64,
    pub bytes: u64,
    pub failures: Vec<String>,
}

enum Outcome {
    Uploaded(u64),
    Already,
    Failed(String),
}

async fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok((hex::encode(h.finalize()), n_total));
        }
        h.update(&buf[..n]);
        n_total += n as u64;
    }
}

/// An object's SHA-256 read back from the bucket by ranges, so that verifying a large object
/// (with several in flight) never holds it whole in memory.
async fn bucket_sha256(
    s3: &S3Blobs,
    key: &str,
    size: u64,
) -> Result<String, huren_archive::ports::StoreError> {
    const CHUNK: u64 = 8 * 1024 * 1024;
    let mut h = Sha256::new();
    let mut at = 0;
    while at < size {
        let end = (at + CHUNK).min(size);
        h.update(s3.read_range(key, at..end).await?);
        at = end;
    }
    Ok(hex::encode(h.finalize()))
}

async fn copy_one(s3: &S3Blobs, objects_root: &Path, o: &StoredObject, verify: bool) -> Outcome {
    let fail = |why: String| Outcome::Failed(format!("{} (instance {}): {why}", o.blob_key, o.id));
    match s3.size(&o.blob_key).await {
        Ok(Some(size)) if size as i64 == o.size => {
            if !verify {
                return Outcome::Already;
            }
            return match bucket_sha256(s3, &o.blob_key, size).await {
                Ok(hash) if hash == o.sha256 => Outcome::Already,
                Ok(_) => fail("in the bucket with other bytes than the index recorded".into()),
                Err(e) => fail(format!("reading it back: {e}")),
            };
        }
        Ok(Some(size)) => {
            return fail(format!(
                "in the bucket with {size} bytes, the index recorded {}",
                o.size
            ));
        }
        Ok(None) => {}
        Err(e) => return fail(format!("asking the bucket: {e}")),
    }
    let path: PathBuf = objects_root.join(&o.blob_key);
    match file_sha256(&path).await {
        Ok((hash, size)) if hash == o.sha256 && size as i64 == o.size => {}
        Ok(_) => return fail("the file differs from what the index recorded at ingest".into()),
        Err(e) => return fail(format!("reading {}: {e}", path.display())),
    }
    if let Err(e) = s3.upload_file(&path, &o.blob_key).await {
        return fail(format!("uploading: {e}"));
    }
    match s3.size(&o.blob_key).await {
        Ok(Some(size)) if size as i64 == o.size => Outcome::Uploaded(size),
        Ok(other) => fail(format!("after the upload the bucket holds {other:?} bytes")),
        Err(e) => fail(format!("checking the upload: {e}")),
    }
}

pub async fn objects(data_dir: &Path, s3: &S3Blobs, verify: bool) -> anyhow::Result<Report> {
    let index_path = data_dir.join("index.sqlite");
    if !index_path.exists() {
        bail!("no index at {}", index_path.display());
    }
    let index = SqliteIndex::open(&index_path)
        .await
        .context("opening the index")?;
    let mut report = Report::default();
    let mut after = 0i64;
    loop {
        let page = index
            .stored_objects(after, PAGE)
            .await
            .context("reading the index")?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let outcomes: Vec<Outcome> = futures::stream::iter(page.iter())
            .map(|o| copy_one(s3, data_dir, o, verify))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for o in outcomes {
            report.objects += 1;
            match o {
                Outcome::Uploaded(n) => {
                    report.uploaded += 1;
                    report.bytes += n;
                }
                Outcome::Already => report.already += 1,
                Outcome::Failed(why) => report.failures.push(why),
            }
        }
    }
    Ok(report)
}
