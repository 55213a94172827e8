//! Sensitive identifiers at rest (PIPL: identity numbers and phone numbers are sensitive
//! personal information).
//!
//! A value is stored twice, and never in the clear:
//! - **sealed** with SM4 (GB/T 32907) in GCM mode (as specified for TLS in RFC 8998): a fresh
//!   96-bit nonce per value, the identifier's system as associated data (a sealed resident
//!   number cannot be passed off as a sealed phone number), layout `nonce ‖ ciphertext ‖ tag`;
//! - as a **blind index**: HMAC-SM3 (GB/T 32905) of `system ‖ 0x00 ‖ value` under a second key,
//!   so equal values can be found with an ordinary index without decrypting anything, while
//!   the index alone reveals nothing to someone without the key (no dictionary attack on the
//!   small space of identity numbers).
//!
//! Keys come from configuration (hex, 16 bytes for SM4, at least 16 for the index key), never
//! from the database. A key identifier is stored with each sealed value so keys can be rotated.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{AesGcm, KeyInit};
use hmac::{Hmac, Mac};

type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the SM4 key must be 32 hex digits (16 bytes)")]
    EncryptionKey,
    #[error("the blind-index key must be at least 32 hex digits (16 bytes)")]
    IndexKey,
    #[error("sealed value was made with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("sealed value is damaged or was sealed for another system")]
    Damaged,
    #[error("no randomness available for a nonce")]
    Random,
}

/// A sealed value as stored: which key sealed it, and `nonce ‖ ciphertext ‖ tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// The keys, from configuration.
pub struct Sealer {
    key_id: String,
    cipher: Sm4Gcm,
    /// Older keys still able to open values sealed before a rotation.
    retired: Vec<(String, Sm4Gcm)>,
    index_key: Vec<u8>,
}

fn cipher(hex_key: &str) -> Result<Sm4Gcm, SealError> {
    let key = hex::decode(hex_key.trim()).map_err(|_| SealError::EncryptionKey)?;
    Sm4Gcm::new_from_slice(&key).map_err(|_| SealError::EncryptionKey)
}

impl Sealer {
    /// `key_id` names the SM4 key (stored beside each sealed value); `index_key` keys the
    /// blind index and must not change while an index exists.
    pub fn new(key_id: &str, sm4_key_hex: &str, index_key_hex: &str) -> Result<Sealer, SealError> {
        let index_key = hex::decode(index_key_hex.trim()).map_err(|_| SealError::IndexKey)?;
        if index_key.len() < 16 {
            return Err(SealError::IndexKey);
        }
        Ok(Sealer {
            key_id: key_id.to_owned(),
            cipher: cipher(sm4_key_hex)?,
            retired: Vec::new(),
            index_key,
        })
    }

    /// Adds an older key that can still open values sealed with it.
    pub fn with_retired(mut self, key_id: &str, sm4_key_hex: &str) -> Result<Sealer, SealError> {
        self.retired.push((key_id.to_owned(), cipher(sm4_key_hex)?));
        Ok(self)
    }

