//! OpenID Connect sign-in for people (issue #6), used by huren-http behind its `oidc` feature.
//!
//! The authorization code flow with PKCE (OpenID Connect Core 1.0 §3.1; RFC 7636, S256):
//! huren sends the browser to the provider with a one-time `state`, a `nonce` and a code
//! challenge; the provider sends it back with a code; huren exchanges the code at the token
//! endpoint (client authentication `client_secret_post`, RFC 6749 §2.3.1) and accepts the ID
//! token only when (§3.1.3.7):
//! - its signature verifies against a key the provider publishes (RS256 or ES256 — never
//!   `none`, never a MAC keyed with the client secret);
//! - `iss` is the configured issuer and `aud` names this client (and `azp`, when there are
//!   several audiences);
//! - it has not expired;
//! - its `nonce` is the one this sign-in sent.
//!
//! The provider proves who the person is; huren's own account of that username decides their
//! role, institution and department, so an identity provider cannot grant access by itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a started sign-in waits for the provider to send the browser back.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins waiting at once (the oldest are dropped first).
const PENDING_MAX: usize = 10_000;
/// Clock difference tolerated between huren and the provider, in seconds.
const LEEWAY: i64 = 60;

/// Where the provider is and who huren is to it (`[oidc]` in the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider's issuer URL; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// huren's callback as registered at the provider (`…/auth/oidc/callback`).
    pub redirect_url: String,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// The claim holding the huren username (`preferred_username` by default).
    pub username_claim: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the identity provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("this sign-in is unknown, used or expired; start again")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the ID token is not acceptable: {0}")]
    Token(String),
}

/// The part of the discovery document huren uses (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// One published key (RFC 7517; RSA and P-256 only).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

struct Pending {
    verifier: String,
    nonce: String,
    return_to: Option<String>,
    at: Instant,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The huren username (from the configured claim).
    pub username: String,
    /// The provider's subject identifier (`sub`).
    pub subject: String,
    pub issuer: String,
    /// Where the browser asked to go after signing in.
    pub return_to: Option<String>,
}

pub struct Client {
    settings: Settings,
    http: reqwest::Client,
    provider: tokio::sync::RwLock<Option<(Discovery, Vec<Jwk>)>>,
    pending: std::sync::Mutex<HashMap<String, Pending>>,
}

