//! High-entropy secrets (API keys, refresh tokens, codes): generated from the OS CSPRNG, stored
//! only as SHA-256 digests, compared in constant time.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random generator works");
    URL_SAFE_NO_PAD.encode(buf)
}

/// The SHA-256 digest under which a secret is stored.
pub fn digest(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time equality of two byte strings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_long() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }

    #[test]
    fn digest_is_sha256() {
        let d = digest("abc");
        assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert!(constant_time_eq(&d, &digest("abc")));
        assert!(!constant_time_eq(&d, &digest("abd")));
    }
}
