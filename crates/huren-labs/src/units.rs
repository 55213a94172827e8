//! Units as laboratories write them, and their UCUM form (issue #5 item 7). Chinese reports
//! write `×10^9/L`, `μmol/L`, `mIU/mL`; FHIR `Quantity.system` wants UCUM (`10*9/L`,
//! `umol/L`, `m[IU]/mL`). The unit as sent is always kept; the UCUM code only when known, so a
//! receiving system never sees a guess.

/// The UCUM code for a unit as sent, when huren knows it.
pub fn ucum(sent: &str) -> Option<String> {
    let s: String = sent
        .trim()
        .chars()
        .map(|c| match c {
            'µ' | 'μ' => 'u',
            '（' => '(',
            '）' => ')',
            c => c,
        })
        .filter(|c| !c.is_whitespace())
        .collect();
    if s.is_empty() {
        return None;
    }
    // Powers of ten per volume: ×10^9/L, x10E9/L, 10^9/L, 10*9/L.
    let lower = s.to_ascii_lowercase();
    let stripped = lower.trim_start_matches(['×', '*']).trim_start_matches('x');
    for prefix in ["10^", "10e", "10*"] {
        if let Some(rest) = stripped.strip_prefix(prefix) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let per = &rest[digits.len()..];
            if !digits.is_empty() && matches!(per, "/l" | "/ul" | "/ml") {
                let per = match per {
                    "/l" => "/L",
                    "/ul" => "/uL",
                    _ => "/mL",
                };
                return Some(format!("10*{digits}{per}"));
            }
        }
    }
    let known = match s.as_str() {
        "mmol/L" | "mmol/l" => "mmol/L",
        "umol/L" | "umol/l" => "umol/L",
        "nmol/L" | "nmol/l" => "nmol/L",
        "pmol/L" | "pmol/l" => "pmol/L",
        "mol/L" => "mol/L",
        "g/L" | "g/l" => "g/L",
        "g/dL" | "g/dl" => "g/dL",
        "mg/L" | "mg/l" => "mg/L",
        "mg/dL" | "mg/dl" => "mg/dL",
        "ug/L" | "ug/l" => "ug/L",
        "ug/mL" | "ug/ml" => "ug/mL",
        "ng/L" | "ng/l" => "ng/L",
        "ng/mL" | "ng/ml" => "ng/mL",
        "pg/mL" | "pg/ml" => "pg/mL",
        "U/L" | "u/L" | "U/l" => "U/L",
        "IU/L" => "[IU]/L",
        "IU/mL" | "IU/ml" => "[IU]/mL",
        "mIU/mL" | "mIU/ml" => "m[IU]/mL",
        "mIU/L" | "mIU/l" => "m[IU]/L",
        "uIU/mL" | "uIU/ml" => "u[IU]/mL",
        "kU/L" | "KU/L" => "kU/L",
        "mU/L" => "mU/L",
        "%" => "%",
        "fL" | "fl" => "fL",
        "pg" => "pg",
        "s" | "sec" | "秒" => "s",
        "min" | "分钟" => "min",
        "mm/h" | "mm/H" | "mm/hr" => "mm/h",
        "mmHg" => "mm[Hg]",
        "mL/min" | "ml/min" => "mL/min",
        "mL/min/1.73m2" | "mL/min/1.73m^2" | "ml/min/1.73m2" => "mL/min/{1.73_m2}",
        "mOsm/kg" | "mOsm/kgH2O" => "mosm/kg",
        "cells/uL" | "个/uL" | "/uL" => "/uL",
        "/HP" | "/HPF" | "个/HP" => "/[HPF]",
        "/LP" | "/LPF" | "个/LP" => "/[LPF]",
        "g/24h" => "g/(24.h)",
        "mg/24h" => "mg/(24.h)",
        "mmol/24h" => "mmol/(24.h)",
        "kg" => "kg",
        "cm" => "cm",
        "mL" | "ml" => "mL",
        "L" => "L",
        "ratio" | "比值" => "{ratio}",
        _ => return None,
    };
    Some(known.to_owned())
}

/// The number and comparator of a value as sent: `5.2` → (5.2, None), `<0.01` → (0.01, `<`),
/// `>=1000` → (1000, `>=`). Titres (`1:320`), ranges and text have no single number.
pub fn number(value: &str) -> Option<(f64, Option<&'static str>)> {
    let v = value.trim();
    let (cmp, rest) = [
        ("<=", "<="),
        (">=", ">="),
        ("≤", "<="),
        ("≥", ">="),
        ("<", "<"),
        (">", ">"),
    ]
    .iter()
    .find_map(|(p, c)| v.strip_prefix(p).map(|r| (Some(*c), r)))
    .unwrap_or((None, v));
    let n: f64 = rest.trim().parse().ok()?;
    n.is_finite().then_some((n, cmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_lab_units_map_to_ucum() {
        assert_eq!(ucum("×10^9/L").as_deref(), Some("10*9/L"));
        assert_eq!(ucum("x10^12/L").as_deref(), Some("10*12/L"));
        assert_eq!(ucum("10^9/L").as_deref(), Some("10*9/L"));
        assert_eq!(ucum("μmol/L").as_deref(), Some("umol/L"));
        assert_eq!(ucum("mIU/mL").as_deref(), Some("m[IU]/mL"));
        assert_eq!(ucum(" mmol/L ").as_deref(), Some("mmol/L"));
        assert_eq!(ucum("个/HP").as_deref(), Some("/[HPF]"));
        assert_eq!(ucum("furlongs"), None);
        assert_eq!(ucum(""), None);
    }

    #[test]
    fn numbers_with_comparators() {
        assert_eq!(number("5.2"), Some((5.2, None)));
        assert_eq!(number("<0.01"), Some((0.01, Some("<"))));
        assert_eq!(number(">= 1000"), Some((1000.0, Some(">="))));
        assert_eq!(number("≤3"), Some((3.0, Some("<="))));
        assert_eq!(number("1:320"), None);
        assert_eq!(number("阴性(-)"), None);
        assert_eq!(number("NaN"), None);
    }
}
