//! The region's recognition policy as a file (TOML, docs/recognition.md): how the rules apply,
//! the items' minimum QC grades and the region's own re-examination reasons. Everything left
//! out keeps the platform default, so an empty file is the default policy.
//!
//! TOML rather than CSV because the policy has three shapes (settings, a table of items, a list
//! of reasons); like the CSV files it is refused as a whole with every problem named.

use crate::{Evaluator, LineError};
use huren_recognition::{EvaluatedBy, Policy, QcGrade, ReexamReason, RegionPolicy, Verdict};
use huren_types::InstitutionLevel;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default_min_level: Option<String>,
    min_evaluator: Option<String>,
    without_qc: Option<String>,
    incomplete_series: Option<String>,
    not_assessable_qc: Option<String>,
    allow_lossy: Option<bool>,
    default_min_qc: Option<String>,
    #[serde(default)]
    min_qc: BTreeMap<String, String>,
    #[serde(default)]
    reasons: Vec<ReasonEntry>,
    /// The headline recognition rate: `eligible` (default) or `overall`.
    rate: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonEntry {
    code: String,
    zh: String,
    en: String,
    #[serde(default = "yes")]
    counts: bool,
    #[serde(default)]
    needs_note: bool,
}

fn yes() -> bool {
    true
}

/// A minimum grade: 甲/乙/丙 or A/B/C (废片 is no minimum).
fn grade(s: &str) -> Option<QcGrade> {
    QcGrade::parse(s).filter(|g| *g != QcGrade::Reject)
}

fn verdict(s: &str) -> Option<Verdict> {
    Some(match s.trim() {
        "recognizable" | "可互认" => Verdict::Recognizable,
        "reference_only" | "仅供参考" => Verdict::ReferenceOnly,
        "not_recognizable" | "不予互认" => Verdict::NotRecognizable,
        _ => return None,
    })
}