fn random() -> String {
    // 2 × 122 random bits, hex: state, nonce and (doubled) the PKCE verifier, whose 43–128
    // characters RFC 7636 §4.1 allows from the unreserved set.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, Error> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| Error::Provider(format!("{url}: {e}")))?;
    if !r.status().is_success() {
        return Err(Error::Provider(format!("{url}: HTTP {}", r.status())));
    }
    r.json()
        .await
        .map_err(|e| Error::Provider(format!("{url}: {e}")))
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, Error> {
        // reqwest is built without its own crypto provider: use the process's ring one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Provider(e.to_string()))?;
        Ok(Client {
            settings,
            http,
            provider: tokio::sync::RwLock::new(None),
            pending: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The provider's endpoints and keys, fetched once and again when a token names a key
    /// not yet seen (providers rotate keys).
    async fn provider(&self, refresh: bool) -> Result<(Discovery, Vec<Jwk>), Error> {
        if !refresh && let Some(p) = self.provider.read().await.clone() {
            return Ok(p);
        }
        let issuer = self.settings.issuer.trim_end_matches('/');
        let d: Discovery = get_json(
            &self.http,
            &format!("{issuer}/.well-known/openid-configuration"),
        )
        .await?;
        // Discovery §4.3: the document's issuer must be exactly the one asked for.
        if d.issuer.trim_end_matches('/') != issuer {
            return Err(Error::Provider(format!(
                "the discovery document names issuer {:?}, not {issuer:?}",
                d.issuer
            )));
        }
        let keys: Jwks = get_json(&self.http, &d.jwks_uri).await?;
        let p = (d, keys.keys);
        *self.provider.write().await = Some(p.clone());
        Ok(p)
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to.
    pub async fn begin(&self, return_to: Option<String>) -> Result<String, Error> {
        let (d, _) = self.provider(false).await?;
        let (state, nonce, verifier) = (random(), random(), format!("{}{}", random(), random()));
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|_, v| v.at.elapsed() < PENDING_TTL);
            if p.len() >= PENDING_MAX
                && let Some(oldest) = p.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| k.clone())
            {
                p.remove(&oldest);
            }
            p.insert(
                state.clone(),
                Pending {
                    verifier,
                    nonce: nonce.clone(),
                    return_to,
                    at: Instant::now(),
                },
            );
        }
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(
            self.settings
                .scopes
                .iter()
                .filter(|s| s.as_str() != "openid")
                .cloned(),
        );
        let url = reqwest::Url::parse_with_params(
            &d.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", &self.settings.client_id),
                ("redirect_uri", &self.settings.redirect_url),
                ("scope", &scopes.join(" ")),
                ("state", &state),
                ("nonce", &nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .map_err(|e| Error::Provider(format!("authorization_endpoint: {e}")))?;
        Ok(url.to_string())
    }

    /// Finishes a sign-in from the provider's redirect: exchanges the code, verifies the ID
    /// token, and says who signed in. A `state` works once.
    pub async fn finish(&self, code: &str, state: &str) -> Result<Identity, Error> {
        let pending = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(state))
            .filter(|p| p.at.elapsed() < PENDING_TTL)
            .ok_or(Error::UnknownState)?;
        let (d, keys) = self.provider(false).await?;
        let r = self
            .http
            .post(&d.token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.settings.redirect_url),
                ("code_verifier", &pending.verifier),
                ("client_id", &self.settings.client_id),
                ("client_secret", &self.settings.client_secret),
            ])
            .send()
            .await
            .map_err(|e| Error::Provider(format!("token endpoint: {e}")))?;
        let status = r.status();
        let body: Value = r
            .json()
            .await
            .map_err(|e| Error::Provider(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            // RFC 6749 §5.2: `error` and perhaps `error_description`.
            let what = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error code");
            return Err(Error::Refused(format!("token endpoint: {status} {what}")));
        }
        let Some(token) = body.get("id_token").and_then(Value::as_str) else {
            return Err(Error::Token("the token response has no id_token".into()));
        };
        let check = |keys: &[Jwk]| {
            verify_id_token(
                token,
                keys,
                &d.issuer,
                &self.settings.client_id,
                &pending.nonce,
                now(),
            )
        };
        let claims = match check(&keys) {
            Err(Error::Token(m)) if m == UNKNOWN_KEY => {
                let (_, fresh) = self.provider(true).await?;
                check(&fresh)?
            }
            other => other?,
        };
        let claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let username = claim(&self.settings.username_claim).ok_or_else(|| {
            Error::Token(format!(
                "the ID token has no {} claim",
                self.settings.username_claim
            ))
        })?;
        Ok(Identity {
            username,
            subject: claim("sub").unwrap_or_default(),
            issuer: d.issuer,
            return_to: pending.return_to,
        })
    }
}

/// Why a token was refused when no published key has its `kid` (the client then fetches the
/// keys again once, for a rotated key).
pub const UNKNOWN_KEY: &str = "no published key matches the token's kid";

fn b64(part: &str, what: &str) -> Result<Vec<u8>, Error> {
    B64.decode(part)
        .map_err(|_| Error::Token(format!("{what} is not base64url")))
}

fn signature_verifies(alg: &str, k: &Jwk, input: &[u8], sig: &[u8]) -> Result<bool, Error> {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
        UnparsedPublicKey,
    };
    let field = |v: &Option<String>, name: &str| {
        v.as_deref()
            .ok_or_else(|| Error::Token(format!("a published key has no {name}")))
            .and_then(|s| b64(s, name))
    };
    Ok(match (alg, k.kty.as_str()) {
        ("RS256", "RSA") => {
            let (n, e) = (field(&k.n, "n")?, field(&k.e, "e")?);
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, input, sig)
                .is_ok()
        }
        ("ES256", "EC") if k.crv.as_deref() == Some("P-256") => {
            // SEC 1 uncompressed point: 0x04 ‖ x ‖ y.
            let mut point = vec![4u8];
            point.extend(field(&k.x, "x")?);
            point.extend(field(&k.y, "y")?);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(input, sig)
                .is_ok()
        }
        _ => false,
    })
}

