//! What refuses a file import (the catalog's CSV and policy files, institutions, DICOM peers):
//! the bad lines, each named, or one reason, or the store. Shared by `catalog`,
//! `institutions_file` and `peers_file`, which depend on it and not on each other.

use crate::ports::StoreError;
use huren_catalog::LineError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the file has {} bad line(s)", .0.len())]
    Lines(Vec<LineError>),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
