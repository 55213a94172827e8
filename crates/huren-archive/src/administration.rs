//! Administration use cases (AdminGrant): institutions and their effective-dated attributes,
//! consortia, DICOM peers, send-for mappings, tokens, HL7 senders, and a study's lifecycle
//! (reject, delete) — each audited as one configuration event.

use crate::*;
use huren_access::{AdminGrant, AuditAction, AuditEvent, Outcome};
use ports::StoreError;

impl Archive {
    /// One `configuration_changed` audit event (DICOM "Security Alert", 110113).
    pub(crate) async fn audit_config(
        &self,
        grant: &AdminGrant,
        object: String,
        detail: serde_json::Value,
    ) {
        // Every configuration change passes here: attribution answers and the HL7 sender list
        // may have changed.
        self.attribution.clear();
        self.hl7_senders.clear();
        self.callers.clear();
        self.audit_admin(
            AuditAction::ConfigurationChanged,
            &grant.principal().label(),
            object,
            detail,
        )
        .await;
    }

    /// One successful administrative action on one object (ARCHITECTURE.md, "What one audit
    /// event is").
    pub(crate) async fn audit_admin(
        &self,
        action: AuditAction,
        actor: &str,
        object: String,
        detail: serde_json::Value,
    ) {
        let ev = AuditEvent {
            action,
            outcome: Outcome::Success,
            actor: actor.to_owned(),
            institution: None,
            patient: None,
            study_uid: None,
            object: Some(object),
            source_address: None,
            detail,
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record audit event");
        }
    }

    pub async fn add_institution(
        &self,
        grant: &AdminGrant,
        inst: NewInstitution,
    ) -> Result<i64, AdminError> {
        let code = inst.code.to_string();
        let mut inst = inst;
        if let Some(org) = &inst.organization {
            self.require_organization(org).await?;
        }
        if let Some(d) = inst.division.take() {
            inst.division = Some(
                InstitutionAttribute::Division
                    .normalize(&d)
                    .map_err(|e| AdminError::Invalid(e.to_string()))?,
            );
        }
        if let Some(system) = &inst.identifier_system {
            self.require_free_numbering(system, None).await?;
        }
        let detail = serde_json::to_value(&inst).unwrap_or_default();
        let id = self
            .index
            .add_institution(inst)
            .await
            .map_err(|e| match e {
                // The code (in any case) is held already; the store names the spelling.
                StoreError::Conflict(m) => {
                    AdminError::refused(refusal::Rule::InstitutionCodeTaken, m)
                }
                e => e.into(),
            })?;
        self.audit_config(grant, format!("institution:{code}"), detail)
            .await;
        Ok(id)
    }

    /// An identifier system given to an institution must not be another's numbering (its
    /// identifier system, or an issuer it claimed): one numbering, one institution
    /// (crate::numbering).
    pub(crate) async fn require_free_numbering(
        &self,
        system: &str,
        code: Option<&str>,
    ) -> Result<(), AdminError> {
        let mine = match code {
            Some(c) => self
                .index
                .institution_as_of(c, self.today())
                .await?
                .map(|v| v.id),
            None => None,
        };
        match self.numbering(system).await? {
            numbering::Numbering::Institution(owner) if Some(owner) != mine => {
                Err(AdminError::refused(
                    refusal::Rule::NumberingTaken,
                    format!("{system} is already another institution's patient numbering"),
                ))
            }
            numbering::Numbering::Person => Err(AdminError::refused(
                refusal::Rule::NumberingTaken,
                format!("{system} is an identity-number system, not a hospital's numbering"),
            )),
            _ => Ok(()),
        }
    }

    pub async fn change_institution(
        &self,
        grant: &AdminGrant,
        code: &str,
        mut change: AttributeChange,
    ) -> Result<(), AdminError> {
        change.value = change
            .attribute
            .normalize(&change.value)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        if change.attribute == InstitutionAttribute::Organization {
            self.require_organization(&change.value).await?;
        }
        if change.attribute == InstitutionAttribute::IdentifierSystem {
            self.require_free_numbering(&change.value, Some(code))
                .await?;
        }
        let detail = serde_json::to_value(&change).unwrap_or_default();
        let attribute = change.attribute;
        self.index.set_institution_attribute(code, change).await?;
        // Prices follow the price region and grade (level) on each decision day.
        if matches!(
            attribute,
            InstitutionAttribute::Level | InstitutionAttribute::Region
        ) {
            self.index
                .reprice_recognition_units(None, Some(code))
                .await?;
        }
        self.audit_config(grant, format!("institution:{code}"), detail)
            .await;
        Ok(())
    }

    /// A campus names its organization by the organization's own institution code.
    pub(crate) async fn require_organization(&self, code: &str) -> Result<(), AdminError> {
        match self.index.institution_as_of(code, self.today()).await? {
            Some(_) => Ok(()),
            None => Err(AdminError::Invalid(format!(
                "organization {code} is not a registered institution"
            ))),
        }
    }

    pub async fn institution_as_of(
        &self,
        _grant: &AdminGrant,
        code: &str,
        date: ::time::Date,
    ) -> Result<Option<InstitutionView>, AdminError> {
        Ok(self.index.institution_as_of(code, date).await?)
    }

    pub async fn list_institutions(
        &self,
        _grant: &AdminGrant,
        date: ::time::Date,
    ) -> Result<Vec<InstitutionView>, AdminError> {
        Ok(self.index.list_institutions(date).await?)
    }

    pub async fn add_membership(
        &self,
        grant: &AdminGrant,
        m: NewMembership,
    ) -> Result<(), AdminError> {
        let detail = serde_json::to_value(&m).unwrap_or_default();
        let object = format!("institution:{}", m.institution_code);
        self.index.add_consortium_membership(m).await?;
        self.audit_config(grant, object, detail).await;
        Ok(())
    }

