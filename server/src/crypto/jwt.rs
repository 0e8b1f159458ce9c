//! Compact JWS with ES256 (default) or EdDSA (Ed25519), on ring: the hot path of every
//! authenticated call verifies one signature, and ring's P-256 is several times faster than the
//! pure-Rust backend of jsonwebtoken (measured: ~380 us against ~55 us per verification on this
//! project's machines). Only what mgpass issues is accepted: `alg` ES256, EdDSA or RS256 (ID
//! tokens of applications that ask for it) with a `kid`, and the `alg` must be the one of the key
//! the `kid` names.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
        RsaPublicKeyComponents, UnparsedPublicKey,
    },
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

#[derive(Debug, PartialEq)]
pub enum JwtError {
    Malformed,
    BadSignature,
}

/// The signature algorithms mgpass issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256: only for the ID tokens of applications that ask for it
    /// (OIDC Discovery requires a provider to offer it); access tokens never use it.
    Rs256,
}

impl Alg {
    /// The JOSE name (`alg` header and JWK member).
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            "RS256" => Some(Alg::Rs256),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// The `kid` of a token, read before its signature is checked (to pick the key). Tokens of any
/// other algorithm (`none`, HS256, ...) are refused here.
pub fn kid(token: &str) -> Result<String, JwtError> {
    let header_b64 = token.split('.').next().ok_or(JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| JwtError::Malformed)?,
    )
    .map_err(|_| JwtError::Malformed)?;
    Alg::parse(&header.alg).ok_or(JwtError::Malformed)?;
    header.kid.ok_or(JwtError::Malformed)
}

/// The `typ` of a token's header (`at+jwt` for access tokens, `JWT` for ID tokens).
pub fn typ(token: &str) -> Option<String> {
    let header_b64 = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    header.typ
}

fn header_alg(token: &str) -> Option<Alg> {
    let header_b64 = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
    Alg::parse(&header.alg)
}

/// A public key, from its JWK members.
pub struct JwtVerifier {
    alg: Alg,
    key: PublicKey,
}

enum PublicKey {
    Raw(UnparsedPublicKey<Vec<u8>>),
    Rsa(RsaPublicKeyComponents<Vec<u8>>),
}

impl JwtVerifier {
    /// An EC P-256 key (`x`, `y`) for ES256, or an OKP Ed25519 key (`x`) for EdDSA.
    pub fn from_jwk(alg: Alg, x: &str, y: &str) -> Result<Self, JwtError> {
        let x = URL_SAFE_NO_PAD.decode(x).map_err(|_| JwtError::Malformed)?;
        let key = match alg {
            Alg::Es256 => {
                let y = URL_SAFE_NO_PAD.decode(y).map_err(|_| JwtError::Malformed)?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwtError::Malformed);
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
            Alg::EdDsa if x.len() == 32 => UnparsedPublicKey::new(&ED25519, x),
            Alg::EdDsa | Alg::Rs256 => return Err(JwtError::Malformed),
        };
        Ok(Self {
            alg,
            key: PublicKey::Raw(key),
        })
    }

    /// An RSA key (`n`, `e`) for RS256.
    pub fn from_rsa_jwk(n: &str, e: &str) -> Result<Self, JwtError> {
        let n = URL_SAFE_NO_PAD.decode(n).map_err(|_| JwtError::Malformed)?;
        let e = URL_SAFE_NO_PAD.decode(e).map_err(|_| JwtError::Malformed)?;
        if n.len() < 256 {
            return Err(JwtError::Malformed);
        }
        Ok(Self {
            alg: Alg::Rs256,
            key: PublicKey::Rsa(RsaPublicKeyComponents { n, e }),
        })
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Checks the algorithm and the signature and returns the claims. Claims (exp, iss, aud) are
    /// the caller's to check.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, JwtError> {
        if header_alg(token) != Some(self.alg) {
            return Err(JwtError::Malformed);
        }
        let (signed, signature_b64) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (_, payload_b64) = signed.split_once('.').ok_or(JwtError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed)?;
        match &self.key {
            PublicKey::Raw(key) => key.verify(signed.as_bytes(), &signature),
            PublicKey::Rsa(key) => {
                key.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
            }
        }
        .map_err(|_| JwtError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
    }
}

enum SigningKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

/// A private key that signs tokens.
pub struct JwtSigner(SigningKey);

impl JwtSigner {
    pub fn from_pkcs8(alg: Alg, der: &[u8]) -> Result<Self, String> {
        let key = match alg {
            Alg::Es256 => EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .map(SigningKey::Es256)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?,
            Alg::EdDsa => Ed25519KeyPair::from_pkcs8(der)
                .map(SigningKey::EdDsa)
                .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?,
            Alg::Rs256 => RsaKeyPair::from_pkcs8(der)
                .map(SigningKey::Rs256)
                .map_err(|e| format!("not an RSA PKCS#8 key: {e}"))?,
        };
        Ok(Self(key))
    }

