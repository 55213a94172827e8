//! The recognition catalog as data (issue #5 item 8; used by the recognition engine, issue #7).
//!
//! An operator loads the region's official catalog from CSV as a new **version** (items are
//! never edited in place: a decision records the version it used, so it can be re-explained
//! later). Around the items: effective-dated **prices** keyed by price region and institution
//! grade (for savings), **code mappings** from each institution's order/charge codes and lab
//! test codes to catalog items, and **study rules** that say which item an imaging study is
//! (modality + body part + description or procedure-code patterns).
//!
//! Pure: parsing, validation, matching and price selection; storage is the archive's business.
//! The CSV formats are documented in docs/catalog.md; every file is UTF-8 (a BOM is allowed),
//! comma-separated with a header row, and a file with any bad line is refused as a whole with
//! every bad line named.

use serde::{Deserialize, Serialize};
use time::Date;

/// Imaging or lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Imaging,
    Lab,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Imaging => "imaging",
            ItemKind::Lab => "lab",
        }
    }

    pub fn parse(s: &str) -> Option<ItemKind> {
        match s.trim() {
            "imaging" | "影像" => Some(ItemKind::Imaging),
            "lab" | "检验" => Some(ItemKind::Lab),
            _ => None,
        }
    }
}

/// One catalog item of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Stable across versions: the same examination keeps its code.
    pub code: String,
    pub kind: ItemKind,
    pub category: String,
    pub name_zh: String,
    pub name_en: Option<String>,
    /// Imaging: DICOM modality (CT, MR, DX, CR, US, …), body part, method (平扫, 增强…).
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub method: Option<String>,
    /// Lab: the LOINC code, when the item is one analyte that has one.
    pub loinc: Option<String>,
    /// Days after the report date during which a result is recognizable.
    pub validity_days: u32,
    /// The HR mark's scope, e.g. 川渝HR, 全国HR.
    pub hr_scope: Option<String>,
    /// Codes of items a result of which counts as this one.
    pub equivalent: Vec<String>,
}

/// A price in fen (0.01 yuan): money is never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub item_code: String,
    /// The institution's price region (its `region` attribute), or `*` for any.
    pub price_region: String,
    /// The institution's grade as stored (`tertiary` for 三级, `secondary`, `primary`,
    /// `other`), or `*` for any; CSV files may write either form.
    pub institution_grade: String,
    pub price_fen: i64,
    pub valid_from: Date,
    /// Exclusive; open when absent.
    pub valid_to: Option<Date>,
}

/// What a local code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// A HIS order or charge code (needed for order-time reminders).
    Order,
    /// A lab's local test code (LIS), as sent in OBX-3 or Observation.code.
    Lab,
}

impl MapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MapKind::Order => "order",
            MapKind::Lab => "lab",
        }
    }
}

/// An institution's local code → a catalog item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeMapping {
    pub institution: String,
    pub kind: MapKind,
    /// The code's system as stored (HL7 name such as `L`, or a URI); empty matches any.
    pub local_system: String,
    pub local_code: String,
    pub item_code: String,
}

/// Which item an imaging study is. Every condition given must hold; the rule with the lowest
/// priority number wins, and among equal priorities the one with more conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyRule {
    pub priority: i32,
    /// Only this institution's studies (its code); any when absent.
    pub institution: Option<String>,
    /// One of the study's modalities.
    pub modality: String,
    /// One of the study's series' BodyPartExamined (case-insensitive).
    pub body_part: Option<String>,
    /// Any of these, case-insensitive, inside the StudyDescription.
    pub description: Vec<String>,
    /// The procedure code (e.g. a report's OBR-4).
    pub procedure_code: Option<String>,
    pub item_code: String,
}

impl StudyRule {
    fn conditions(&self) -> usize {
        1 + usize::from(self.institution.is_some())
            + usize::from(self.body_part.is_some())
            + usize::from(!self.description.is_empty())
            + usize::from(self.procedure_code.is_some())
    }

    pub fn matches(&self, f: &StudyFacts) -> bool {
        let eq = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        self.institution
            .as_deref()
            .is_none_or(|i| i.eq_ignore_ascii_case(&f.institution))
            && f.modalities.iter().any(|m| eq(m, &self.modality))
            && self
                .body_part
                .as_deref()
                .is_none_or(|b| f.body_parts.iter().any(|p| eq(p, b)))
            && (self.description.is_empty()
                || f.description.as_deref().is_some_and(|d| {
                    let d = d.to_lowercase();
                    self.description
                        .iter()
                        .any(|p| d.contains(&p.to_lowercase()))
                }))
            && self
                .procedure_code
                .as_deref()
                .is_none_or(|c| f.procedure_code.as_deref().is_some_and(|p| eq(p, c)))
    }
}