    pub async fn add_ae(&self, grant: &AdminGrant, ae: NewAe) -> Result<i64, AdminError> {
        if let Some(cs) = &ae.assumed_charset
            && huren_dicom::charset::encoding_for_label(cs).is_none()
        {
            return Err(AdminError::Invalid(format!("unknown character set {cs:?}")));
        }
        let detail = serde_json::to_value(&ae).unwrap_or_default();
        let object = format!("ae:{}", ae.ae_title);
        let id = self.index.add_ae(ae).await?;
        self.audit_config(grant, object, detail).await;
        Ok(id)
    }

    pub async fn list_aes(&self, _grant: &AdminGrant) -> Result<Vec<Peer>, AdminError> {
        Ok(self.index.list_aes().await?)
    }

    /// Allows `sender` to send for `performer`; with `institution_name`, objects from the
    /// sender whose InstitutionName (0008,0080) equals it are attributed to `performer`.
    pub async fn add_send_for(
        &self,
        grant: &AdminGrant,
        sender: &str,
        performer: &str,
        institution_name: Option<&str>,
    ) -> Result<(), AdminError> {
        self.index
            .add_send_for(sender, performer, institution_name)
            .await?;
        self.audit_config(
            grant,
            format!("institution:{sender}"),
            serde_json::json!({ "send_for": performer, "institution_name": institution_name }),
        )
        .await;
        Ok(())
    }

    /// Creates a bearer token; returns the secret (shown once) — only its hash is stored.
    pub async fn create_token(
        &self,
        grant: &AdminGrant,
        scope: TokenScope,
        expires_in_days: Option<u32>,
    ) -> Result<IssuedToken, AdminError> {
        let secret = format!(
            "hr_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hash = huren_access::hash_token(&secret);
        let expires_at = expires_in_days
            .map(|d| ::time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(d) * 86_400);
        let id = self
            .index
            .create_token(&hash, scope.clone(), expires_at)
            .await?;
        self.audit_config(
            grant,
            format!("token:{id}"),
            serde_json::json!({ "scope": scope, "expires_at": expires_at }),
        )
        .await;
        Ok(IssuedToken {
            id,
            secret,
            expires_at,
        })
    }

    /// Revokes a token at once (its requests get 401 from now on).
    /// An institution's attributes with every version (attribute, value, from, until); `None`
    /// for an unknown code.
    pub async fn institution_history(
        &self,
        _grant: &AdminGrant,
        code: &str,
    ) -> Result<Option<Vec<(String, String, String, Option<String>)>>, AdminError> {
        Ok(self.index.institution_history(code).await?)
    }

    /// Every token, newest first: whose, what it may do, when it was made, expires or was
    /// revoked (never a secret or its hash).
    pub async fn list_tokens(
        &self,
        _grant: &AdminGrant,
    ) -> Result<Vec<model::TokenView>, AdminError> {
        Ok(self.index.list_tokens().await?)
    }

    pub async fn revoke_token(&self, grant: &AdminGrant, id: i64) -> Result<(), AdminError> {
        if !self.index.revoke_token(id).await? {
            return Err(AdminError::refused(
                refusal::Rule::TokenNotLive,
                format!("no live token {id}"),
            ));
        }
        self.audit_config(
            grant,
            format!("token:{id}"),
            serde_json::json!({ "revoked": true }),
        )
        .await;
        Ok(())
    }

    /// Rejects or deletes a study (audited). Deleted instances keep a tombstone row; their
    /// blobs are removed after the index change is durable.
    pub async fn set_study_lifecycle(
        &self,
        grant: &AdminGrant,
        study_uid: &str,
        institution: Option<&str>,
        to: huren_types::Lifecycle,
        reason: &str,
    ) -> Result<StudyLifecycleChange, AdminError> {
        if !matches!(
            to,
            huren_types::Lifecycle::Rejected | huren_types::Lifecycle::Deleted
        ) {
            return Err(AdminError::Invalid(
                "a study can only be rejected or deleted".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(AdminError::refused(
                refusal::Rule::ReasonRequired,
                "a reason is required",
            ));
        }
        let change = self
            .index
            .set_study_lifecycle(study_uid, institution, to)
            .await?;
        for key in &change.blob_keys {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(error = %e, key, "blob of deleted instance not removed");
            }
        }
        let ev = AuditEvent {
            action: AuditAction::StudyLifecycleChanged,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: institution.map(str::to_owned),
            patient: None,
            study_uid: Some(study_uid.to_owned()),
            object: Some(format!("study:{study_uid}")),
            source_address: None,
            detail: serde_json::json!({ "to": to.as_str(), "reason": reason, "instances": change.instances }),
        };
        self.index.record_audit(ev).await?;
        Ok(change)
    }

    /// Registers an HL7 v2 sender of `institution` (audited).
    pub async fn add_hl7_sender(
        &self,
        grant: &AdminGrant,
        institution: &str,
        network: ipnet::IpNet,
        facility: Option<&str>,
        charset: Option<&str>,
    ) -> Result<i64, AdminError> {
        if let Some(c) = charset {
            huren_hl7::charset_of(c).map_err(|e| AdminError::Invalid(e.to_string()))?;
        }
        let id = self
            .index
            .add_hl7_sender(institution, network, facility, charset)
            .await?;
        self.audit_config(
            grant,
            format!("hl7_sender:{id}"),
            serde_json::json!({ "institution": institution, "network": network.to_string(), "facility": facility, "charset": charset }),
        )
        .await;
        Ok(id)
    }
}
