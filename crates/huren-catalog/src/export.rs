//! What is in force, written back in the form it is imported in: the same headers, separators
//! and date format, so that an operator can download a file, change a line and import it again
//! (`parse_*(write(x)) == x`, tested on the demo catalog).

use crate::{
    CodeMapping, Evaluator, ITEM_HEADER, Item, MAPPING_HEADER, MapKind, PRICE_HEADER, Price,
    QUALIFICATION_HEADER, QualificationRecord, RULE_HEADER, SCOPE_HEADER, ScopeRule, StudyRule,
};

/// Rows under a file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table as a CSV file (RFC 4180 quoting where a field needs it).
    pub fn to_csv(&self) -> String {
        let field = |f: &str| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_owned()
            }
        };
        let mut out = self.header.join(",");
        out.push('\n');
        for r in &self.rows {
            out.push_str(&r.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        out
    }
}

use huren_types::day::iso as day;

fn or_empty(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

pub fn items(items: &[Item]) -> Table {
    Table {
        header: ITEM_HEADER,
        rows: items
            .iter()
            .map(|i| {
                vec![
                    i.code.clone(),
                    i.kind.as_str().to_owned(),
                    i.category.clone(),
                    i.name_zh.clone(),
                    or_empty(&i.name_en),
                    or_empty(&i.modality),
                    or_empty(&i.body_part),
                    or_empty(&i.method),
                    or_empty(&i.loinc),
                    i.validity_days.to_string(),
                    or_empty(&i.hr_scope),
                    i.equivalent.join(";"),
                ]
            })
            .collect(),
    }
}

pub fn prices(prices: &[Price]) -> Table {
    Table {
        header: PRICE_HEADER,
        rows: prices
            .iter()
            .map(|p| {
                vec![
                    p.item_code.clone(),
                    p.price_region.clone(),
                    p.institution_grade.clone(),
                    format!("{}.{:02}", p.price_fen / 100, p.price_fen % 100),
                    day(p.valid_from),
                    p.valid_to.map(day).unwrap_or_default(),
                ]
            })
            .collect(),
    }
}

pub fn mappings(mappings: &[CodeMapping]) -> Table {
    Table {
        header: MAPPING_HEADER,
        rows: mappings
            .iter()
            .map(|m| {
                vec![
                    m.institution.clone(),
                    match m.kind {
                        MapKind::Order => "order",
                        MapKind::Lab => "lab",
                    }
                    .to_owned(),
                    m.local_system.clone(),
                    m.local_code.clone(),
                    m.item_code.clone(),
                ]
            })
            .collect(),
    }
}

pub fn rules(rules: &[StudyRule]) -> Table {
    Table {
        header: RULE_HEADER,
        rows: rules
            .iter()
            .map(|r| {
                vec![
                    r.priority.to_string(),
                    or_empty(&r.institution),
                    r.modality.clone(),
                    or_empty(&r.body_part),
                    r.description.join("|"),
                    or_empty(&r.procedure_code),
                    r.item_code.clone(),
                ]
            })
            .collect(),
    }
}

pub fn qualifications(records: &[QualificationRecord]) -> Table {
    Table {
        header: QUALIFICATION_HEADER,
        rows: records
            .iter()
            .map(|q| {
                vec![
                    q.record.clone(),
                    q.institution.clone(),
                    q.item.clone(),
                    q.scope.clone(),
                    match q.evaluated_by {
                        Evaluator::County => "county",
                        Evaluator::City => "city",
                        Evaluator::Province => "province",
                        Evaluator::National => "national",
                    }
                    .to_owned(),
                    day(q.valid_from),
                    day(q.valid_until),
                ]
            })
            .collect(),
    }
}

pub fn scopes(rules: &[ScopeRule]) -> Table {
    Table {
        header: SCOPE_HEADER,
        rows: rules
            .iter()
            .map(|r| vec![r.label.clone(), r.covers.join(";")])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo(name: &str) -> String {
        // The directory cargo runs the test in, not the one it was compiled in: a binary
        // reused from a shared target directory may come from another clone's path.
        let dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
        let p = std::path::Path::new(&dir)
            .join("../huren/demo/catalog")
            .join(name);
        std::fs::read_to_string(p).expect("demo catalog file")
    }

    #[test]
    fn every_file_comes_back_as_it_was_read() {
        let parsed = crate::parse_items(&demo("items.csv")).expect("items");
        assert_eq!(
            crate::parse_items(&items(&parsed).to_csv()).expect("again"),
            parsed
        );
        let parsed = crate::parse_prices(&demo("prices.csv")).expect("prices");
        assert_eq!(
            crate::parse_prices(&prices(&parsed).to_csv()).expect("again"),
            parsed
        );
        let parsed = crate::parse_mappings(&demo("mappings.csv")).expect("mappings");
        assert_eq!(
            crate::parse_mappings(&mappings(&parsed).to_csv()).expect("again"),
            parsed
        );
        let parsed = crate::parse_rules(&demo("study-rules.csv")).expect("rules");
        assert_eq!(
            crate::parse_rules(&rules(&parsed).to_csv()).expect("again"),
            parsed
        );
        let parsed = crate::parse_scopes(&demo("scopes.csv")).expect("scopes");
        assert_eq!(
            crate::parse_scopes(&scopes(&parsed).to_csv()).expect("again"),
            parsed
        );
        let q = "record,institution,item,scope,evaluated_by,valid_from,valid_until\n\
                 Q-1,city,*,川渝HR,province,2024-01-01,2026-12-31\n\
                 \"Q,2\",county,IMG-CT-CHEST-PLAIN,川渝HR,县级,2025-01-01,2025-12-31\n";
        let parsed = crate::parse_qualifications(q).expect("qualifications");
        let again = qualifications(&parsed).to_csv();
        assert!(again.contains("\"Q,2\""), "{again}");
        assert_eq!(crate::parse_qualifications(&again).expect("again"), parsed);
    }
}
