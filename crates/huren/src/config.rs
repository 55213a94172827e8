//! Settings, layered: built-in defaults → `huren.toml` (in the data directory, or `--config`)
//! → `HUREN__SECTION__KEY` environment variables → command-line flags. Validated once into
//! runtime values.

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Settings {
    pub http: Http,
    pub dimse: Dimse,
    pub archive: ArchiveSettings,
    pub storage: Storage,
    pub mpi: Mpi,
    pub mllp: Mllp,
    pub audit: Audit,
    pub auth: Auth,
    pub notify: Notify,
    pub oidc: Oidc,
    pub quality: Quality,
    pub log: Log,
}

/// Image quality control (docs/quality.md): scoring workers in this process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quality {
    /// Scoring workers; 0 turns scoring off in this process (another node may do it). Default:
    /// half the cores, at least one.
    pub workers: Option<usize>,
    /// Images a worker claims at a time while the backlog is young (under 30 s); behind that,
    /// four times as many. A batch is two write transactions (claim, results), each waiting its
    /// turn with ingest's for the index's one writer: small batches leave ingest the writer,
    /// large ones let a worker that has fallen behind catch up (8 throughout scored 171
    /// slices/s against 200/s of ingest on two cores; 32 kept up, docs/benchmarks.md).
    pub batch: i64,
}

impl Default for Quality {
    fn default() -> Self {
        Quality {
            workers: None,
            batch: 8,
        }
    }
}

/// OpenID Connect sign-in (docs/access.md). Off unless `issuer` is set; needs the `oidc` build
/// feature (on by default).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Oidc {
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// huren's callback as registered at the provider: `https://HOST/auth/oidc/callback`.
    pub redirect_url: String,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim holding the huren username.
    pub username_claim: String,
}

impl Default for Oidc {
    fn default() -> Self {
        Oidc {
            issuer: None,
            client_id: String::new(),
            client_secret: String::new(),
            redirect_url: String::new(),
            scopes: vec!["profile".into()],
            username_claim: "preferred_username".into(),
        }
    }
}

/// Messages to patients (authorization codes).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// A file where SMS messages are appended instead of being sent (tests and demos). No
    /// real gateway adapter exists yet; without this, authorization requests are refused.
    pub sms_outbox: Option<PathBuf>,
}

/// Signing in (docs/access.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// A session ends after this long without a request…
    pub session_idle_mins: i64,
    /// …and this long after sign-in in any case.
    pub session_absolute_hours: i64,
    /// Failed sign-ins in a row that lock an account…
    pub lockout_attempts: i64,
    /// …for this long.
    pub lockout_mins: i64,
    /// Mark the session cookie `Secure` (on when huren is reached over HTTPS).
    pub secure_cookies: bool,
    /// How long a break-glass access lasts.
    pub break_glass_mins: i64,
    /// Whom a patient's authorization opens the patient to: `doctor` (the doctor who asked) or
    /// `department` (also the doctors of that doctor's department). It is for clinical care,
    /// so never the institution's other staff.
    pub authorization_reach: AuthorizationReach,
    /// Authorization requests per patient per day (each sends the patient an SMS)…
    pub authorization_requests_per_patient_day: i64,
    /// …and per doctor per day.
    pub authorization_requests_per_doctor_day: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationReach {
    Doctor,
    Department,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            session_idle_mins: 30,
            session_absolute_hours: 12,
            lockout_attempts: 5,
            lockout_mins: 15,
            secure_cookies: false,
            break_glass_mins: 60,
            authorization_reach: AuthorizationReach::Doctor,
            authorization_requests_per_patient_day: 3,
            authorization_requests_per_doctor_day: 30,
        }
    }
}

/// The audit trail's keyed chain (docs/audit.md). Without `chain_key` events are stored but
/// not chained. Keep the key and the checkpoint file outside the data directory: whoever can
/// write the database must not be able to read either.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// HMAC-SM3 key, at least 32 hex digits.
    pub chain_key: Option<String>,
    /// Where signed head checkpoints are appended.
    pub checkpoint_file: Option<PathBuf>,
    pub checkpoint_secs: u64,
    /// Reads of one study or person by one reader within this many minutes are one event.
    pub read_window_mins: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            chain_key: None,
            checkpoint_file: None,
            checkpoint_secs: 60,
            read_window_mins: 30,
        }
    }
}

