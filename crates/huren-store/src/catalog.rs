//! The catalog in SQL (`CatalogStore`, implemented directly on the index): versions and items,
//! prices, code mappings, study rules, the study groups the unmapped-studies report is made of,
//! and the recognition configuration sets (qualification records, scope rules, the policy; the
//! newest set of a kind in force, docs/recognition.md).

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::catalog::RecognitionSet;
use huren_archive::catalog::{CatalogVersion, StudyGroup};
use huren_archive::ports::StoreError;
use huren_catalog::{
    CodeMapping, Evaluator, Item, ItemKind, MapKind, Price, QualificationRecord, ScopeRule,
    StudyRule,
};
use sqlx::Row;

pub(crate) use huren_types::day::parse_iso as parse_date;

// --- recognition configuration sets (qualification records, scope rules, the policy) ---
pub(crate) fn evaluator_str(e: Evaluator) -> &'static str {
    match e {
        Evaluator::County => "county",
        Evaluator::City => "city",
        Evaluator::Province => "province",
        Evaluator::National => "national",
    }
}

/// The row of a new configuration set of `kind` with `rows` rows, as `set` describes its import.
pub(crate) async fn new_set(
    tx: &mut sqlx::SqliteConnection,
    kind: &str,
    set: &RecognitionSet,
    rows: usize,
) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO recognition_set (kind, source_sha256, rows, imported_at, imported_by)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(kind)
    .bind(&set.source_sha256)
    .bind(rows as i64)
    .bind(set.imported_at)
    .bind(&set.imported_by)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)
}

pub(crate) fn set(r: &sqlx::sqlite::SqliteRow) -> RecognitionSet {
    RecognitionSet {
        id: r.get(0),
        kind: r.get(1),
        source_sha256: r.get(2),
        rows: r.get(3),
        imported_at: r.get(4),
        imported_by: r.get(5),
    }
}

