//! Reading results back (FHIR Observation and DiagnosticReport, issue #5): searches by person,
//! code, date range, status and category, newest first, paged by a keyset cursor so the first
//! page costs the same at a thousand results or a million.

pub use crate::model::{CodeFilter, Cursor, ObservationRow, OrderRow, ResultQuery};
use crate::reach::Reach;
use crate::{AdminError, Archive};
use huren_access::ReadGrant;

impl Archive {
    /// The region's zone (result times are shown and searched in it).
    pub fn zone(&self) -> &'static time_tz::Tz {
        self.config.zone
    }

    /// The person a public id names now: a merged person's survivor.
    pub async fn current_person(
        &self,
        grant: &ReadGrant,
        public_id: &str,
    ) -> Result<Option<String>, AdminError> {
        let mut id = public_id.to_owned();
        // Merges chain at most a few deep; the bound stops a corrupt cycle.
        for _ in 0..8 {
            match self.index.person(&id).await? {
                None => return Ok(None),
                Some(p) => match p.merged_into {
                    Some(next) => id = next,
                    None => break,
                },
            }
        }
        let reach = self.reach(grant).await?;
        // A system may name any person: the search that follows keeps only the rows in its
        // reach (an empty answer for a person it has none of, as for one who does not exist).
        let named = matches!(reach, Reach::Institution { .. }) || reach.allows(&id);
        Ok(named.then_some(id))
    }

    /// A results query narrowed to the persons the reader reaches.
    fn scoped(reach: &Reach, q: &ResultQuery) -> ResultQuery {
        let mut q = q.clone();
        if let (Some(persons), Some(own)) = (reach.public_ids(), reach.institution_ids()) {
            // A system: the persons asked for stay; each row must be in its reach.
            q.reach_or = Some((persons, own));
        } else if let Some(allowed) = reach.public_ids() {
            q.persons = Some(match q.persons.take() {
                None => allowed,
                Some(asked) => asked.into_iter().filter(|p| allowed.contains(p)).collect(),
            });
        }
        q
    }

    /// Whether an identifier system is a domain huren knows (identity numbers or a record
    /// issuer).
    pub async fn identifier_domain_known(
        &self,
        _grant: &ReadGrant,
        system: &str,
    ) -> Result<bool, AdminError> {
        Ok(self.is_identity_system(system) || self.index.identifier_domain_known(system).await?)
    }

    pub async fn search_observations(
        &self,
        grant: &ReadGrant,
        q: &ResultQuery,
    ) -> Result<Vec<ObservationRow>, AdminError> {
        let reach = self.reach(grant).await?;
        let q = &Self::scoped(&reach, q);
        if q.persons.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let mut rows = self.index.search_observations(q).await?;
        self.with_items(&mut rows).await?;
        self.note_persons(grant, &reach, rows.iter().map(|r| r.person.as_str()))
            .await;
        Ok(rows)
    }

    async fn with_items(&self, rows: &mut [ObservationRow]) -> Result<(), AdminError> {
        let catalog = self.catalog_snapshot().await?;
        for r in rows {
            r.catalog_item = catalog.lab(&r.institution, r.code_system.as_deref(), &r.code);
        }
        Ok(())
    }

    pub async fn observation(
        &self,
        grant: &ReadGrant,
        id: i64,
    ) -> Result<Option<ObservationRow>, AdminError> {
        let reach = self.reach(grant).await?;
        let mut row: Vec<ObservationRow> = Vec::new();
        if let Some(r) = self.index.observation(id).await? {
            let allowed = reach.allows_row(&r.person, &r.institution);
            self.note_person_read(grant, &reach, &r.person, allowed)
                .await;
            if allowed {
                row.push(r);
            }
        }
        self.with_items(&mut row).await?;
        Ok(row.pop())
    }

    pub async fn search_orders(
        &self,
        grant: &ReadGrant,
        q: &ResultQuery,
    ) -> Result<Vec<OrderRow>, AdminError> {
        let reach = self.reach(grant).await?;
        let q = &Self::scoped(&reach, q);
        if q.persons.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let rows = self.index.search_orders(q).await?;
        self.note_persons(grant, &reach, rows.iter().map(|r| r.person.as_str()))
            .await;
        Ok(rows)
    }

    /// One read event per person in a page of results, recorded together.
    async fn note_persons<'a>(
        &self,
        grant: &ReadGrant,
        reach: &Reach,
        persons: impl Iterator<Item = &'a str>,
    ) {
        let mut seen: Vec<&str> = Vec::new();
        for p in persons {
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        let reads = seen.into_iter().map(crate::reach::Read::person).collect();
        self.note_reads(grant, reach, reads, huren_access::Outcome::Success)
            .await;
    }

    pub async fn order(&self, grant: &ReadGrant, id: i64) -> Result<Option<OrderRow>, AdminError> {
        let reach = self.reach(grant).await?;
        let Some(o) = self.index.order(id).await? else {
            return Ok(None);
        };
        let allowed = reach.allows_row(&o.person, &o.institution);
        self.note_person_read(grant, &reach, &o.person, allowed)
            .await;
        Ok(allowed.then_some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor {
                instant: Some(1_740_787_200),
                id: 42,
            },
            Cursor {
                instant: None,
                id: 7,
            },
            Cursor {
                instant: Some(-5),
                id: 1,
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(Cursor::decode("x.1"), None);
        assert_eq!(Cursor::decode("12"), None);
    }
}
