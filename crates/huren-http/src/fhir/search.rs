//! FHIR search parameter syntax (R4 §3.1.1.4): date prefixes and precision, token
//! `system|code`, comma alternatives. Pure; dates resolve in the region's zone when a value
//! carries no offset (a date alone has none: 2025-03-01 means that day in Asia/Shanghai).

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use time_tz::{PrimitiveDateTimeExt, Tz};

/// `[from, until)` in unix seconds; either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl Range {
    /// Narrows to the intersection (repeated `date` parameters are ANDed).
    fn and(self, other: Range) -> Range {
        Range {
            from: match (self.from, other.from) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            until: match (self.until, other.until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

fn local(zone: &Tz, d: Date, t: Time) -> Option<i64> {
    let r = PrimitiveDateTime::new(d, t).assume_timezone(zone);
    r.take_first()
        .or_else(|| r.take_second())
        .map(OffsetDateTime::unix_timestamp)
}

/// The interval a FHIR date/dateTime value denotes at its precision.
pub fn interval(value: &str, zone: &Tz) -> Result<(i64, i64), String> {
    let bad = || format!("{value:?} is not a FHIR date or dateTime");
    let (date, rest) = value.split_at(value.find('T').unwrap_or(value.len()));
    let parts: Vec<&str> = date.split('-').collect();
    let num = |s: &str, n: usize| -> Result<i64, String> {
        if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = num(parts.first().copied().unwrap_or(""), 4)? as i32;
    let month = parts.get(1).map(|m| num(m, 2)).transpose()?;
    let day = parts.get(2).map(|d| num(d, 2)).transpose()?;
    if parts.len() > 3 {
        return Err(bad());
    }
    let mon = |m: i64| Month::try_from(m as u8).map_err(|_| bad());
    let first = Date::from_calendar_date(year, mon(month.unwrap_or(1))?, day.unwrap_or(1) as u8)
        .map_err(|_| bad())?;
    if rest.is_empty() {
        let next = match (month, day) {
            (None, _) => Date::from_calendar_date(year + 1, Month::January, 1).ok(),
            (Some(m), None) => {
                let (y, m) = if m == 12 {
                    (year + 1, 1)
                } else {
                    (year, m + 1)
                };
                Date::from_calendar_date(y, mon(m)?, 1).ok()
            }
            (Some(_), Some(_)) => first.next_day(),
        }
        .ok_or_else(bad)?;
        let from = local(zone, first, Time::MIDNIGHT).ok_or_else(bad)?;
        let until = local(zone, next, Time::MIDNIGHT).ok_or_else(bad)?;
        return Ok((from, until));
    }
    if day.is_none() {
        return Err(bad());
    }
    // hh:mm[:ss[.fff]] then Z or ±hh:mm (optional here: the region's zone when absent).
    let t = &rest[1..];
    let zpos = t.find(['Z', '+', '-']).unwrap_or(t.len());
    let (clock, offset) = t.split_at(zpos);
    let c: Vec<&str> = clock.split(':').collect();
    let h = num(c.first().copied().unwrap_or(""), 2)? as u8;
    let mi = num(c.get(1).copied().unwrap_or(""), 2)? as u8;
    let (sec, precision) = match c.get(2) {
        Some(s) => {
            let whole = s.split('.').next().unwrap_or("");
            (num(whole, 2)? as u8, 1)
        }
        None => (0, 60),
    };
    if c.len() > 3 {
        return Err(bad());
    }
    let time = Time::from_hms(h, mi, sec.min(59)).map_err(|_| bad())?;
    let from = if offset.is_empty() {
        local(zone, first, time).ok_or_else(bad)?
    } else {
        let off = if offset == "Z" {
            UtcOffset::UTC
        } else {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let hm: Vec<&str> = offset[1..].split(':').collect();
            let oh = num(hm.first().copied().unwrap_or(""), 2)? as i8;
            let om = num(hm.get(1).copied().unwrap_or("00"), 2)? as i8;
            UtcOffset::from_hms(sign * oh, sign * om, 0).map_err(|_| bad())?
        };
        PrimitiveDateTime::new(first, time)
            .assume_offset(off)
            .unix_timestamp()
    };
    Ok((from, from + Duration::seconds(precision).whole_seconds()))
}

/// One `date` parameter (`ge2025-01-01`, `lt2025-02`, `2025-03-01`, …) as a range; `ne` and
/// `ap` are refused rather than guessed.
pub fn date_param(param: &str, zone: &Tz) -> Result<Range, String> {
    let (prefix, value) = match param.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb" | "ap")) => {
            (p, &param[2..])
        }
        _ => ("eq", param),
    };
    let (start, end) = interval(value, zone)?;
    Ok(match prefix {
        "eq" => Range {
            from: Some(start),
            until: Some(end),
        },
        "ge" => Range {
            from: Some(start),
            until: None,
        },
        "gt" | "sa" => Range {
            from: Some(end),
            until: None,
        },
        "le" => Range {
            from: None,
            until: Some(end),
        },
        "lt" | "eb" => Range {
            from: None,
            until: Some(start),
        },
        other => return Err(format!("date prefix {other} is not supported")),
    })
}

/// All `date` parameters together.
pub fn date_params<'a>(
    params: impl IntoIterator<Item = &'a str>,
    zone: &Tz,
) -> Result<Range, String> {
    params
        .into_iter()
        .try_fold(Range::default(), |acc, p| Ok(acc.and(date_param(p, zone)?)))
}

/// A token `[system|]code`: `(Some(system), code)` with `system|code`, `(None, code)` for a
/// bare code (any system); `|code` (no system) is treated as any system too.
pub fn token(v: &str) -> (Option<&str>, &str) {
    match v.split_once('|') {
        Some(("", code)) => (None, code),
        Some((system, code)) => (Some(system), code),
        None => (None, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const SH: &Tz = time_tz::timezones::db::asia::SHANGHAI;
    // 2025-03-01T00:00:00+08:00
    const MAR1: i64 = 1_740_758_400;

    #[test]
    fn dates_resolve_in_the_region_zone_at_their_precision() {
        assert_eq!(interval("2025-03-01", SH), Ok((MAR1, MAR1 + 86_400)));
        assert_eq!(interval("2025-03", SH), Ok((MAR1, MAR1 + 31 * 86_400)));
        assert_eq!(interval("2025", SH).map(|r| r.1 - r.0), Ok(365 * 86_400));
        assert_eq!(
            interval("2025-03-01T08:00:00+08:00", SH),
            Ok((MAR1 + 8 * 3600, MAR1 + 8 * 3600 + 1))
        );
        assert_eq!(
            interval("2025-03-01T00:00:00Z", SH),
            Ok((MAR1 + 8 * 3600, MAR1 + 8 * 3600 + 1))
        );
        assert_eq!(
            interval("2025-03-01T08:00", SH),
            Ok((MAR1 + 8 * 3600, MAR1 + 8 * 3600 + 60))
        );
        assert!(interval("2025-13", SH).is_err());
        assert!(interval("25-03-01", SH).is_err());
        assert!(interval("2025-02-30", SH).is_err());
    }

    #[test]
    fn prefixes_and_repeats() {
        let r = date_params(["ge2025-03-01", "lt2025-03-02"], SH).unwrap();
        assert_eq!(
            r,
            Range {
                from: Some(MAR1),
                until: Some(MAR1 + 86_400)
            }
        );
        assert_eq!(
            date_param("le2025-03-01", SH).unwrap(),
            Range {
                from: None,
                until: Some(MAR1 + 86_400)
            }
        );
        assert_eq!(
            date_param("gt2025-03-01", SH).unwrap(),
            Range {
                from: Some(MAR1 + 86_400),
                until: None
            }
        );
        assert!(date_param("ne2025-03-01", SH).is_err());
    }

    #[test]
    fn tokens() {
        assert_eq!(
            token("http://loinc.org|2093-3"),
            (Some("http://loinc.org"), "2093-3")
        );
        assert_eq!(token("2093-3"), (None, "2093-3"));
        assert_eq!(token("|2093-3"), (None, "2093-3"));
    }
}