/// Parses and checks a policy file. Item codes in `min_qc` are checked against the catalog by
/// the caller (the catalog is data, not known here).
pub fn parse_policy(text: &str) -> Result<RegionPolicy, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() as u64 + 1)
            .unwrap_or(1);
        vec![LineError {
            line,
            message: e.message().to_owned(),
        }]
    })?;
    // A problem found after parsing is named by the first line that sets the key.
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(1, |n| n as u64 + 1)
    };
    let mut errors = Vec::new();
    let mut bad = |key: &str, message: String| {
        errors.push(LineError {
            line: line_of(key),
            message,
        })
    };
    let mut policy = Policy::default();
    if let Some(l) = &file.default_min_level {
        match InstitutionLevel::parse(l) {
            Ok(level) => policy.default_min_level = level,
            Err(_) => bad(
                "default_min_level",
                format!("default_min_level {l:?} is not 三级/二级/一级"),
            ),
        }
    }
    if let Some(e) = &file.min_evaluator {
        match Evaluator::parse(e) {
            Some(e) => {
                policy.min_evaluator = match e {
                    Evaluator::County => EvaluatedBy::County,
                    Evaluator::City => EvaluatedBy::City,
                    Evaluator::Province => EvaluatedBy::Province,
                    Evaluator::National => EvaluatedBy::National,
                }
            }
            None => bad(
                "min_evaluator",
                format!("min_evaluator {e:?} is not county/city/province/national"),
            ),
        }
    }
    for (name, value, slot) in [
        ("without_qc", &file.without_qc, &mut policy.without_qc),
        (
            "incomplete_series",
            &file.incomplete_series,
            &mut policy.incomplete_series,
        ),
        (
            "not_assessable_qc",
            &file.not_assessable_qc,
            &mut policy.not_assessable_qc,
        ),
    ] {
        if let Some(v) = value {
            match verdict(v) {
                Some(v) => *slot = v,
                None => bad(
                    name,
                    format!("{name} {v:?} is not recognizable/reference_only/not_recognizable"),
                ),
            }
        }
    }
    if let Some(lossy) = file.allow_lossy {
        policy.allow_lossy = lossy;
    }
    if let Some(g) = &file.default_min_qc {
        match grade(g) {
            Some(g) => policy.default_min_qc = g,
            None => bad(
                "default_min_qc",
                format!("default_min_qc {g:?} is not 甲/乙/丙"),
            ),
        }
    }
    let mut min_qc = BTreeMap::new();
    for (item, g) in &file.min_qc {
        match grade(g) {
            Some(g) => {
                min_qc.insert(item.trim().to_owned(), g);
            }
            None => bad(item, format!("min_qc for {item}: {g:?} is not 甲/乙/丙")),
        }
    }
    let mut reasons: Vec<ReexamReason> = Vec::new();
    for r in file.reasons {
        let code = r.code.trim().to_owned();
        let regional = code.len() == 2
            && code.bytes().all(|b| b.is_ascii_digit())
            && ("07"..="97").contains(&code.as_str());
        let at = format!("code = \"{}\"", r.code);
        let mut bad = |message: String| {
            let line = text
                .lines()
                .position(|l| l.trim() == at)
                .map_or(1, |n| n as u64 + 1);
            errors.push(LineError { line, message });
        };
        if !regional {
            bad(format!(
                "reason {code:?}: a region's codes are two digits from 07 to 97 (01–06, 98 and 99 are the platform's)"
            ));
        } else if reasons.iter().any(|x| x.code == code) {
            bad(format!("reason {code} appears twice"));
        } else if r.zh.trim().is_empty() || r.en.trim().is_empty() {
            bad(format!("reason {code} needs both zh and en"));
        } else {
            reasons.push(ReexamReason {
                code: Cow::Owned(code),
                zh: Cow::Owned(r.zh.trim().to_owned()),
                en: Cow::Owned(r.en.trim().to_owned()),
                counts: r.counts,
                needs_note: r.needs_note,
            });
        }
    }
    let rate = match file.rate.as_deref().map(str::trim) {
        None | Some("eligible") => huren_recognition::RateDefinition::Eligible,
        Some("overall") => huren_recognition::RateDefinition::Overall,
        Some(other) => {
            errors.push(LineError {
                line: line_of("rate"),
                message: format!("rate {other:?} is eligible or overall"),
            });
            huren_recognition::RateDefinition::Eligible
        }
    };
    if errors.is_empty() {
        Ok(RegionPolicy {
            policy,
            min_qc,
            reasons,
            rate,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_policy() {
        assert_eq!(parse_policy(""), Ok(RegionPolicy::default()));
    }

    #[test]
    fn a_full_file_sets_every_part() {
        let p = parse_policy(
            r#"
default_min_level = "三级"
min_evaluator = "省级"
without_qc = "不予互认"
incomplete_series = "not_recognizable"
allow_lossy = true
default_min_qc = "丙"

[min_qc]
MR-HEAD = "甲"

[[reasons]]
code = "07"
zh = "患者要求复查"
en = "the patient asks for a repeat"
counts = false
"#,
        )
        .expect("valid");
        assert_eq!(p.policy.default_min_level, InstitutionLevel::Tertiary);
        assert_eq!(p.policy.min_evaluator, EvaluatedBy::Province);
        assert_eq!(p.policy.without_qc, Verdict::NotRecognizable);
        assert_eq!(p.policy.incomplete_series, Verdict::NotRecognizable);
        assert!(p.policy.allow_lossy);
        assert_eq!(p.policy.default_min_qc, QcGrade::C);
        assert_eq!(p.min_qc.get("MR-HEAD"), Some(&QcGrade::A));
        let r = p.reason("07").expect("regional reason");
        assert!(!r.counts && !r.needs_note);
        assert!(
            p.reason("06").is_some_and(|r| r.needs_note),
            "platform reasons stay"
        );
    }

    #[test]
    fn every_problem_is_named() {
        let errors = parse_policy(
            r#"
default_min_level = "四级"
without_qc = "maybe"
[min_qc]
CT = "丁"
[[reasons]]
code = "98"
zh = "x"
en = "x"
[[reasons]]
code = "08"
zh = ""
en = "x"
"#,
        )
        .expect_err("invalid");
        let text: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        assert_eq!(text.len(), 5, "{text:?}");
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 5, 7, 11], "{text:?}");
        assert!(text.iter().any(|m| m.contains("四级")));
        assert!(text.iter().any(|m| m.contains("\"98\"")));
    }

    #[test]
    fn syntax_errors_and_unknown_keys_give_the_line() {
        let e = parse_policy("allow_lossy = true\nallow_lossy = false\n").expect_err("dupe");
        assert_eq!(e[0].line, 2);
        let e = parse_policy("\nallow_lossless = true\n").expect_err("unknown key");
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("allow_lossless"), "{}", e[0].message);
    }
}
