//! The janitor deletes what has outlived its use and nothing else.

use std::time::Duration;

use mgpass_e2e::{TestServer, psql};

#[tokio::test(flavor = "multi_thread")]
async fn expired_rows_are_purged_and_live_ones_kept() {
    let server = TestServer::start_with(&[("MGPASS_SERVER__JANITOR_INTERVAL_SECS", "1")]).await;
    let db = &server.database_url;
    psql(
        db,
        "INSERT INTO login_throttle (key, failures, locked_until, last_failure_at) VALUES
           ('account:stale@example.com', 3, NULL, now() - interval '2 days'),
           ('account:locked@example.com', 9, now() + interval '10 minutes', now() - interval '2 days'),
           ('account:recent@example.com', 1, NULL, now());
         INSERT INTO revoked_access_tokens (jti, expires_at) VALUES
           ('long-expired', now() - interval '1 hour'), ('still-valid', now() + interval '1 hour');",
    );
    let mut left = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = psql(db, "SELECT string_agg(key, ',' ORDER BY key) FROM login_throttle");
        if !left.contains("stale") {
            break;
        }
    }
    assert_eq!(left, "account:locked@example.com,account:recent@example.com");
    assert_eq!(psql(db, "SELECT string_agg(jti, ',') FROM revoked_access_tokens"), "still-valid");
}
