//! The patient's cloud film (云胶片, issue #20 part 2): a patient opens their own reports and
//! images, shares a study by link, sees who read their data and ends an authorization.
//!
//! Who the patient is comes from one thing only: possession of the mobile number their
//! hospital registered (docs/access.md). The patient types their identity number; a code goes
//! to that number; the code opens a short session for the person the number belongs to. The
//! answer to the identity number is the same whether it names anyone or not (a sign-in row is
//! written either way), so the page cannot be used to find out who is registered.
//!
//! A share is one study, for at most 30 days, revocable; the link's secret is kept as a hash,
//! and each use is a `patient_data_accessed` event by `share:{id}` like any other read.
//!
//! The port [`FilmStore`] is this feature's own (not a part of `Index`): a second backend
//! implements it on its own.

use crate::model::AuditRow;
use crate::ports::StoreError;
use crate::{AdminError, Archive, PatientLookup};
use async_trait::async_trait;
use huren_access::{AuditAction, AuditEvent, FilmGrant, Outcome, PatientSelf, Principal};

const CODE_SYSTEM: &str = "urn:huren:film-signin-code";
const CODE_TTL_SECS: i64 = 600;
/// A patient's session: 15 minutes idle, 2 hours at most (a phone left on a table).
pub const SESSION_IDLE_SECS: i64 = 15 * 60;
pub const SESSION_MAX_SECS: i64 = 2 * 3600;
/// Sign-in codes sent per person and per source address per day.
const CODES_PER_PERSON_DAY: i64 = 5;
const CODES_PER_SOURCE_DAY: i64 = 20;
/// A share lasts 1–30 days.
pub const SHARE_MAX_DAYS: i64 = 30;

use crate::time::unix_now as now;

/// A sign-in code asked for (the person is `None` when the number named nobody with a mobile
/// number: the row exists so that the answer looks the same).
#[derive(Debug, Clone)]
pub struct NewFilmSignin {
    pub person: Option<String>,
    pub code_hash: String,
    pub code_expires_at: i64,
    pub source_address: Option<String>,
    pub now: i64,
}

/// A patient's session as stored (the secret only as its hash).
#[derive(Debug, Clone)]
pub struct NewFilmSession {
    pub secret_hash: String,
    pub person_key: i64,
    pub csrf_token: String,
    pub now: i64,
    pub expires_at: i64,
}

/// A live session: who, and the token its forms carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilmSession {
    pub patient: PatientSelf,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// One share of a study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareView {
    pub id: i64,
    pub study_uid: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub uses: i64,
    pub last_used_at: Option<i64>,
}

/// A link opened: which share, whose, which study.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenShare {
    pub id: i64,
    pub person_key: i64,
    pub person: String,
    pub study_uid: String,
    pub expires_at: i64,
}

/// What a share link opens: read as `principal` (the patient's person, by `share:{id}`), the
/// one study, until `expires_at`.
#[derive(Debug, Clone)]
pub struct SharedStudy {
    pub principal: Principal,
    pub person: String,
    pub study_uid: String,
    pub expires_at: i64,
}

/// One authorization the patient gave (live or not), as the patient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonAuthorization {
    pub id: i64,
    pub institution: String,
    pub scope: String,
    pub granted_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The cloud film's storage (sign-in codes, sessions, shares, and the patient's own view of
