//! In-process boundary tests of the HTTP adapter: the real router, the real use cases and the
//! real SQLite index and object files in a temporary directory, driven with `tower::oneshot` —
//! no socket, no external peer. They pin what clients see (the error table, problem details,
//! DICOM JSON) with snapshots (`insta`; review changes with `cargo insta review` or by reading
//! the `.snap` files). The end-to-end suite (tests/e2e) keeps testing against real peers.

mod dicomweb;
mod errors;