    /// Seals `value` of identifier `system`.
    pub fn seal(&self, system: &str, value: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let ct = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: value.as_bytes(),
                    aad: system.as_bytes(),
                },
            )
            .map_err(|_| SealError::Damaged)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ct);
        Ok(Sealed {
            key_id: self.key_id.clone(),
            bytes,
        })
    }

    /// Opens a value sealed for `system`.
    pub fn open(&self, system: &str, sealed: &Sealed) -> Result<String, SealError> {
        let cipher = if sealed.key_id == self.key_id {
            &self.cipher
        } else {
            self.retired
                .iter()
                .find(|(id, _)| *id == sealed.key_id)
                .map(|(_, c)| c)
                .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?
        };
        if sealed.bytes.len() < 12 + 16 {
            return Err(SealError::Damaged);
        }
        let (nonce, ct) = sealed.bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Damaged)?;
        let pt = cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: ct,
                    aad: system.as_bytes(),
                },
            )
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(pt).map_err(|_| SealError::Damaged)
    }

    /// The blind index of `value` in `system` (hex, 64 digits): equal inputs give equal
    /// indexes under one key.
    pub fn blind_index(&self, system: &str, value: &str) -> String {
        // HMAC accepts keys of any length; the constructor checked ours is long enough.
        let Ok(mut mac) = <Hmac<sm3::Sm3> as hmac::KeyInit>::new_from_slice(&self.index_key) else {
            return String::new();
        };
        mac.update(system.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdeffedcba9876543210";
    const INDEX_KEY: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        // RFC 8998 Appendix A.1 (SM4-GCM test vector).
        let c = cipher(KEY).expect("key");
        let nonce: [u8; 12] = hex::decode("00001234567800000000ABCD")
            .expect("hex")
            .try_into()
            .expect("12 bytes");
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").expect("hex");
        let pt = hex::decode("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA").expect("hex");
        let out = c
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .expect("encrypt");
        assert_eq!(
            hex::encode_upper(out),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D83DE3541E4C2B58177E065A9BF7B62EC"
        );
    }

    #[test]
    fn sm3_matches_gb_t_32905() {
        use sm3::Digest;
        // GB/T 32905-2016 Appendix A.1: SM3("abc").
        assert_eq!(
            hex::encode(sm3::Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn seal_open_and_bind_to_the_system() {
        let s = Sealer::new("k1", KEY, INDEX_KEY).expect("keys");
        let id = "11010519491231002X";
        let a = s.seal("urn:huren:id:cn-resident", id).expect("seal");
        let b = s.seal("urn:huren:id:cn-resident", id).expect("seal");
        assert_ne!(a.bytes, b.bytes, "fresh nonce per value");
        assert!(!String::from_utf8_lossy(&a.bytes).contains(id));
        assert_eq!(s.open("urn:huren:id:cn-resident", &a).as_deref(), Ok(id));
        assert_eq!(s.open("urn:huren:phone", &a), Err(SealError::Damaged));
        let mut tampered = a.clone();
        tampered.bytes[15] ^= 1;
        assert_eq!(
            s.open("urn:huren:id:cn-resident", &tampered),
            Err(SealError::Damaged)
        );
    }

    #[test]
    fn blind_index_is_keyed_and_system_scoped() {
        let s = Sealer::new("k1", KEY, INDEX_KEY).expect("keys");
        let other = Sealer::new("k1", KEY, "ffeeddccbbaa99887766554433221100").expect("keys");
        let sys = "urn:huren:id:cn-resident";
        let v = "11010519491231002X";
        // Known answer computed independently (Python hmac with OpenSSL's SM3).
        assert_eq!(
            s.blind_index(sys, v),
            "c7aace0cacb6c745602fc0f4a90bd8940eac4db718c140472f0c0073d92b0a7e"
        );
        assert_eq!(s.blind_index(sys, v).len(), 64);
        assert_ne!(s.blind_index(sys, v), other.blind_index(sys, v));
        assert_ne!(s.blind_index(sys, v), s.blind_index("urn:huren:phone", v));
    }

    #[test]
    fn rotation_and_bad_keys() {
        let old = Sealer::new("k1", KEY, INDEX_KEY).expect("keys");
        let sealed = old.seal("urn:huren:phone", "13800001234").expect("seal");
        let new = Sealer::new("k2", "fedcba98765432100123456789abcdef", INDEX_KEY).expect("keys");
        assert_eq!(
            new.open("urn:huren:phone", &sealed),
            Err(SealError::UnknownKey("k1".into()))
        );
        let new = new.with_retired("k1", KEY).expect("old key");
        assert_eq!(
            new.open("urn:huren:phone", &sealed).as_deref(),
            Ok("13800001234")
        );
        assert!(matches!(
            Sealer::new("k", "abcd", INDEX_KEY),
            Err(SealError::EncryptionKey)
        ));
        assert!(matches!(
            Sealer::new("k", KEY, "abcd"),
            Err(SealError::IndexKey)
        ));
    }
}

/// The audit trail's keyed chain (issue #6): each event's MAC is HMAC-SM3 over the previous
/// event's MAC, its sequence number and its fields, under a key kept outside the database. Who
/// can write the database but not read the key can neither change, remove, reorder nor insert
/// an event, nor recompute the chain, without `huren audit verify` noticing; truncation of the
/// newest events is caught by signed head checkpoints kept outside the data directory.
pub mod chain {
    use hmac::{Hmac, Mac};

    /// The MAC before the first event.
    pub const GENESIS: [u8; 32] = [0; 32];

    #[derive(Debug, thiserror::Error, PartialEq, Eq)]
    #[error("the audit chain key must be at least 32 hex digits (16 bytes)")]
    pub struct KeyError;

    /// The keyed HMAC, ready to clone per use.
    #[derive(Clone)]
    pub struct ChainKey(Hmac<sm3::Sm3>);

    impl std::fmt::Debug for ChainKey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("ChainKey(…)")
        }
    }

    impl ChainKey {
        pub fn from_hex(hex_key: &str) -> Result<ChainKey, KeyError> {
            let key = hex::decode(hex_key.trim()).map_err(|_| KeyError)?;
            if key.len() < 16 {
                return Err(KeyError);
            }
            let mac =
                <Hmac<sm3::Sm3> as hmac::KeyInit>::new_from_slice(&key).map_err(|_| KeyError)?;
            Ok(ChainKey(mac))
        }

        fn mac(&self) -> Hmac<sm3::Sm3> {
            self.0.clone()
        }

        /// The MAC of event `seq` after `prev`. Fields are length-prefixed (u32, big-endian;
        /// `0xFFFFFFFF` for an absent one) so no two different events encode alike.
        pub fn link(&self, prev: &[u8], seq: i64, fields: &[Option<&str>]) -> [u8; 32] {
            let mut m = self.mac();
            m.update(b"huren-audit-v1\0");
            m.update(prev);
            m.update(&seq.to_be_bytes());
            for f in fields {
                match f {
                    Some(s) => {
                        m.update(&(s.len() as u32).to_be_bytes());
                        m.update(s.as_bytes());
                    }
                    None => m.update(&u32::MAX.to_be_bytes()),
                }
            }
            m.finalize().into_bytes().into()
        }

        /// A head checkpoint's signature: (seq, MAC, unix time it was taken).
        pub fn sign_checkpoint(&self, seq: i64, mac: &[u8], at: i64) -> [u8; 32] {
            let mut m = self.mac();
            m.update(b"huren-audit-checkpoint-v1\0");
            m.update(&seq.to_be_bytes());
            m.update(mac);
            m.update(&at.to_be_bytes());
            m.finalize().into_bytes().into()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn links_depend_on_everything() {
            let k = ChainKey::from_hex("00112233445566778899aabbccddeeff").expect("key");
            let base = k.link(&GENESIS, 1, &[Some("a"), None, Some("b")]);
            assert_ne!(base, k.link(&GENESIS, 2, &[Some("a"), None, Some("b")]));
            assert_ne!(base, k.link(&[1; 32], 1, &[Some("a"), None, Some("b")]));
            assert_ne!(base, k.link(&GENESIS, 1, &[Some("a"), Some(""), Some("b")]));
            // Moving bytes between fields changes the MAC (length prefixes).
            assert_ne!(base, k.link(&GENESIS, 1, &[Some("ab"), None, Some("")]));
            let other = ChainKey::from_hex("ffeeddccbbaa99887766554433221100").expect("key");
            assert_ne!(base, other.link(&GENESIS, 1, &[Some("a"), None, Some("b")]));
            assert_eq!(base, k.link(&GENESIS, 1, &[Some("a"), None, Some("b")]));
            assert!(ChainKey::from_hex("0011").is_err());
        }
    }
}
