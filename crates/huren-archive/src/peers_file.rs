//! The region's DICOM peers from a file (issue #20, the operators' configuration page): one
//! line per AE of an institution. Every line is checked — its values, the institutions it
//! names, and that the AE is not registered already (here or earlier in the file) — before
//! anything is written; a file with any bad line changes nothing. Each AE is then registered
//! by the same use case, and audit event, as the CLI's and the admin API's.

use crate::Archive;
use crate::imports::CatalogError;
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

/// A DICOM peer as an operator describes it — from the admin API's JSON, the CLI's flags or a
/// line of the peers file — before it is checked. Every way in goes through
/// [`AeFields::check`], so the same peer is accepted or refused the same way everywhere.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AeFields {
    pub institution: String,
    pub ae_title: String,
    /// An IP address or CIDR network (`localhost` is 127.0.0.1).
    pub host: String,
    /// Where huren reaches the peer (C-MOVE destinations); none for senders only.
    pub port: Option<u16>,
    /// The character set read when the peer's objects declare none or only ISO_IR 6/100.
    pub assumed_charset: Option<String>,
    /// Seconds without a new instance before a study of this peer is stable (1–86400).
    pub stable_after_secs: Option<i64>,
    /// The institution that performed what this peer sends, when not its own.
    pub default_performer: Option<String>,
    /// Accept this peer only over DICOM TLS.
    #[serde(default)]
    pub require_tls: bool,
}

impl AeFields {
    pub fn check(self) -> Result<NewAe, String> {
        let opt = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let assumed_charset = opt(self.assumed_charset);
        if let Some(cs) = &assumed_charset
            && huren_dicom::charset::encoding_for_label(cs).is_none()
        {
            return Err(format!("unknown character set {cs:?}"));
        }
        if let Some(s) = self.stable_after_secs
            && !(1..=86_400).contains(&s)
        {
            return Err(format!("stable_after_secs {s} is not 1–86400"));
        }
        if self.port == Some(0) {
            return Err("port 0 is not 1–65535".into());
        }
        Ok(NewAe {
            institution_code: InstitutionCode::parse(&self.institution)
                .map_err(|e| e.to_string())?,
            ae_title: AeTitle::parse(&self.ae_title).map_err(|e| e.to_string())?,
            network: network(&self.host)?,
            port: self.port,
            assumed_charset,
            stable_after_secs: self.stable_after_secs,
            default_performer_code: opt(self.default_performer)
                .map(|c| InstitutionCode::parse(&c))
                .transpose()
                .map_err(|e| e.to_string())?,
            require_tls: self.require_tls,
        })
    }
}

fn line(r: &[String]) -> Result<NewAe, String> {
    let opt = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let port = match opt(&r[3]) {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {p:?} is not 1–65535"))?,
        ),
        None => None,
    };
    let stable_after_secs = match opt(&r[5]) {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| format!("stable_after_secs {s:?} is not 1–86400"))?,
        ),
        None => None,
    };
    let require_tls = match r[7].trim() {
        "" | "no" | "false" | "0" | "否" => false,
        "yes" | "true" | "1" | "是" => true,
        other => return Err(format!("require_tls {other:?} is yes or no")),
    };
    AeFields {
        ae_title: r[0].clone(),
        institution: r[1].clone(),
        host: r[2].clone(),
        port,
        assumed_charset: opt(&r[4]),
        stable_after_secs,
        default_performer: opt(&r[6]),
        require_tls,
    }
    .check()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> AeFields {
        AeFields {
            institution: "H500002".into(),
            ae_title: "PACS".into(),
            host: "10.1.2.0/24".into(),
            ..AeFields::default()
        }
    }

    #[test]
    fn every_way_in_checks_a_peer_the_same_way() {
        let ae = fields().check().unwrap();
        assert_eq!(ae.institution_code.as_str(), "H500002");
        assert_eq!(ae.network.to_string(), "10.1.2.0/24");
        let bad = |f: AeFields| f.check().unwrap_err();
        assert!(
            bad(AeFields {
                assumed_charset: Some("KOI8-X".into()),
                ..fields()
            })
            .contains("character set")
        );
        assert!(
            bad(AeFields {
                stable_after_secs: Some(0),
                ..fields()
            })
            .contains("1–86400")
        );
        assert!(
            bad(AeFields {
                host: "pacs.example".into(),
                ..fields()
            })
            .contains("IP address")
        );
        // The file's line and the API's JSON give the same peer.
        let row: Vec<String> = [
            "PACS",
            "h500002",
            "10.1.2.0/24",
            "",
            "GB18030",
            "30",
            "",
            "否",
        ]
        .map(String::from)
        .to_vec();
        let from_file = line(&row).unwrap();
        assert_eq!(from_file.institution_code, ae.institution_code);
        assert_eq!(from_file.assumed_charset.as_deref(), Some("GB18030"));
    }
}