/// What the rules look at in a study (no patient data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StudyFacts {
    pub institution: String,
    pub modalities: Vec<String>,
    pub body_parts: Vec<String>,
    pub description: Option<String>,
    pub procedure_code: Option<String>,
}

/// The item a study is, by the first matching rule.
pub fn match_study<'r>(rules: &'r [StudyRule], facts: &StudyFacts) -> Option<&'r StudyRule> {
    rules
        .iter()
        .filter(|r| r.matches(facts))
        .min_by_key(|r| (r.priority, std::cmp::Reverse(r.conditions())))
}

/// The price that applies to an item at an institution (its price region and grade) on a
/// date: exact region before `*`, exact grade before `*`, then the latest `valid_from`.
pub fn effective_price<'p>(
    prices: &'p [Price],
    item_code: &str,
    region: Option<&str>,
    grade: Option<&str>,
    date: Date,
) -> Option<&'p Price> {
    let fits = |want: Option<&str>, have: &str| have == "*" || want == Some(have);
    prices
        .iter()
        .filter(|p| {
            p.item_code == item_code
                && fits(region, &p.price_region)
                && fits(grade, &p.institution_grade)
                && p.valid_from <= date
                && p.valid_to.is_none_or(|t| date < t)
        })
        .max_by_key(|p| {
            (
                p.price_region != "*",
                p.institution_grade != "*",
                p.valid_from,
            )
        })
}

/// One bad CSV line (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