/// HL7 v2 over MLLP (lab and report systems). Off unless `listen` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mllp {
    pub listen: Option<String>,
    pub max_message_kib: usize,
    pub idle_timeout_secs: u64,
}

impl Default for Mllp {
    fn default() -> Self {
        Mllp {
            listen: None,
            max_message_kib: 4096,
            idle_timeout_secs: 300,
        }
    }
}

/// Master patient index. Identity numbers are stored only sealed (SM4) with an HMAC-SM3 blind
/// index; without both keys they are not stored or used for linking at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mpi {
    /// SM4 key, 32 hex digits. Keep it out of the data directory in production.
    pub sm4_key: Option<String>,
    /// Names the SM4 key in stored values (for rotation).
    pub key_id: String,
    /// Blind-index key, at least 32 hex digits; must not change while an index exists.
    pub index_key: Option<String>,
    /// IssuerOfPatientID values that mark a resident identity number in an
    /// OtherPatientIDsSequence item (PS3.3 C.7.1.1), compared case-insensitively.
    pub dicom_resident_id_issuers: Vec<String>,
    /// A tag whose value is a resident identity number, for senders that put it in an
    /// attribute of their own (often private), e.g. `"0011,1010"`.
    pub dicom_resident_id_tag: Option<String>,
}

impl Default for Mpi {
    fn default() -> Self {
        Mpi {
            sm4_key: None,
            key_id: "k1".into(),
            index_key: None,
            dicom_resident_id_issuers: vec![
                huren_mpi::id::RESIDENT.into(),
                "身份证".into(),
                "居民身份证".into(),
                "RESIDENT_ID".into(),
            ],
            dicom_resident_id_tag: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    pub listen: String,
    /// Largest STOW-RS request, in MiB.
    pub max_stow_mib: u64,
    /// Public base URL for links in responses (RetrieveURL), e.g. behind a reverse proxy:
    /// `https://pacs.example.org`. Default: built from the request's Host header.
    pub public_url: Option<String>,
    /// Largest QIDO-RS page; larger `limit`s are clamped with a Warning header.
    pub max_query_limit: u32,
    /// Origins allowed by CORS (`["*"]` for any); empty: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// Cross-Origin-Resource-Policy on every response.
    pub cross_origin_resource_policy: String,
    /// Origins (the HIS) allowed to frame the order-time reminder page, as CSP
    /// `frame-ancestors` sources, e.g. `["https://his.example.org"]`. Empty: this origin only.
    pub frame_ancestors: Vec<String>,
    /// PEM certificate chain and private key: serve HTTPS (rustls) instead of HTTP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Requests per second per principal (bearer token or session; else client address); 0: off.
    pub rate_limit_per_sec: u32,
    /// Requests a principal may make at once above that rate.
    pub rate_limit_burst: u32,
    /// Failed requests (bad or missing credentials, wrong passwords) a minute per source
    /// address; above it the address gets 429 except for credentials that work. 0: off.
    pub failed_requests_per_min: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dimse {
    pub listen: String,
    pub ae_title: String,
    pub max_pdu_length: u32,
    pub idle_timeout_secs: u64,
    pub max_associations: usize,
    /// DICOM TLS listener (conventionally port 2762), with `tls_cert` and `tls_key`.
    pub tls_listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) whose client certificates peers must present: mutual TLS.
    pub tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSettings {
    /// IANA zone in which DICOM dates/times are interpreted.
    pub zone: String,
    pub stable_after_secs: i64,
    /// Largest single object, in MiB.
    pub max_object_mib: u64,
    /// Objects up to this size (KiB) are received in memory; larger ones spill to a spool
    /// file. Bounds memory per association; 8 MiB keeps CT/MR/CR slices off the spool disk.
    pub spool_memory_kib: u64,
}

/// Where the DICOM objects are kept (docs/deploy.md): files under the data directory (the
/// default), or an S3-compatible bucket that any number of huren nodes share.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// `file` (under the data directory) or `s3://bucket[/prefix]`.
    pub url: String,
    /// The S3 service's address when it is not AWS (`http://10.0.0.5:3900`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// S3 credentials; when unset, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are read.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain HTTP to the endpoint (only on a private network).
    pub allow_http: bool,
    /// Write objects with `If-None-Match: *` so that none is ever replaced; turn off only for
    /// a server that refuses the header.
    pub conditional_put: bool,
    /// One request's time limit, and how long a failing request is retried, in seconds.
    pub request_timeout_secs: u64,
    pub retry_secs: u64,
    /// The start-up sweep removes objects that no index row names (a crash between the upload
    /// and the commit), but only those older than this: in a bucket that several nodes share,
    /// a younger one may be another node's ingest still committing. 0 only when one node uses
    /// the bucket.
    pub orphan_grace_secs: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            url: "file".into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            conditional_put: true,
            request_timeout_secs: 60,
            retry_secs: 30,
            orphan_grace_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// tracing-subscriber filter, e.g. `info,huren_dimse=debug`.
    pub filter: String,
    pub json: bool,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "127.0.0.1:8080".into(),
            max_stow_mib: 4096,
            public_url: None,
            max_query_limit: 1000,
            cors_allow_origins: Vec::new(),
            cross_origin_resource_policy: "same-site".into(),
            frame_ancestors: Vec::new(),
            tls_cert: None,
            tls_key: None,
            rate_limit_per_sec: 2000,
            rate_limit_burst: 4000,
            failed_requests_per_min: 60,
        }
    }
}
impl Default for Dimse {
    fn default() -> Self {
        Dimse {
            listen: "127.0.0.1:11112".into(),
            ae_title: "HUREN".into(),
            max_pdu_length: 131_072,
            idle_timeout_secs: 120,
            max_associations: 64,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}
impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            zone: "Asia/Shanghai".into(),
            stable_after_secs: 60,
            max_object_mib: 2048,
            spool_memory_kib: 8192,
        }
    }
}
impl Default for Log {
    fn default() -> Self {
        Log {
            filter: "info".into(),
            json: false,
        }
    }
}

