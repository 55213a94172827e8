//! The vocabulary of huren: validated identifiers that the rest of the workspace passes around.
//!
//! Values are parsed once at the edge (DIMSE command sets, HTTP paths, CLI flags) into these
//! newtypes, so use cases never see an unchecked `String` where a UID or an AE title is meant.
//! This crate owns no behaviour beyond parsing and display; it does no I/O.
//!
//! ```
//! use huren_types::{Uid, AeTitle, InstitutionCode};
//! let uid = Uid::parse("1.2.840.10008.5.1.4.1.1.2").unwrap();
//! assert_eq!(uid.as_str(), "1.2.840.10008.5.1.4.1.1.2");
//! assert!(AeTitle::parse("PACS_01").is_ok());
//! assert!(InstitutionCode::parse("cq-rmyy").is_ok());
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod day;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("UID is empty")]
    EmptyUid,
    #[error("UID longer than 64 characters (PS3.5 §9.1)")]
    UidTooLong,
    #[error("UID contains a character other than digits and '.' (PS3.5 §9.1): {0:?}")]
    UidCharacter(String),
    #[error("UID component has a leading zero or is empty (PS3.5 §9.1): {0:?}")]
    UidComponent(String),
    #[error(
        "AE title must be 1–16 characters of the default repertoire without '\\' (PS3.5 §6.2): {0:?}"
    )]
    AeTitle(String),
    #[error("institution code must be 1–32 characters of A–Z, a–z, 0–9, '-', '_': {0:?}")]
    InstitutionCode(String),
    #[error("{0:?} is not a day; write YYYY-MM-DD")]
    Day(String),
    #[error(
        "institution level must be one of 三级/二级/一级/other (or tertiary/secondary/primary): {0:?}"
    )]
    Level(String),
    #[error("ownership must be public or private: {0:?}")]
    Ownership(String),
    #[error("not a GB/T 2260 administrative division code (six digits, e.g. 500103): {0:?}")]
    Division(String),
}

/// A DICOM unique identifier (PS3.5 §9.1): at most 64 characters, digits and dots,
/// no empty components, no leading zeros in multi-digit components.
///
/// Trailing NUL/space padding from the wire is removed by [`Uid::parse`]; the strict
/// component rule is applied leniently to a leading-zero component only when
/// [`Uid::parse_lenient`] is used (equipment in the field does emit `1.2.04.5`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uid(String);

