//! Identifier systems and national identity numbers.
//!
//! GB 11643-1999 (公民身份号码): six-digit area code, eight-digit birth date (YYYYMMDD), a
//! three-digit sequence whose last digit is odd for men and even for women, and a check
//! character computed with ISO 7064 MOD 11-2 (weights 2^(i−1) mod 11 from the right; `X`
//! stands for 10). Numbers issued before 1999 have 15 digits (two-digit year, no check
//! character); they are upgraded on input by inserting `19` and computing the check character.
//! 港澳台居民居住证 use the same structure with area codes 81 (Hong Kong), 82 (Macao) and
//! 83 (Taiwan). The 2023 外国人永久居留身份证 has 18 digits starting with 9 (then the
//! accepting province, a nationality code, the birth date at characters 7–14, a sequence and
//! the same check character); the 2017 card's 15-character form (three letters, twelve digits)
//! is accepted by shape only.

use time::{Date, Month};

/// 居民身份证 (GB 11643).
pub const RESIDENT: &str = "urn:huren:id:cn-resident";
/// 港澳台居民居住证.
pub const HMT_RESIDENCE: &str = "urn:huren:id:cn-hmt-residence";
/// 外国人永久居留身份证.
pub const FOREIGN_PERMANENT: &str = "urn:huren:id:cn-foreign-permanent";
/// The systems whose numbers have the GB 11643 structure.
pub const NATIONAL_SYSTEMS: [&str; 3] = [RESIDENT, HMT_RESIDENCE, FOREIGN_PERMANENT];

/// Prefix of passport systems: `urn:huren:id:passport:<ISO 3166-1 alpha-3>`.
pub const PASSPORT_PREFIX: &str = "urn:huren:id:passport:";
/// Prefix of resident health card systems (居民健康卡): `…:health-card:<issuer>`.
pub const HEALTH_CARD_PREFIX: &str = "urn:huren:id:health-card:";
/// Prefix of medical insurance systems (医保): `…:insurance:<issuer>`.
pub const INSURANCE_PREFIX: &str = "urn:huren:id:insurance:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// DICOM PatientSex (0010,0040) and HL7 PID-8 share the codes: `M`, `F` (others carry no
    /// sex a number can be checked against).
    pub fn from_code(code: &str) -> Option<Sex> {
        match code.trim() {
            "M" => Some(Sex::Male),
            "F" => Some(Sex::Female),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an identity number has 18 characters (or 15 digits if issued before 1999), not {0}")]
    Length(usize),
    #[error("character {0} must be a digit")]
    NotDigit(usize),
    #[error("check character is {found}, expected {expected} (GB 11643, ISO 7064 MOD 11-2)")]
    Check { found: char, expected: char },
    #[error("birth date {0} is not a real date on or before today")]
    BirthDate(String),
    #[error("area code {0} is not a province-level code of this document")]
    Area(String),
    #[error("{0}")]
    Shape(&'static str),
}

/// Which document a GB 11643-structured number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NationalKind {
    Resident,
    HmtResidence,
    ForeignPermanent,
}

impl NationalKind {
    pub fn system(self) -> &'static str {
        match self {
            NationalKind::Resident => RESIDENT,
            NationalKind::HmtResidence => HMT_RESIDENCE,
            NationalKind::ForeignPermanent => FOREIGN_PERMANENT,
        }
    }
}

/// A valid 18-character national identity number (checked, birth date real).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NationalId {
    value: String,
    kind: NationalKind,
    birth_date: Date,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Province-level area codes of GB/T 2260 used in resident numbers.
const PROVINCES: [u8; 31] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65,
];

