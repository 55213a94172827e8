//! The DIMSE adapter: DICOM upper layer (PS3.8) associations via dicom-ul, and the DIMSE
//! services (PS3.7) huren serves: C-ECHO and C-STORE ([`scp`]), C-FIND ([`find`]), and C-GET
//! and C-MOVE with their C-STORE sub-operations ([`retrieve`]), over plain TCP or DICOM TLS.
//! dicom-ul provides PDUs and negotiation only; command sets, message reassembly and statuses
//! are ours ([`command`]).
//!
//! Peers are identified by calling AE title *and* source network; an unknown peer or a wrong
//! called AE title gets A-ASSOCIATE-RJ (PS3.8 §9.3.4, reasons 3 and 7).

pub mod channel;
pub mod command;
pub mod find;
pub mod retrieve;
pub mod scp;

pub use scp::{ScpConfig, dimse_status, serve, serve_tls};

// Linked for its `deflate` feature: dicom-ul accepts Deflated Explicit VR LE only when the
// registry can inflate it.
use dicom_transfer_syntax_registry as _;
