//! The one test harness: starts the real `mgpass` binary on its own fresh database in the
//! throwaway Postgres cluster that `make test` runs, and gives tests real clients for it.
//!
//! `MGPASS_TEST_PG_URL` names a superuser connection to that cluster (set by `make test`);
//! `MGPASS_BIN` may point at the binary (default: the workspace's `target/debug/mgpass`).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

pub use mgpass_proto as proto;

pub mod browser;
pub mod momo;
pub mod oauth;
pub mod sms;
pub mod smtp;

/// A running mgpass with its own database. Stopped (SIGTERM) when dropped.
pub struct TestServer {
    pub base_url: String,
    pub admin_email: String,
    pub admin_password: String,
    pub database_url: String,
    /// The server's standard error (its log).
    pub log_path: PathBuf,
    child: Option<Child>,
    pub http: reqwest::Client,
}

/// The master key of every test server (tests share a database only with themselves).
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmc=";

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The path of the `mgpass` binary under test.
pub fn mgpass_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("MGPASS_BIN") {
        return PathBuf::from(bin);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug/mgpass");
    assert!(bin.exists(), "{} is missing: build it first (`cargo build -p mgpass-server`, done by `make test`)", bin.display());
    bin
}

/// The throwaway cluster's superuser URL. Tests fail (never skip) without it.
pub fn cluster_url() -> String {
    std::env::var("MGPASS_TEST_PG_URL")
        .expect("MGPASS_TEST_PG_URL is not set: run the tests with `make test`, which starts a throwaway Postgres")
}

/// Creates an empty database in the test cluster and returns its URL.
pub fn fresh_database() -> String {
    let admin = cluster_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let status = Command::new("psql")
        .args([admin.as_str(), "-qAtc", &format!("CREATE DATABASE {name}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "could not create test database");
    let (base, _) = admin.rsplit_once('/').expect("cluster URL has a database part");
    format!("{base}/{name}")
}

impl TestServer {
    /// Starts mgpass with `serve --migrate --bootstrap` on a fresh database and waits until ready.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Like [`start`](Self::start), with extra `MGPASS_*` environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_on(fresh_database(), env).await
    }

    /// Starts mgpass on an existing database.
    pub async fn start_on(database_url: String, env: &[(&str, &str)]) -> Self {
        Self::start_on_port(database_url, free_port(), env).await
    }

    /// Starts mgpass on an existing database and a chosen port (for settings that must name the
    /// server's own URL, such as a provider callback URL).
    pub async fn start_on_port(database_url: String, port: u16, env: &[(&str, &str)]) -> Self {
        let admin_password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let mut cmd = Command::new(mgpass_bin());
        cmd.args(["serve", "--migrate", "--bootstrap"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MGPASS_DATABASE__URL", &database_url)
            .env("MGPASS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("MGPASS_BOOTSTRAP__ADMIN_PASSWORD", &admin_password)
            .env("MGPASS_SECRETS__MASTER_KEY", TEST_MASTER_KEY)
            .env("RUST_LOG", std::env::var("MGPASS_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log_path = std::env::temp_dir().join(format!("mgpass-test-{port}.log"));
        cmd.stderr(std::fs::File::create(&log_path).expect("log file"));
        let child = cmd.spawn().expect("mgpass starts");
        let server = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            admin_email: "admin@admin.com".into(),
            admin_password,
            database_url,
            log_path,
            child: Some(child),
            http: reqwest::Client::new(),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(resp) = self.http.get(format!("{}/readyz", self.base_url)).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "mgpass did not become ready within 60 s; log:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the server has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Signs in over REST and returns the access token.
    pub async fn login(&self, identifier: &str, password: &str) -> String {
        let resp = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&json!({"identifier": identifier, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login of {identifier} failed");
        let body: Value = resp.json().await.unwrap();
        body["accessToken"].as_str().expect("accessToken").to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login(&self.admin_email, &self.admin_password).await
    }

    /// A native gRPC (h2c) channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.base_url.clone()).unwrap().connect().await.unwrap()
    }

    /// Kills the process with SIGKILL (a crash: nothing is finished or flushed) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.terminate();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Runs `mgpass ARGS` to completion with the given environment (and PATH only).
pub fn run_mgpass(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(mgpass_bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("MGPASS_SECRETS__MASTER_KEY", TEST_MASTER_KEY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("mgpass runs")
}

/// A bearer header value for tonic requests.
pub fn bearer(token: &str) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    format!("Bearer {token}").parse().unwrap()
}

/// A tonic request carrying a bearer token.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("authorization", bearer(token));
    req
}

/// A REST call with a bearer token (none when empty): the status and the JSON body (Null when
/// the body is not JSON).
pub async fn rest(server: &TestServer, token: &str, method: &str, path: impl AsRef<str>, body: Option<Value>) -> (u16, Value) {
    let mut req = server.http.request(method.parse().unwrap(), server.url(path.as_ref()));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// One SQL statement through `psql` against a test database; its unaligned output.
pub fn psql(database_url: &str, sql: &str) -> String {
    let out = Command::new("psql").args([database_url, "-qAtc", sql]).output().expect("psql runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `google.rpc.ErrorInfo` reason of a REST error body.
pub fn rest_reason(body: &Value) -> String {
    body["details"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"))
        .and_then(|d| d["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The `google.rpc.ErrorInfo` reason of a gRPC status.
pub fn grpc_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

/// A temporary TOML configuration file, removed on drop; pass its path as `MGPASS_CONFIG`.
pub struct ConfigFile(pub PathBuf);

impl ConfigFile {
    pub fn new(toml: &str) -> Self {
        let path = std::env::temp_dir().join(format!("mgpass-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, toml).expect("config file written");
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