/// Flags that override the layered settings.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimse: Option<DimseFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mllp: Option<HttpFlags>,
}
#[derive(Debug, Default, Serialize)]
pub struct HttpFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}
#[derive(Debug, Default, Serialize)]
pub struct DimseFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ae_title: Option<String>,
}

pub fn load(
    data_dir: &Path,
    config: Option<&Path>,
    flags: FlagOverrides,
) -> anyhow::Result<Settings> {
    let file: PathBuf = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join("huren.toml"));
    if config.is_some() && !file.exists() {
        bail!("configuration file {} does not exist", file.display());
    }
    let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::file(&file))
        .merge(Env::prefixed("HUREN__").split("__").lowercase(true))
        .merge(Serialized::defaults(flags))
        .extract()
        .context("invalid settings")?;
    validate(&settings)?;
    Ok(settings)
}

fn validate(s: &Settings) -> anyhow::Result<()> {
    if s.storage.url != "file" && !s.storage.url.starts_with("s3://") {
        bail!(
            "storage.url must be \"file\" or an s3:// URL, not {:?}",
            s.storage.url
        );
    }
    huren_types::AeTitle::parse(&s.dimse.ae_title).context("dimse.ae_title")?;
    zone(&s.archive.zone)?;
    if s.dimse.max_pdu_length < 4096 {
        bail!("dimse.max_pdu_length must be at least 4096");
    }
    if !matches!(
        s.http.cross_origin_resource_policy.as_str(),
        "same-site" | "same-origin" | "cross-origin"
    ) {
        bail!("http.cross_origin_resource_policy must be same-site, same-origin or cross-origin");
    }
    if let Some(bad) = s.http.frame_ancestors.iter().find(|o| {
        !(o.starts_with("https://") || o.starts_with("http://"))
            || o.contains([' ', ';', ',', '\'', '"'])
    }) {
        bail!("http.frame_ancestors: {bad:?} is not an origin (https://host[:port])");
    }
    if s.archive.stable_after_secs < 0 {
        bail!("archive.stable_after_secs must not be negative");
    }
    Ok(())
}

pub fn zone(name: &str) -> anyhow::Result<&'static time_tz::Tz> {
    time_tz::timezones::get_by_name(name).with_context(|| format!("unknown time zone {name:?}"))
}