impl Uid {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = Self::parse_lenient(raw)?;
        for comp in s.0.split('.') {
            if comp.len() > 1 && comp.starts_with('0') {
                return Err(ParseError::UidComponent(s.0.clone()));
            }
        }
        Ok(s)
    }

    /// Accepts leading zeros in components: archives must store what modalities send.
    pub fn parse_lenient(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
        if s.is_empty() {
            return Err(ParseError::EmptyUid);
        }
        if s.len() > 64 {
            return Err(ParseError::UidTooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(ParseError::UidCharacter(s.to_owned()));
        }
        if s.split('.').any(|c| c.is_empty()) {
            return Err(ParseError::UidComponent(s.to_owned()));
        }
        Ok(Uid(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Uid {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Uid::parse_lenient(&s)
    }
}
impl From<Uid> for String {
    fn from(u: Uid) -> String {
        u.0
    }
}
impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An application entity title (PS3.5 §6.2, VR AE): 1–16 characters of the default
/// repertoire, no backslash or control characters; leading/trailing spaces are not significant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AeTitle(String);

impl AeTitle {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim_matches([' ', '\0']);
        if s.is_empty()
            || s.len() > 16
            || !s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
        {
            return Err(ParseError::AeTitle(raw.to_owned()));
        }
        Ok(AeTitle(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for AeTitle {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AeTitle::parse(&s)
    }
}
impl From<AeTitle> for String {
    fn from(a: AeTitle) -> String {
        a.0
    }
}
impl fmt::Display for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The region's short, stable code for an institution (e.g. `cq-rmyy`, or an uppercase licence
/// or unified social credit code such as `H500002`). Codes are chosen by the operator, never
/// reused, and appear in URLs and audit records; the display name may change over time (it is
/// effective-dated), the code does not.
///
/// Codes are **case-preserving and compared case-insensitively** (ARCHITECTURE.md, "Identifiers
/// and their scope"): `H500002` is kept as written, and `h500002` names the same institution.
/// Equality, hashing and ordering here use the ASCII-lowercased form; the index compares with
/// `COLLATE NOCASE` and keeps a unique index on that collation. Only ASCII letters, digits, `-`
/// and `_` are allowed, so "case-insensitive" has one meaning everywhere (no Unicode folding).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstitutionCode(String);

impl InstitutionCode {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty()
            || s.len() > 32
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ParseError::InstitutionCode(raw.to_owned()));
        }
        Ok(InstitutionCode(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether `other` names this institution (case-insensitively).
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}
impl PartialEq for InstitutionCode {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for InstitutionCode {}
impl std::hash::Hash for InstitutionCode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}
impl Ord for InstitutionCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Byte by byte, lowercased as it goes: no copy of either code.
        self.0
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(other.0.bytes().map(|b| b.to_ascii_lowercase()))
    }
}
impl PartialOrd for InstitutionCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl TryFrom<String> for InstitutionCode {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        InstitutionCode::parse(&s)
    }
}
impl From<InstitutionCode> for String {
    fn from(a: InstitutionCode) -> String {
        a.0
    }
}
impl fmt::Display for InstitutionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hospital grade under the national grading scheme (医院等级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstitutionLevel {
    /// 三级
    Tertiary,
    /// 二级
    Secondary,
    /// 一级
    Primary,
    /// 未定级 / other (clinics, imaging centres, township health centres)
    Other,
}

impl InstitutionLevel {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Ok(match raw.trim() {
            "三级" | "3" | "tertiary" => Self::Tertiary,
            "二级" | "2" | "secondary" => Self::Secondary,
            "一级" | "1" | "primary" => Self::Primary,
            "其他" | "other" => Self::Other,
            _ => return Err(ParseError::Level(raw.to_owned())),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tertiary => "tertiary",
            Self::Secondary => "secondary",
            Self::Primary => "primary",
            Self::Other => "other",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Tertiary => "三级",
            Self::Secondary => "二级",
            Self::Primary => "一级",
            Self::Other => "其他",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    Public,
    Private,
}

impl Ownership {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw.trim() {
            "public" | "公立" => Ok(Self::Public),
            "private" | "民营" | "私立" => Ok(Self::Private),
            _ => Err(ParseError::Ownership(raw.to_owned())),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

/// An image quality grade (影像质控等级), worst first. One spelling everywhere (issue #17): the
/// codes `A`, `B`, `C` and `reject` in the API, CSV, CLI, the index and stored JSON, with the
/// labels 甲/乙/丙/废片 and "grade A"/…/"reject" beside them. Input also takes the Chinese labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QcGrade {
    /// 废片 (stored JSON written before issue #17 says `Reject`).
    #[serde(rename = "reject", alias = "Reject")]
    Reject,
    C,
    B,
    A,
}

impl QcGrade {
    pub const ALL: [QcGrade; 4] = [QcGrade::A, QcGrade::B, QcGrade::C, QcGrade::Reject];

    /// The code: `A`, `B`, `C`, `reject`.
    pub fn code(self) -> &'static str {
        match self {
            QcGrade::A => "A",
            QcGrade::B => "B",
            QcGrade::C => "C",
            QcGrade::Reject => "reject",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            QcGrade::A => "甲",
            QcGrade::B => "乙",
            QcGrade::C => "丙",
            QcGrade::Reject => "废片",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            QcGrade::A => "grade A",
            QcGrade::B => "grade B",
            QcGrade::C => "grade C",
            QcGrade::Reject => "reject",
        }
    }

    /// A code or a Chinese label.
    pub fn parse(raw: &str) -> Option<QcGrade> {
        Some(match raw.trim() {
            "A" | "a" | "甲" => QcGrade::A,
            "B" | "b" | "乙" => QcGrade::B,
            "C" | "c" | "丙" => QcGrade::C,
            "reject" | "Reject" | "废片" => QcGrade::Reject,
            _ => return None,
        })
    }
}

impl fmt::Display for QcGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Lifecycle of a stored instance. Every read path filters on it; rows are never
/// hard-deleted while a tombstone is owed (see ARCHITECTURE.md, "Object lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Active,
    /// A newer version from the same sender replaced it; kept for audit and rollback.
    Superseded,
    /// Rejected by an operator (e.g. wrong patient); hidden from queries, kept.
    Rejected,
    /// Deleted by an operator: blob removed, row kept as tombstone.
    Deleted,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Superseded => "superseded",
            Self::Rejected => "rejected",
            Self::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "superseded" => Self::Superseded,
            "rejected" => Self::Rejected,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules() {
        assert!(Uid::parse("1.2.3\0").is_ok());
        assert_eq!(Uid::parse("").unwrap_err(), ParseError::EmptyUid);
        assert!(matches!(
            Uid::parse("1..2"),
            Err(ParseError::UidComponent(_))
        ));
        assert!(matches!(
            Uid::parse("1.02"),
            Err(ParseError::UidComponent(_))
        ));
        assert!(Uid::parse_lenient("1.02").is_ok());
        assert!(matches!(
            Uid::parse("1.2a"),
            Err(ParseError::UidCharacter(_))
        ));
        assert_eq!(
            Uid::parse(&"1".repeat(65)).unwrap_err(),
            ParseError::UidTooLong
        );
    }

    #[test]
    fn institution_codes_keep_their_case_and_compare_without_it() {
        let upper = InstitutionCode::parse(" H500002 ").unwrap();
        assert_eq!(upper.as_str(), "H500002");
        let lower = InstitutionCode::parse("h500002").unwrap();
        assert_eq!(upper, lower);
        assert!(upper.is("h500002"));
        assert_eq!(
            std::collections::HashSet::from([upper.clone(), lower.clone()]).len(),
            1
        );
        assert!(lower < InstitutionCode::parse("I1").unwrap());
        assert!(InstitutionCode::parse("91500000MA5U").is_ok());
        assert!(InstitutionCode::parse("cq rmyy").is_err());
        assert!(InstitutionCode::parse("医院").is_err());
    }

    #[test]
    fn ae_title_rules() {
        assert_eq!(AeTitle::parse(" PACS ").unwrap().as_str(), "PACS");
        assert!(AeTitle::parse("A\\B").is_err());
        assert!(AeTitle::parse("ABCDEFGHIJKLMNOPQ").is_err());
        assert!(AeTitle::parse("").is_err());
    }

    #[test]
    fn levels() {
        assert_eq!(
            InstitutionLevel::parse("二级").unwrap(),
            InstitutionLevel::Secondary
        );
        assert_eq!(
            InstitutionLevel::parse("tertiary").unwrap().label_zh(),
            "三级"
        );
        assert!(InstitutionLevel::parse("四级").is_err());
    }
}
