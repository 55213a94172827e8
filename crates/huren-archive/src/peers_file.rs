//! The region's DICOM peers from a file (issue #20, the operators' configuration page): one
//! line per AE of an institution. Every line is checked — its values, the institutions it
//! names, and that the AE is not registered already (here or earlier in the file) — before
//! anything is written; a file with any bad line changes nothing. Each AE is then registered
//! by the same use case, and audit event, as the CLI's and the admin API's.

use crate::Archive;
use crate::catalog::CatalogError;
use crate::model::NewAe;
use huren_access::AdminGrant;
use huren_catalog::LineError;
use huren_types::{AeTitle, InstitutionCode};

pub const AE_HEADER: &[&str] = &[
    "ae_title",
    "institution",
    "network",
    "port",
    "assumed_charset",
    "stable_after_secs",
    "default_performer",
    "require_tls",
];

/// A peer's network: an IP address (a host, /32 or /128) or a CIDR network, its host bits
/// cleared; `localhost` is 127.0.0.1.
pub fn network(host: &str) -> Result<ipnet::IpNet, String> {
    let host = match host.trim() {
        "localhost" => "127.0.0.1",
        h => h,
    };
    if let Ok(n) = host.parse::<ipnet::IpNet>() {
        return Ok(n.trunc());
    }
    host.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("host must be an IP address or CIDR network, got {host:?}"))
}

fn line(r: &[String]) -> Result<NewAe, String> {
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let ae_title = AeTitle::parse(&r[0]).map_err(|e| e.to_string())?;
    let institution_code = InstitutionCode::parse(&r[1]).map_err(|e| e.to_string())?;
    let network = network(&r[2])?;
    let port = match opt(&r[3]) {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {p:?} is not 1–65535"))?,
        ),
        None => None,
    };
    let assumed_charset = opt(&r[4]);
    if let Some(cs) = &assumed_charset
        && huren_dicom::charset::encoding_for_label(cs).is_none()
    {
        return Err(format!("unknown character set {cs:?}"));
    }
    let stable_after_secs = match opt(&r[5]) {
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| format!("stable_after_secs {s:?} is not 1–86400"))?,
        ),
        None => None,
    };
    let default_performer_code = match opt(&r[6]) {
        Some(c) => Some(InstitutionCode::parse(&c).map_err(|e| e.to_string())?),
        None => None,
    };
    let require_tls = match r[7].trim() {
        "" | "no" | "false" | "0" | "否" => false,
        "yes" | "true" | "1" | "是" => true,
        other => return Err(format!("require_tls {other:?} is yes or no")),
    };
    Ok(NewAe {
        institution_code,
        ae_title,
        network,
        port,
        assumed_charset,
        stable_after_secs,
        default_performer_code,
        require_tls,
    })
}

impl Archive {
    /// Registers DICOM peers from a CSV file ([`AE_HEADER`]); all lines checked first, nothing
    /// written when one is bad. Returns how many were registered.
    pub async fn import_aes(&self, grant: &AdminGrant, csv: &str) -> Result<usize, CatalogError> {
        // Every line read (a bad value does not hide a line the index refuses).
        let read = huren_catalog::parse_rows(csv, AE_HEADER, |r| Ok(line(r)))
            .map_err(CatalogError::Lines)?;
        let known = self.index.list_aes().await?;
        let mut errors = Vec::new();
        let mut rows = Vec::new();
        for (n, r) in read {
            match r {
                Ok(ae) => rows.push((n, ae)),
                Err(message) => errors.push(LineError { line: n, message }),
            }
        }
        let mut seen: Vec<(String, String)> = Vec::new();
        for (n, ae) in &rows {
            // The institution part in lowercase: codes compare case-insensitively.
            let key = (
                ae.ae_title.to_string(),
                ae.institution_code.as_str().to_ascii_lowercase(),
            );
            let mut bad = |message: String| errors.push(LineError { line: *n, message });
            if seen.contains(&key)
                || known.iter().any(|p| {
                    p.ae_title.to_string() == key.0
                        && p.institution_code.eq_ignore_ascii_case(&key.1)
                })
            {
                bad(format!("AE {} of {} is registered already", key.0, key.1));
            }
            for code in std::iter::once(&ae.institution_code).chain(&ae.default_performer_code) {
                if self
                    .index
                    .institution_as_of(code.as_str(), self.today())
                    .await?
                    .is_none()
                {
                    bad(format!("institution {code} is not registered"));
                }
            }
            seen.push(key);
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(CatalogError::Lines(errors));
        }
        let count = rows.len();
        for (_, ae) in rows {
            self.add_ae(grant, ae).await.map_err(CatalogError::from)?;
        }
        Ok(count)
    }
}
