//! The recognition configuration in force — catalog items, HR scopes, qualification records
//! and the region's policy, with the versions they came from — as the rules read it
//! (`recognition` builds it from the catalog store; `catalog` keeps it cached).

use huren_recognition as rec;
use std::collections::HashMap;

/// The configuration in force: read at most every ten seconds (loads through this process clear
/// it at once, like the catalog snapshot).
#[cfg_attr(test, derive(Default))]
pub(crate) struct Config {
    pub(crate) catalog_version: Option<String>,
    pub(crate) items: HashMap<String, huren_catalog::Item>,
    pub(crate) scopes: HashMap<String, Vec<String>>,
    pub(crate) qualifications: Vec<rec::Qualification>,
    pub(crate) qualification_set: Option<i64>,
    pub(crate) scope_set: Option<i64>,
    pub(crate) policy: rec::RegionPolicy,
    pub(crate) policy_set: Option<i64>,
    /// The scopes' division keys in words (`division:500000` → 重庆市), for explanations.
    pub(crate) area_names: std::collections::BTreeMap<String, String>,
}

impl Config {
    pub(crate) fn item(&self, code: &str) -> Option<rec::Item> {
        let i = self.items.get(code)?;
        Some(rec::Item {
            code: i.code.clone(),
            name_zh: i.name_zh.clone(),
            name_en: i.name_en.clone(),
            validity_days: i.validity_days,
            scope_label: i.hr_scope.clone(),
            covers: i
                .hr_scope
                .as_ref()
                .and_then(|l| self.scopes.get(l))
                .cloned()
                .unwrap_or_default(),
            equivalent: i.equivalent.clone(),
            min_qc: self.policy.min_qc.get(code).copied(),
        })
    }
}