    /// A new Ed25519 key: its PKCS#8 document and its public key (the JWK `x`).
    pub fn generate_ed25519() -> Result<(Vec<u8>, Vec<u8>), String> {
        let der =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| e.to_string())?;
        let pair = Ed25519KeyPair::from_pkcs8(der.as_ref()).map_err(|e| e.to_string())?;
        Ok((der.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
    }

    pub fn alg(&self) -> Alg {
        match self.0 {
            SigningKey::Es256(_) => Alg::Es256,
            SigningKey::EdDsa(_) => Alg::EdDsa,
            SigningKey::Rs256(_) => Alg::Rs256,
        }
    }

    pub fn sign<C: Serialize>(&self, kid: &str, typ: &str, claims: &C) -> Result<String, String> {
        let alg = self.alg();
        let header = Header {
            alg: alg.name().into(),
            typ: Some(typ.into()),
            kid: Some(kid.into()),
        };
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|e| e.to_string())?);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| e.to_string())?);
        let signed = format!("{header}.{payload}");
        let signature = match &self.0 {
            SigningKey::Es256(key) => key
                .sign(&SystemRandom::new(), signed.as_bytes())
                .map_err(|e| e.to_string())?
                .as_ref()
                .to_vec(),
            SigningKey::EdDsa(key) => key.sign(signed.as_bytes()).as_ref().to_vec(),
            SigningKey::Rs256(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signed.as_bytes(),
                    &mut signature,
                )
                .map_err(|e| e.to_string())?;
                signature
            }
        };
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};

    fn key() -> (JwtSigner, JwtVerifier, SecretKey) {
        let secret = SecretKey::from_slice(&[7u8; 32]).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let point = secret.public_key().to_encoded_point(false);
        let verifier = JwtVerifier::from_jwk(
            Alg::Es256,
            &URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            &URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        )
        .unwrap();
        (
            JwtSigner::from_pkcs8(Alg::Es256, der.as_bytes()).unwrap(),
            verifier,
            secret,
        )
    }

    #[test]
    fn eddsa_signs_verifies_and_interoperates_with_jsonwebtoken() {
        let (der, public) = JwtSigner::generate_ed25519().unwrap();
        let signer = JwtSigner::from_pkcs8(Alg::EdDsa, &der).unwrap();
        let x = URL_SAFE_NO_PAD.encode(&public);
        let verifier = JwtVerifier::from_jwk(Alg::EdDsa, &x, "").unwrap();
        let claims = serde_json::json!({"sub": "u1"});
        let token = signer.sign("k2", "at+jwt", &claims).unwrap();
        assert_eq!(
            verifier.verify::<serde_json::Value>(&token).unwrap(),
            claims
        );
        let decoding = jsonwebtoken::DecodingKey::from_ed_components(&x).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        // An ES256 key never accepts an EdDSA token, whatever its signature.
        let (_, es_verifier, _) = key();
        assert_eq!(
            es_verifier.verify::<serde_json::Value>(&token).unwrap_err(),
            JwtError::Malformed
        );
    }

    #[test]
    fn signs_and_verifies_and_interoperates_with_jsonwebtoken() {
        let (signer, verifier, secret) = key();
        let claims = serde_json::json!({"sub": "u1", "exp": 4_000_000_000u64});
        let token = signer.sign("k1", "at+jwt", &claims).unwrap();
        assert_eq!(kid(&token).unwrap(), "k1");
        assert_eq!(
            verifier.verify::<serde_json::Value>(&token).unwrap(),
            claims
        );

        // An independent implementation accepts ring's signature...
        let point = secret.public_key().to_encoded_point(false);
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            &URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        // ...and ring accepts the independent implementation's.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        let encoding =
            jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
        let theirs = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        assert_eq!(
            verifier.verify::<serde_json::Value>(&theirs).unwrap(),
            claims
        );
    }

    #[test]
    fn rs256_signs_verifies_and_interoperates_with_jsonwebtoken() {
        use rsa::{pkcs8::EncodePrivateKey, traits::PublicKeyParts};
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = private.to_pkcs8_der().unwrap();
        let signer = JwtSigner::from_pkcs8(Alg::Rs256, der.as_bytes()).unwrap();
        let (n, e) = (
            URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        );
        let verifier = JwtVerifier::from_rsa_jwk(&n, &e).unwrap();
        let claims = serde_json::json!({"sub": "u1"});
        let token = signer.sign("r1", "JWT", &claims).unwrap();
        assert_eq!(
            verifier.verify::<serde_json::Value>(&token).unwrap(),
            claims
        );
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        // The RSA key refuses tokens of other algorithms, and EC keys refuse RS256 tokens.
        let (es_signer, es_verifier, _) = key();
        let es_token = es_signer.sign("r1", "JWT", &claims).unwrap();
        assert_eq!(
            verifier.verify::<serde_json::Value>(&es_token).unwrap_err(),
            JwtError::Malformed
        );
        assert_eq!(
            es_verifier.verify::<serde_json::Value>(&token).unwrap_err(),
            JwtError::Malformed
        );
        // Keys under 2048 bits are refused.
        assert!(JwtVerifier::from_rsa_jwk(&URL_SAFE_NO_PAD.encode([0xffu8; 128]), &e).is_err());
    }

    #[test]
    fn refuses_tampering_and_other_algorithms() {
        let (signer, verifier, _) = key();
        let token = signer
            .sign("k1", "at+jwt", &serde_json::json!({"sub": "u1"}))
            .unwrap();
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#)
        );
        assert_eq!(
            verifier.verify::<serde_json::Value>(&forged).unwrap_err(),
            JwtError::BadSignature
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert_eq!(kid(&none).unwrap_err(), JwtError::Malformed);
        let hs = format!(
            "{}.{}.x",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        assert_eq!(kid(&hs).unwrap_err(), JwtError::Malformed);
        assert!(verifier.verify::<serde_json::Value>("a.b").is_err());
    }
}
