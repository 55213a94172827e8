//! The catalog use cases (issue #5 item 8): operators load catalog versions, prices, code
//! mappings and study rules from CSV; everyone reads items and effective prices; operators see
//! which studies no rule maps (aggregates, no patient data). Parsing and matching are
//! `huren_catalog`'s (pure); this is loading, checking against the database, and audit.

pub use crate::imports::CatalogError;
use crate::ports::StoreError;
use crate::recognition_config::Config as RecognitionConfig;
use crate::{AdminError, Archive};
use async_trait::async_trait;
use huren_access::{AdminGrant, CatalogGrant};
use huren_catalog::{CodeMapping, Item, MapKind, Price, StudyFacts, StudyRule};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The catalog's storage port.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn import_catalog_version(
        &self,
        v: &CatalogVersion,
        items: &[Item],
    ) -> Result<i64, StoreError>;
    async fn catalog_versions(&self) -> Result<Vec<CatalogVersion>, StoreError>;
    async fn catalog_items(&self, version_id: i64) -> Result<Vec<Item>, StoreError>;
    /// Which of `codes` appear in no catalog version.
    async fn unknown_item_codes(&self, codes: &[&str]) -> Result<Vec<String>, StoreError>;
    async fn upsert_prices(&self, prices: &[Price]) -> Result<(), StoreError>;
    async fn item_prices(&self, item_code: &str) -> Result<Vec<Price>, StoreError>;
    /// `Ok(Err(code))`: an institution that does not exist (nothing written).
    async fn upsert_code_mappings(
        &self,
        maps: &[CodeMapping],
    ) -> Result<Result<(), String>, StoreError>;
    async fn code_mappings(&self) -> Result<Vec<CodeMapping>, StoreError>;
    async fn replace_study_rules(&self, rules: &[StudyRule]) -> Result<(), StoreError>;
    async fn study_rules(&self) -> Result<Vec<StudyRule>, StoreError>;
    async fn study_groups(&self) -> Result<Vec<StudyGroup>, StoreError>;
    // --- recognition configuration (issue #7): sets of qualification records, scope rules ---
    async fn import_qualifications(
        &self,
        set: &RecognitionSet,
        records: &[huren_catalog::QualificationRecord],
    ) -> Result<i64, StoreError>;
    async fn import_scopes(
        &self,
        set: &RecognitionSet,
        rules: &[huren_catalog::ScopeRule],
    ) -> Result<i64, StoreError>;
    /// Every set imported, newest first (at most `limit`).
    async fn recognition_sets(&self, limit: i64) -> Result<Vec<RecognitionSet>, StoreError>;
    /// The newest set of a kind (`qualifications`, `scopes`).
    /// The set of `kind` in force at `at` (unix seconds; now when `None`): the newest imported
    /// by then.
    async fn recognition_set_at(
        &self,
        kind: &str,
        at: Option<i64>,
    ) -> Result<Option<RecognitionSet>, StoreError>;
    async fn qualification_records(
        &self,
        set_id: i64,
    ) -> Result<Vec<huren_catalog::QualificationRecord>, StoreError>;
    async fn scope_rules(&self, set_id: i64) -> Result<Vec<huren_catalog::ScopeRule>, StoreError>;
    /// Stores a policy set; its content is kept as a document (JSON).
    async fn import_policy(&self, set: &RecognitionSet, document: &str) -> Result<i64, StoreError>;
    async fn set_document(&self, set_id: i64) -> Result<Option<String>, StoreError>;
}

/// One kind of configuration as it is in force (see [`Archive::configuration_in_force`]).
#[derive(Debug, Clone)]
pub enum InForce {
    Table(huren_catalog::export::Table),
    Document(String),
}

/// One import of recognition configuration (qualification records or scope rules); the newest
/// of each kind is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecognitionSet {
    pub id: i64,
    pub kind: String,
    pub source_sha256: String,
    pub rows: i64,
    pub imported_at: i64,
    pub imported_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogVersion {
    pub id: i64,
    pub label: String,
    /// YYYY-MM-DD in the region's zone.
    pub effective_from: String,
    pub source_sha256: String,
    pub imported_at: i64,
    pub imported_by: String,
    pub items: i64,
}

