//! People's accounts, sign-in and sessions (issue #6). Passwords are hashed with argon2id
//! (RFC 9106; the crate's defaults, m = 19 MiB, t = 2, p = 1) and checked off the async
//! threads; repeated failures lock the account for a while; sessions are random (244-bit)
//! secrets stored only as SHA-256, with idle and absolute expiry and a CSRF token.

use crate::model::{
    EncounterUpsert, NewLaunchTicket, NewUser, PatientRef, SessionRecord, UserAccount,
};
use crate::registration::NamedPatient;
use crate::{AdminError, Archive};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use huren_access::{
    AdminGrant, AuditAction, AuditEvent, IngestGrant, Outcome, Role, User, hash_token,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPolicy {
    /// How long a break-glass access lasts.
    pub break_glass_secs: i64,
    pub session_idle_secs: i64,
    pub session_absolute_secs: i64,
    pub lockout_attempts: i64,
    pub lockout_secs: i64,
    /// A patient's authorization reaches the asking doctor only (false, the default) or also
    /// the doctors of their department (`auth.authorization_reach = "department"`).
    pub authorization_reach_department: bool,
    /// Authorization requests (each sends the patient an SMS) per patient per day, from any
    /// institution, and per doctor per day.
    pub authorization_requests_per_patient_day: i64,
    pub authorization_requests_per_doctor_day: i64,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            break_glass_secs: 3600,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            lockout_attempts: 5,
            lockout_secs: 15 * 60,
            authorization_reach_department: false,
            authorization_requests_per_patient_day: 3,
            authorization_requests_per_doctor_day: 30,
        }
    }
}

/// Why a sign-in failed. Wrong user and wrong password are one answer (no enumeration).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Invalid,
    #[error("the account is locked after repeated failures; try again later")]
    Locked { until: i64 },
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
}

/// A person's account to register.
pub struct UserRequest<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub role: Role,
    pub institution_code: &'a str,
    pub department: Option<&'a str>,
    pub password: &'a str,
}

/// How long a launch ticket is good for: the HIS opens the URL at once.
pub const LAUNCH_TTL_SECS: i64 = 120;

/// An encounter as the HIS reports it.
pub struct EncounterRequest<'a> {
    pub visit_number: &'a str,
    /// The patient: the HIS's own record number (registered with demographics and identity
    /// number when given), or the person's identity number.
    pub patient: NamedPatient<'a>,
    pub doctor: Option<&'a str>,
    pub department: Option<&'a str>,
    pub open: bool,
}

/// What the HIS asks a launch ticket for.
pub struct LaunchRequest<'a> {
    pub doctor: &'a str,
    pub patient: NamedPatient<'a>,
    pub visit_number: Option<&'a str>,
    pub department: Option<&'a str>,
}

/// A minted ticket: the secret goes into the launch URL once.
#[derive(Debug, Clone)]
pub struct LaunchTicket {
    pub secret: String,
    pub expires_at: i64,
}

/// A new session: the secret goes into the cookie once and is never stored.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub secret: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub user: User,
    pub display_name: String,
}

/// A live session's user and CSRF token.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub user: User,
    pub csrf_token: String,
}

use crate::time::unix_now as now;