/// their authorizations).
#[async_trait]
pub trait FilmStore: Send + Sync {
    async fn create_film_signin(&self, s: NewFilmSignin) -> Result<i64, StoreError>;
    /// Codes sent in `[since, now)`: to this person, and from this source address.
    async fn film_signins_since(
        &self,
        person: Option<&str>,
        source: Option<&str>,
        since: i64,
    ) -> Result<(i64, i64), StoreError>;
    /// The code for sign-in `id`: right, in time, unused, within five attempts → the person
    /// (internal key, public id). A wrong code counts an attempt.
    async fn confirm_film_signin(
        &self,
        id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<(i64, String)>, StoreError>;
    async fn create_film_session(&self, s: NewFilmSession) -> Result<(), StoreError>;
    /// The live session with this secret (not ended, not expired, idle less than `idle_secs`,
    /// its person not merged away since), touched now.
    async fn film_session(
        &self,
        secret_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<FilmSession>, StoreError>;
    async fn end_film_session(&self, secret_hash: &str, now: i64) -> Result<(), StoreError>;
    /// A share of one of the person's studies; `None` when the study is not theirs.
    async fn create_share(
        &self,
        person_key: i64,
        study_uid: &str,
        secret_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// The person's shares, newest first.
    async fn shares(&self, person_key: i64) -> Result<Vec<ShareView>, StoreError>;
    /// Ends a live share of the person's; whether one was ended.
    async fn end_share(&self, id: i64, person_key: i64, now: i64) -> Result<bool, StoreError>;
    /// A live share by its secret; `count`: a use of the link (the page), not one of the
    /// images it shows.
    async fn open_share(
        &self,
        secret_hash: &str,
        now: i64,
        count: bool,
    ) -> Result<Option<OpenShare>, StoreError>;
    /// The authorizations the person granted (those confirmed), newest first.
    async fn person_authorizations(
        &self,
        person_key: i64,
    ) -> Result<Vec<PersonAuthorization>, StoreError>;
    /// Ends a live authorization of the person's; the institution's code when one was ended.
    async fn end_person_authorization(
        &self,
        id: i64,
        person_key: i64,
        now: i64,
    ) -> Result<Option<String>, StoreError>;
}

/// A sign-in code sent (or, for a number that names nobody, as if sent).
#[derive(Debug, Clone)]
pub struct FilmSignin {
    pub id: i64,
    pub code_expires_at: i64,
}

/// A session opened: its secret (the cookie) and the token its forms carry.
#[derive(Debug, Clone)]
pub struct OpenedFilmSession {
    pub secret: String,
    pub csrf_token: String,
    pub max_age: i64,
}

/// One read of the patient's data, as the patient is shown it: when, which institution, in
/// which role, why — never who else's data or the reader's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub at: i64,
    /// `patient_data_accessed`, `recognition_decided`, `patient_authorization`, …
    pub action: String,
    /// The institution's code (the page shows its name), if any.
    pub institution: Option<String>,
    /// `doctor`, `technician`, …; `system` for a hospital system; `patient` for the patient;
    /// `share` for someone holding a link the patient shared.
    pub role: String,
    /// `treatment`, `emergency`, `operations`, `patient`.
    pub purpose: Option<String>,
    pub refused: bool,
}

/// The reader's role from an audit actor label (`user:li#3@city(doctor)`, `token:5@city`,
/// `patient:…`, `share:4`).
fn actor_role(actor: &str) -> String {
    if let Some(rest) = actor.strip_prefix("user:") {
        let who = rest.split(" via ").next().unwrap_or(rest);
        if let (Some(open), true) = (who.rfind('('), who.ends_with(')')) {
            return who[open + 1..who.len() - 1].to_owned();
        }
        return "user".into();
    }
    for (prefix, role) in [
        ("patient:", "patient"),
        ("share:", "share"),
        ("token:", "system"),
        ("ae:", "system"),
        ("upload:", "system"),
    ] {
        if actor.starts_with(prefix) {
            return role.into();
        }
    }
    "platform".into()
}

fn access_entry(r: AuditRow) -> AccessEntry {
    let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
    AccessEntry {
        at: r.at,
        role: actor_role(&r.actor),
        purpose: detail
            .get("purpose")
            .and_then(|p| p.as_str())
            .map(str::to_owned),
        refused: r.outcome == "failure",
        action: r.action,
        institution: r.institution,
    }
}

impl Archive {
    fn film(&self) -> &dyn FilmStore {
        self.film.as_ref()
    }

    /// Step one: the patient's identity number. A code goes to the mobile number registered
    /// for the person it names, if there is one; the answer is the same either way. At most
    /// five codes per person and twenty per source address a day.
    pub async fn film_request_code(
        &self,
        identity_number: &str,
        source: Option<String>,
    ) -> Result<FilmSignin, AdminError> {
        let number = identity_number.trim().to_uppercase();
        let search = self.person_search(PatientLookup::Identifier {
            system: huren_mpi::id::RESIDENT,
            value: &number,
        });
        // An invalid number is said so (the check digit is public arithmetic, not a secret).
        let search = search?;
        let hits = self.index.find_persons(&search, 2).await?;
        let person = match hits.as_slice() {
            [one] => Some(one.person.clone()),
            _ => None,
        };
        let t = now();
        let (for_person, from_source) = self
            .film()
            .film_signins_since(person.as_deref(), source.as_deref(), t - 86_400)
            .await?;
        if for_person >= CODES_PER_PERSON_DAY || from_source >= CODES_PER_SOURCE_DAY {
            self.audit_film(
                AuditAction::UserLogin,
                Outcome::Failure,
                "patient".into(),
                person.as_deref(),
                None,
                source,
                serde_json::json!({ "via": "sms", "step": "code_refused", "reason": "daily limit" }),
            )
            .await;
            return Err(AdminError::TooMany(
                "too many sign-in codes today for this number or from this address".into(),
            ));
        }
        let phone = match &person {
            Some(p) => self.patient_phone(p).await?,
            None => None,
        };
        let code = crate::consent::one_time_code();
        let code_hash = self.sealer()?.blind_index(CODE_SYSTEM, &code);
        let id = self
            .film()
            .create_film_signin(NewFilmSignin {
                person: phone.as_ref().and(person.clone()),
                code_hash,
                code_expires_at: t + CODE_TTL_SECS,
                source_address: source.clone(),
                now: t,
            })
            .await?;
        if let Some(phone) = &phone {
            self.notifier
                .send_sms(
                    phone,
                    &format!(
                        "【互认】您正在登录互认云胶片查看本人的检查检验结果，验证码{code}，10分钟内有效。如非本人操作，请勿告知他人。"
                    ),
                )
                .await?;
        }
        self.audit_film(
            AuditAction::UserLogin,
            Outcome::Success,
            "patient".into(),
            person.as_deref().filter(|_| phone.is_some()),
            Some(format!("film-signin:{id}")),
            source,
            serde_json::json!({ "via": "sms", "step": "code_sent", "phone_registered": phone.is_some() }),
        )
        .await;
        Ok(FilmSignin {
            id,
            code_expires_at: t + CODE_TTL_SECS,
        })
    }

    /// Step two: the code. Right → a session for the person (cookie secret and CSRF token).
    pub async fn film_sign_in(
        &self,
        id: i64,
        code: &str,
        source: Option<String>,
    ) -> Result<OpenedFilmSession, AdminError> {
        let hash = self.sealer()?.blind_index(CODE_SYSTEM, code.trim());
        let t = now();
        let Some((key, person)) = self.film().confirm_film_signin(id, &hash, t).await? else {
            self.audit_film(
                AuditAction::UserLogin,
                Outcome::Failure,
                "patient".into(),
                None,
                Some(format!("film-signin:{id}")),
                source,
                serde_json::json!({ "via": "sms", "step": "code_rejected" }),
            )
            .await;
            return Err(AdminError::Invalid(
                "wrong, expired or used code (five attempts at most)".into(),
            ));
        };
        let secret = crate::accounts::random_secret();
        let csrf_token = crate::accounts::random_secret();
        self.film()
            .create_film_session(NewFilmSession {
                secret_hash: huren_access::hash_token(&secret),
                person_key: key,
                csrf_token: csrf_token.clone(),
                now: t,
                expires_at: t + SESSION_MAX_SECS,
            })
            .await?;
        self.audit_film(
            AuditAction::UserLogin,
            Outcome::Success,
            format!("patient:{person}"),
            Some(&person),
            Some(format!("film-signin:{id}")),
            source,
            serde_json::json!({ "via": "sms", "step": "signed_in" }),
        )
        .await;
        Ok(OpenedFilmSession {
            secret,
            csrf_token,
            max_age: SESSION_MAX_SECS,
        })
    }

    /// The patient behind a session cookie, if it is live.
    pub async fn film_session(&self, secret: &str) -> Result<Option<FilmSession>, StoreError> {
        self.film()
            .film_session(&huren_access::hash_token(secret), now(), SESSION_IDLE_SECS)
            .await
    }

    /// Ends the signed-in patient's session (its cookie's secret), audited.
    pub async fn film_sign_out(&self, grant: &FilmGrant, secret: &str) {
        let hash = huren_access::hash_token(secret);
        if let Err(e) = self.film().end_film_session(&hash, now()).await {
            tracing::error!(error = %e, "a patient's session was not ended");
        }
        let me = grant.patient();
        self.audit_film(
            AuditAction::UserLogout,
            Outcome::Success,
            Principal::Patient(me.clone()).label(),
            Some(&me.person),
            None,
            None,
            serde_json::json!({ "via": "sms" }),
        )
        .await;
    }

    /// Shares one of the patient's studies for `days` (1–30): the link's secret, shown once.
    pub async fn film_share(
        &self,
        grant: &FilmGrant,
        study_uid: &str,
        days: i64,
    ) -> Result<(i64, String), AdminError> {
        if !(1..=SHARE_MAX_DAYS).contains(&days) {
            return Err(AdminError::Invalid("a share lasts 1–30 days".into()));
        }
        let me = grant.patient();
        let secret = crate::accounts::random_secret();
        let t = now();
        let Some(id) = self
            .film()
            .create_share(
                me.person_key,
                study_uid,
                &huren_access::hash_token(&secret),
                t,
                t + days * 86_400,
            )
            .await?
        else {
            return Err(AdminError::Forbidden("that study is not yours".into()));
        };
        self.audit_film(
            AuditAction::StudyShared,
            Outcome::Success,
            Principal::Patient(me.clone()).label(),
            Some(&me.person),
            Some(format!("share:{id}")),
            None,
            serde_json::json!({ "step": "shared", "days": days, "study": study_uid }),
        )
        .await;
        Ok((id, secret))
    }

    pub async fn film_shares(&self, grant: &FilmGrant) -> Result<Vec<ShareView>, AdminError> {
        Ok(self.film().shares(grant.patient().person_key).await?)
    }

    /// Ends a share at once (the link then opens nothing).
    pub async fn film_end_share(&self, grant: &FilmGrant, id: i64) -> Result<(), AdminError> {
        let me = grant.patient();
        if !self.film().end_share(id, me.person_key, now()).await? {
            return Err(AdminError::refused(
                crate::refusal::Rule::ShareNotLive,
                format!("no live share {id} of yours"),
            ));
        }
        self.audit_film(
            AuditAction::StudyShared,
            Outcome::Success,
            Principal::Patient(me.clone()).label(),
            Some(&me.person),
            Some(format!("share:{id}")),
            None,
            serde_json::json!({ "step": "ended" }),
        )
        .await;
        Ok(())
    }

    /// A share link opened: the principal it reads as, the one study it opens and until when.
    /// An unknown, ended or expired link is audited as a failed authentication.
    pub async fn film_open_share(
        &self,
        secret: &str,
        count: bool,
        source: Option<String>,
    ) -> Result<Option<SharedStudy>, StoreError> {
        let found = self
            .film()
            .open_share(&huren_access::hash_token(secret.trim()), now(), count)
            .await?;
        let Some(s) = found else {
            self.note_auth_failure(source, "unknown, ended or expired share link")
                .await;
            return Ok(None);
        };
        Ok(Some(SharedStudy {
            principal: Principal::Patient(PatientSelf {
                person_key: s.person_key,
                person: s.person.clone(),
                share: Some(s.id),
            }),
            person: s.person,
            study_uid: s.study_uid,
            expires_at: s.expires_at,
        }))
    }

    /// The authorizations the patient gave, newest first.
    pub async fn film_authorizations(
        &self,
        grant: &FilmGrant,
    ) -> Result<Vec<PersonAuthorization>, AdminError> {
        Ok(self
            .film()
            .person_authorizations(grant.patient().person_key)
            .await?)
    }

    /// The patient ends an authorization they gave (the clinic reads nothing more at once).
    pub async fn film_end_authorization(
        &self,
        grant: &FilmGrant,
        id: i64,
    ) -> Result<(), AdminError> {
        let me = grant.patient();
        let Some(institution) = self
            .film()
            .end_person_authorization(id, me.person_key, now())
            .await?
        else {
            return Err(AdminError::refused(
                crate::refusal::Rule::AuthorizationNotLive,
                format!("no live authorization {id} of yours"),
            ));
        };
        self.audit_film(
            AuditAction::PatientAuthorization,
            Outcome::Success,
            Principal::Patient(me.clone()).label(),
            Some(&me.person),
            Some(format!("authorization:{id}")),
            None,
            serde_json::json!({ "step": "revoked_by_patient", "institution": institution }),
        )
        .await;
        Ok(())
    }

    /// Who read or acted on the patient's data, newest first (at most `limit`), from the audit
    /// trail's events about this person. Only what the patient may know: when, institution,
    /// role, purpose.
    pub async fn film_access_log(
        &self,
        grant: &FilmGrant,
        limit: u32,
    ) -> Result<Vec<AccessEntry>, AdminError> {
        // Person-level events name the person; a study's are named by its record
        // (`PatientID@issuer`): ask for each of the person's records too.
        let me = &grant.patient().person;
        let mut names = vec![me.clone()];
        if let Some(view) = self.index.person(me).await? {
            names.extend(
                view.records
                    .into_iter()
                    .map(|r| format!("{}@{}", r.patient_id, r.issuer)),
            );
        }
        let limit = limit.clamp(1, 500);
        let mut rows: Vec<AuditRow> = Vec::new();
        for name in names {
            let filter = crate::model::AuditFilter {
                patient: Some(name),
                ..Default::default()
            };
            rows.extend(self.index.audit_events(&filter, limit).await?);
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.id));
        rows.dedup_by_key(|r| r.id);
        rows.truncate(limit as usize);
        Ok(rows
            .into_iter()
            .filter(|r| {
                matches!(
                    r.action.as_str(),
                    "patient_data_accessed"
                        | "recognition_decided"
                        | "patient_authorization"
                        | "emergency_override"
                        | "study_shared"
                )
            })
            .map(access_entry)
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_film(
        &self,
        action: AuditAction,
        outcome: Outcome,
        actor: String,
        person: Option<&str>,
        object: Option<String>,
        source: Option<String>,
        detail: serde_json::Value,
    ) {
        let ev = AuditEvent {
            action,
            outcome,
            actor,
            institution: None,
            patient: person.map(|p| format!("person:{p}")),
            study_uid: None,
            object,
            source_address: source,
            detail,
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "a cloud film event was not audited");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::actor_role;

    #[test]
    fn roles_come_from_the_actor_label_alone() {
        assert_eq!(actor_role("user:li#3@city(doctor)"), "doctor");
        assert_eq!(
            actor_role("user:doc#1@city(doctor) via token:5@city"),
            "doctor"
        );
        assert_eq!(actor_role("token:5@city"), "system");
        assert_eq!(actor_role("ae:CT#2@county"), "system");
        assert_eq!(actor_role("patient:abc"), "patient");
        assert_eq!(actor_role("share:4"), "share");
        assert_eq!(actor_role("console"), "platform");
    }
}