#[async_trait]
impl huren_archive::catalog::CatalogStore for SqliteIndex {
    async fn import_qualifications(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        records: &[huren_catalog::QualificationRecord],
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let id = new_set(&mut tx, "qualifications", set, records.len()).await?;
        for q in records {
            sqlx::query(
                "INSERT INTO qualification_record (set_id, record, institution, item, scope, evaluated_by, valid_from, valid_until)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&q.record)
            .bind(&q.institution)
            .bind(&q.item)
            .bind(&q.scope)
            .bind(evaluator_str(q.evaluated_by))
            .bind(iso(q.valid_from))
            .bind(iso(q.valid_until))
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn import_scopes(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        rules: &[huren_catalog::ScopeRule],
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let id = new_set(&mut tx, "scopes", set, rules.len()).await?;
        for r in rules {
            sqlx::query("INSERT INTO scope_rule (set_id, label, covers) VALUES (?, ?, ?)")
                .bind(id)
                .bind(&r.label)
                .bind(r.covers.join(";"))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn import_policy(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        document: &str,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO recognition_set (kind, source_sha256, rows, imported_at, imported_by, document)
             VALUES ('policy', ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&set.source_sha256)
        .bind(set.rows)
        .bind(set.imported_at)
        .bind(&set.imported_by)
        .bind(document)
        .fetch_one(&self.pool)
        .await.map_err(db)
    }

    async fn set_document(&self, set_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT document FROM recognition_set WHERE id = ?")
            .bind(set_id)
            .fetch_optional(&self.pool)
            .await
            .map(Option::flatten)
            .map_err(db)
    }

    async fn recognition_sets(
        &self,
        limit: i64,
    ) -> Result<Vec<huren_archive::catalog::RecognitionSet>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set
              ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        Ok(rows.iter().map(set).collect())
    }

    async fn recognition_set_at(
        &self,
        kind: &str,
        at: Option<i64>,
    ) -> Result<Option<huren_archive::catalog::RecognitionSet>, StoreError> {
        let pool = &self.pool;
        let row = sqlx::query(
            "SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set
              WHERE kind = ?1 AND (?2 IS NULL OR imported_at <= ?2) ORDER BY id DESC LIMIT 1",
        )
        .bind(kind)
        .bind(at)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
        Ok(row.as_ref().map(set))
    }

    async fn qualification_records(
        &self,
        set_id: i64,
    ) -> Result<Vec<huren_catalog::QualificationRecord>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT record, institution, item, scope, evaluated_by, valid_from, valid_until
               FROM qualification_record WHERE set_id = ? ORDER BY record",
        )
        .bind(set_id)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(QualificationRecord {
                    record: r.get(0),
                    institution: r.get(1),
                    item: r.get(2),
                    scope: r.get(3),
                    evaluated_by: Evaluator::parse(r.get::<&str, _>(4))?,
                    valid_from: parse_date(r.get::<&str, _>(5))?,
                    valid_until: parse_date(r.get::<&str, _>(6))?,
                })
            })
            .collect())
    }

    async fn scope_rules(&self, set_id: i64) -> Result<Vec<huren_catalog::ScopeRule>, StoreError> {
        let pool = &self.pool;
        let rows =
            sqlx::query("SELECT label, covers FROM scope_rule WHERE set_id = ? ORDER BY label")
                .bind(set_id)
                .fetch_all(pool)
                .await
                .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| ScopeRule {
                label: r.get(0),
                covers: r
                    .get::<&str, _>(1)
                    .split(';')
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
            .collect())
    }

    async fn import_catalog_version(
        &self,
        v: &huren_archive::catalog::CatalogVersion,
        items: &[huren_catalog::Item],
    ) -> Result<i64, StoreError> {
        let pool = &self.pool;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO catalog_version (label, effective_from, source_sha256, imported_at, imported_by)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&v.label)
        .bind(&v.effective_from)
        .bind(&v.source_sha256)
        .bind(v.imported_at)
        .bind(&v.imported_by)
        .fetch_one(&mut *tx)
        .await.map_err(db)?;
        for i in items {
            sqlx::query(
                "INSERT INTO catalog_item (version_id, code, kind, category, name_zh, name_en, modality, body_part,
                   method, loinc, validity_days, hr_scope, equivalent)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&i.code)
            .bind(i.kind.as_str())
            .bind(&i.category)
            .bind(&i.name_zh)
            .bind(&i.name_en)
            .bind(&i.modality)
            .bind(&i.body_part)
            .bind(&i.method)
            .bind(&i.loinc)
            .bind(i64::from(i.validity_days))
            .bind(&i.hr_scope)
            .bind(i.equivalent.join(";"))
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn catalog_versions(
        &self,
    ) -> Result<Vec<huren_archive::catalog::CatalogVersion>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT v.id, v.label, v.effective_from, v.source_sha256, v.imported_at, v.imported_by,
                    (SELECT COUNT(*) FROM catalog_item i WHERE i.version_id = v.id)
               FROM catalog_version v ORDER BY v.effective_from, v.id",
        )
        .fetch_all(pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| CatalogVersion {
                id: r.get(0),
                label: r.get(1),
                effective_from: r.get(2),
                source_sha256: r.get(3),
                imported_at: r.get(4),
                imported_by: r.get(5),
                items: r.get(6),
            })
            .collect())
    }

    async fn catalog_items(&self, version_id: i64) -> Result<Vec<huren_catalog::Item>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT code, kind, category, name_zh, name_en, modality, body_part, method, loinc, validity_days,
                    hr_scope, equivalent
               FROM catalog_item WHERE version_id = ? ORDER BY code",
        )
        .bind(version_id)
        .fetch_all(pool)
        .await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Item {
                code: r.get(0),
                kind: ItemKind::parse(r.get(1)).unwrap_or(ItemKind::Lab),
                category: r.get(2),
                name_zh: r.get(3),
                name_en: r.get(4),
                modality: r.get(5),
                body_part: r.get(6),
                method: r.get(7),
                loinc: r.get(8),
                validity_days: r.get::<i64, _>(9).try_into().unwrap_or(0),
                hr_scope: r.get(10),
                equivalent: r
                    .get::<String, _>(11)
                    .split(';')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
            .collect())
    }

    async fn unknown_item_codes(&self, codes: &[&str]) -> Result<Vec<String>, StoreError> {
        let pool = &self.pool;
        let mut unknown = Vec::new();
        for c in codes {
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM catalog_item WHERE code = ?)")
                    .bind(c)
                    .fetch_one(pool)
                    .await
                    .map_err(db)?;
            if !known {
                unknown.push((*c).to_owned());
            }
        }
        Ok(unknown)
    }

    async fn upsert_prices(&self, prices: &[huren_catalog::Price]) -> Result<(), StoreError> {
        let pool = &self.pool;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for p in prices {
            sqlx::query(
                "INSERT INTO catalog_price (item_code, price_region, institution_grade, price_fen, valid_from, valid_to)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (item_code, price_region, institution_grade, valid_from)
                 DO UPDATE SET price_fen = excluded.price_fen, valid_to = excluded.valid_to",
            )
            .bind(&p.item_code)
            .bind(&p.price_region)
            .bind(&p.institution_grade)
            .bind(p.price_fen)
            .bind(crate::sql::iso(p.valid_from))
            .bind(p.valid_to.map(crate::sql::iso))
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn item_prices(&self, item_code: &str) -> Result<Vec<huren_catalog::Price>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT item_code, price_region, institution_grade, price_fen, valid_from, valid_to
               FROM catalog_price WHERE item_code = ?",
        )
        .bind(item_code)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Price {
                    item_code: r.get(0),
                    price_region: r.get(1),
                    institution_grade: r.get(2),
                    price_fen: r.get(3),
                    valid_from: parse_date(r.get(4))?,
                    valid_to: r.get::<Option<String>, _>(5).and_then(|d| parse_date(&d)),
                })
            })
            .collect())
    }

    async fn upsert_code_mappings(
        &self,
        maps: &[huren_catalog::CodeMapping],
    ) -> Result<Result<(), String>, StoreError> {
        let pool = &self.pool;
        let now = now();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for m in maps {
            let inst: Option<i64> =
                sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
                    .bind(&m.institution)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            let Some(inst) = inst else {
                return Ok(Err(m.institution.clone()));
            };
            sqlx::query(
                "INSERT INTO catalog_code_map (institution_id, kind, local_system, local_code, item_code, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (institution_id, kind, local_code, local_system)
                 DO UPDATE SET item_code = excluded.item_code, updated_at = excluded.updated_at",
            )
            .bind(inst)
            .bind(m.kind.as_str())
            .bind(&m.local_system)
            .bind(&m.local_code)
            .bind(&m.item_code)
            .bind(now)
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Ok(()))
    }

    async fn code_mappings(&self) -> Result<Vec<huren_catalog::CodeMapping>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT i.code, m.kind, m.local_system, m.local_code, m.item_code
               FROM catalog_code_map m JOIN institution i ON i.id = m.institution_id",
        )
        .fetch_all(pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| CodeMapping {
                institution: r.get(0),
                kind: if r.get::<String, _>(1) == "order" {
                    MapKind::Order
                } else {
                    MapKind::Lab
                },
                local_system: r.get(2),
                local_code: r.get(3),
                item_code: r.get(4),
            })
            .collect())
    }

    async fn replace_study_rules(
        &self,
        rules: &[huren_catalog::StudyRule],
    ) -> Result<(), StoreError> {
        let pool = &self.pool;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        sqlx::query("DELETE FROM catalog_study_rule")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for r in rules {
            sqlx::query(
                "INSERT INTO catalog_study_rule (priority, institution_code, modality, body_part, description, procedure_code, item_code)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.priority)
            .bind(&r.institution)
            .bind(&r.modality)
            .bind(&r.body_part)
            .bind(r.description.join("|"))
            .bind(&r.procedure_code)
            .bind(&r.item_code)
            .execute(&mut *tx)
            .await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn study_rules(&self) -> Result<Vec<huren_catalog::StudyRule>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT priority, institution_code, modality, body_part, description, procedure_code, item_code
               FROM catalog_study_rule ORDER BY id",
        )
        .fetch_all(pool)
        .await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| StudyRule {
                priority: r.get(0),
                institution: r.get(1),
                modality: r.get(2),
                body_part: r.get(3),
                description: r
                    .get::<String, _>(4)
                    .split('|')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                procedure_code: r.get(5),
                item_code: r.get(6),
            })
            .collect())
    }

    async fn study_groups(&self) -> Result<Vec<huren_archive::catalog::StudyGroup>, StoreError> {
        let pool = &self.pool;
        let rows = sqlx::query(
            "SELECT institution, modalities, parts, description, proc, COUNT(*) FROM (
               SELECT i.code AS institution, s.modalities AS modalities,
                      (SELECT group_concat(DISTINCT upper(se.body_part)) FROM series se
                        WHERE se.study_id = s.id AND se.body_part IS NOT NULL AND se.body_part != '') AS parts,
                      s.description AS description,
                      (SELECT r.procedure_code FROM report r WHERE r.study_id = s.id ORDER BY r.id DESC LIMIT 1) AS proc
                 FROM study s JOIN institution i ON i.id = s.institution_id)
              GROUP BY 1, 2, 3, 4, 5 ORDER BY 6 DESC",
        )
        .fetch_all(pool)
        .await.map_err(db)?;
        let split = |s: Option<String>, sep: char| -> Vec<String> {
            s.map(|s| {
                s.split(sep)
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        Ok(rows
            .into_iter()
            .map(|r| StudyGroup {
                facts: huren_catalog::StudyFacts {
                    institution: r.get(0),
                    modalities: split(r.get(1), '\\'),
                    body_parts: split(r.get(2), ','),
                    description: r.get(3),
                    procedure_code: r.get(4),
                },
                studies: r.get(5),
            })
            .collect())
    }
}
