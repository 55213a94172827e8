//! `huren`: the one binary. `serve` runs DIMSE + HTTP on embedded defaults; the other
//! subcommands administer a data directory directly (whether or not a server runs on it:
//! SQLite in WAL mode lets both work at once, and the server reads configuration per
//! association and per request).

mod audit;
mod config;
mod demo;
mod fill;
mod migrate;
mod tls;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use huren_access::{AdminGrant, Principal, grant_admin};
use huren_archive::catalog::CatalogFile;
use huren_archive::model::{
    AttributeChange, InstitutionAttribute, NewInstitution, NewMembership, TokenScope,
};
use huren_archive::{Archive, ArchiveConfig};
use huren_store::{LocalBlobs, SqliteIndex};
use huren_types::{InstitutionCode, InstitutionLevel, Lifecycle, Ownership};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "huren",
    version,
    about = "huren 互认 — regional imaging and result sharing with mutual recognition"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataDir {
    /// Data directory: index.sqlite, objects/, huren.toml.
    #[arg(long, env = "HUREN_DATA_DIR", default_value = "./huren-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: DICOM (DIMSE) and HTTP (DICOMweb, admin API).
    Serve(ServeArgs),
    /// Seed a data directory with demo institutions, peers and synthetic studies, then serve.
    Demo(ServeArgs),
    /// Institutions (effective-dated attributes).
    #[command(subcommand)]
    Institution(InstitutionCmd),
    /// DIMSE peers (AE title + network), C-MOVE destinations when a port is given.
    #[command(subcommand)]
    Ae(AeCmd),
    /// Bearer tokens for HTTP clients.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Let one institution's systems send for another (attributed by InstitutionName).
    SendFor {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        sender: String,
        #[arg(long)]
        performer: String,
        /// InstitutionName (0008,0080) value that identifies the performer in objects.
        #[arg(long)]
        institution_name: Option<String>,
    },
    /// Reject or delete a study (audited; deletion keeps tombstones).
    #[command(subcommand)]
    Study(StudyCmd),
    /// HL7 v2 senders (lab and report systems): source network, optional MSH-4 facility.
    #[command(subcommand)]
    Hl7Sender(Hl7SenderCmd),
    /// People who sign in (doctor, technician, QC officer, data steward, institution admin,
    /// regional operator, auditor).
    #[command(subcommand)]
    User(UserCmd),
    /// TLS certificates: `huren tls self-signed --out DIR` writes cert.pem and key.pem for
    /// demos (http.tls_cert / http.tls_key).
    #[command(subcommand)]
    Tls(TlsCmd),
    /// The audit trail: verify its chain and checkpoints, or take a checkpoint now.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The recognition catalog: versions of items, prices, code mappings, study rules (CSV;
    /// formats in docs/catalog.md).
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Recognition statistics upkeep.
    #[command(subcommand)]
    Recognition(RecognitionCmd),
    /// Image quality control (docs/quality.md).
    #[command(subcommand)]
    Quality(QualityCmd),
    /// Move a data directory's stores: `objects` copies its object files into the S3 bucket
    /// `storage.url` names, checked by size and SHA-256 and resumable (docs/deploy.md).
    #[command(subcommand)]
    Migrate(MigrateCmd),
    /// Benchmarks only: fill the index with synthetic studies through the ingest use case,
    /// without object files and without fsync (see bench/ and docs/benchmarks.md).
    BenchFill {
        #[command(flatten)]
        dir: DataDir,
        /// Sending institution (must exist).
        #[arg(long)]
        institution: String,
        #[arg(long)]
        patients: u64,
        #[arg(long, default_value_t = 2)]
        studies_per_patient: u64,
        #[arg(long, default_value_t = 1)]
        instances_per_study: u64,
        /// Fill lab results instead of images: this many orders of 20 results per patient.
        #[arg(long)]
        orders_per_patient: Option<u64>,
    },
}

