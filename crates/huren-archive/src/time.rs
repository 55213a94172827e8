//! DICOM dates and times carry no zone (PS3.5 §6.2, DA/TM); huren keeps the original strings
//! and adds an instant computed in the region's configured zone (default Asia/Shanghai).

use time::{PrimitiveDateTime, Time};
use time_tz::{PrimitiveDateTimeExt, Tz};

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

/// The current time in unix seconds (sessions, tickets, expiries).
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub use huren_types::day::{da, parse_da};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_is_utc_plus_8() {
        let tz = time_tz::timezones::db::asia::SHANGHAI;
        // 2025-03-01 08:00 in Shanghai is 00:00 UTC.
        assert_eq!(instant("20250301", Some("080000"), tz), Some(1_740_787_200));
        assert_eq!(
            instant("2025.03.01", Some("08:00:00"), tz),
            Some(1_740_787_200)
        );
        assert_eq!(
            instant("20250301", None, tz),
            Some(1_740_787_200 - 8 * 3600)
        );
        assert_eq!(instant("2025030", None, tz), None);
        assert_eq!(parse_tm("1230").map(|t| t.minute()), Some(30));
        assert_eq!(parse_tm("123015.5").map(|t| t.microsecond()), Some(500_000));
    }
}
