//! The audit trail's checkpoints and verification (issue #6; docs/audit.md).
//!
//! The chain (HMAC-SM3 per event, key outside the database) lets `verify` catch a modified,
//! removed, reordered or inserted event and a chain recomputed without the key. Deleting the
//! newest events leaves a shorter chain that is still internally valid: signed **head
//! checkpoints**, appended to a file outside the data directory, catch that.

use anyhow::Context;
use huren_seal::chain::ChainKey;
use huren_store::audit::AuditReader;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    seq: i64,
    mac: String,
    at: i64,
    sig: String,
}

fn read_checkpoints(file: &Path) -> anyhow::Result<Vec<(usize, Result<Checkpoint, String>)>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| (n + 1, serde_json::from_str(l).map_err(|e| e.to_string())))
        .collect())
}

/// Appends a signed checkpoint of the chain's head when it moved since the last one; the file
/// is fsync'd. Returns the checkpointed sequence number.
pub async fn checkpoint(
    pool: &AuditReader,
    key: &ChainKey,
    file: &Path,
) -> anyhow::Result<Option<i64>> {
    let Some(head) = pool.head().await? else {
        return Ok(None);
    };
    let last = read_checkpoints(file)?
        .into_iter()
        .filter_map(|(_, c)| c.ok())
        .map(|c| c.seq)
        .max();
    if last.is_some_and(|s| s >= head.seq) {
        return Ok(None);
    }
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let line = serde_json::to_string(&Checkpoint {
        seq: head.seq,
        mac: hex::encode(&head.mac),
        at,
        sig: hex::encode(key.sign_checkpoint(head.seq, &head.mac, at)),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    writeln!(f, "{line}")?;
    f.sync_all()?;
    Ok(Some(head.seq))
}

/// Everything wrong with the trail, and a one-line summary when nothing is.
pub async fn verify(
    pool: &AuditReader,
    key: &ChainKey,
    file: Option<&Path>,
) -> anyhow::Result<Result<String, Vec<String>>> {
    let v = pool.verify(key).await?;
    let mut problems = v.problems;
    let head = pool.head().await?;
    let mut matched = 0;
    if let Some(file) = file {
        for (line, c) in read_checkpoints(file)? {
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("checkpoint line {line} is damaged: {e}"));
                    continue;
                }
            };
            let mac = hex::decode(&c.mac).unwrap_or_default();
            if hex::encode(key.sign_checkpoint(c.seq, &mac, c.at)) != c.sig {
                problems.push(format!(
                    "checkpoint line {line} is not signed with this key"
                ));
                continue;
            }
            match pool.mac_at(c.seq).await? {
                Some(stored) if stored == mac => matched += 1,
                Some(_) => problems.push(format!(
                    "event seq {} differs from checkpoint line {line}: the trail was rewritten",
                    c.seq
                )),
                None => problems.push(format!(
                    "checkpoint line {line} vouches for event seq {} but the trail ends at {}: events were removed from the end",
                    c.seq,
                    head.as_ref().map_or(0, |h| h.seq)
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(Ok(format!(
            "audit trail intact: {} events chained{}, {matched} checkpoint(s) match{}",
            v.chained,
            head.map(|h| format!(" (seq 1..{})", h.seq))
                .unwrap_or_default(),
            if v.before_chain > 0 {
                format!("; {} earlier events predate the chain", v.before_chain)
            } else {
                String::new()
            }
        )))
    } else {
        Ok(Err(problems))
    }
}

/// A read connection on the index for the chain (checkpoints, verification).
pub async fn pool(data_dir: &Path) -> anyhow::Result<AuditReader> {
    AuditReader::open(&data_dir.join("index.sqlite"))
        .await
        .context("opening the index")
}

/// [`huren_http::AuditIntegrity`] for the auditors' page: the chain's key and the checkpoint
/// file this process uses.
pub struct Integrity {
    pub pool: AuditReader,
    pub key: std::sync::Arc<ChainKey>,
    pub file: Option<std::path::PathBuf>,
}

#[async_trait::async_trait]
impl huren_http::AuditIntegrity for Integrity {
    async fn verify(&self) -> Result<Result<String, Vec<String>>, String> {
        verify(&self.pool, &self.key, self.file.as_deref())
            .await
            .map_err(|e| format!("{e:#}"))
    }

    fn last_checkpoint(&self) -> Option<(i64, i64)> {
        let file = self.file.as_deref()?;
        read_checkpoints(file)
            .ok()?
            .into_iter()
            .filter_map(|(_, c)| c.ok())
            .filter(|c| {
                hex::decode(&c.mac).is_ok_and(|mac| {
                    hex::encode(self.key.sign_checkpoint(c.seq, &mac, c.at)) == c.sig
                })
            })
            .map(|c| (c.seq, c.at))
            .max()
    }
}
