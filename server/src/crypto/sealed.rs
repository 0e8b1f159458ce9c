//! Authenticated encryption at rest (AES-256-GCM) under the deployment's master key, for data
//! that must be stored but must never be readable from a database dump: signing keys' private
//! halves, queued messages that carry codes or links.
//!
//! A sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext+tag`. The `context`
//! (e.g. `"signing-key"`) is bound as associated data, so a value sealed for one use cannot be
//! replayed as another.

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

const VERSION: u8 = 1;

/// The master key. Cloning shares the key; it is never logged.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    /// HMAC key from which purpose-bound subkeys are derived ([`MasterKey::mac`]).
    derive: ring::hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Parses a base64 key of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> std::result::Result<Self, String> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "is not valid base64".to_string())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        let bytes: [u8; 32] = bytes.try_into().expect("length checked");
        Ok(Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)),
            derive: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes),
        })
    }

    /// HMAC-SHA256 of `message` under a subkey bound to `purpose`. For low-entropy secrets (six
    /// digit codes) a plain hash in the database could be reversed by trying every code; keyed,
    /// a database dump alone reveals nothing.
    pub fn mac(&self, purpose: &str, message: &[u8]) -> Vec<u8> {
        let subkey = ring::hmac::sign(&self.derive, format!("mgpass/{purpose}").as_bytes());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, subkey.as_ref());
        ring::hmac::sign(&key, message).as_ref().to_vec()
    }

    /// A fresh random key, base64, for `mgpass keys generate-master`.
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the OS random generator works");
        STANDARD.encode(bytes)
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::internal("random generator failed"))?;
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != VERSION {
            return Err(Error::internal("sealed value has an unknown format"));
        }
        let (nonce, ciphertext) = sealed[1..].split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("length checked");
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("sealed value does not open with this master key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_keyed_and_bound_to_their_purpose() {
        let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert_eq!(key.mac("codes", b"123456"), key.mac("codes", b"123456"));
        assert_ne!(key.mac("codes", b"123456"), other.mac("codes", b"123456"));
        assert_ne!(key.mac("codes", b"123456"), key.mac("other", b"123456"));
    }

    #[test]
    fn seals_and_opens_bound_to_context() {
        let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealed = key.seal("signing-key", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("signing-key", &sealed).unwrap(), b"secret");
        assert!(
            key.open("outbox", &sealed).is_err(),
            "another context does not open it"
        );
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        assert!(
            other.open("signing-key", &sealed).is_err(),
            "another key does not open it"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open("signing-key", &tampered).is_err());
    }

    #[test]
    fn key_format_is_checked() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
    }
}
