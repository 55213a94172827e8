//! Storage adapters implementing `huren-archive`'s ports: the index in SQLite through sqlx
//! ([`SqliteIndex`]), objects as files through object_store ([`LocalBlobs`]) or in an
//! S3-compatible bucket ([`S3Blobs`]). A PostgreSQL index slots in beside these without
//! touching the use cases.
//!
//! Layout of a data directory: `index.sqlite` (+ WAL), `objects/YYYY/MM/DD/XX/<uuid7>.dcm`
//! (one file per received object, never overwritten; `XX` one of 256 buckets; keys from before
//! the buckets have none), `spool/` (objects being received).

mod accounts;
pub mod audit;
pub mod blob;
mod catalog;
mod chain;
mod commit;
mod consent;
mod film;
mod ingest;
mod institutions;
mod linking;
mod numbering;
pub mod outbox;
mod persons;
pub mod pg;
mod quality;
pub mod query;
mod recognition;
mod results;
mod s3;
mod sql;
pub mod sqlite;
#[cfg(test)]
mod trigger_tests;
mod writer;

pub use blob::LocalBlobs;
pub use ingest::StoredObject;
pub use s3::{S3Blobs, S3Settings};
pub use sqlite::SqliteIndex;