fn records(text: &str, header: &[&str]) -> Result<Vec<(u64, Vec<String>)>, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let got: Vec<String> = match rd.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            return Err(vec![LineError {
                line: 1,
                message: e.to_string(),
            }]);
        }
    };
    if got != header {
        return Err(vec![LineError {
            line: 1,
            message: format!("the header must be {}", header.join(",")),
        }]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // Lines are counted here from the byte offset: after CRLF line ends (files saved by Excel
    // on Windows) the reader ends a record at the CR and starts the next at its LF, so its own
    // line count is one short, and a bad line must be named exactly.
    let mut counted = (0usize, 1u64);
    let mut line_at = |byte: u64| {
        let mut byte = (byte as usize).min(text.len());
        if text.as_bytes().get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte >= counted.0 {
            counted.1 += text.as_bytes()[counted.0..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted.0 = byte;
        }
        counted.1
    };
    for r in rd.records() {
        match r {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| line_at(p.byte()));
                if rec.iter().all(str::is_empty) {
                    continue;
                }
                out.push((line, rec.iter().map(str::to_owned).collect()));
            }
            Err(e) => errors.push(LineError {
                line: e.position().map_or(0, |p| line_at(p.byte())),
                message: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn date(s: &str) -> Result<Date, String> {
    huren_types::day::parse_iso(s).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Rows of any CSV file with this header, each read by `one` with its line number: every bad
/// line named, or all rows (for files of other kinds than the catalog's, e.g. institutions).
pub fn parse_rows<T>(
    text: &str,
    header: &[&str],
    one: impl Fn(&[String]) -> Result<T, String>,
) -> Result<Vec<(u64, T)>, Vec<LineError>> {
    let rows = records(text, header)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (line, r) in rows {
        match one(&r) {
            Ok(t) => out.push((line, t)),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses all lines, collecting every error.
fn parse_all<T>(
    text: &str,
    header: &[&str],
    one: impl Fn(&[String]) -> Result<T, String>,
) -> Result<Vec<T>, Vec<LineError>> {
    let rows = records(text, header)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (line, r) in rows {
        match one(&r) {
            Ok(t) => out.push(t),
            Err(message) => errors.push(LineError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

pub const ITEM_HEADER: &[&str] = &[
    "code",
    "kind",
    "category",
    "name_zh",
    "name_en",
    "modality",
    "body_part",
    "method",
    "loinc",
    "validity_days",
    "hr_scope",
    "equivalent",
];

/// A catalog version's items. Codes must be unique; imaging items need a modality.
pub fn parse_items(text: &str) -> Result<Vec<Item>, Vec<LineError>> {
    let items = parse_all(text, ITEM_HEADER, |r| {
        let kind = ItemKind::parse(&r[1])
            .ok_or_else(|| format!("kind {:?} is not imaging or lab", r[1]))?;
        if r[0].is_empty() || r[3].is_empty() || r[2].is_empty() {
            return Err("code, category and name_zh are required".into());
        }
        let validity_days: u32 =
            r[9].parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                format!("validity_days {:?} is not a positive whole number", r[9])
            })?;
        if kind == ItemKind::Imaging && r[5].is_empty() {
            return Err("an imaging item needs a modality".into());
        }
        Ok(Item {
            code: r[0].clone(),
            kind,
            category: r[2].clone(),
            name_zh: r[3].clone(),
            name_en: opt(&r[4]),
            modality: opt(&r[5]).map(|m| m.to_ascii_uppercase()),
            body_part: opt(&r[6]).map(|b| b.to_ascii_uppercase()),
            method: opt(&r[7]),
            loinc: opt(&r[8]),
            validity_days,
            hr_scope: opt(&r[10]),
            equivalent: r[11]
                .split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    })?;
    let items = unique(items, |i| &i.code, "code")?;
    let codes: std::collections::HashSet<&str> = items.iter().map(|i| i.code.as_str()).collect();
    let unknown: Vec<LineError> = items
        .iter()
        .enumerate()
        .flat_map(|(n, i)| {
            i.equivalent
                .iter()
                .filter(|e| !codes.contains(e.as_str()))
                .map(move |e| LineError {
                    line: n as u64 + 2,
                    message: format!("equivalent item {e} is not in this catalog"),
                })
        })
        .collect();
    if unknown.is_empty() {
        Ok(items)
    } else {
        Err(unknown)
    }
}

pub const PRICE_HEADER: &[&str] = &[
    "item_code",
    "price_region",
    "institution_grade",
    "price_yuan",
    "valid_from",
    "valid_to",
];

/// Yuan as written (`128`, `128.5`, `128.50`) → fen, exactly.
pub fn yuan_to_fen(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse::<i64>().ok()?,
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

pub fn parse_prices(text: &str) -> Result<Vec<Price>, Vec<LineError>> {
    parse_all(text, PRICE_HEADER, |r| {
        let price_fen =
            yuan_to_fen(&r[3]).ok_or_else(|| format!("price_yuan {:?} is not an amount", r[3]))?;
        let valid_from = date(&r[4])?;
        let valid_to = opt(&r[5]).map(|d| date(&d)).transpose()?;
        if valid_to.is_some_and(|t| t <= valid_from) {
            return Err("valid_to must be after valid_from".into());
        }
        if r[0].is_empty() {
            return Err("item_code is required".into());
        }
        // Grades as institutions store them (三级 → tertiary), so both sides compare equal.
        let institution_grade = match r[2].as_str() {
            "" | "*" => "*".to_owned(),
            g => huren_types::InstitutionLevel::parse(g)
                .map_err(|_| format!("institution_grade {g:?} is not 三级, 二级, 一级, 其他 or *"))?
                .as_str()
                .to_owned(),
        };
        Ok(Price {
            item_code: r[0].clone(),
            price_region: opt(&r[1]).unwrap_or_else(|| "*".into()),
            institution_grade,
            price_fen,
            valid_from,
            valid_to,
        })
    })
}

pub const MAPPING_HEADER: &[&str] = &[
    "institution",
    "kind",
    "local_system",
    "local_code",
    "item_code",
];

pub fn parse_mappings(text: &str) -> Result<Vec<CodeMapping>, Vec<LineError>> {
    parse_all(text, MAPPING_HEADER, |r| {
        let kind = match r[1].as_str() {
            "order" => MapKind::Order,
            "lab" => MapKind::Lab,
            other => return Err(format!("kind {other:?} is not order or lab")),
        };
        if r[0].is_empty() || r[3].is_empty() || r[4].is_empty() {
            return Err("institution, local_code and item_code are required".into());
        }
        Ok(CodeMapping {
            institution: r[0].clone(),
            kind,
            local_system: r[2].clone(),
            local_code: r[3].clone(),
            item_code: r[4].clone(),
        })
    })
}

pub const RULE_HEADER: &[&str] = &[
    "priority",
    "institution",
    "modality",
    "body_part",
    "description",
    "procedure_code",
    "item_code",
];

pub fn parse_rules(text: &str) -> Result<Vec<StudyRule>, Vec<LineError>> {
    parse_all(text, RULE_HEADER, |r| {
        let priority: i32 = r[0]
            .parse()
            .map_err(|_| format!("priority {:?} is not a whole number", r[0]))?;
        if r[2].is_empty() || r[6].is_empty() {
            return Err("modality and item_code are required".into());
        }
        Ok(StudyRule {
            priority,
            institution: opt(&r[1]),
            modality: r[2].to_ascii_uppercase(),
            body_part: opt(&r[3]).map(|b| b.to_ascii_uppercase()),
            description: r[4]
                .split('|')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            procedure_code: opt(&r[5]),
            item_code: r[6].clone(),
        })
    })
}

/// Who evaluated an institution's qualification (external quality assessment, QC centre).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluator {
    County,
    City,
    Province,
    National,
}

impl Evaluator {
    pub fn parse(s: &str) -> Option<Evaluator> {
        Some(match s.trim() {
            "county" | "县级" | "区县级" => Evaluator::County,
            "city" | "市级" => Evaluator::City,
            "province" | "省级" => Evaluator::Province,
            "national" | "国家级" => Evaluator::National,
            _ => return None,
        })
    }
}

/// A qualification record: an institution passed an evaluation for an item (or `*`, every
/// item) in a period, earning an HR scope label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualificationRecord {
    /// The record's own id (e.g. the evaluation certificate number).
    pub record: String,
    pub institution: String,
    pub item: String,
    pub scope: String,
    pub evaluated_by: Evaluator,
    pub valid_from: Date,
    /// Inclusive.
    pub valid_until: Date,
}

pub const QUALIFICATION_HEADER: &[&str] = &[
    "record",
    "institution",
    "item",
    "scope",
    "evaluated_by",
    "valid_from",
    "valid_until",
];

/// Qualification records. Record ids are unique; the period must not end before it starts.
pub fn parse_qualifications(text: &str) -> Result<Vec<QualificationRecord>, Vec<LineError>> {
    let records = parse_all(text, QUALIFICATION_HEADER, |r| {
        for (i, name) in [(0, "record"), (1, "institution"), (2, "item"), (3, "scope")] {
            if r[i].is_empty() {
                return Err(format!("{name} is required"));
            }
        }
        let evaluated_by = Evaluator::parse(&r[4]).ok_or_else(|| {
            format!(
                "evaluated_by {:?} is not county/city/province/national (县级/市级/省级/国家级)",
                r[4]
            )
        })?;
        let (valid_from, valid_until) = (date(&r[5])?, date(&r[6])?);
        if valid_until < valid_from {
            return Err("valid_until is before valid_from".into());
        }
        Ok(QualificationRecord {
            record: r[0].clone(),
            institution: r[1].clone(),
            item: r[2].clone(),
            scope: r[3].clone(),
            evaluated_by,
            valid_from,
            valid_until,
        })
    })?;
    unique(records, |q| &q.record, "record")
}

/// Rows whose key appears once; each repeat is named by its line.
fn unique<T>(rows: Vec<T>, key: impl Fn(&T) -> &str, what: &str) -> Result<Vec<T>, Vec<LineError>> {
    let mut seen = std::collections::HashSet::new();
    let dupes: Vec<LineError> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !seen.insert(key(r).to_owned()))
        .map(|(n, r)| LineError {
            line: n as u64 + 2,
            message: format!("{what} {} appears twice", key(r)),
        })
        .collect();
    if dupes.is_empty() {
        Ok(rows)
    } else {
        Err(dupes)
    }
}

/// What an HR scope label covers: area keys — GB/T 2260 division codes (`division:500000`; a
/// province covers its prefectures and counties), consortia (`consortium:ygt1`), `national`, or
/// the older free-text `city:重庆` (matched exactly; division codes are the way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRule {
    pub label: String,
    pub covers: Vec<String>,
}

pub const SCOPE_HEADER: &[&str] = &["label", "covers"];

/// One area key of a scope file as stored: a bare six-digit code is a division; a division
/// must be a known GB/T 2260 code.
pub fn area_key(raw: &str) -> Result<String, String> {
    let k = raw.trim();
    let code = k.strip_prefix("division:").unwrap_or(k);
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return match divisions::division(code) {
            Some(_) => Ok(format!("division:{code}")),
            None => Err(format!("{code} is not a GB/T 2260 division code")),
        };
    }
    if k.starts_with("division:") {
        return Err(format!("{k:?}: a division is a six-digit GB/T 2260 code"));
    }
    if k == "national" || k.starts_with("city:") || k.starts_with("consortium:") {
        return Ok(k.to_owned());
    }
    Err(format!(
        "{k:?} is not an area key (a GB/T 2260 code such as 500000, consortium:…, national, or city:…)"
    ))
}

/// Scope labels and the areas each covers (`;`-separated area keys, [`area_key`]). Labels are
/// unique; an unknown division code refuses the line.
pub fn parse_scopes(text: &str) -> Result<Vec<ScopeRule>, Vec<LineError>> {
    let rules = parse_all(text, SCOPE_HEADER, |r| {
        if r[0].is_empty() {
            return Err("label is required".into());
        }
        let covers: Vec<String> = r[1]
            .split(';')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(area_key)
            .collect::<Result<_, _>>()?;
        if covers.is_empty() {
            return Err("covers is required (e.g. 500000;510000, or national)".into());
        }
        Ok(ScopeRule {
            label: r[0].clone(),
            covers,
        })
    })?;
    unique(rules, |r| &r.label, "label")
}

pub mod divisions;
pub mod export;
mod policy;
pub use policy::parse_policy;

#[cfg(test)]
mod tests;
