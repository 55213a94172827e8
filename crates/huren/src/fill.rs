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
    async fn list(&self, _prefix: &str) -> Result<Vec<huren_archive::ports::Listed>, StoreError> {
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

/// The archive on a bulk-opened index (no fsync, objects discarded) and a sending grant of
/// `institution`: what both fills run through.
async fn bulk_archive(
    data_dir: &Path,
    archive_cfg: huren_archive::ArchiveConfig,
    institution: &str,
) -> anyhow::Result<(Archive, Arc<huren_access::IngestGrant>)> {
    let index = huren_store::SqliteIndex::open_bulk(&data_dir.join("index.sqlite"))
        .await
        .context("opening the index")?;
    let blobs = DiscardBlobs {
        spool: data_dir.join("spool"),
    };
    let index = Arc::new(index);
    let archive = Archive::new(
        index.clone(),
        Arc::new(blobs),
        index.clone(),
        index,
        archive_cfg,
    );
    let admin = huren_access::grant_admin(&huren_access::Principal::Console)?;
    let grant = Arc::new(crate::demo::sender_grant(&archive, &admin, institution).await?);
    Ok((archive, grant))
}

/// The same shape as the benchmark's small data set: patient `P000123` is `Wang^123=王^123`,
/// study dates spread over 2025 by patient number.
pub async fn fill(
    data_dir: &Path,
    archive_cfg: huren_archive::ArchiveConfig,
    plan: FillPlan,
) -> anyhow::Result<()> {
    let (archive, grant) = bulk_archive(data_dir, archive_cfg, &plan.institution).await?;

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

/// Twenty analytes with their LOINC codes, units and a plausible centre value.
const ANALYTES: [(&str, &str, &str, f64); 20] = [
    ("2345-7", "葡萄糖", "mmol/L", 5.2),
    ("2093-3", "总胆固醇", "mmol/L", 4.8),
    ("2571-8", "甘油三酯", "mmol/L", 1.4),
    ("2085-9", "高密度脂蛋白胆固醇", "mmol/L", 1.3),
    ("2823-3", "钾", "mmol/L", 4.1),
    ("2951-2", "钠", "mmol/L", 140.0),
    ("2075-0", "氯", "mmol/L", 102.0),
    ("17861-6", "钙", "mmol/L", 2.3),
    ("2160-0", "肌酐", "umol/L", 75.0),
    ("3084-1", "尿酸", "umol/L", 320.0),
    ("1742-6", "丙氨酸氨基转移酶", "U/L", 22.0),
    ("1920-8", "天门冬氨酸氨基转移酶", "U/L", 24.0),
    ("1975-2", "总胆红素", "umol/L", 12.0),
    ("2885-2", "总蛋白", "g/L", 70.0),
    ("1751-7", "白蛋白", "g/L", 44.0),
    ("6690-2", "白细胞计数", "10*9/L", 6.5),
    ("789-8", "红细胞计数", "10*12/L", 4.6),
    ("718-7", "血红蛋白", "g/L", 140.0),
    ("4548-4", "糖化血红蛋白A1c", "%", 5.6),
    ("3016-3", "促甲状腺激素", "m[IU]/L", 2.1),
];

/// `huren bench-fill --results-per-patient`: lab results through the FHIR submission use
/// case (the same transaction HL7 and FHIR use), one order of 20 analytes per
/// (patient, order), collection days spread over 2024–2025.
pub async fn fill_results(
    data_dir: &Path,
    archive_cfg: huren_archive::ArchiveConfig,
    institution: &str,
    patients: u64,
    orders_per_patient: u64,
) -> anyhow::Result<()> {
    let (archive, grant) = bulk_archive(data_dir, archive_cfg, institution).await?;
    let started = Instant::now();
    let zone = archive.zone();
    const IN_FLIGHT: usize = 256;
    let mut tasks = tokio::task::JoinSet::new();
    let total = patients * orders_per_patient;
    let mut done = 0u64;
    for p in 0..patients {
        for o in 0..orders_per_patient {
            while tasks.len() >= IN_FLIGHT {
                tasks.join_next().await.context("fill task")???;
                done += 1;
                if done.is_multiple_of(10_000) {
                    eprintln!(
                        "{} / {} results, {:.0} s",
                        done * 20,
                        total * 20,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            let archive = archive.clone();
            let grant = grant.clone();
            tasks.spawn(async move { one_order(&archive, &grant, zone, p, o).await });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    println!(
        "{} results ({patients} patients × {orders_per_patient} orders × 20) in {:.1} s",
        total * 20,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn one_order(
    archive: &Archive,
    grant: &huren_access::IngestGrant,
    zone: &'static time_tz::Tz,
    p: u64,
    o: u64,
) -> anyhow::Result<()> {
    use huren_archive::model::{NewLabResult, NewOrder, ReportCategory};
    // A collection day in 2024–2025 spread by patient and order, 08:00 local time.
    let day = time::macros::date!(2024 - 01 - 01)
        + time::Duration::days(((p * 37 + o * 101) % 730) as i64);
    let stamp = format!(
        "{:04}{:02}{:02}080000",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let instant = huren_archive::time::instant(&stamp[..8], Some("080000"), zone);
    let filler = format!("F{p}-{o}");
    let results = ANALYTES
        .iter()
        .enumerate()
        .map(|(i, (code, name, unit, centre))| {
            let v = centre * (0.8 + ((p + o + i as u64) % 40) as f64 / 100.0);
            NewLabResult {
                filler_order: Some(filler.clone()),
                order_code: Some("24323-8".into()),
                set_id: Some(i as i64 + 1),
                value_type: Some("NM".into()),
                code: (*code).into(),
                code_text: Some((*name).into()),
                code_system: Some("LN".into()),
                value: Some(format!("{v:.2}")),
                value_num: Some((v * 100.0).round() / 100.0),
                unit: Some((*unit).into()),
                unit_ucum: Some((*unit).into()),
                status: Some("F".into()),
                observed_at: Some(stamp.clone()),
                observed_instant: instant,
                ..Default::default()
            }
        })
        .collect();
    let sub = huren_archive::submit::Submission {
        patient: huren_archive::submit::SubmittedPatient {
            record: Some((None, format!("L{p:06}"))),
            name: Some(format!("Wang^{p}")),
            birth_date: Some("19700101".into()),
            sex: Some("M".into()),
            ..Default::default()
        },
        orders: vec![NewOrder {
            category: ReportCategory::Lab,
            study_uid: None,
            accession_number: None,
            placer_order: None,
            filler_order: Some(filler),
            identifier: None,
            procedure_code: Some("24323-8".into()),
            procedure_code_system: Some("LN".into()),
            procedure_text: Some("生化全项".into()),
            text: None,
            status: Some("F".into()),
            specimen: Some("SER^血清".into()),
            effective_at: Some(stamp.clone()),
            effective_instant: instant,
            reported_at: None,
            reported_instant: None,
            results,
        }],
        ..Default::default()
    };
    archive
        .submit_results(grant, sub, None)
        .await
        .map_err(|e| anyhow::anyhow!("synthetic results refused: {e}"))?;
    Ok(())
}
