//! People's accounts, sign-in and sessions (issue #6). Passwords are hashed with argon2id
//! (RFC 9106; the crate's defaults, m = 19 MiB, t = 2, p = 1) and checked off the async
//! threads; repeated failures lock the account for a while; sessions are random 256-bit
//! secrets stored only as SHA-256, with idle and absolute expiry and a CSRF token.

use crate::model::{NewUser, SessionRecord, UserAccount};
use crate::{AdminError, Archive};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use huren_access::{AdminGrant, AuditAction, AuditEvent, Outcome, Role, User, hash_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPolicy {
    pub session_idle_secs: i64,
    pub session_absolute_secs: i64,
    pub lockout_attempts: i64,
    pub lockout_secs: i64,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        AccountPolicy {
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            lockout_attempts: 5,
            lockout_secs: 15 * 60,
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn random_secret() -> String {
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
                .map_err(|e| AdminError::Invalid(format!("hashing failed: {e}")))
        })
        .await
        .map_err(|e| AdminError::Invalid(format!("hashing failed: {e}")))??;
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
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, serde_json::json!({})),
            Err(e) => (
                Outcome::Failure,
                serde_json::json!({ "reason": e.to_string() }),
            ),
        };
        let ev = AuditEvent {
            action: AuditAction::UserLogin,
            outcome,
            actor: match &result {
                Ok(s) => huren_access::Principal::User(s.user.clone()).label(),
                // The attempted name, not the password; bounded.
                Err(_) => format!(
                    "login:{}",
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
            detail,
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record sign-in audit event");
        }
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
        let secret = random_secret();
        let csrf_token = random_secret();
        let expires_at = t + policy.session_absolute_secs;
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