/// Studies that look the same to the rules, and how many there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyGroup {
    pub facts: StudyFacts,
    pub studies: i64,
}

/// A price as applied: to which institution, item and day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectivePrice {
    pub item_code: String,
    pub institution: String,
    pub date: String,
    pub price_fen: i64,
    /// The same amount as text in yuan (`128.50`).
    pub price_yuan: String,
    pub price_region: String,
    pub institution_grade: String,
    pub valid_from: String,
}

impl From<AdminError> for CatalogError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Store(s) => CatalogError::Store(s),
            AdminError::Invalid(m)
            | AdminError::Forbidden(m)
            | AdminError::TooMany(m)
            | AdminError::Refused(_, m) => CatalogError::Invalid(m),
            e @ AdminError::Failed { .. } => CatalogError::Store(StoreError::backend("catalog", e)),
        }
    }
}

pub(crate) use huren_types::day::iso;

pub fn fen_to_yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, (fen % 100).abs())
}

/// The catalog files loaded besides items (each a CSV with its own header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogFile {
    Prices,
    Mappings,
    StudyRules,
}

impl Archive {
    /// Loads a prices, mappings or study-rules file; the number of rows taken.
    pub async fn load_catalog_file(
        &self,
        grant: &AdminGrant,
        file: CatalogFile,
        csv: &str,
    ) -> Result<usize, CatalogError> {
        match file {
            CatalogFile::Prices => self.import_prices(grant, csv).await,
            CatalogFile::Mappings => self.import_code_mappings(grant, csv).await,
            CatalogFile::StudyRules => self.import_study_rules(grant, csv).await,
        }
    }

