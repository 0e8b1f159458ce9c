//! Baselines for the OAuth token-endpoint benchmark (bench/oauth.sh). Prints figures; asserts
//! nothing.
//!
//!   jwt_sign_baselines raw --secs 6 [--threads N]   raw ES256 JWT signing rate (ring, N threads)
//!   jwt_sign_baselines http --port P [--threads N]  a bare HTTP handler that signs one ES256 JWT
//!                                                   per POST (axum + tokio, like the server)
//!
//! The HTTP baseline is the ceiling of what a token endpoint can reach on the machine: it reads
//! the form body, signs claims of the size mgpass issues, and answers JSON, with nothing else.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, routing::post};
use mgpass_server::crypto::jwt::JwtSigner;
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

fn signer() -> JwtSigner {
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .expect("key");
    JwtSigner::from_pkcs8(mgpass_server::crypto::jwt::Alg::Es256, der.as_ref()).expect("signer")
}

fn claims(n: u64) -> serde_json::Value {
    serde_json::json!({
        "iss": "http://127.0.0.1:8080", "sub": "0f9d8c7b-6a5e-4d3c-8b2a-1f0e9d8c7b6a",
        "aud": "https://api.example.com", "iat": 1_800_000_000u64, "exp": 1_800_000_900u64,
        "jti": format!("jti-{n}"), "scope": "content:read", "client_id": "bench-client-id-0123456789",
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = arg(&args, "--threads")
        .map(|t| t.parse().expect("--threads"))
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    match args.get(1).map(String::as_str) {
        Some("raw") => {
            let secs: f64 = arg(&args, "--secs")
                .map(|s| s.parse().expect("--secs"))
                .unwrap_or(6.0);
            let signer = Arc::new(signer());
            let start = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let signer = signer.clone();
                    std::thread::spawn(move || {
                        let mut n = 0u64;
                        while start.elapsed() < Duration::from_secs_f64(secs) {
                            signer.sign("k1", "at+jwt", &claims(n)).expect("sign");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
            println!(
                "RESULT\traw_es256_sign\t{:.0}\tsigns/s\t{threads} threads",
                total as f64 / start.elapsed().as_secs_f64()
            );
        }
        Some("http") => {
            let port: u16 = arg(&args, "--port").expect("--port").parse().expect("port");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let signer = Arc::new(signer());
                let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let app = Router::new().route(
                    "/token",
                    post(move |body: Bytes| {
                        let signer = signer.clone();
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        async move {
                            let _form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
                            let token = signer.sign("k1", "at+jwt", &claims(n)).expect("sign");
                            axum::Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 900}))
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
                println!("READY");
                axum::serve(listener, app).await.expect("serve");
            });
        }
        _ => {
            eprintln!(
                "usage: jwt_sign_baselines raw [--secs S] [--threads N] | http --port P [--threads N]"
            );
            std::process::exit(2);
        }
    }
}