/// The ISO 7064 MOD 11-2 check character of the first 17 digits.
pub fn check_character(first17: &[u8; 17]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

fn date(yyyymmdd: &str) -> Option<Date> {
    let y: i32 = yyyymmdd.get(0..4)?.parse().ok()?;
    let m: u8 = yyyymmdd.get(4..6)?.parse().ok()?;
    let d: u8 = yyyymmdd.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

impl NationalId {
    /// Parses and checks a number as written on the document (spaces ignored, `x` accepted).
    /// `today` bounds the birth date.
    pub fn parse(raw: &str, today: Date) -> Result<NationalId, IdError> {
        let s: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let s = match s.len() {
            15 if s.bytes().all(|b| b.is_ascii_digit()) => {
                // Pre-1999 resident number: area, YYMMDD, sequence; the century is 19.
                let mut first17 = [0u8; 17];
                let upgraded = format!("{}19{}", &s[0..6], &s[6..15]);
                first17.copy_from_slice(upgraded.as_bytes());
                format!("{upgraded}{}", check_character(&first17))
            }
            18 => s,
            n => return Err(IdError::Length(n)),
        };
        let bytes = s.as_bytes();
        let mut first17 = [0u8; 17];
        for (i, b) in bytes[..17].iter().enumerate() {
            if !b.is_ascii_digit() {
                return Err(IdError::NotDigit(i + 1));
            }
            first17[i] = *b;
        }
        let found = char::from(bytes[17]);
        let expected = check_character(&first17);
        if found != expected {
            return Err(IdError::Check { found, expected });
        }
        let area: u8 = s[0..2].parse().map_err(|_| IdError::NotDigit(1))?;
        let kind = match area {
            81..=83 => NationalKind::HmtResidence,
            90..=99 => NationalKind::ForeignPermanent,
            a if PROVINCES.contains(&a) => NationalKind::Resident,
            _ => return Err(IdError::Area(s[0..2].to_owned())),
        };
        if kind == NationalKind::ForeignPermanent {
            // 9, then the accepting province's two digits.
            let province: u8 = s[1..3].parse().map_err(|_| IdError::NotDigit(2))?;
            if !PROVINCES.contains(&province) {
                return Err(IdError::Area(s[1..3].to_owned()));
            }
        }
        let birth = &s[6..14];
        let birth_date = date(birth)
            .filter(|d| *d <= today && d.year() >= 1890)
            .ok_or_else(|| IdError::BirthDate(birth.to_owned()))?;
        Ok(NationalId {
            value: s,
            kind,
            birth_date,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
    pub fn kind(&self) -> NationalKind {
        self.kind
    }
    pub fn system(&self) -> &'static str {
        self.kind.system()
    }
    /// Characters 7–14.
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }
    /// The 17th digit: odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if (self.value.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Whether the number agrees with a record's demographics. Agreement needs the record's
    /// birth date (a record without one cannot be confirmed); a recorded sex must agree too.
    pub fn consistency(&self, birth_date: Option<Date>, sex: Option<Sex>) -> Consistency {
        let birth_ok = match birth_date {
            Some(d) => d == self.birth_date,
            None => return Consistency::Unconfirmed,
        };
        let sex_ok = sex.is_none_or(|s| s == self.sex());
        if birth_ok && sex_ok {
            Consistency::Consistent
        } else {
            Consistency::Inconsistent {
                birth_date: !birth_ok,
                sex: !sex_ok,
            }
        }
    }
}

/// How an identity number relates to the demographics of the record that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Consistent,
    /// Which parts disagree (a newborn registered under the mother's number disagrees on both).
    Inconsistent {
        birth_date: bool,
        sex: bool,
    },
    /// The record has no birth date to compare with.
    Unconfirmed,
}

/// The 2017 外国人永久居留身份证 number: three letters (nationality), twelve digits. Its check
/// digit is not verified (the algorithm is not published with the format); shape only.
pub fn foreign_permanent_2017(raw: &str) -> Result<String, IdError> {
    let s: String = raw.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() == 15
        && b[..3].iter().all(u8::is_ascii_uppercase)
        && b[3..].iter().all(u8::is_ascii_digit)
    {
        Ok(s)
    } else {
        Err(IdError::Shape(
            "a 2017 permanent residence number is three letters and twelve digits",
        ))
    }
}

/// A passport number as compared: letters and digits only, upper case.
pub fn passport(raw: &str) -> Result<String, IdError> {
    let s: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if (5..=20).contains(&s.len()) {
        Ok(s)
    } else {
        Err(IdError::Shape(
            "a passport number has 5 to 20 letters and digits",
        ))
    }
}

/// A mobile number as compared: digits only, without the +86 / 0086 country code.
pub fn phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let digits = digits
        .strip_prefix("0086")
        .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
        .unwrap_or(&digits)
        .to_owned();
    (digits.len() >= 7).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::from_calendar_date(2026, Month::November, 25).expect("date")
    }

    #[test]
    fn the_standard_example_checks_and_upgrades() {
        // GB 11643's classic example number (Beijing 东城区, 1949-12-31, female).
        let id = NationalId::parse("11010519491231002x", today()).expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.kind(), NationalKind::Resident);
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(
            id.birth_date(),
            Date::from_calendar_date(1949, Month::December, 31).expect("date")
        );
        // The same person's 15-digit number from before 1999.
        let old = NationalId::parse("110105491231002", today()).expect("legacy");
        assert_eq!(old, id);
    }

    #[test]
    fn wrong_check_character_date_or_area_is_refused() {
        assert_eq!(
            NationalId::parse("110105194912310021", today()),
            Err(IdError::Check {
                found: '1',
                expected: 'X'
            })
        );
        let mut first17 = *b"11010519490231002";
        let c = check_character(&first17);
        let feb31 = format!("{}{c}", std::str::from_utf8(&first17).expect("ascii"));
        assert!(matches!(
            NationalId::parse(&feb31, today()),
            Err(IdError::BirthDate(_))
        ));
        first17[0] = b'0';
        first17[1] = b'1';
        let c = check_character(&first17);
        let area01 = format!("{}{c}", std::str::from_utf8(&first17).expect("ascii"));
        assert!(matches!(
            NationalId::parse(&area01, today()),
            Err(IdError::Area(_))
        ));
        assert_eq!(NationalId::parse("1234", today()), Err(IdError::Length(4)));
    }

    #[test]
    fn residence_permits_and_foreign_cards_are_their_own_systems() {
        let mut hk = *b"81000019900101001";
        let c = check_character(&hk);
        let id = NationalId::parse(
            &format!("{}{c}", std::str::from_utf8(&hk).expect("ascii")),
            today(),
        )
        .expect("HK permit");
        assert_eq!(id.system(), HMT_RESIDENCE);
        hk[0] = b'9';
        hk[1] = b'5';
        hk[2] = b'0';
        let c = check_character(&hk);
        let f = NationalId::parse(
            &format!("{}{c}", std::str::from_utf8(&hk).expect("ascii")),
            today(),
        )
        .expect("2023 foreign permanent card, accepted in 重庆 (50)");
        assert_eq!(f.system(), FOREIGN_PERMANENT);
        assert!(foreign_permanent_2017("USA110087654321").is_ok());
        assert!(foreign_permanent_2017("US1100876543210").is_err());
    }

    #[test]
    fn consistency_with_the_record() {
        let id = NationalId::parse("11010519491231002X", today()).expect("valid");
        let born = Date::from_calendar_date(1949, Month::December, 31).expect("date");
        assert_eq!(
            id.consistency(Some(born), Some(Sex::Female)),
            Consistency::Consistent
        );
        assert_eq!(id.consistency(Some(born), None), Consistency::Consistent);
        let newborn = Date::from_calendar_date(2026, Month::March, 1).expect("date");
        assert_eq!(
            id.consistency(Some(newborn), Some(Sex::Male)),
            Consistency::Inconsistent {
                birth_date: true,
                sex: true
            }
        );
        assert_eq!(
            id.consistency(None, Some(Sex::Female)),
            Consistency::Unconfirmed
        );
    }

    #[test]
    fn phones_and_passports_normalise() {
        assert_eq!(phone("+86 138-0000-1234").as_deref(), Some("13800001234"));
        assert_eq!(phone("0086 13800001234").as_deref(), Some("13800001234"));
        assert_eq!(phone("123"), None);
        assert_eq!(passport("e 1234 5678").as_deref(), Ok("E12345678"));
    }
}
