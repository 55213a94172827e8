//! huren-mpi: the rules of the master patient index, as pure functions.
//!
//! A doctor opens *a person*, not one hospital's record. This crate decides whether two patient
//! records are the same person: identity numbers are parsed and checked ([`id`]), names are
//! compared by characters and by pinyin with every reading of 多音字 ([`name`]), and
//! [`link::decide`] turns two records into link / review / no-link with machine-readable
//! reasons. [`population`] generates a synthetic population with ground truth, on which the
//! decisions' precision and recall are measured (tests/matching_quality.rs, docs/mpi.md).
//!
//! No I/O, no clock: "today" is an argument, so decisions are reproducible.

pub mod id;
pub mod link;
pub mod name;
pub mod population;
