//! `huren bench-fill`: a large index for query benchmarks, built quickly.
//!
//! Each synthetic instance goes through the real ingest use case (Part 10 bytes → scan →
//! attribution → the group-commit writer: duplicate policy, patient/study/series upserts,
//! counts, DICOM JSON, audit event), so the index is what C-STORE would have produced. Only
//! two things differ from serving, and both are about speed of building a throw-away data set:
//! object bytes are discarded (queries never read them), and SQLite runs with
//! `synchronous=OFF` (no fsync per group commit; a crash during the fill loses the fill).
//! Many instances are in flight at once so the writer commits them in large groups.

use anyhow::Context;
use async_trait::async_trait;
use huren_archive::ports::{BlobStore, StoreError};
use huren_archive::{Archive, Body, Expected, IngestRequest, IngestStatus, SenderSettings};
use huren_dicom::synth::{self, SynthImage, SynthPatient};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A blob store that keeps nothing: for filling an index whose objects are never read.
struct DiscardBlobs {
    spool: PathBuf,
}

#[async_trait]
impl BlobStore for DiscardBlobs {
    fn spool_dir(&self) -> &Path {
        &self.spool
    }
    async fn persist(&self, _body: &Body, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn read(&self, key: &str) -> Result<bytes::Bytes, StoreError> {
        Err(StoreError::NotFound(key.to_owned()))
    }
    async fn read_range(
        &self,
        key: &str,
        _range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError> {
        Err(StoreError::NotFound(key.to_owned()))
    }
    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn list(&self, _prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
}

pub struct FillPlan {
    pub institution: String,
    pub patients: u64,
    pub studies_per_patient: u64,
    pub instances_per_study: u64,
}

/// The same shape as the benchmark's small data set: patient `P000123` is `Wang^123=王^123`,
/// study dates spread over 2025 by patient number.
pub async fn fill(
    data_dir: &Path,
    archive_cfg: huren_archive::ArchiveConfig,
    plan: FillPlan,
) -> anyhow::Result<()> {
    let index = huren_store::SqliteIndex::open_bulk(&data_dir.join("index.sqlite"))
        .await
        .context("opening the index")?;
    let blobs = DiscardBlobs {
        spool: data_dir.join("spool"),
    };
    let index = Arc::new(index);
    let archive = Archive::new(index.clone(), Arc::new(blobs), index, archive_cfg);
    let admin = huren_access::grant_admin(&huren_access::Principal::Console)?;
    let grant = Arc::new(crate::demo::sender_grant(&archive, &admin, &plan.institution).await?);

    let started = Instant::now();
    let total = plan.patients * plan.studies_per_patient * plan.instances_per_study;
    // Enough in flight that the writer's groups fill up; bounded so memory stays small.
    const IN_FLIGHT: usize = 512;
    let mut tasks = tokio::task::JoinSet::new();
    let mut done = 0u64;
    for p in 0..plan.patients {
        for s in 0..plan.studies_per_patient {
            for n in 0..plan.instances_per_study {
                while tasks.len() >= IN_FLIGHT {
                    tasks.join_next().await.context("fill task")???;
                    done += 1;
                    if done.is_multiple_of(100_000) {
                        eprintln!(
                            "{done} / {total} instances, {:.0} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                let archive = archive.clone();
                let grant = grant.clone();
                tasks.spawn(async move { one(&archive, &grant, p, s, n).await });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!(
        "{total} instances ({} patients × {} studies × {} instances) in {:.1} s",
        plan.patients,
        plan.studies_per_patient,
        plan.instances_per_study,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn one(
    archive: &Archive,
    grant: &huren_access::IngestGrant,
    p: u64,
    s: u64,
    n: u64,
) -> anyhow::Result<()> {
    let patient = SynthPatient {
        id: format!("P{p:06}"),
        issuer: None,
        other_id: None,
        name: format!("Wang^{p}=王^{p}"),
        birth_date: "19700101".into(),
        sex: "M".into(),
    };
    let bytes = synth::image(&SynthImage {
        patient: &patient,
        modality: "DX",
        study_uid: &synth::uid(&[7, p, s]),
        series_uid: &synth::uid(&[7, p, s, 1]),
        sop_uid: &synth::uid(&[7, p, s, 1, n + 1]),
        study_date: &format!("2025{:02}{:02}", 1 + p % 12, 1 + p % 28),
        study_time: "101500",
        accession: &format!("A{p}{s}"),
        institution_name: "",
        study_description: "bench",
        series_number: 1,
        instance_number: n as i32 + 1,
        rows: 8,
        columns: 8,
        slice_position: 0.0,
    });
    let mut spool = archive.spool().await?;
    spool.write(&bytes).await?;
    let req = IngestRequest {
        spooled: spool.finish().await?,
        expected: Expected::default(),
        source: None,
        settings: SenderSettings::default(),
    };
    match archive.ingest(grant, req).await {
        IngestStatus::Stored { .. } => Ok(()),
        IngestStatus::Refused { refusal, .. } => {
            anyhow::bail!("synthetic object refused: {}", refusal.message())
        }
    }
}
