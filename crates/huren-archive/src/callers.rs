//! Who is calling, asked before any grant exists: a bearer token's principal, the person a
//! system names in `X-Huren-On-Behalf-Of`, the DIMSE peers an association is checked against,
//! a C-MOVE destination — and the audit events of refusals that protocol layers raise before
//! a use case is reached (a rejected association, a move to another institution's AE). These
//! are the only ways adapters reach the index outside a use case that takes a grant.

use crate::Archive;
use crate::model::Peer;
use crate::ports::StoreError;
use huren_access::{AuditEvent, Principal, Sender, User};

impl Archive {
    /// The principal a bearer token (its SHA-256, `huren_access::hash_token`) stands for: an
    /// operator or an institution's system; `None` for an unknown, revoked or expired token.
    /// Reused for up to a second (crate::caller_cache says what may lag).
    pub async fn principal_for_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Principal>, StoreError> {
        if let Some(p) = self.callers.principal(token_hash) {
            return Ok(Some(p));
        }
        let found = self.index.principal_for_token(token_hash).await?;
        if let Some(p) = &found {
            self.callers.keep_principal(token_hash, p.clone());
        }
        Ok(found)
    }

    /// The person a system acts for (`X-Huren-On-Behalf-Of`): an active account of the
    /// system's own institution, else `None` — a system never acts for another hospital's
    /// people.
    pub async fn person_for_system(
        &self,
        system: &Sender,
        username: &str,
    ) -> Result<Option<User>, StoreError> {
        Ok(match self.index.user_account(username).await? {
            Some(a) if a.user.institution_id == system.institution_id && !a.disabled => {
                Some(User {
                    via: Some(Principal::System(system.clone()).label()),
                    ..a.user
                })
            }
            _ => None,
        })
    }

    /// Every registered DIMSE peer, for checking an association's calling AE and address.
    pub async fn dimse_peers(&self) -> Result<Vec<Peer>, StoreError> {
        self.index.list_aes().await
    }

    /// The C-MOVE destination registered under `ae_title` (destinations have a port; their
    /// titles are unique).
    pub async fn move_destination(&self, ae_title: &str) -> Result<Option<Peer>, StoreError> {
        Ok(self
            .index
            .list_aes()
            .await?
            .into_iter()
            .find(|p| p.port.is_some() && p.ae_title.as_str() == ae_title.trim()))
    }

    /// Records a refusal a protocol layer made on its own (ARCHITECTURE.md: every refusal is
    /// audited, including those raised before the caller is known).
    pub async fn audit_refusal(&self, ev: AuditEvent) -> Result<(), StoreError> {
        self.index.record_audit(ev).await
    }
}
