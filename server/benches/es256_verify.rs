//! Access-token verification inside the server against the raw ES256 verification of the crypto
//! library it uses (ring), on one thread, in process. Prints figures; asserts nothing.
//!
//!   cargo bench -p mgpass-server --bench es256_verify -- [--secs 6] [--rounds 3]
//!
//! Paths, from the bare signature check to what the auth layer does with a bearer token:
//! - `ring`: `UnparsedPublicKey::verify` (ECDSA_P256_SHA256_FIXED) on the token's signed part and
//!   its already-decoded signature: the library's rate, the baseline;
//! - `jwt`: `JwtVerifier::verify` (header alg check, base64 of signature and payload, ring, JSON into a Value);
//! - `keyring`: `KeyRing::verify::<AccessClaims>` (header and kid, key lookup under the lock,
//!   the above, iss/aud/exp checks, claims decoding): the in-server verification path;
//! - `cached`: `KeyRing::verify` of a token verified before (the server keeps verified tokens by
//!   SHA-256; expiry and revocation are still checked on every use);
//! - `authenticate`: `TokenIssuer::authenticate` (keyring + the Principal), the token part of the
//!   auth layer (its session check and rate limit are not included).
//! Every path runs `--secs / --rounds` seconds per round, the paths interleaved in each round.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mgpass_server::{
    auth::tokens::{AccessClaims, TokenIssuer},
    crypto::{
        jwt::{Alg, JwtVerifier},
        keys::{KeyPolicy, KeyRing},
    },
};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].parse().expect(name))
        .unwrap_or(default)
}

/// Calls `f` in batches until `window` has passed; returns calls per second.
fn rate(window: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < window {
        for _ in 0..32 {
            f();
        }
        n += 32;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = arg(&args, "--secs", 6);
    let rounds = arg(&args, "--rounds", 3).max(1);
    let window = Duration::from_secs_f64(secs as f64 / rounds as f64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let policy = KeyPolicy {
        algorithm: Alg::Es256,
        rotation_period: chrono::Duration::days(30),
        publish_lead: chrono::Duration::hours(1),
        check_interval: Duration::from_secs(3600),
        leeway_secs: 30,
        retire_after: chrono::Duration::hours(2),
    };
    let _runtime = rt.enter(); // the (never connected) database pool is built inside the runtime
    // Without the cache of verified tokens: every path below checks the signature each time,
    // except `cached`, which shows what a token presented again costs.
    let cached = KeyRing::ephemeral(policy).expect("key ring");
    let keyring = cached.clone().without_verification_cache();
    let (iss, aud) = ("http://127.0.0.1:8080".to_string(), "mgpass".to_string());
    // Neither the revocation list nor the role lookup of `issue` runs here, so the pool never
    // connects.
    let unused_pool =
        mgpass_server::db::pool("postgres://unused@127.0.0.1:1/unused", 1).expect("pool");
    let revoked = mgpass_server::auth::revocation::RevocationList::new(unused_pool.clone());
    let issuer = TokenIssuer::new(
        unused_pool,
        keyring.clone(),
        revoked,
        iss.clone(),
        aud.clone(),
        3600,
    );
    // A token as a login issues it: a user with one role, a session, an email.
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: iss.clone(),
        sub: uuid::Uuid::new_v4().to_string(),
        aud: serde_json::Value::String(aud.clone()),
        iat: now,
        exp: now + 3600,
        jti: "bench-jti-0123456789abcdef".into(),
        email: Some("kofi.boateng@example.com".into()),
        roles: vec!["superAdmin".into()],
        scope: "mgpass:admin".into(),
        orgs: Vec::new(),
        sid: Some(uuid::Uuid::new_v4().to_string()),
        client_id: None,
        org_id: None,
    };
    let token = rt.block_on(keyring.sign(&claims)).expect("sign");
    let jwk = rt.block_on(keyring.jwks()).remove(0);
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).unwrap());
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
    let (signed, sig_b64) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    let verifier = JwtVerifier::from_jwk(Alg::Es256, &jwk.x, &jwk.y).unwrap();

    // Every path accepts the token before anything is timed.
    public
        .verify(signed.as_bytes(), &signature)
        .expect("ring verifies");
    verifier
        .verify::<serde_json::Value>(&token)
        .expect("jwt verifies");
    rt.block_on(keyring.verify::<AccessClaims>(&token, &iss, &aud))
        .expect("keyring verifies");
    rt.block_on(issuer.authenticate(&token))
        .expect("authenticates");

    rt.block_on(cached.verify::<AccessClaims>(&token, &iss, &aud))
        .expect("cached ring verifies");
    let names = ["ring", "jwt", "keyring", "authenticate", "cached"];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        rates[0].push(rate(window, || {
            public
                .verify(signed.as_bytes(), std::hint::black_box(&signature))
                .unwrap()
        }));
        rates[1].push(rate(window, || {
            std::hint::black_box(
                verifier
                    .verify::<serde_json::Value>(std::hint::black_box(&token))
                    .unwrap(),
            );
        }));
        rates[2].push(rt.block_on(async {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < window {
                for _ in 0..32 {
                    std::hint::black_box(
                        keyring
                            .verify::<AccessClaims>(std::hint::black_box(&token), &iss, &aud)
                            .await
                            .unwrap(),
                    );
                }
                n += 32;
            }
            n as f64 / start.elapsed().as_secs_f64()
        }));
        rates[3].push(rt.block_on(async {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < window {
                for _ in 0..32 {
                    std::hint::black_box(
                        issuer
                            .authenticate(std::hint::black_box(&token))
                            .await
                            .unwrap(),
                    );
                }
                n += 32;
            }
            n as f64 / start.elapsed().as_secs_f64()
        }));
        rates[4].push(rt.block_on(async {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < window {
                for _ in 0..32 {
                    std::hint::black_box(
                        cached
                            .verify::<AccessClaims>(std::hint::black_box(&token), &iss, &aud)
                            .await
                            .unwrap(),
                    );
                }
                n += 32;
            }
            n as f64 / start.elapsed().as_secs_f64()
        }));
    }
    println!(
        "ES256 verification, 1 thread, token of {} bytes, {rounds} rounds of {:.1} s per path:",
        token.len(),
        window.as_secs_f64()
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(&rates[0]);
    for (name, r) in names.iter().zip(&rates) {
        let m = mean(r);
        println!(
            "  {name:<13} {m:>9.0} verifications/s  {:>6.1} us each  {:>5.2} of ring  (rounds: {})",
            1e6 / m,
            m / base,
            r.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "RESULT\t{name}\t{m:.1}\t{}",
            r.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}
