//! Whose data a reader reaches (issue #6): every read use case asks [`Archive::reach`] and
//! filters or refuses by it, so the rule lives in one place and an adapter cannot skip it (a
//! read use case without a `ReadGrant` does not compile; with one, it is filtered here).
//!
//! A person reads the patients they have a relationship with: an open encounter at their
//! institution, assigned to them or to their department. (Patient authorization codes and
//! break-glass come next.) Systems and operators' tokens reach everyone for now.

use crate::Archive;
use crate::ports::StoreError;
use huren_access::{ReadGrant, ReadScope};

/// The persons a reader reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    All,
    /// (internal key, public id) of each person.
    Persons(Vec<(i64, String)>),
}

impl Reach {
    pub fn allows(&self, public_id: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::Persons(p) => p.iter().any(|(_, id)| id == public_id),
        }
    }

    /// Internal keys for index queries; `None` when unrestricted.
    pub fn keys(&self) -> Option<Vec<i64>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(p.iter().map(|(k, _)| *k).collect()),
        }
    }

    /// Public ids; `None` when unrestricted.
    pub fn public_ids(&self) -> Option<Vec<String>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(p.iter().map(|(_, id)| id.clone()).collect()),
        }
    }
}

impl Archive {
    pub async fn reach(&self, grant: &ReadGrant) -> Result<Reach, StoreError> {
        match grant.scope() {
            ReadScope::All => Ok(Reach::All),
            ReadScope::Related(user) => Ok(Reach::Persons(self.index.related_persons(user).await?)),
        }
    }
}