    /// Loads a catalog CSV as a new version that applies from `effective_from`.
    pub async fn import_catalog(
        &self,
        grant: &AdminGrant,
        label: &str,
        effective_from: time::Date,
        csv: &str,
    ) -> Result<CatalogVersion, CatalogError> {
        let items = huren_catalog::parse_items(csv).map_err(CatalogError::Lines)?;
        if label.trim().is_empty() {
            return Err(CatalogError::Invalid("a version needs a label".into()));
        }
        let mut v = CatalogVersion {
            id: 0,
            label: label.trim().to_owned(),
            effective_from: iso(effective_from),
            source_sha256: hex::encode(Sha256::digest(csv.as_bytes())),
            imported_at: crate::time::unix_now(),
            imported_by: grant.principal().label(),
            items: items.len() as i64,
        };
        v.id = self
            .catalog
            .import_catalog_version(&v, &items)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    CatalogError::Invalid(format!("catalog version {} exists", v.label))
                }
                e => CatalogError::Store(e),
            })?;
        self.catalog_cache.clear();
        self.audit_config(
            grant,
            format!("catalog:{}", v.label),
            serde_json::json!({ "effective_from": v.effective_from, "items": v.items, "sha256": v.source_sha256 }),
        )
        .await;
        Ok(v)
    }

    /// The recognition configuration's history: every qualifications, scopes and policy set
    /// imported, newest first; the newest of each kind is in force.
    pub async fn recognition_sets(
        &self,
        _grant: &AdminGrant,
    ) -> Result<Vec<RecognitionSet>, AdminError> {
        Ok(self.catalog.recognition_sets(500).await?)
    }

    /// What is in force today of one kind of configuration, as the file it is imported from
    /// (`huren_catalog::export`): `catalog` (the version in force), `prices`, `mappings`,
    /// `study_rules`, `qualifications`, `scopes`; `policy` is its document (JSON). `None`
    /// when nothing of the kind was imported.
    pub async fn configuration_in_force(
        &self,
        grant: &AdminGrant,
        kind: &str,
    ) -> Result<Option<InForce>, AdminError> {
        use huren_catalog::export;
        let catalog_grant = huren_access::grant_catalog(grant.principal());
        let items = || async {
            Ok::<_, AdminError>(
                self.catalog_items(&catalog_grant, None)
                    .await?
                    .map(|(_, items)| items)
                    .unwrap_or_default(),
            )
        };
        let set = |kind: &'static str| async move {
            Ok::<_, AdminError>(self.catalog.recognition_set_at(kind, None).await?)
        };
        let table = match kind {
            "institutions" => {
                let today = self.today();
                let rows = self
                    .index
                    .list_institutions(today)
                    .await?
                    .into_iter()
                    .map(|i| {
                        vec![
                            i.code,
                            i.name.unwrap_or_default(),
                            i.level.unwrap_or_default(),
                            i.ownership.unwrap_or_default(),
                            i.region.unwrap_or_default(),
                            i.city.unwrap_or_default(),
                            i.organization.unwrap_or_default(),
                            i.division.unwrap_or_default(),
                            iso(today),
                        ]
                    })
                    .collect();
                export::Table {
                    header: crate::institutions_file::INSTITUTION_HEADER,
                    rows,
                }
            }
            "aes" => {
                let codes: std::collections::HashMap<i64, String> = self
                    .index
                    .list_institutions(self.today())
                    .await?
                    .into_iter()
                    .map(|i| (i.id, i.code))
                    .collect();
                let rows = self
                    .index
                    .list_aes()
                    .await?
                    .into_iter()
                    .map(|p| {
                        vec![
                            p.ae_title.to_string(),
                            p.institution_code,
                            p.network.to_string(),
                            p.port.map(|p| p.to_string()).unwrap_or_default(),
                            p.assumed_charset.unwrap_or_default(),
                            p.stable_after_secs
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                            p.default_performer_id
                                .and_then(|id| codes.get(&id).cloned())
                                .unwrap_or_default(),
                            if p.require_tls { "yes" } else { "no" }.to_owned(),
                        ]
                    })
                    .collect();
                export::Table {
                    header: crate::peers_file::AE_HEADER,
                    rows,
                }
            }
            "catalog" => export::items(&items().await?),
            "prices" => {
                let mut all = Vec::new();
                for item in items().await? {
                    all.extend(self.catalog.item_prices(&item.code).await?);
                }
                export::prices(&all)
            }
            "mappings" => export::mappings(&self.catalog.code_mappings().await?),
            "study_rules" => export::rules(&self.catalog.study_rules().await?),
            "qualifications" => match set("qualifications").await? {
                Some(s) => export::qualifications(&self.catalog.qualification_records(s.id).await?),
                None => return Ok(None),
            },
            "scopes" => match set("scopes").await? {
                Some(s) => export::scopes(&self.catalog.scope_rules(s.id).await?),
                None => return Ok(None),
            },
            "policy" => {
                let Some(s) = set("policy").await? else {
                    return Ok(None);
                };
                let doc = self.catalog.set_document(s.id).await?.unwrap_or_default();
                let pretty = serde_json::from_str::<serde_json::Value>(&doc)
                    .and_then(|v| serde_json::to_string_pretty(&v))
                    .unwrap_or(doc);
                return Ok(Some(InForce::Document(pretty)));
            }
            other => {
                return Err(AdminError::Invalid(format!(
                    "unknown kind of configuration {other:?}"
                )));
            }
        };
        Ok(Some(InForce::Table(table)))
    }

    pub async fn catalog_versions(
        &self,
        _grant: &CatalogGrant,
    ) -> Result<Vec<CatalogVersion>, AdminError> {
        Ok(self.catalog.catalog_versions().await?)
    }

    /// The version in force on `date`: the latest that started on or before it.
    pub async fn catalog_version_on(
        &self,
        grant: &CatalogGrant,
        date: time::Date,
    ) -> Result<Option<CatalogVersion>, AdminError> {
        let day = iso(date);
        Ok(self
            .catalog_versions(grant)
            .await?
            .into_iter()
            .rev()
            .find(|v| v.effective_from <= day))
    }

    /// A version's items (by label), or the items in force today.
    pub async fn catalog_items(
        &self,
        grant: &CatalogGrant,
        label: Option<&str>,
    ) -> Result<Option<(CatalogVersion, Vec<Item>)>, AdminError> {
        let v = match label {
            Some(l) => self
                .catalog_versions(grant)
                .await?
                .into_iter()
                .find(|v| v.label == l),
            None => self.catalog_version_on(grant, self.today()).await?,
        };
        let Some(v) = v else {
            return Ok(None);
        };
        let items = self.catalog.catalog_items(v.id).await?;
        Ok(Some((v, items)))
    }

    async fn require_institutions(
        &self,
        codes: impl Iterator<Item = &str>,
    ) -> Result<(), CatalogError> {
        let mut codes: Vec<&str> = codes.collect();
        codes.sort_unstable();
        codes.dedup();
        for inst in codes {
            if self
                .index
                .institution_as_of(inst, self.today())
                .await?
                .is_none()
            {
                return Err(CatalogError::Invalid(format!("unknown institution {inst}")));
            }
        }
        Ok(())
    }

    async fn require_items(&self, codes: Vec<&str>) -> Result<(), CatalogError> {
        let mut codes = codes;
        codes.sort_unstable();
        codes.dedup();
        let unknown = self.catalog.unknown_item_codes(&codes).await?;
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::Invalid(format!(
                "not catalog items: {}",
                unknown.join(", ")
            )))
        }
    }

    /// Adds prices (a row with the same item, region, grade and start replaces the earlier).
    pub async fn import_prices(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<usize, CatalogError> {
        let prices = huren_catalog::parse_prices(csv).map_err(CatalogError::Lines)?;
        self.require_items(prices.iter().map(|p| p.item_code.as_str()).collect())
            .await?;
        self.catalog.upsert_prices(&prices).await?;
        self.catalog_cache.clear();
        // Savings already counted may have had another price in force: look them up again.
        let mut items: Vec<String> = prices.iter().map(|p| p.item_code.clone()).collect();
        items.sort();
        items.dedup();
        self.index
            .reprice_recognition_units(Some(&items), None)
            .await?;
        self.audit_config(
            grant,
            "catalog:prices".into(),
            serde_json::json!({ "rows": prices.len() }),
        )
        .await;
        Ok(prices.len())
    }

    /// The price of `item` at `institution` on `date` (its price region and grade that day).
    pub async fn effective_price(
        &self,
        _grant: &CatalogGrant,
        institution: &str,
        item: &str,
        date: time::Date,
    ) -> Result<Option<EffectivePrice>, AdminError> {
        self.price_in_force(institution, item, date).await
    }

    pub(crate) async fn price_in_force(
        &self,
        institution: &str,
        item: &str,
        date: time::Date,
    ) -> Result<Option<EffectivePrice>, AdminError> {
        let Some(inst) = self.index.institution_as_of(institution, date).await? else {
            return Err(AdminError::Invalid(format!(
                "unknown institution {institution}"
            )));
        };
        let prices = self.catalog.item_prices(item).await?;
        Ok(huren_catalog::effective_price(
            &prices,
            item,
            inst.region.as_deref(),
            inst.level.as_deref(),
            date,
        )
        .map(|p| EffectivePrice {
            item_code: item.to_owned(),
            institution: institution.to_owned(),
            date: iso(date),
            price_fen: p.price_fen,
            price_yuan: fen_to_yuan(p.price_fen),
            price_region: p.price_region.clone(),
            institution_grade: p.institution_grade.clone(),
            valid_from: iso(p.valid_from),
        }))
    }

    /// Adds or replaces institutions' local-code mappings.
    pub async fn import_code_mappings(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<usize, CatalogError> {
        let maps = huren_catalog::parse_mappings(csv).map_err(CatalogError::Lines)?;
        self.require_items(maps.iter().map(|m| m.item_code.as_str()).collect())
            .await?;
        if let Err(inst) = self.catalog.upsert_code_mappings(&maps).await? {
            return Err(CatalogError::Invalid(format!("unknown institution {inst}")));
        }
        self.catalog_cache.clear();
        self.audit_config(
            grant,
            "catalog:mappings".into(),
            serde_json::json!({ "rows": maps.len() }),
        )
        .await;
        Ok(maps.len())
    }

    /// The item an institution's order/charge code or lab test code maps to; a lab code in
    /// LOINC maps to the item with that LOINC when no mapping says otherwise.
    pub async fn item_for_code(
        &self,
        _grant: &CatalogGrant,
        institution: &str,
        kind: MapKind,
        system: &str,
        code: &str,
    ) -> Result<Option<String>, AdminError> {
        Ok(self
            .catalog_snapshot()
            .await?
            .item(institution, kind, system, code))
    }

    /// Replaces the study rules with a file's (all or nothing).
    pub async fn import_study_rules(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<usize, CatalogError> {
        let rules = huren_catalog::parse_rules(csv).map_err(CatalogError::Lines)?;
        self.require_items(rules.iter().map(|r| r.item_code.as_str()).collect())
            .await?;
        self.require_institutions(rules.iter().filter_map(|r| r.institution.as_deref()))
            .await?;
        self.catalog.replace_study_rules(&rules).await?;
        self.catalog_cache.clear();
        self.audit_config(
            grant,
            "catalog:study-rules".into(),
            serde_json::json!({ "rules": rules.len() }),
        )
        .await;
        Ok(rules.len())
    }

    /// Replaces the qualification records in force with a file's (a new set; all or nothing).
    /// Institutions must exist and items be in the catalog (or `*`).
    pub async fn import_qualifications(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<RecognitionSet, CatalogError> {
        let records = huren_catalog::parse_qualifications(csv).map_err(CatalogError::Lines)?;
        self.require_items(
            records
                .iter()
                .map(|q| q.item.as_str())
                .filter(|i| *i != "*")
                .collect(),
        )
        .await?;
        self.require_institutions(records.iter().map(|q| q.institution.as_str()))
            .await?;
        let set = self.new_set(grant, "qualifications", csv, records.len());
        let id = self.catalog.import_qualifications(&set, &records).await?;
        Ok(self.set_recorded(grant, set, id).await)
    }

    /// Replaces the scope rules in force with a file's (a new set; all or nothing).
    pub async fn import_scopes(
        &self,
        grant: &AdminGrant,
        csv: &str,
    ) -> Result<RecognitionSet, CatalogError> {
        let rules = huren_catalog::parse_scopes(csv).map_err(CatalogError::Lines)?;
        let set = self.new_set(grant, "scopes", csv, rules.len());
        let id = self.catalog.import_scopes(&set, &rules).await?;
        Ok(self.set_recorded(grant, set, id).await)
    }

    /// Replaces the region's policy in force with a file's (TOML, docs/recognition.md; a new
    /// set). Items given minimum QC grades must be in the catalog.
    pub async fn import_policy(
        &self,
        grant: &AdminGrant,
        text: &str,
    ) -> Result<RecognitionSet, CatalogError> {
        let policy = huren_catalog::parse_policy(text).map_err(CatalogError::Lines)?;
        self.require_items(policy.min_qc.keys().map(String::as_str).collect())
            .await?;
        let rows = policy.min_qc.len() + policy.reasons.len();
        let set = self.new_set(grant, "policy", text, rows);
        let document =
            serde_json::to_string(&policy).map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let id = self.catalog.import_policy(&set, &document).await?;
        Ok(self.set_recorded(grant, set, id).await)
    }

    /// A set just stored under `id`: audited as a configuration change.
    async fn set_recorded(
        &self,
        grant: &AdminGrant,
        mut set: RecognitionSet,
        id: i64,
    ) -> RecognitionSet {
        set.id = id;
        self.catalog_cache.clear();
        self.audit_config(
            grant,
            format!("recognition:{}:{id}", set.kind),
            serde_json::json!({ "rows": set.rows, "sha256": set.source_sha256 }),
        )
        .await;
        set
    }

    fn new_set(&self, grant: &AdminGrant, kind: &str, csv: &str, rows: usize) -> RecognitionSet {
        RecognitionSet {
            id: 0,
            kind: kind.into(),
            source_sha256: hex::encode(Sha256::digest(csv.as_bytes())),
            rows: rows as i64,
            imported_at: crate::time::unix_now(),
            imported_by: grant.principal().label(),
        }
    }

    /// Studies no rule maps, as aggregates for operators (institution, modality, body part,
    /// description, count) — no patient data.
    pub async fn unmapped_studies(
        &self,
        _grant: &AdminGrant,
    ) -> Result<Vec<StudyGroup>, AdminError> {
        let rules = self.catalog.study_rules().await?;
        Ok(self
            .catalog
            .study_groups()
            .await?
            .into_iter()
            .filter(|g| huren_catalog::match_study(&rules, &g.facts).is_none())
            .collect())
    }
}

/// What reading results needs of the catalog, kept in memory: code mappings, the LOINC index
/// of the version in force, the study rules. Read at most every ten seconds; loads through
/// this process clear it at once (the CLI's are seen within ten seconds).
#[derive(Default)]
pub(crate) struct CatalogCache(
    std::sync::Mutex<Option<(std::time::Instant, Arc<Snapshot>)>>,
    /// The recognition configuration (catalog items, scopes, qualifications) likewise.
    pub(crate) std::sync::Mutex<Option<(std::time::Instant, Arc<RecognitionConfig>)>>,
);

#[derive(Default)]
pub(crate) struct Snapshot {
    /// (institution, kind, code) → [(system, item)], a system-specific entry before `""`.
    mappings: HashMap<(String, MapKind, String), Vec<(String, String)>>,
    loinc: HashMap<String, String>,
    pub(crate) rules: Vec<StudyRule>,
}

impl Snapshot {
    /// The item an institution's code maps to; a lab code in LOINC without a mapping maps to
    /// the item with that LOINC.
    pub(crate) fn item(
        &self,
        institution: &str,
        kind: MapKind,
        system: &str,
        code: &str,
    ) -> Option<String> {
        let mapped = self
            .mappings
            .get(&(institution.to_owned(), kind, code.to_owned()))
            .and_then(|v| {
                v.iter()
                    .find(|(s, _)| s == system)
                    .or_else(|| v.iter().find(|(s, _)| s.is_empty()))
            })
            .map(|(_, item)| item.clone());
        mapped.or_else(|| {
            (kind == MapKind::Lab && matches!(system, "LN" | "http://loinc.org"))
                .then(|| self.loinc.get(code).cloned())
                .flatten()
        })
    }

    /// A lab result's item (its performing institution's code, or its LOINC).
    pub(crate) fn lab(
        &self,
        institution: &str,
        system: Option<&str>,
        code: &str,
    ) -> Option<String> {
        self.item(institution, MapKind::Lab, system.unwrap_or(""), code)
    }
}

impl CatalogCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(10);

    pub(crate) fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = None;
        }
        if let Ok(mut g) = self.1.lock() {
            *g = None;
        }
    }
}

impl Archive {
    pub(crate) async fn catalog_snapshot(&self) -> Result<Arc<Snapshot>, AdminError> {
        if let Ok(g) = self.catalog_cache.0.lock()
            && let Some((at, snap)) = g.as_ref()
            && at.elapsed() < CatalogCache::TTL
        {
            return Ok(snap.clone());
        }
        let mut snap = Snapshot::default();
        for m in self.catalog.code_mappings().await? {
            snap.mappings
                .entry((m.institution, m.kind, m.local_code))
                .or_default()
                .push((m.local_system, m.item_code));
        }
        let day = iso(self.today());
        if let Some(v) = self
            .catalog
            .catalog_versions()
            .await?
            .into_iter()
            .rev()
            .find(|v| v.effective_from <= day)
        {
            snap.loinc = self
                .catalog
                .catalog_items(v.id)
                .await?
                .into_iter()
                .filter_map(|i| Some((i.loinc?, i.code)))
                .collect();
        }
        snap.rules = self.catalog.study_rules().await?;
        let snap = Arc::new(snap);
        if let Ok(mut g) = self.catalog_cache.0.lock() {
            *g = Some((std::time::Instant::now(), snap.clone()));
        }
        Ok(snap)
    }
}