/// Two random UUIDs as hex (244 random bits): session secrets, launch tickets, patients' revoke
/// links.
pub(crate) fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A hash to verify against when the username is unknown (made once, of a random password),
/// so that answer takes as long as a wrong password.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let hash: Result<PasswordHash, _> =
                Argon2::default().hash_password(random_secret().as_bytes());
            hash.map(|h| h.to_string()).unwrap_or_default()
        })
        .clone()
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl Archive {
    /// Registers a person's account (operators; the console).
    pub async fn add_user(
        &self,
        grant: &AdminGrant,
        req: UserRequest<'_>,
    ) -> Result<i64, AdminError> {
        let UserRequest {
            username,
            display_name,
            role,
            institution_code,
            department,
            password,
        } = req;
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(AdminError::Invalid(
                "a username is 1–64 letters, digits, '.', '_' or '-'".into(),
            ));
        }
        if password.chars().count() < 10 {
            return Err(AdminError::Invalid(
                "a password has at least 10 characters".into(),
            ));
        }
        let pw = password.to_owned();
        let password_hash = tokio::task::spawn_blocking(move || {
            // A random salt from the OS, in the PHC string with the parameters.
            let hash: Result<PasswordHash, _> = Argon2::default().hash_password(pw.as_bytes());
            hash.map(|h| h.to_string())
                .map_err(|e| AdminError::failed("hashing a password", e.to_string()))
        })
        .await
        .map_err(|e| AdminError::failed("the password hashing task", e))??;
        let id = self
            .index
            .add_user(NewUser {
                username: username.to_owned(),
                display_name: display_name.trim().to_owned(),
                role,
                institution_code: institution_code.to_owned(),
                department: department.map(str::to_owned),
                password_hash,
            })
            .await?;
        self.audit_config(
            grant,
            format!("user:{username}"),
            serde_json::json!({ "role": role.as_str(), "institution": institution_code, "department": department }),
        )
        .await;
        Ok(id)
    }

    /// Signs a person in: a new session, or why not. Every attempt is audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Option<String>,
    ) -> Result<SessionStart, LoginError> {
        let policy = self.config.accounts;
        let account = self.index.user_account(username.trim()).await?;
        let t = now();
        let result = match account {
            None => {
                verify_password(password.to_owned(), dummy_hash()).await;
                Err(LoginError::Invalid)
            }
            Some(a) if a.disabled => {
                verify_password(password.to_owned(), dummy_hash()).await;
                Err(LoginError::Invalid)
            }
            Some(a) if a.locked_until.is_some_and(|u| u > t) => Err(LoginError::Locked {
                until: a.locked_until.unwrap_or(t),
            }),
            Some(a) => {
                self.check_password(a, password, source.clone(), policy, t)
                    .await
            }
        };
        self.note_login(&result, "login", username, serde_json::Map::new(), source)
            .await;
        result
    }

    /// A sign-in attempt's `user_login` event: the account's label on success, else the
    /// attempted name (bounded; never the password) after `kind:`; failures carry the reason.
    async fn note_login(
        &self,
        result: &Result<SessionStart, LoginError>,
        kind: &str,
        username: &str,
        mut detail: serde_json::Map<String, serde_json::Value>,
        source: Option<String>,
    ) {
        if let Err(e) = result {
            detail.insert("reason".into(), e.to_string().into());
        }
        let ev = AuditEvent {
            action: AuditAction::UserLogin,
            outcome: if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            actor: match result {
                Ok(s) => huren_access::Principal::User(s.user.clone()).label(),
                Err(_) => format!(
                    "{kind}:{}",
                    username.trim().chars().take(64).collect::<String>()
                ),
            },
            institution: result
                .as_ref()
                .ok()
                .map(|s| s.user.institution_code.to_string()),
            patient: None,
            study_uid: None,
            object: Some("session".into()),
            source_address: source,
            detail: serde_json::Value::Object(detail),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record sign-in audit event");
        }
    }

    /// A person whose identity another party verified (OpenID Connect): the active huren
    /// account with that username starts a session, no password. The provider proves who they
    /// are; the account decides role, institution and department. Audited as `user_login`
    /// with `via` and the provider's `detail` (issuer, subject).
    pub async fn sign_in_verified(
        &self,
        username: &str,
        via: &str,
        detail: serde_json::Value,
        source: Option<String>,
    ) -> Result<SessionStart, LoginError> {
        let t = now();
        let result = match self.index.user_account(username.trim()).await? {
            Some(a) if a.locked_until.is_some_and(|u| u > t) => Err(LoginError::Locked {
                until: a.locked_until.unwrap_or(t),
            }),
            Some(a) if !a.disabled => Ok(self.start_session(a, source.clone(), t).await?),
            _ => Err(LoginError::Invalid),
        };
        let mut detail = match detail {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        detail.insert("via".into(), via.into());
        self.note_login(&result, via, username, detail, source)
            .await;
        result
    }

    async fn check_password(
        &self,
        a: UserAccount,
        password: &str,
        source: Option<String>,
        policy: AccountPolicy,
        t: i64,
    ) -> Result<SessionStart, LoginError> {
        if !verify_password(password.to_owned(), a.password_hash.clone()).await {
            let lock = (a.failed_attempts + 1 >= policy.lockout_attempts)
                .then_some(t + policy.lockout_secs);
            self.index.login_failed(a.user.user_id, lock).await?;
            return Err(match lock {
                Some(until) => LoginError::Locked { until },
                None => LoginError::Invalid,
            });
        }
        self.index.login_succeeded(a.user.user_id).await?;
        Ok(self.start_session(a, source, t).await?)
    }

    async fn start_session(
        &self,
        a: UserAccount,
        source: Option<String>,
        t: i64,
    ) -> Result<SessionStart, crate::ports::StoreError> {
        let secret = random_secret();
        let csrf_token = random_secret();
        let expires_at = t + self.config.accounts.session_absolute_secs;
        self.index
            .create_session(SessionRecord {
                secret_hash: hash_token(&secret),
                user_id: a.user.user_id,
                csrf_token: csrf_token.clone(),
                created_at: t,
                last_seen_at: t,
                expires_at,
                source_address: source,
            })
            .await?;
        Ok(SessionStart {
            secret,
            csrf_token,
            expires_at,
            user: a.user,
            display_name: a.display_name,
        })
    }

    /// The HIS registers (or closes) an encounter at its own institution: the patient by the
    /// institution's record number (registered on the spot when demographics or an identity
    /// number come with it: the first visit) or by identity number; the doctor by username.
    pub async fn register_encounter(
        &self,
        grant: &IngestGrant,
        req: EncounterRequest<'_>,
    ) -> Result<i64, AdminError> {
        let inst = grant.sender();
        let visit = req.visit_number.trim();
        if visit.is_empty() {
            return Err(AdminError::Invalid(
                "an encounter needs a visit number".into(),
            ));
        }
        let doctor = match req.doctor {
            Some(name) => Some(
                self.colleague(inst.institution_id, name)
                    .await?
                    .user
                    .user_id,
            ),
            None => None,
        };
        let patient = self.resolve_named(grant, req.patient).await?;
        self.open_encounter(
            grant,
            visit,
            patient,
            doctor,
            req.doctor,
            req.department,
            req.open,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_encounter(
        &self,
        grant: &IngestGrant,
        visit: &str,
        patient: PatientRef,
        doctor: Option<i64>,
        doctor_name: Option<&str>,
        department: Option<&str>,
        open: bool,
    ) -> Result<i64, AdminError> {
        let inst = grant.sender();
        let label = patient.label();
        let id = self
            .index
            .upsert_encounter(EncounterUpsert {
                institution_id: inst.institution_id,
                visit_number: visit.to_owned(),
                patient,
                doctor_user_id: doctor,
                department: department.map(str::to_owned),
                open,
            })
            .await?;
        self.callers.forget_encounters(inst.institution_id);
        let ev = AuditEvent {
            action: AuditAction::EncounterChanged,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: Some(inst.institution_code.to_string()),
            patient: Some(label),
            study_uid: None,
            object: Some(format!("encounter:{visit}")),
            source_address: None,
            detail: serde_json::json!({ "open": open, "doctor": doctor_name, "department": department }),
        };
        self.index.record_audit(ev).await?;
        Ok(id)
    }

    /// A user of the sender's own institution (systems act only for their own people).
    pub(crate) async fn colleague(
        &self,
        institution_id: i64,
        username: &str,
    ) -> Result<UserAccount, AdminError> {
        match self.index.user_account(username.trim()).await? {
            Some(a) if a.user.institution_id == institution_id && !a.disabled => Ok(a),
            _ => Err(AdminError::Invalid(format!(
                "{username} is not an active user of this institution"
            ))),
        }
    }

    /// The HIS, acting for one of its doctors, mints a launch ticket for a patient (and opens
    /// the encounter when a visit number is given). Valid `LAUNCH_TTL_SECS`, once.
    pub async fn issue_launch_ticket(
        &self,
        grant: &IngestGrant,
        req: LaunchRequest<'_>,
    ) -> Result<LaunchTicket, AdminError> {
        let doctor = self
            .colleague(grant.sender().institution_id, req.doctor)
            .await?;
        let patient = self.resolve_named(grant, req.patient).await?;
        let encounter = match req.visit_number.map(str::trim) {
            Some(visit) if !visit.is_empty() => Some(
                self.open_encounter(
                    grant,
                    visit,
                    patient.clone(),
                    Some(doctor.user.user_id),
                    Some(req.doctor),
                    req.department.or(doctor.user.department.as_deref()),
                    true,
                )
                .await?,
            ),
            _ => None,
        };
        let secret = random_secret();
        let t = now();
        let expires_at = t + LAUNCH_TTL_SECS;
        self.index
            .create_launch_ticket(NewLaunchTicket {
                secret_hash: hash_token(&secret),
                issued_by: grant.principal().label(),
                user_id: doctor.user.user_id,
                encounter_id: encounter,
                patient,
                issued_at: t,
                expires_at,
            })
            .await?;
        Ok(LaunchTicket { secret, expires_at })
    }

    /// Opening the launch URL: the ticket (once, in time) starts the doctor's session on the
    /// patient. Returns the session and the patient's person when huren knows the record.
    pub async fn redeem_launch_ticket(
        &self,
        secret: &str,
        source: Option<String>,
    ) -> Result<(SessionStart, Option<String>), LoginError> {
        let t = now();
        let redeemed = self
            .index
            .redeem_launch_ticket(&hash_token(secret), t)
            .await?;
        let outcome = match redeemed {
            None => Err(LoginError::Invalid),
            Some(r) => match self.index.user_account_by_id(r.user_id).await? {
                Some(a) if !a.disabled && a.locked_until.is_none_or(|u| u <= t) => {
                    let person = self
                        .index
                        .find_persons(&r.patient.search(), 1)
                        .await?
                        .into_iter()
                        .next()
                        .map(|h| h.person);
                    let start = self.start_session(a, source.clone(), t).await?;
                    Ok((start, person, r))
                }
                _ => Err(LoginError::Invalid),
            },
        };
        let ev = AuditEvent {
            action: AuditAction::UserLogin,
            outcome: if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            actor: match &outcome {
                Ok((s, _, _)) => huren_access::Principal::User(s.user.clone()).label(),
                Err(_) => "launch".into(),
            },
            institution: outcome
                .as_ref()
                .ok()
                .map(|(s, _, _)| s.user.institution_code.to_string()),
            patient: outcome.as_ref().ok().map(|(_, _, r)| r.patient.label()),
            study_uid: None,
            object: Some("session".into()),
            source_address: source,
            detail: serde_json::json!({
                "via": "launch",
                "encounter": outcome.as_ref().ok().and_then(|(_, _, r)| r.encounter_id),
            }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record launch audit event");
        }
        outcome.map(|(s, p, _)| (s, p))
    }

    /// The session a cookie's secret names, if it is live: not ended, not past its absolute
    /// expiry, used within the idle timeout, its account neither disabled nor locked.
    pub async fn active_session(
        &self,
        secret: &str,
    ) -> Result<Option<ActiveSession>, crate::ports::StoreError> {
        let hash = hash_token(secret);
        let Some((s, a)) = self.index.session(&hash).await? else {
            return Ok(None);
        };
        let t = now();
        let policy = self.config.accounts;
        if a.disabled || t >= s.expires_at || t - s.last_seen_at > policy.session_idle_secs {
            self.index.end_session(&hash, t).await?;
            return Ok(None);
        }
        // Refreshing the idle clock once a minute is enough and spares a write per request.
        if t - s.last_seen_at >= 60 {
            self.index.touch_session(&hash, t).await?;
        }
        Ok(Some(ActiveSession {
            user: a.user,
            csrf_token: s.csrf_token,
        }))
    }

    /// Ends a session (sign-out).
    pub async fn logout(&self, secret: &str, user: &User) -> Result<(), crate::ports::StoreError> {
        self.index.end_session(&hash_token(secret), now()).await?;
        let ev = AuditEvent {
            action: AuditAction::UserLogout,
            outcome: Outcome::Success,
            actor: huren_access::Principal::User(user.clone()).label(),
            institution: Some(user.institution_code.to_string()),
            patient: None,
            study_uid: None,
            object: Some("session".into()),
            source_address: None,
            detail: serde_json::json!({}),
        };
        self.index.record_audit(ev).await
    }
}
