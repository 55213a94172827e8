//! SQL for the catalog: versions and items, prices, code mappings, study rules, and the study
//! groups the unmapped-studies report is made of.

use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::catalog::{CatalogVersion, StudyGroup};
use huren_archive::ports::StoreError;
use huren_catalog::{CodeMapping, Item, ItemKind, MapKind, Price, StudyRule};
use sqlx::{Row, SqlitePool};

pub(crate) use huren_types::day::parse_iso as parse_date;

pub async fn import_version(
    pool: &SqlitePool,
    v: &CatalogVersion,
    items: &[Item],
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
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
    .await?;
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
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn versions(pool: &SqlitePool) -> Result<Vec<CatalogVersion>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT v.id, v.label, v.effective_from, v.source_sha256, v.imported_at, v.imported_by,
                (SELECT COUNT(*) FROM catalog_item i WHERE i.version_id = v.id)
           FROM catalog_version v ORDER BY v.effective_from, v.id",
    )
    .fetch_all(pool)
    .await?;
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

pub async fn items(pool: &SqlitePool, version_id: i64) -> Result<Vec<Item>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT code, kind, category, name_zh, name_en, modality, body_part, method, loinc, validity_days,
                hr_scope, equivalent
           FROM catalog_item WHERE version_id = ? ORDER BY code",
    )
    .bind(version_id)
    .fetch_all(pool)
    .await?;
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

/// Which of `codes` no catalog version has.
pub async fn unknown_item_codes(
    pool: &SqlitePool,
    codes: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let mut unknown = Vec::new();
    for c in codes {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM catalog_item WHERE code = ?)")
                .bind(c)
                .fetch_one(pool)
                .await?;
        if !known {
            unknown.push((*c).to_owned());
        }
    }
    Ok(unknown)
}

pub async fn upsert_prices(pool: &SqlitePool, prices: &[Price]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
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
        .bind(crate::sqlite::iso(p.valid_from))
        .bind(p.valid_to.map(crate::sqlite::iso))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

pub async fn prices(pool: &SqlitePool, item_code: &str) -> Result<Vec<Price>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT item_code, price_region, institution_grade, price_fen, valid_from, valid_to
           FROM catalog_price WHERE item_code = ?",
    )
    .bind(item_code)
    .fetch_all(pool)
    .await?;
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

/// Inserts or replaces mappings; `Ok(Err(code))` names an institution that does not exist
/// (nothing is written then).
pub async fn upsert_mappings(
    pool: &SqlitePool,
    maps: &[CodeMapping],
    now: i64,
) -> Result<Result<(), String>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for m in maps {
        let inst: Option<i64> =
            sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
                .bind(&m.institution)
                .fetch_optional(&mut *tx)
                .await?;
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
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Every mapping (a few thousand rows at most: the archive keeps them in memory).
pub async fn all_mappings(pool: &SqlitePool) -> Result<Vec<CodeMapping>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.code, m.kind, m.local_system, m.local_code, m.item_code
           FROM catalog_code_map m JOIN institution i ON i.id = m.institution_id",
    )
    .fetch_all(pool)
    .await?;
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

pub async fn replace_rules(pool: &SqlitePool, rules: &[StudyRule]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("DELETE FROM catalog_study_rule")
        .execute(&mut *tx)
        .await?;
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
        .await?;
    }
    tx.commit().await
}

pub async fn rules(pool: &SqlitePool) -> Result<Vec<StudyRule>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT priority, institution_code, modality, body_part, description, procedure_code, item_code
           FROM catalog_study_rule ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
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

/// Studies grouped by what the rules look at, with counts (no patient data).
pub async fn study_groups(pool: &SqlitePool) -> Result<Vec<StudyGroup>, sqlx::Error> {
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
    .await?;
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

#[async_trait]
impl huren_archive::catalog::CatalogStore for SqliteIndex {
    async fn import_qualifications(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        records: &[huren_catalog::QualificationRecord],
    ) -> Result<i64, StoreError> {
        crate::recognition::import_qualifications(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            records,
        )
        .await
        .map_err(db)
    }

    async fn import_scopes(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        rules: &[huren_catalog::ScopeRule],
    ) -> Result<i64, StoreError> {
        crate::recognition::import_scopes(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            rules,
        )
        .await
        .map_err(db)
    }

    async fn import_policy(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        document: &str,
    ) -> Result<i64, StoreError> {
        crate::recognition::import_policy(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            set.rows,
            document,
        )
        .await
        .map_err(db)
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
        crate::recognition::sets(&self.pool, limit)
            .await
            .map_err(db)
    }

    async fn recognition_set_at(
        &self,
        kind: &str,
        at: Option<i64>,
    ) -> Result<Option<huren_archive::catalog::RecognitionSet>, StoreError> {
        crate::recognition::set_at(&self.pool, kind, at)
            .await
            .map_err(db)
    }

    async fn qualification_records(
        &self,
        set_id: i64,
    ) -> Result<Vec<huren_catalog::QualificationRecord>, StoreError> {
        crate::recognition::qualifications(&self.pool, set_id)
            .await
            .map_err(db)
    }

    async fn scope_rules(&self, set_id: i64) -> Result<Vec<huren_catalog::ScopeRule>, StoreError> {
        crate::recognition::scopes(&self.pool, set_id)
            .await
            .map_err(db)
    }

    async fn import_catalog_version(
        &self,
        v: &huren_archive::catalog::CatalogVersion,
        items: &[huren_catalog::Item],
    ) -> Result<i64, StoreError> {
        import_version(&self.pool, v, items).await.map_err(db)
    }

    async fn catalog_versions(
        &self,
    ) -> Result<Vec<huren_archive::catalog::CatalogVersion>, StoreError> {
        versions(&self.pool).await.map_err(db)
    }

    async fn catalog_items(&self, version_id: i64) -> Result<Vec<huren_catalog::Item>, StoreError> {
        items(&self.pool, version_id).await.map_err(db)
    }

    async fn unknown_item_codes(&self, codes: &[&str]) -> Result<Vec<String>, StoreError> {
        unknown_item_codes(&self.pool, codes).await.map_err(db)
    }

    async fn upsert_prices(&self, prices: &[huren_catalog::Price]) -> Result<(), StoreError> {
        upsert_prices(&self.pool, prices).await.map_err(db)
    }

    async fn item_prices(&self, item_code: &str) -> Result<Vec<huren_catalog::Price>, StoreError> {
        prices(&self.pool, item_code).await.map_err(db)
    }

    async fn upsert_code_mappings(
        &self,
        maps: &[huren_catalog::CodeMapping],
    ) -> Result<Result<(), String>, StoreError> {
        upsert_mappings(&self.pool, maps, now()).await.map_err(db)
    }

    async fn code_mappings(&self) -> Result<Vec<huren_catalog::CodeMapping>, StoreError> {
        all_mappings(&self.pool).await.map_err(db)
    }

    async fn replace_study_rules(
        &self,
        rules: &[huren_catalog::StudyRule],
    ) -> Result<(), StoreError> {
        replace_rules(&self.pool, rules).await.map_err(db)
    }

    async fn study_rules(&self) -> Result<Vec<huren_catalog::StudyRule>, StoreError> {
        rules(&self.pool).await.map_err(db)
    }

    async fn study_groups(&self) -> Result<Vec<huren_archive::catalog::StudyGroup>, StoreError> {
        study_groups(&self.pool).await.map_err(db)
    }
}
