//! Raw argon2id hashing rate at the server's parameters, with the argon2 crate the server uses,
//! on N threads (the blocking threads a login's hash runs on). The baseline of the login figure
//! in `bench/identity.sh`. Prints figures; asserts nothing.
//!
//!   cargo bench -p mgpass-server --bench argon2_rate -- [--threads 2] [--secs 5] [--m 19456] [--t 2] [--p 1]
//!
//! Each hash is what a login pays: `Argon2::hash_password_into` with a fresh 19 MiB (m KiB)
//! working memory allocated and freed per call, as `PasswordHasher::verify_password` does.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use argon2::{Algorithm, Argon2, Params, Version};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].parse().expect(name))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads", 2) as usize;
    let secs = arg(&args, "--secs", 5);
    let (m, t, p) = (
        arg(&args, "--m", 19456) as u32,
        arg(&args, "--t", 2) as u32,
        arg(&args, "--p", 1) as u32,
    );
    let argon = Arc::new(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m, t, p, Some(32)).expect("params"),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // One unmeasured hash per thread first (page faults of the first allocation).
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (argon, stop, done) = (argon.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut out = [0u8; 32];
                let salt = [i as u8 + 1; 16];
                while !stop.load(Ordering::Relaxed) {
                    argon
                        .hash_password_into(b"a long passphrase for the benchmark", &salt, &mut out)
                        .expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
                std::hint::black_box(out);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    let (n, elapsed) = (done.load(Ordering::Relaxed), start.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    // Hashes finished inside the window; the ones in flight at its end are left out.
    println!(
        "argon2id m={m} t={t} p={p} threads={threads}: {n} hashes in {elapsed:.2} s = {:.1} hashes/s ({:.1} ms per hash per thread)",
        n as f64 / elapsed,
        elapsed * 1000.0 * threads as f64 / n.max(1) as f64
    );
    println!(
        "RESULT\targon2\t{:.3}\t{n}\t{elapsed:.3}",
        n as f64 / elapsed
    );
}
