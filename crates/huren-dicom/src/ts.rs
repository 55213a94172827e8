//! Transfer syntaxes an archive must accept (PS3.5 §10, Annex A), and what each implies for
//! parsing (byte order, VR explicitness, deflate) and for recognition (lossy or not).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSyntax {
    pub uid: &'static str,
    pub name: &'static str,
    pub explicit_vr: bool,
    pub big_endian: bool,
    /// The whole dataset after the file meta is deflated (PS3.5 §A.5).
    pub deflated: bool,
    /// Pixel data is encapsulated in fragments (PS3.5 §A.4).
    pub encapsulated: bool,
    /// The encoding process may lose information (JPEG baseline, J2K irreversible…).
    pub lossy: bool,
}

const fn ts(
    uid: &'static str,
    name: &'static str,
    explicit_vr: bool,
    big_endian: bool,
    deflated: bool,
    encapsulated: bool,
    lossy: bool,
) -> TransferSyntax {
    TransferSyntax {
        uid,
        name,
        explicit_vr,
        big_endian,
        deflated,
        encapsulated,
        lossy,
    }
}

pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Every transfer syntax huren accepts on C-STORE and STOW. Objects are stored as received;
/// a codec is needed only to transcode or render, never to accept.
pub const ACCEPTED: &[TransferSyntax] = &[
    ts(
        "1.2.840.10008.1.2.1",
        "Explicit VR Little Endian",
        true,
        false,
        false,
        false,
        false,
    ),
    ts(
        "1.2.840.10008.1.2",
        "Implicit VR Little Endian",
        false,
        false,
        false,
        false,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.2",
        "Explicit VR Big Endian (retired)",
        true,
        true,
        false,
        false,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
        true,
        false,
        true,
        false,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.50",
        "JPEG Baseline (Process 1)",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.51",
        "JPEG Extended (Process 2 & 4)",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.57",
        "JPEG Lossless (Process 14)",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless SV1",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.80",
        "JPEG-LS Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.81",
        "JPEG-LS Near-Lossless",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.90",
        "JPEG 2000 Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.91",
        "JPEG 2000",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.92",
        "JPEG 2000 Part 2 Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.93",
        "JPEG 2000 Part 2",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.201",
        "HTJ2K Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.202",
        "HTJ2K Lossless RPCL",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.203",
        "HTJ2K",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.5",
        "RLE Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.100",
        "MPEG2 MP@ML",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.102",
        "MPEG-4 AVC/H.264",
        true,
        false,
        false,
        true,
        true,
    ),
    ts(
        "1.2.840.10008.1.2.4.110",
        "JPEG XL Lossless",
        true,
        false,
        false,
        true,
        false,
    ),
    ts(
        "1.2.840.10008.1.2.4.112",
        "JPEG XL",
        true,
        false,
        false,
        true,
        true,
    ),
];

pub fn lookup(uid: &str) -> Option<&'static TransferSyntax> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    ACCEPTED.iter().find(|t| t.uid == uid)
}
