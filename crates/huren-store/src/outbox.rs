//! A file outbox standing in for the SMS gateway (tests and demos): each message is one JSON
//! line `{"at", "to", "text"}` appended to a file. A real gateway implements the same port.

use async_trait::async_trait;
use huren_archive::ports::{Notifier, StoreError};
use std::io::Write;
use std::path::PathBuf;

pub struct SmsOutbox {
    path: PathBuf,
}

impl SmsOutbox {
    pub fn new(path: PathBuf) -> Self {
        SmsOutbox { path }
    }
}

#[async_trait]
impl Notifier for SmsOutbox {
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), StoreError> {
        let line = serde_json::json!({
            "at": time::OffsetDateTime::now_utc().unix_timestamp(),
            "to": to,
            "text": text,
        })
        .to_string();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{line}")?;
            f.sync_all()
        })
        .await
        .map_err(|e| StoreError::backend("SMS outbox", e))?
        .map_err(StoreError::from_io)
    }
}