/// Verifies an ID token (a JWS in compact form) and returns its claims. Pure: the keys, the
/// expected issuer, client, nonce and the time are given.
pub fn verify_id_token(
    token: &str,
    keys: &[Jwk],
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Map<String, Value>, Error> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, sig] = parts[..] else {
        return Err(Error::Token("not a JWS in compact form".into()));
    };
    let header: Map<String, Value> = serde_json::from_slice(&b64(header, "the header")?)
        .map_err(|_| Error::Token("the header is not JSON".into()))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !matches!(alg, "RS256" | "ES256") {
        return Err(Error::Token(format!(
            "alg {alg:?} is not accepted (RS256 or ES256)"
        )));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let sig = b64(sig, "the signature")?;
    let input = &token.as_bytes()[..token.len() - parts[2].len() - 1];
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .filter(|k| k.use_.as_deref() != Some("enc"))
        .collect();
    if candidates.is_empty() {
        return Err(Error::Token(UNKNOWN_KEY.into()));
    }
    let mut verified = false;
    for k in candidates {
        if signature_verifies(alg, k, input, &sig)? {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(Error::Token("the signature does not verify".into()));
    }
    let claims: Map<String, Value> = serde_json::from_slice(&b64(payload, "the payload")?)
        .map_err(|_| Error::Token("the payload is not JSON".into()))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss").map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/')) {
        return Err(Error::Token("iss is not the configured issuer".into()));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(Error::Token("aud does not name this client".into()));
    }
    if audiences.len() > 1 && text("azp").is_some_and(|a| a != client_id) {
        return Err(Error::Token("azp is another client".into()));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + LEEWAY > now => {}
        Some(_) => return Err(Error::Token("the token has expired".into())),
        None => return Err(Error::Token("the token has no exp".into())),
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_none_or(|iat| iat > now + LEEWAY)
    {
        return Err(Error::Token("iat is missing or in the future".into()));
    }
    if text("nonce") != Some(nonce) {
        return Err(Error::Token("the nonce is not this sign-in's".into()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const ISS: &str = "https://idp.example/realms/region";
    const NOW: i64 = 1_764_000_000;

    fn key() -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            crv: Some("P-256".into()),
            x: Some(B64.encode(&public[1..33])),
            y: Some(B64.encode(&public[33..65])),
            ..Jwk::default()
        };
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn claims() -> Value {
        json!({ "iss": ISS, "aud": "huren", "sub": "u-1", "preferred_username": "doc",
                "exp": NOW + 300, "iat": NOW, "nonce": "n-1" })
    }

    fn header() -> Value {
        json!({ "alg": "ES256", "kid": "k1", "typ": "JWT" })
    }

    #[test]
    fn a_good_token_verifies_and_each_check_refuses_its_case() {
        let (pair, jwk) = key();
        let keys = [jwk];
        let verify = |t: &str| verify_id_token(t, &keys, ISS, "huren", "n-1", NOW);
        let ok = verify(&sign(&pair, header(), claims())).unwrap();
        assert_eq!(ok["preferred_username"], "doc");
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            sign(&pair, header(), c)
        };
        let why = |t: String| match verify(&t) {
            Err(Error::Token(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(why(with("aud", json!("another-app"))).contains("aud"));
        // Several audiences: fine when azp is absent or this client, refused when another.
        assert!(verify(&with("aud", json!(["huren", "x"]))).is_ok());
        let mut c = claims();
        c["aud"] = json!(["huren", "x"]);
        c["azp"] = json!("x");
        assert!(why(sign(&pair, header(), c)).contains("azp"));
        assert!(why(with("iss", json!("https://evil.example"))).contains("iss"));
        assert!(why(with("exp", json!(NOW - LEEWAY - 1))).contains("expired"));
        assert!(why(with("iat", json!(NOW + LEEWAY + 10))).contains("iat"));
        assert!(why(with("nonce", json!("n-2"))).contains("nonce"));
        // A changed payload under the old signature.
        let good = sign(&pair, header(), claims());
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims();
        c["preferred_username"] = json!("admin");
        let forged = format!("{}.{}.{}", parts[0], B64.encode(c.to_string()), parts[2]);
        assert!(why(forged).contains("signature"));
        // Another key with the same kid.
        let (other, _) = key();
        assert!(why(sign(&other, header(), claims())).contains("signature"));
        // Algorithms that are never accepted.
        for alg in ["none", "HS256", "RS512"] {
            let t = sign(&pair, json!({ "alg": alg, "kid": "k1" }), claims());
            assert!(why(t).contains("not accepted"), "{alg}");
        }
        // A key the provider does not publish (yet): the client fetches the keys again.
        let t = sign(&pair, json!({ "alg": "ES256", "kid": "k9" }), claims());
        assert_eq!(why(t), UNKNOWN_KEY);
        assert!(why("a.b".into()).contains("compact"));
    }
}
