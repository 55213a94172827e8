use crate::linking::*;
use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use sqlx::Row;

#[async_trait]
impl PersonIndex for SqliteIndex {
    async fn link_reviews(&self, state: &str, limit: u32) -> Result<Vec<LinkReview>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM link_review WHERE state = ? ORDER BY id LIMIT ?")
                .bind(state)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(load_review::<sqlx::Sqlite>(&mut conn, id).await?);
        }
        Ok(out)
    }

    async fn link_review(&self, id: i64) -> Result<Option<LinkReview>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM link_review WHERE id = ?)")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        if !exists {
            return Ok(None);
        }
        Ok(Some(load_review::<sqlx::Sqlite>(&mut conn, id).await?))
    }

    async fn merge_persons(
        &self,
        survivor: &str,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let s = person_id::<sqlx::Sqlite>(&mut tx, survivor).await?;
        let m = person_id::<sqlx::Sqlite>(&mut tx, merged).await?;
        if s == m {
            return Err(StoreError::Invalid(
                "a person cannot be merged into itself".into(),
            ));
        }
        if conflicting_numbers::<sqlx::Sqlite>(&mut tx, s, m)
            .await
            .map_err(db)?
        {
            return Err(StoreError::Conflict(
                "the two persons hold different identity numbers of one document".into(),
            ));
        }
        let moved = move_person::<sqlx::Sqlite>(
            &mut tx,
            s,
            m,
            ("steward_merge", actor, Some(reason), None),
            now(),
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(moved as usize)
    }

    async fn unmerge_person(
        &self,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let m = person_id::<sqlx::Sqlite>(&mut tx, merged).await?;
        let survivor: Option<i64> =
            sqlx::query_scalar("SELECT merged_into FROM person WHERE id = ?")
                .bind(m)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let Some(s) = survivor else {
            return Err(StoreError::Invalid(format!(
                "person {merged} is not merged"
            )));
        };
        // Exactly the records whose latest move was from `merged` to the survivor.
        let ts = now();
        let moved = sqlx::query(
            "WITH back AS (
               SELECT p.id FROM patient p WHERE p.person_id = ?1 AND
                 (SELECT e.from_person FROM person_link_event e WHERE e.patient_id = p.id ORDER BY e.id DESC LIMIT 1) = ?2)
             INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor, reason)
               SELECT ?3, id, ?1, ?2, 'steward_unmerge', ?4, ?5 FROM back",
        )
        .bind(s)
        .bind(m)
        .bind(ts)
        .bind(actor)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::Conflict(
                "no record of that merge is still with the survivor (undo later merges first)"
                    .into(),
            ));
        }
        sqlx::query(
            "UPDATE patient SET person_id = ?2, updated_at = ?3 WHERE person_id = ?1 AND
               (SELECT e.rule FROM person_link_event e WHERE e.patient_id = patient.id ORDER BY e.id DESC LIMIT 1) = 'steward_unmerge';
             UPDATE person SET merged_into = NULL WHERE id = ?2;",
        )
        .bind(s)
        .bind(m)
        .bind(ts)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(moved as usize)
    }

    async fn decide_link_review(
        &self,
        id: i64,
        link: bool,
        actor: &str,
        reason: &str,
    ) -> Result<LinkReview, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let review = load_review::<sqlx::Sqlite>(&mut tx, id).await?;
        if review.state != "open" {
            return Err(StoreError::Conflict(format!(
                "review {id} is already {}",
                review.state
            )));
        }
        let ts = now();
        if link {
            let a = person_id::<sqlx::Sqlite>(&mut tx, &review.a.person).await?;
            let b = person_id::<sqlx::Sqlite>(&mut tx, &review.b.person).await?;
            if a != b {
                if conflicting_numbers::<sqlx::Sqlite>(&mut tx, a, b)
                    .await
                    .map_err(db)?
                {
                    return Err(StoreError::Conflict(
                        "the two records' persons hold different identity numbers of one document"
                            .into(),
                    ));
                }
                let (s, m) = if a < b { (a, b) } else { (b, a) };
                move_person::<sqlx::Sqlite>(
                    &mut tx,
                    s,
                    m,
                    ("steward_merge", actor, Some(reason), None),
                    ts,
                )
                .await
                .map_err(db)?;
            }
        }
        sqlx::query(
            "UPDATE link_review SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
        )
        .bind(if link { "linked" } else { "rejected" })
        .bind(actor)
        .bind(ts)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let out = load_review::<sqlx::Sqlite>(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn person(&self, public_id: &str) -> Result<Option<PersonView>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let Some(row) = sqlx::query(
            "SELECT pe.id, (SELECT s.public_id FROM person s WHERE s.id = pe.merged_into) FROM person pe WHERE pe.public_id = ?",
        )
        .bind(public_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let id: i64 = row.get(0);
        let records = person_records::<sqlx::Sqlite>(&mut conn, id).await?;
        let history: Vec<LinkEventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LINK_HISTORY} WHERE e.to_person = ?1 OR e.from_person = ?1 ORDER BY e.id"
        )))
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let history = history.into_iter().map(Into::into).collect();
        Ok(Some(PersonView {
            public_id: public_id.to_owned(),
            merged_into: row.get(1),
            records,
            history,
        }))
    }

    async fn link_candidates(
        &self,
        issuer: &str,
        patient_id: &str,
        limit: u32,
    ) -> Result<Option<(RecordFacts, Vec<RecordFacts>, i64)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let Some(me): Option<FactsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{FACTS} WHERE p.issuer = ? AND p.patient_id = ? AND p.name_key IS NOT NULL"
        )))
        .bind(issuer)
        .bind(patient_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let mine = me.facts()?;
        let name_key = me.name_key.clone().unwrap_or_default();
        // Candidates: the same name sound, and a birth date that shares the year or the
        // month and day (typos), or none on either side.
        let others: Vec<FactsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{FACTS} WHERE p.name_key = ?1 AND p.id != ?2 AND (p.birth_date IS NULL OR ?3 IS NULL
               OR substr(p.birth_date, 1, 4) = substr(?3, 1, 4) OR substr(p.birth_date, 5, 4) = substr(?3, 5, 4))
             ORDER BY p.id DESC LIMIT ?4"
        )))
        .bind(&name_key)
        .bind(mine.patient_key)
        .bind(&mine.birth_date)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let others = others
            .iter()
            .map(FactsRow::facts)
            .collect::<Result<Vec<_>, _>>()?;
        // Only whether the sound is rare matters (≤ 3, ≤ 10, more): count no further.
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM patient WHERE name_key = ? LIMIT 11)",
        )
        .bind(&name_key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        Ok(Some((mine, others, count)))
    }

    async fn apply_score_decision(
        &self,
        a: i64,
        b: i64,
        link: bool,
        score: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let persons: Vec<i64> =
            sqlx::query_scalar("SELECT person_id FROM patient WHERE id IN (?, ?) ORDER BY id")
                .bind(a)
                .bind(b)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let [pa, pb] = persons[..] else {
            return Err(StoreError::NotFound("patient record".into()));
        };
        let ts = now();
        if pa == pb {
            return Ok(());
        }
        let conflicting = conflicting_numbers::<sqlx::Sqlite>(&mut tx, pa, pb)
            .await
            .map_err(db)?;
        if link && !conflicting {
            let (s, m) = if pa < pb { (pa, pb) } else { (pb, pa) };
            move_person::<sqlx::Sqlite>(&mut tx, s, m, ("score", "ingest", None, Some(score)), ts)
                .await
                .map_err(db)?;
        } else {
            sqlx::query(
                "INSERT INTO link_review (created_at, patient_a, patient_b, reason, score) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (patient_a, patient_b) DO NOTHING",
            )
            .bind(ts)
            .bind(a.min(b))
            .bind(a.max(b))
            .bind(if conflicting { "conflicting_numbers" } else { "possible_match" })
            .bind(score)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn find_persons(
        &self,
        search: &PersonSearch,
        limit: u32,
    ) -> Result<Vec<PersonHit>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let q = match search {
            PersonSearch::Identifier(key) => sqlx::query_scalar(
                "SELECT DISTINCT p.person_id FROM patient_identifier i JOIN patient p ON p.id = i.patient_id
                 WHERE i.system = ? AND i.blind = ? AND i.consistent = 1 LIMIT ?",
            )
            .bind(key.system.clone())
            .bind(key.blind.clone()),
            PersonSearch::Record { issuer, patient_id } => sqlx::query_scalar(
                "SELECT person_id FROM patient WHERE issuer = ? AND patient_id = ? LIMIT ?",
            )
            .bind(issuer.clone())
            .bind(patient_id.clone()),
            PersonSearch::NamePrefix {
                prefix,
                sound_prefix,
            } => {
                // LIKE with NOCASE indexes (patient_name_*_nocase) and the name sound.
                sqlx::query_scalar(
                    "SELECT DISTINCT person_id FROM patient
                     WHERE name_ideographic LIKE ?1 ESCAPE '\\' OR name_alphabetic LIKE ?1 ESCAPE '\\'
                        OR name_raw LIKE ?1 ESCAPE '\\' OR (?2 != '' AND name_key LIKE ?2 ESCAPE '\\')
                     LIMIT ?3",
                )
                .bind(like_prefix(prefix))
                .bind(if sound_prefix.is_empty() {
                    String::new()
                } else {
                    like_prefix(sound_prefix)
                })
            }
        };
        let persons: Vec<i64> = q
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(persons.len());
        for id in persons {
            let records = person_records::<sqlx::Sqlite>(&mut conn, id).await?;
            if let Some(first) = records.first() {
                out.push(PersonHit {
                    person: first.person.clone(),
                    records,
                });
            }
        }
        Ok(out)
    }

    async fn identifier_domain_known(&self, system: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM patient WHERE issuer = ?1)
                 OR EXISTS (SELECT 1 FROM institution_attribute WHERE attribute = 'identifier_system' AND value = ?1)",
        )
        .bind(system)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn person_revision(&self, public_id: &str) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT COALESCE(r.revision, 0) FROM person pe
               LEFT JOIN person_revision r ON r.person_id = pe.id WHERE pe.public_id = ?",
        )
        .bind(public_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }
}
