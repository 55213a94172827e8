//! DICOM dates and times carry no zone (PS3.5 §6.2, DA/TM); huren keeps the original strings
//! and adds an instant computed in the region's configured zone (default Asia/Shanghai).

/// The current time in unix seconds (sessions, tickets, expiries).
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub use huren_types::day::{da, instant, parse_da, parse_tm};

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
