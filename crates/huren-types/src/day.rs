//! Days as huren writes and reads them — the one place for it. A *day* is a calendar date
//! without zone: the region's day (ARCHITECTURE.md, "Time") when it means "today", a DICOM DA
//! value when it comes from an object. Written `YYYY-MM-DD` (ISO 8601) everywhere except DICOM
//! attributes (`YYYYMMDD`, PS3.5 §6.2 DA).

use crate::ParseError;
use time::{Date, Month, PrimitiveDateTime, Time};
use time_tz::{PrimitiveDateTimeExt, Tz};

/// `YYYY-MM-DD`.
pub fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A `YYYY-MM-DD` day, exactly.
pub fn parse_iso(s: &str) -> Option<Date> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    ymd(&s[0..4], &s[5..7], &s[8..10])
}

/// A day as a DICOM DA value (`YYYYMMDD`).
pub fn da(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A DICOM DA value: `YYYYMMDD`, also the ACR-NEMA `YYYY.MM.DD` (PS3.5 §6.2, DA).
pub fn parse_da(da: &str) -> Option<Date> {
    let d: String = da.trim().chars().filter(|c| *c != '.').collect();
    if d.len() != 8 {
        return None;
    }
    ymd(&d[0..4], &d[4..6], &d[6..8])
}

/// A day a person typed or a caller sent (CLI flags, API fields, files): `YYYY-MM-DD`, or the
/// DICOM form `YYYYMMDD`.
pub fn parse_day(s: &str) -> Result<Date, ParseError> {
    parse_iso(s)
        .or_else(|| parse_da(s))
        .ok_or_else(|| ParseError::Day(s.trim().chars().take(40).collect()))
}

/// Parses DA (`YYYYMMDD`, also the ACR-NEMA `YYYY.MM.DD`) and an optional TM
/// (`HH[MM[SS[.F{1-6}]]]`, also `HH:MM:SS`) into unix seconds in `zone`.
pub fn instant(da: &str, tm: Option<&str>, zone: &Tz) -> Option<i64> {
    let date = parse_da(da)?;
    let t = tm.and_then(parse_tm).unwrap_or(Time::MIDNIGHT);
    let local = PrimitiveDateTime::new(date, t);
    // Ambiguous or skipped local times (historic DST, 1986–1991 in China) take the earlier one.
    let offset = local.assume_timezone(zone);
    let odt = offset.take_first().or_else(|| offset.take_second())?;
    Some(odt.unix_timestamp())
}

pub fn parse_tm(tm: &str) -> Option<Time> {
    let t: String = tm.trim().chars().filter(|c| *c != ':').collect();
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.len() < 2 || whole.len() % 2 == 1 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u8 = whole.get(0..2)?.parse().ok()?;
    let m: u8 = whole.get(2..4).map_or(Some(0), |s| s.parse().ok())?;
    // TM allows 60 for leap seconds; clamp to 59.
    let s: u8 = whole.get(4..6).map_or(Some(0), |s| s.parse().ok())?.min(59);
    let micro: u32 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(6).collect();
        digits.parse::<u32>().ok()? * 10u32.pow(6 - digits.len() as u32)
    };
    Time::from_hms_micro(h, m, s, micro).ok()
}

fn ymd(y: &str, m: &str, d: &str) -> Option<Date> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_in_both_forms() {
        let d = Date::from_calendar_date(2024, Month::February, 29).unwrap();
        assert_eq!(iso(d), "2024-02-29");
        assert_eq!(da(d), "20240229");
        assert_eq!(parse_iso(" 2024-02-29 "), Some(d));
        assert_eq!(parse_da("2024.02.29"), Some(d));
        assert_eq!(parse_day("20240229"), Ok(d));
        assert_eq!(parse_iso("2023-02-29"), None);
        assert_eq!(parse_iso("2024-2-29"), None);
        assert_eq!(parse_iso("+024-02-29"), None);
        assert!(matches!(parse_day("yesterday"), Err(ParseError::Day(_))));
        assert_eq!(
            parse_day("29/02/2024").unwrap_err().to_string(),
            "\"29/02/2024\" is not a day; write YYYY-MM-DD"
        );
    }
}
