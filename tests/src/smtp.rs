//! A real SMTP server on loopback for tests: Python's `aiosmtpd` (installed by
//! `scripts/install-deps.sh`), started on a free port, writing each message it accepts as one JSON
//! line that tests read back. Stopped when dropped.

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde::Deserialize;

/// The server: accepts everything (optionally answering `451` to the first N messages) and
/// appends each accepted message to a JSONL file.
const SERVER_PY: &str = r#"
import email, email.policy, json, sys, threading
from aiosmtpd.controller import Controller

port, path, fail_first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lock = threading.Lock()
seen = {"n": 0}

class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            seen["n"] += 1
            if seen["n"] <= fail_first:
                return "451 4.3.0 try again later (test server)"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = html = None
        for part in msg.walk():
            kind = part.get_content_type()
            if kind == "text/plain" and text is None:
                text = part.get_content().replace("\r\n", "\n")
            elif kind == "text/html" and html is None:
                html = part.get_content().replace("\r\n", "\n")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "text": text,
            "html": html,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("READY", flush=True)
try:
    sys.stdin.read()   # runs until the test closes stdin or kills the process
finally:
    controller.stop()
"#;

/// One message the server accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedEmail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
    /// The `From`, `To` and `Subject` headers, decoded.
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// The `text/plain` part, decoded, with `\n` line ends.
    pub text: Option<String>,
    /// The `text/html` part, decoded.
    pub html: Option<String>,
    /// The message as it travelled.
    pub raw: String,
}

/// A running aiosmtpd.
pub struct SmtpServer {
    pub port: u16,
    path: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts a server that accepts every message.
    pub fn start() -> Self {
        Self::start_failing(0)
    }

    /// Starts a server that answers `451` (try again later) to the first `n` messages.
    pub fn start_failing(n: usize) -> Self {
        let probe = Command::new("python3").args(["-c", "import aiosmtpd"]).output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "python3 with aiosmtpd is needed for the SMTP tests: run scripts/install-deps.sh"
        );
        let port = crate::free_port();
        let path = std::env::temp_dir().join(format!("mgpass-smtp-{}.jsonl", uuid::Uuid::new_v4().simple()));
        let mut child = Command::new("python3")
            .args(["-c", SERVER_PY, &port.to_string(), path.to_str().unwrap(), &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.trim() != "READY" {
            let mut err = String::new();
            let _ = child.kill();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("aiosmtpd did not start on port {port}:\n{err}");
        }
        Self { port, path, child: Some(child) }
    }

    /// The URL for `delivery.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        let content = std::fs::read_to_string(&self.path).unwrap_or_default();
        content
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("the server writes JSON lines"))
            .collect()
    }

    /// Waits until at least `n` messages arrived (panics after `timeout`), and returns all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedEmail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "{} of {n} emails arrived within {timeout:?}", messages.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
