//! FHIR search parameter syntax (R4 §3.1.1.4): date prefixes and precision, token
//! `system|code`, comma alternatives. Pure; dates resolve in the region's zone when a value
//! carries no offset (a date alone has none: 2025-03-01 means that day in Asia/Shanghai).

use time_tz::Tz;

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

pub use huren_labs::fhir::interval;

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