#[derive(Subcommand)]
enum MigrateCmd {
    /// Copy every object the index names into the bucket; run again to resume or to copy
    /// what arrived since. Exits non-zero when an object is missing or differs.
    Objects {
        #[command(flatten)]
        dir: DataDir,
        /// Also download objects already in the bucket and check their SHA-256.
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Subcommand)]
enum QualityCmd {
    /// Score Part 10 files as the workers score stored images; one JSON line per file
    /// (`{"file", "excluded", "result"}` or `{"file", "error"}`).
    Score {
        /// Threads to score on (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RecognitionCmd {
    /// Rebuild the statistics units from the stored decisions and price them (after a restore
    /// or a bulk load of decisions; decisions made through the server keep them current).
    RebuildStatistics {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    dir: DataDir,
    /// HTTP listen address.
    #[arg(long)]
    http: Option<String>,
    /// DIMSE listen address.
    #[arg(long)]
    dimse: Option<String>,
    /// This archive's AE title.
    #[arg(long)]
    ae_title: Option<String>,
    /// HL7 v2 MLLP listen address (off unless given here or in settings).
    #[arg(long)]
    mllp: Option<String>,
    /// Settings file (default: DATA_DIR/huren.toml when present).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Hl7SenderCmd {
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        institution: String,
        /// Source address or CIDR network.
        #[arg(long)]
        host: String,
        /// MSH-4 sending facility this sender uses (any when not given).
        #[arg(long)]
        facility: Option<String>,
        /// Character set when MSH-18 is empty, e.g. "GB 18030-2000".
        #[arg(long)]
        charset: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Register an account; the password is read from standard input (one line).
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        username: String,
        /// Name shown to others (e.g. 王丽).
        #[arg(long)]
        name: String,
        /// doctor, technician, qc_officer, data_steward, institution_admin,
        /// regional_operator or auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        institution: String,
        #[arg(long)]
        department: Option<String>,
        /// Read the password from standard input. It is the only way: a password on the
        /// command line would show in `ps` and shell history. Accepted for scripts that say it.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    SelfSigned {
        /// Directory for cert.pem and key.pem (keep it outside the data directory).
        #[arg(long)]
        out: PathBuf,
        /// Host names and addresses the certificate is for.
        #[arg(long, default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
        host: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check every chained event and every checkpoint; exit status 1 when anything is wrong.
    Verify {
        #[command(flatten)]
        dir: DataDir,
        /// Checkpoint file (default: audit.checkpoint_file from the settings).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// Append a signed checkpoint of the chain's head now.
    Checkpoint {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Load a catalog CSV as a new version.
    Import {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        label: String,
        /// YYYY-MM-DD (region zone): the version applies from that day.
        #[arg(long)]
        effective_from: String,
    },
    /// Add effective-dated prices.
    Prices {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Add institutions' order/charge and lab codes mapped to items.
    Mappings {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Replace the rules mapping imaging studies to items.
    Rules {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Replace the institutions' recognition qualification records (a new set).
    Qualifications {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Replace the HR scope rules (which areas each label covers; a new set).
    Scopes {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Replace the region's recognition policy (TOML: defaults, minimum QC grades per item,
    /// the region's re-examination reasons; a new set).
    Policy {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum InstitutionCmd {
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// 三级/二级/一级/other (or tertiary/secondary/primary).
        #[arg(long)]
        level: String,
        #[arg(long, default_value = "public")]
        ownership: String,
        #[arg(long)]
        city: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// URI/OID of the institution's MRN and accession number system.
        #[arg(long)]
        identifier_system: Option<String>,
        /// The legal organization's code when this is one campus (院区) of a hospital.
        #[arg(long)]
        organization: Option<String>,
        /// Where it is: a GB/T 2260 administrative division code (e.g. 500103), which HR scopes
        /// are written in.
        #[arg(long)]
        division: Option<String>,
        /// First day these attributes hold (YYYY-MM-DD; default today).
        #[arg(long)]
        valid_from: Option<String>,
    },
    /// Show an institution as it stood on a date.
    Show {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        code: String,
        #[arg(long)]
        date: Option<String>,
    },
    List {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        date: Option<String>,
    },
    /// Change one attribute from a date on (the previous value's period closes the day before).
    Set {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        code: String,
        /// name, level, ownership, identifier_system, region, city, organization or division.
        #[arg(long)]
        attribute: String,
        #[arg(long)]
        value: String,
        #[arg(long)]
        valid_from: String,
    },
    /// Add a consortium (医联体/医共体) membership.
    Join {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        code: String,
        #[arg(long)]
        consortium: String,
        #[arg(long)]
        consortium_name: String,
        #[arg(long, default_value = "医联体")]
        kind: String,
        #[arg(long)]
        valid_from: String,
        #[arg(long)]
        valid_to: Option<String>,
    },
}

#[derive(Subcommand)]
enum AeCmd {
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        institution: String,
        #[arg(long)]
        ae_title: String,
        /// IP address or CIDR network the peer connects from.
        #[arg(long)]
        host: String,
        /// Port of the peer's storage SCP (makes it a C-MOVE destination).
        #[arg(long)]
        port: Option<u16>,
        /// Charset to assume for text with no or a wrong (0008,0005), e.g. GB18030.
        #[arg(long)]
        assumed_charset: Option<String>,
        /// Quiet seconds after which a study from this peer is stable.
        #[arg(long)]
        stable_after_secs: Option<i64>,
        /// Institution that performed what this peer sends (default: its own).
        #[arg(long)]
        performer: Option<String>,
        /// Accept this peer only over DICOM TLS (dimse.tls_listen).
        #[arg(long)]
        require_tls: bool,
    },
    List {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a new token (its id goes to standard error).
    Create {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long, conflicts_with = "institution")]
        admin: bool,
        #[arg(long)]
        institution: Option<String>,
        /// `read:region`: the system reads every institution's data (a regional service);
        /// by default it reads its own institution's (docs/access.md).
        #[arg(long, requires = "institution")]
        scope: Option<String>,
        /// The token stops working after this many days.
        #[arg(long, alias = "expires")]
        expires_days: Option<u32>,
    },
    /// Revoke a token at once.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand)]
enum StudyCmd {
    /// Hide a study from every read path; the objects are kept.
    Reject(LifecycleArgs),
    /// Remove a study's objects; index rows stay as tombstones.
    Delete(LifecycleArgs),
}

#[derive(clap::Args)]
struct LifecycleArgs {
    #[command(flatten)]
    dir: DataDir,
    #[arg(long)]
    study_uid: String,
    /// Only the study as performed by this institution (the same UID may exist elsewhere).
    #[arg(long)]
    institution: Option<String>,
    #[arg(long)]
    reason: String,
}

/// Image quality control workers (docs/quality.md): each claims a batch of images from the
/// index's queue, scores them and claims again, resting when the queue is empty; one more task
/// aggregates stable studies. Bounded by the worker count; the backlog waits in the index, not
/// in memory. While the oldest waiting image is younger than 30 s, a worker rests twice each
/// batch's time after it (a third of a core), leaving the CPU to ingest; past that it works
/// flat out, four batches at a time, so the backlog stays near half a minute under sustained
/// load.
fn spawn_quality(archive: &Archive, settings: &config::Quality) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = settings.workers.unwrap_or((cores / 2).max(1));
    if workers == 0 {
        return;
    }
    let batch = settings.batch.max(1);
    let host = std::process::id();
    // Scoring runs on its own threads at the lowest CPU priority (nice 19): it takes the CPU
    // that ingest and reads leave idle, and yields it the moment they want it. On two cores
    // the scorers otherwise took a third of the CPU from whatever was being served (measured:
    // a 500-slice study retrieved in 0.22–0.25 s while a backlog was scored, 0.09 s without).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("huren-qc")
        .on_thread_start(|| {
            // Linux keeps a nice value per thread: this lowers only the scoring threads.
            if let Err(e) = rustix::process::setpriority_process(None, 19) {
                tracing::warn!(error = %e, "quality scoring keeps normal priority");
            }
        })
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "quality scoring not started");
            return;
        }
    };
    let qc = runtime.handle().clone();
    // The runtime lives as long as the process.
    std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    // The backlog's age in seconds, as the aggregator last saw it.
    let age = Arc::new(std::sync::atomic::AtomicI64::new(0));
    for n in 0..workers {
        let archive = archive.clone();
        let name = format!("pid{host}-qc{n}");
        let age = age.clone();
        qc.spawn(async move {
            loop {
                let started = std::time::Instant::now();
                // A young backlog: small batches, then rest twice their time, so ingest keeps
                // the CPU and the index's writer. Behind: flat out, four batches at a time.
                let young = age.load(std::sync::atomic::Ordering::Relaxed) < 30;
                let n = if young { batch } else { batch * 4 };
                match archive.qc_run(&name, n).await {
                    Ok(0) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
                    Ok(k) => {
                        metrics::counter!("huren_qc_images_total").increment(k as u64);
                        if young {
                            tokio::time::sleep(started.elapsed() * 2).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "quality worker");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    let archive = archive.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            match archive.qc_aggregate(200).await {
                Ok(n) if n > 0 => {
                    metrics::counter!("huren_qc_studies_graded_total").increment(n as u64)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "quality aggregation"),
            }
            if let Ok((waiting, oldest)) = archive.qc_backlog().await {
                metrics::gauge!("huren_qc_backlog_jobs").set(waiting as f64);
                metrics::gauge!("huren_qc_backlog_seconds").set(oldest.unwrap_or(0) as f64);
                age.store(oldest.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
}

pub async fn open_archive(data_dir: &Path, settings: &config::Settings) -> anyhow::Result<Archive> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let index = SqliteIndex::open_chained(&data_dir.join("index.sqlite"), chain_key(settings)?)
        .await
        .context("opening the index")?;
    let blobs = open_blobs(data_dir, &settings.storage)?;
    let cfg = archive_config(settings)?;
    let index = Arc::new(index);
    let archive = Archive::new(index.clone(), blobs, index.clone(), index, cfg);
    Ok(match &settings.notify.sms_outbox {
        Some(path) => {
            archive.with_notifier(Arc::new(huren_store::outbox::SmsOutbox::new(path.clone())))
        }
        None => archive,
    })
}

/// The object store the settings name: files under the data directory, or an S3 bucket (with
/// the spool still under the data directory).
fn open_blobs(
    data_dir: &Path,
    storage: &config::Storage,
) -> anyhow::Result<Arc<dyn huren_archive::ports::BlobStore>> {
    if storage.url == "file" {
        return Ok(Arc::new(
            LocalBlobs::open(data_dir).context("opening object storage")?,
        ));
    }
    Ok(Arc::new(s3_blobs(data_dir, storage)?))
}

/// The S3 bucket the settings name (the spool under the data directory).
fn s3_blobs(data_dir: &Path, storage: &config::Storage) -> anyhow::Result<huren_store::S3Blobs> {
    let s3 = huren_store::S3Settings {
        url: storage.url.clone(),
        endpoint: storage.endpoint.clone(),
        region: storage.region.clone(),
        access_key_id: storage.access_key_id.clone(),
        secret_access_key: storage.secret_access_key.clone(),
        allow_http: storage.allow_http,
        conditional_put: storage.conditional_put,
        request_timeout: std::time::Duration::from_secs(storage.request_timeout_secs),
        retry_for: std::time::Duration::from_secs(storage.retry_secs),
        orphan_grace: std::time::Duration::from_secs(storage.orphan_grace_secs),
    };
    huren_store::S3Blobs::open(&s3, data_dir).context("opening the S3 object store")
}

fn chain_key(
    settings: &config::Settings,
) -> anyhow::Result<Option<Arc<huren_seal::chain::ChainKey>>> {
    settings
        .audit
        .chain_key
        .as_deref()
        .map(|k| huren_seal::chain::ChainKey::from_hex(k).map(Arc::new))
        .transpose()
        .context("audit.chain_key")
}

fn archive_config(settings: &config::Settings) -> anyhow::Result<ArchiveConfig> {
    Ok(ArchiveConfig {
        zone: config::zone(&settings.archive.zone)?,
        stable_after_secs: settings.archive.stable_after_secs,
        max_object_bytes: settings.archive.max_object_mib * 1024 * 1024,
        spool_memory_bytes: settings.archive.spool_memory_kib * 1024,
        identity: identity_policy(&settings.mpi)?,
        read_audit_window: std::time::Duration::from_secs(settings.audit.read_window_mins * 60),
        accounts: huren_archive::accounts::AccountPolicy {
            break_glass_secs: settings.auth.break_glass_mins * 60,
            session_idle_secs: settings.auth.session_idle_mins * 60,
            session_absolute_secs: settings.auth.session_absolute_hours * 3600,
            lockout_attempts: settings.auth.lockout_attempts,
            lockout_secs: settings.auth.lockout_mins * 60,
            authorization_reach_department: settings.auth.authorization_reach
                == config::AuthorizationReach::Department,
            authorization_requests_per_patient_day: settings
                .auth
                .authorization_requests_per_patient_day,
            authorization_requests_per_doctor_day: settings
                .auth
                .authorization_requests_per_doctor_day,
        },
    })
}

/// Identity numbers are handled only when both keys are configured.
fn identity_policy(
    mpi: &config::Mpi,
) -> anyhow::Result<Option<Arc<huren_archive::IdentityPolicy>>> {
    let (Some(sm4), Some(index)) = (&mpi.sm4_key, &mpi.index_key) else {
        if mpi.sm4_key.is_some() || mpi.index_key.is_some() {
            anyhow::bail!("mpi.sm4_key and mpi.index_key must be configured together");
        }
        tracing::warn!(
            "mpi.sm4_key / mpi.index_key not configured: identity numbers in objects are neither stored nor used for linking"
        );
        return Ok(None);
    };
    let sealer = huren_seal::Sealer::new(&mpi.key_id, sm4, index)?;
    let resident_id_tag = match &mpi.dicom_resident_id_tag {
        Some(t) => Some(parse_tag(t).with_context(|| format!("mpi.dicom_resident_id_tag {t:?}"))?),
        None => None,
    };
    Ok(Some(Arc::new(huren_archive::IdentityPolicy {
        sealer,
        resident_id_issuers: mpi.dicom_resident_id_issuers.clone(),
        resident_id_tag,
    })))
}

/// `"GGGG,EEEE"` (or `"GGGGEEEE"`) → the DICOM JSON key `GGGGEEEE` (PS3.18 §F.2.1).
fn parse_tag(t: &str) -> anyhow::Result<String> {
    let hex: String = t
        .chars()
        .filter(|c| !matches!(c, ',' | '(' | ')' | ' '))
        .collect();
    if hex.len() != 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("a tag is written GGGG,EEEE");
    }
    Ok(hex.to_ascii_uppercase())
}

async fn console(dir: &DataDir) -> anyhow::Result<(Archive, AdminGrant)> {
    let settings = config::load(&dir.data_dir, None, config::FlagOverrides::default())?;
    let archive = open_archive(&dir.data_dir, &settings).await?;
    let grant = grant_admin(&Principal::Console)?;
    Ok((archive, grant))
}

/// The day given, or today in the region's zone (`Archive::today`), not UTC's: before 08:00 in
/// Chongqing it is still yesterday in UTC.
fn date_or_today(s: Option<&str>, archive: &Archive) -> anyhow::Result<time::Date> {
    match s {
        Some(s) => Ok(huren_types::day::parse_day(s)?),
        None => Ok(archive.today()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One clear line on failure, its causes joined (`{:#}`), never a backtrace: returning the
    // error from `main` would print its Debug form, with a backtrace under RUST_BACKTRACE.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args, false).await,
        Command::Demo(args) => serve(args, true).await,
        Command::Institution(cmd) => institution(cmd).await,
        Command::Ae(AeCmd::Add {
            dir,
            institution,
            ae_title,
            host,
            port,
            assumed_charset,
            stable_after_secs,
            performer,
            require_tls,
        }) => {
            let (archive, grant) = console(&dir).await?;
            let fields = huren_archive::peers_file::AeFields {
                institution,
                ae_title,
                host,
                port,
                assumed_charset,
                stable_after_secs,
                default_performer: performer,
                require_tls,
            };
            let ae = fields.check().map_err(anyhow::Error::msg)?;
            let id = archive.add_ae(&grant, ae).await?;
            println!("{id}");
            Ok(())
        }
        Command::Ae(AeCmd::List { dir }) => {
            let (archive, grant) = console(&dir).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&archive.list_aes(&grant).await?)?
            );
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { dir, id }) => {
            let (archive, grant) = console(&dir).await?;
            archive.revoke_token(&grant, id).await?;
            println!("token {id} revoked");
            Ok(())
        }
        Command::Token(TokenCmd::Create {
            dir,
            admin,
            institution,
            scope,
            expires_days,
        }) => {
            let (archive, grant) = console(&dir).await?;
            let reads = huren_archive::model::system_reads(scope.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?;
            let scope = match (admin, institution) {
                (true, None) => TokenScope::Admin,
                (false, Some(code)) => {
                    TokenScope::Institution(InstitutionCode::parse(&code)?, reads)
                }
                _ => bail!("give --admin or --institution CODE"),
            };
            let t = archive.create_token(&grant, scope, expires_days).await?;
            eprintln!("token id {}", t.id);
            println!("{}", t.secret);
            Ok(())
        }
        Command::SendFor {
            dir,
            sender,
            performer,
            institution_name,
        } => {
            let (archive, grant) = console(&dir).await?;
            archive
                .add_send_for(&grant, &sender, &performer, institution_name.as_deref())
                .await?;
            Ok(())
        }
        Command::Study(StudyCmd::Reject(args)) => study_lifecycle(args, Lifecycle::Rejected).await,
        Command::Study(StudyCmd::Delete(args)) => study_lifecycle(args, Lifecycle::Deleted).await,
        Command::Hl7Sender(Hl7SenderCmd::Add {
            dir,
            institution,
            host,
            facility,
            charset,
        }) => {
            let (archive, grant) = console(&dir).await?;
            let network: ipnet::IpNet = match host.parse() {
                Ok(n) => n,
                Err(_) => ipnet::IpNet::from(host.parse::<std::net::IpAddr>()?),
            };
            let id = archive
                .add_hl7_sender(
                    &grant,
                    &institution,
                    network,
                    facility.as_deref(),
                    charset.as_deref(),
                )
                .await?;
            println!("{id}");
            Ok(())
        }
        Command::Catalog(cmd) => catalog_cmd(cmd).await,
        Command::Quality(QualityCmd::Score { threads, files }) => {
            // Files are independent: scored on every core, printed in the order given.
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .max(1);
            let chunk = files.len().div_ceil(threads).max(1);
            let lines: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = files
                    .chunks(chunk)
                    .map(|part| {
                        s.spawn(move || {
                            part.iter()
                                .map(|f| {
                                    let file = f.display().to_string();
                                    match huren_archive::quality::score_file(f) {
                                        Ok(r) => serde_json::json!({
                                            "file": file, "excluded": r.excluded, "result": r.result,
                                        }),
                                        Err(e) => serde_json::json!({ "file": file, "error": e }),
                                    }
                                    .to_string()
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Command::Recognition(RecognitionCmd::RebuildStatistics { dir }) => {
            let (archive, grant) = console(&dir).await?;
            let units = archive.rebuild_recognition_statistics(&grant).await?;
            println!("{units} units");
            Ok(())
        }
        Command::Audit(cmd) => audit_cmd(cmd).await,
        Command::Tls(TlsCmd::SelfSigned { out, host }) => {
            let (cert, key) = tls::self_signed(host, &out)?;
            println!("{}\n{}", cert.display(), key.display());
            Ok(())
        }
        Command::User(UserCmd::Add {
            dir,
            username,
            name,
            role,
            institution,
            department,
            password_stdin: _,
        }) => {
            let role = huren_access::Role::parse(&role).with_context(|| {
                format!(
                    "--role is one of {}",
                    huren_access::Role::ALL.map(|r| r.as_str()).join(", ")
                )
            })?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let (archive, grant) = console(&dir).await?;
            let id = archive
                .add_user(
                    &grant,
                    huren_archive::accounts::UserRequest {
                        username: &username,
                        display_name: &name,
                        role,
                        institution_code: &institution,
                        department: department.as_deref(),
                        password: password.trim_end_matches(['\r', '\n']),
                    },
                )
                .await?;
            println!("{id}");
            Ok(())
        }
        Command::Migrate(MigrateCmd::Objects { dir, verify }) => {
            let settings = config::load(&dir.data_dir, None, config::FlagOverrides::default())?;
            if !settings.storage.url.starts_with("s3://") {
                bail!(
                    "storage.url is {:?}: name the bucket to copy into (s3://bucket[/prefix], docs/deploy.md)",
                    settings.storage.url
                );
            }
            let s3 = s3_blobs(&dir.data_dir, &settings.storage)?;
            let r = migrate::objects(&dir.data_dir, &s3, verify).await?;
            println!(
                "{} objects: {} copied ({} bytes), {} already in {}, {} failed",
                r.objects,
                r.uploaded,
                r.bytes,
                r.already,
                s3.describe(),
                r.failures.len()
            );
            for f in &r.failures {
                println!("failed: {f}");
            }
            if !r.failures.is_empty() {
                bail!("{} objects were not copied", r.failures.len());
            }
            Ok(())
        }
        Command::BenchFill {
            dir,
            institution,
            patients,
            studies_per_patient,
            instances_per_study,
            orders_per_patient,
        } => {
            let settings = config::load(&dir.data_dir, None, config::FlagOverrides::default())?;
            if let Some(orders) = orders_per_patient {
                return fill::fill_results(
                    &dir.data_dir,
                    archive_config(&settings)?,
                    &institution,
                    patients,
                    orders,
                )
                .await;
            }
            fill::fill(
                &dir.data_dir,
                archive_config(&settings)?,
                fill::FillPlan {
                    institution,
                    patients,
                    studies_per_patient,
                    instances_per_study,
                },
            )
            .await
        }
    }
}

async fn study_lifecycle(args: LifecycleArgs, to: Lifecycle) -> anyhow::Result<()> {
    let (archive, grant) = console(&args.dir).await?;
    let c = archive
        .set_study_lifecycle(
            &grant,
            &args.study_uid,
            args.institution.as_deref(),
            to,
            &args.reason,
        )
        .await?;
    println!(
        "{} studies, {} instances now {}",
        c.studies,
        c.instances,
        to.as_str()
    );
    Ok(())
}

async fn institution(cmd: InstitutionCmd) -> anyhow::Result<()> {
    match cmd {
        InstitutionCmd::Add {
            dir,
            code,
            name,
            level,
            ownership,
            city,
            region,
            identifier_system,
            organization,
            division,
            valid_from,
        } => {
            let (archive, grant) = console(&dir).await?;
            let inst = NewInstitution {
                code: InstitutionCode::parse(&code)?,
                name,
                level: InstitutionLevel::parse(&level)?,
                ownership: Ownership::parse(&ownership)?,
                identifier_system,
                region,
                city,
                organization,
                division,
                valid_from: date_or_today(valid_from.as_deref(), &archive)?,
            };
            println!("{}", archive.add_institution(&grant, inst).await?);
        }
        InstitutionCmd::Show { dir, code, date } => {
            let (archive, grant) = console(&dir).await?;
            match archive
                .institution_as_of(&grant, &code, date_or_today(date.as_deref(), &archive)?)
                .await?
            {
                Some(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                None => bail!("no institution {code}"),
            }
        }
        InstitutionCmd::List { dir, date } => {
            let (archive, grant) = console(&dir).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &archive
                        .list_institutions(&grant, date_or_today(date.as_deref(), &archive)?)
                        .await?
                )?
            );
        }
        InstitutionCmd::Set {
            dir,
            code,
            attribute,
            value,
            valid_from,
        } => {
            let (archive, grant) = console(&dir).await?;
            let attribute = InstitutionAttribute::parse(&attribute)
                .with_context(|| format!("unknown attribute {attribute}"))?;
            archive
                .change_institution(
                    &grant,
                    &code,
                    AttributeChange {
                        attribute,
                        value,
                        valid_from: date_or_today(Some(&valid_from), &archive)?,
                    },
                )
                .await?;
        }
        InstitutionCmd::Join {
            dir,
            code,
            consortium,
            consortium_name,
            kind,
            valid_from,
            valid_to,
        } => {
            let (archive, grant) = console(&dir).await?;
            let m = NewMembership {
                institution_code: InstitutionCode::parse(&code)?,
                consortium_code: consortium,
                consortium_name,
                consortium_kind: kind,
                valid_from: date_or_today(Some(&valid_from), &archive)?,
                valid_to: valid_to
                    .as_deref()
                    .map(|d| date_or_today(Some(d), &archive))
                    .transpose()?,
            };
            archive.add_membership(&grant, m).await?;
        }
    }
    Ok(())
}

async fn serve(args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    let flags = config::FlagOverrides {
        http: args.http.map(|l| config::HttpFlags { listen: Some(l) }),
        dimse: (args.dimse.is_some() || args.ae_title.is_some()).then_some(config::DimseFlags {
            listen: args.dimse,
            ae_title: args.ae_title,
        }),
        mllp: args.mllp.map(|l| config::HttpFlags { listen: Some(l) }),
    };
    let settings = config::load(&args.dir.data_dir, args.config.as_deref(), flags)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log.filter));
    if settings.log.json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let archive = open_archive(&args.dir.data_dir, &settings).await?;
    let removed = archive.sweep().await.context("start-up sweep")?;
    if removed > 0 {
        tracing::warn!(removed, "start-up sweep removed half-written objects");
    }
    let bootstrap = std::env::var("HUREN_BOOTSTRAP_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let mut demo_tokens = None;
    if demo {
        let grant = grant_admin(&Principal::Console)?;
        demo::seed(&archive, &grant).await?;
        demo_tokens = Some(demo::tokens(&archive, &grant, &args.dir.data_dir).await?);
    }
    let http_listener = tokio::net::TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("binding HTTP {}", settings.http.listen))?;
    let dimse_listener = tokio::net::TcpListener::bind(&settings.dimse.listen)
        .await
        .with_context(|| format!("binding DIMSE {}", settings.dimse.listen))?;
    let ae_title = huren_types::AeTitle::parse(&settings.dimse.ae_title)?;
    tracing::info!(http = %settings.http.listen, dimse = %settings.dimse.listen, ae_title = %ae_title, data_dir = %args.dir.data_dir.display(), "huren serving");
    if demo {
        println!(
            "huren demo: DICOMweb http://{0}/dicom-web  admin API http://{0}/api/admin  DIMSE {1}@{2}",
            settings.http.listen, ae_title, settings.dimse.listen
        );
        if bootstrap.is_none() {
            println!("set HUREN_BOOTSTRAP_ADMIN_TOKEN to use the HTTP API as an administrator");
        }
        if let Some((viewer, his)) = demo_tokens {
            // Operators' tokens read no patient data; a viewer needs a reader's token.
            println!("demo viewer token (reads every institution's data, read:region): {viewer}");
            println!(
                "{}",
                demo::first_visit_walkthrough(&settings.http.listen, &his)
            );
        }
    }
    let scp_cfg = huren_dimse::ScpConfig {
        ae_title,
        max_pdu_length: settings.dimse.max_pdu_length,
        idle_timeout: std::time::Duration::from_secs(settings.dimse.idle_timeout_secs),
        max_associations: settings.dimse.max_associations,
        tls: None,
    };
    let dimse_tls_task = match (
        &settings.dimse.tls_listen,
        &settings.dimse.tls_cert,
        &settings.dimse.tls_key,
    ) {
        (Some(addr), Some(cert), Some(key)) => {
            let config = tls::dicom_config(cert, key, settings.dimse.tls_client_ca.as_deref())?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding DICOM TLS {addr}"))?;
            tracing::info!(dicom_tls = %addr, mutual = settings.dimse.tls_client_ca.is_some(), "DICOM TLS listening");
            Some(tokio::spawn(huren_dimse::serve_tls(
                listener,
                archive.clone(),
                huren_dimse::ScpConfig {
                    tls: Some(config),
                    ..scp_cfg.clone()
                },
            )))
        }
        (None, _, _) => None,
        _ => bail!("dimse.tls_listen needs dimse.tls_cert and dimse.tls_key"),
    };
    let dimse_task = tokio::spawn(huren_dimse::serve(dimse_listener, archive.clone(), scp_cfg));
    let mllp_task = match &settings.mllp.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding MLLP {addr}"))?;
            tracing::info!(mllp = %addr, "HL7 v2 MLLP listening");
            let cfg = huren_mllp::MllpConfig {
                max_message_bytes: settings.mllp.max_message_kib * 1024,
                idle_timeout: std::time::Duration::from_secs(settings.mllp.idle_timeout_secs),
            };
            Some(tokio::spawn(huren_mllp::serve(
                listener,
                archive.clone(),
                cfg,
            )))
        }
        None => None,
    };
    spawn_quality(&archive, &settings.quality);
    let stable_archive = archive.clone();
    let stability = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            match stable_archive.mark_stable().await {
                Ok(ids) if !ids.is_empty() => {
                    metrics::counter!("huren_studies_stable_total").increment(ids.len() as u64);
                    tracing::debug!(studies = ids.len(), "studies became stable");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "stability check failed"),
            }
        }
    });
    let checkpoints = match (chain_key(&settings)?, &settings.audit.checkpoint_file) {
        (Some(key), Some(file)) => {
            if file.starts_with(&args.dir.data_dir) {
                tracing::warn!(
                    "audit.checkpoint_file is inside the data directory: whoever can rewrite the index can rewrite it too"
                );
            }
            let pool = audit::pool(&args.dir.data_dir).await?;
            let (file, every) = (file.clone(), settings.audit.checkpoint_secs.max(1));
            Some((
                tokio::spawn({
                    let (pool, key, file) = (pool.clone(), key.clone(), file.clone());
                    async move {
                        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
                        loop {
                            tick.tick().await;
                            if let Err(e) = audit::checkpoint(&pool, &key, &file).await {
                                tracing::error!(error = %e, "audit checkpoint failed");
                            }
                        }
                    }
                }),
                pool,
                key,
                file,
            ))
        }
        (Some(_), None) => {
            tracing::warn!(
                "audit.checkpoint_file is not set: removal of the newest audit events cannot be detected"
            );
            None
        }
        _ => {
            tracing::warn!("audit.chain_key is not set: audit events are not chained");
            None
        }
    };
    let tls_config = match (&settings.http.tls_cert, &settings.http.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        (None, None) => None,
        _ => bail!("http.tls_cert and http.tls_key go together"),
    };
    let state = huren_http::AppState {
        archive,
        bootstrap_admin_hash: bootstrap.as_deref().map(huren_access::hash_token),
        max_stow_bytes: settings.http.max_stow_mib * 1024 * 1024,
        max_query_limit: settings.http.max_query_limit,
        listen_port: http_listener.local_addr().map(|a| a.port()).unwrap_or(0),
        max_retrieve_instances: 100_000,
        cors_allow_origins: settings.http.cors_allow_origins.clone(),
        cross_origin_resource_policy: settings.http.cross_origin_resource_policy.clone(),
        public_url: settings
            .http
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned()),
        render_metrics: Arc::new(move || prometheus.render()),
        // Behind HTTPS (huren's own or a proxy's), cookies are Secure and HSTS is sent.
        secure_cookies: settings.auth.secure_cookies || tls_config.is_some(),
        rate_limiter: Arc::new(huren_http::limits::RateLimiter::new(
            settings.http.rate_limit_per_sec,
            settings.http.rate_limit_burst,
        )),
        failure_budget: Arc::new(huren_http::limits::FailureBudget::new(
            settings.http.failed_requests_per_min,
        )),
        oidc: oidc_client(&settings.oidc)?,
        opened: Arc::default(),
        audit_integrity: match chain_key(&settings)? {
            Some(key) => Some(Arc::new(audit::Integrity {
                pool: audit::pool(&args.dir.data_dir).await?,
                key,
                file: settings.audit.checkpoint_file.clone(),
            }) as Arc<dyn huren_http::AuditIntegrity>),
            None => None,
        },
    };
    let pages = huren_web::routes(huren_web::WebConfig {
        frame_ancestors: settings.http.frame_ancestors.clone(),
    });
    let app = huren_http::router_with(state, pages);
    match &tls_config {
        Some(cfg) => tls::serve(http_listener, app, cfg.clone(), shutdown())
            .await
            .context("HTTPS server")?,
        None => axum::serve(
            // Responses leave in several writes (head, then body chunks): with Nagle on, a
            // small one waits for the peer's delayed ACK (~40 ms on Linux) before its tail.
            axum::serve::ListenerExt::tap_io(http_listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            }),
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown())
        .await
        .context("HTTP server")?,
    }
    dimse_task.abort();
    if let Some(t) = dimse_tls_task {
        t.abort();
    }
    if let Some(t) = mllp_task {
        t.abort();
    }
    stability.abort();
    if let Some((task, pool, key, file)) = checkpoints {
        task.abort();
        // The head as the process leaves it.
        if let Err(e) = audit::checkpoint(&pool, &key, &file).await {
            tracing::error!(error = %e, "final audit checkpoint failed");
        }
    }
    tracing::info!("huren stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn read_text(f: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))
}

/// A catalog load error with every bad line, one per line.
fn catalog_error(e: huren_archive::catalog::CatalogError) -> anyhow::Error {
    match e {
        huren_archive::catalog::CatalogError::Lines(lines) => anyhow::anyhow!(
            "the file was not loaded:\n{}",
            lines
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        e => anyhow::anyhow!(e),
    }
}

async fn load(dir: DataDir, file: PathBuf, what: CatalogFile, noun: &str) -> anyhow::Result<()> {
    let (archive, grant) = console(&dir).await?;
    let n = archive
        .load_catalog_file(&grant, what, &read_text(&file)?)
        .await
        .map_err(catalog_error)?;
    println!("{n} {noun}");
    Ok(())
}

async fn catalog_cmd(cmd: CatalogCmd) -> anyhow::Result<()> {
    match cmd {
        CatalogCmd::Import {
            dir,
            file,
            label,
            effective_from,
        } => {
            let (archive, grant) = console(&dir).await?;
            let day = huren_types::day::parse_iso(&effective_from)
                .context("--effective-from is YYYY-MM-DD")?;
            let v = archive
                .import_catalog(&grant, &label, day, &read_text(&file)?)
                .await
                .map_err(catalog_error)?;
            println!("{} {} items", v.label, v.items);
        }
        CatalogCmd::Prices { dir, file } => load(dir, file, CatalogFile::Prices, "prices").await?,
        CatalogCmd::Mappings { dir, file } => {
            load(dir, file, CatalogFile::Mappings, "mappings").await?
        }
        CatalogCmd::Rules { dir, file } => {
            load(dir, file, CatalogFile::StudyRules, "rules").await?
        }
        CatalogCmd::Qualifications { dir, file } => {
            let (archive, grant) = console(&dir).await?;
            let set = archive
                .import_qualifications(&grant, &read_text(&file)?)
                .await
                .map_err(catalog_error)?;
            println!("qualification set {}: {} records", set.id, set.rows);
        }
        CatalogCmd::Scopes { dir, file } => {
            let (archive, grant) = console(&dir).await?;
            let set = archive
                .import_scopes(&grant, &read_text(&file)?)
                .await
                .map_err(catalog_error)?;
            println!("scope set {}: {} rules", set.id, set.rows);
        }
        CatalogCmd::Policy { dir, file } => {
            let (archive, grant) = console(&dir).await?;
            let set = archive
                .import_policy(&grant, &read_text(&file)?)
                .await
                .map_err(catalog_error)?;
            println!("policy set {}: {} entries", set.id, set.rows);
        }
    }
    Ok(())
}

async fn audit_cmd(cmd: AuditCmd) -> anyhow::Result<()> {
    let dir = match &cmd {
        AuditCmd::Verify { dir, .. } | AuditCmd::Checkpoint { dir } => dir,
    };
    let settings = config::load(&dir.data_dir, None, config::FlagOverrides::default())?;
    let Some(key) = chain_key(&settings)? else {
        bail!("audit.chain_key is not configured: the audit trail is not chained");
    };
    let pool = audit::pool(&dir.data_dir).await?;
    match cmd {
        AuditCmd::Verify { checkpoints, .. } => {
            let file = checkpoints.or(settings.audit.checkpoint_file.clone());
            match audit::verify(&pool, &key, file.as_deref()).await? {
                Ok(summary) => println!("{summary}"),
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    bail!(
                        "the audit trail does not verify ({} problem(s))",
                        problems.len()
                    );
                }
            }
        }
        AuditCmd::Checkpoint { .. } => {
            let Some(file) = &settings.audit.checkpoint_file else {
                bail!("audit.checkpoint_file is not configured");
            };
            match audit::checkpoint(&pool, &key, file).await? {
                Some(seq) => println!("checkpoint at seq {seq}"),
                None => println!("no new events since the last checkpoint"),
            }
        }
    }
    Ok(())
}

/// The OpenID Connect client, when `[oidc] issuer` is set.
#[cfg(feature = "oidc")]
fn oidc_client(c: &config::Oidc) -> anyhow::Result<Option<Arc<huren_http::OidcClient>>> {
    let Some(issuer) = &c.issuer else {
        return Ok(None);
    };
    if c.client_id.is_empty() || c.redirect_url.is_empty() {
        bail!("[oidc] needs client_id and redirect_url with issuer");
    }
    let client = huren_oidc::Client::new(huren_oidc::Settings {
        issuer: issuer.clone(),
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone(),
        redirect_url: c.redirect_url.clone(),
        scopes: c.scopes.clone(),
        username_claim: c.username_claim.clone(),
    })?;
    Ok(Some(Arc::new(client)))
}

/// Built without the `oidc` feature: configuring `[oidc]` is an error, not silently ignored.
#[cfg(not(feature = "oidc"))]
fn oidc_client(c: &config::Oidc) -> anyhow::Result<Option<Arc<huren_http::OidcClient>>> {
    if c.issuer.is_some() {
        bail!("[oidc] is configured but this huren was built without the oidc feature");
    }
    Ok(None)
}
