//! API keys end to end: personal and organization keys, shown once and stored as SHA-256, scopes
//! no wider than the creator's, accepted as bearer credentials over REST, gRPC and grpc-web's
//! path alike (never from the cookie), rotation with and without overlap, revocation taking
//! effect within a second on a second instance, last-use times, and concurrent rotations.

use std::time::Duration;

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::identity as id_pb, psql, rest, rest_reason};
use serde_json::{Value, json};

const PASSWORD: &str = "a long enough password";

/// Creates a plain user (default `user` role) and returns (id, access token).
async fn plain_user(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Plain", "familyName": "User"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user"]["id"].as_str().unwrap().to_string();
    (id, server.login(email, PASSWORD).await)
}

async fn create_my_key(server: &TestServer, token: &str, key: Value) -> (u16, Value) {
    rest(server, token, "POST", "/v1/me/apiKeys", Some(key)).await
}

/// Creates a personal key and returns (id, value).
async fn my_key(server: &TestServer, token: &str, scopes: &[&str]) -> (String, String) {
    let (status, body) = create_my_key(server, token, json!({"name": "ci", "scopes": scopes})).await;
    assert_eq!(status, 200, "{body}");
    (body["apiKey"]["id"].as_str().unwrap().to_string(), body["key"].as_str().unwrap().to_string())
}

/// The status of `GET /v1/users` (needs `identity.users.read`) with this bearer.
async fn list_users_status(server: &TestServer, bearer: &str) -> u16 {
    rest(server, bearer, "GET", "/v1/users?pageSize=1", None).await.0
}

/// Waits up to `limit` for `GET /v1/users` with `bearer` to answer `want`; returns the wait.
async fn wait_for_status(server: &TestServer, bearer: &str, want: u16, limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if list_users_status(server, bearer).await == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "still not {want} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_key_is_shown_once_stored_hashed_and_works_on_every_protocol() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, created) =
        create_my_key(&server, &admin, json!({"name": "deploy", "scopes": ["identity.users.read"]})).await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["apiKey"]["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("mgp_") && key.len() == 47, "{key}");
    assert_eq!(created["apiKey"]["prefix"], key[..12]);
    assert_eq!(created["apiKey"]["status"], "API_KEY_STATUS_ACTIVE");
    assert_eq!(created["apiKey"]["scopes"], json!(["identity.users.read"]));

    // Stored as its SHA-256 only.
    let stored = psql(&server.database_url, &format!("SELECT encode(key_hash, 'hex') FROM api_keys WHERE id = '{id}'"));
    let expected = psql(&server.database_url, &format!("SELECT encode(sha256('{key}'::bytea), 'hex')"));
    assert_eq!(stored, expected);
    let anywhere = psql(
        &server.database_url,
        &format!("SELECT count(*) FROM api_keys WHERE row_to_json(api_keys)::text LIKE '%{}%'", &key[12..]),
    );
    assert_eq!(anywhere, "0", "the key value is stored nowhere");

    // Listing shows the prefix and metadata, never the key.
    let (status, listed) = rest(&server, &admin, "GET", "/v1/me/apiKeys", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["apiKeys"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&key[12..]), "{listed}");

    // REST: the key's scope opens GET /v1/users but nothing else.
    assert_eq!(list_users_status(&server, &key).await, 200);
    let (status, body) = rest(&server, &key, "POST", "/v1/roles", Some(json!({"name": "nope"}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PERMISSION_DENIED"));
    // Native gRPC, same key.
    let mut users = id_pb::user_service_client::UserServiceClient::new(server.channel().await);
    let page = users.list_users(authed(id_pb::ListUsersRequest { page_size: 1, ..Default::default() }, &key)).await;
    assert!(page.is_ok(), "{page:?}");
    let err = users.create_user(authed(id_pb::CreateUserRequest::default(), &key)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    // An API key in the cookie is refused: the cookie path is JWT-only.
    let resp =
        server.http.get(server.url("/v1/users")).header("cookie", format!("mgpass_at={key}")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // A made-up key of the right shape, and a malformed one.
    let fake = format!("mgp_{}", "A".repeat(43));
    assert_eq!(list_users_status(&server, &fake).await, 401);
    assert_eq!(list_users_status(&server, "mgp_short").await, 401);

    // The last use is recorded (off the request path).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let used =
            psql(&server.database_url, &format!("SELECT last_used_at IS NOT NULL FROM api_keys WHERE id = '{id}'"));
        if used == "t" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "last_used_at was never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, listed) = rest(&server, &admin, "GET", "/v1/me/apiKeys", None).await;
    assert!(listed["apiKeys"][0]["lastUseTime"].is_string(), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_are_never_wider_than_the_creators_and_bad_input_writes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (user_id, user) = plain_user(&server, &admin, "plain@example.com").await;
    let past = "2001-01-01T00:00:00Z";
    for (token, key, status, reason) in [
        (&user, json!({"name": "x", "scopes": ["mgpass:admin"]}), 403, "SCOPE_NOT_HELD"),
        (&user, json!({"name": "x", "scopes": ["identity.users.read"]}), 403, "SCOPE_NOT_HELD"),
        (&admin, json!({"name": "x", "scopes": ["no.such.scope"]}), 400, "UNKNOWN_SCOPE"),
        (&admin, json!({"name": "", "scopes": []}), 400, "INVALID_ARGUMENT"),
        (&admin, json!({"name": "x", "expireTime": past}), 400, "INVALID_ARGUMENT"),
    ] {
        let (got, body) = create_my_key(&server, token, key.clone()).await;
        assert_eq!((got, rest_reason(&body).as_str()), (status, reason), "{key}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM api_keys"), "0");

    // A plain user's key holds nothing beyond the user's own endpoints.
    let (_, key) = my_key(&server, &user, &[]).await;
    assert_eq!(list_users_status(&server, &key).await, 403);
    let (status, mine) = rest(&server, &key, "GET", "/v1/me/apiKeys", None).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["apiKeys"][0]["userId"], user_id.as_str());
    // A key cannot mint a wider key either.
    let (status, body) = create_my_key(&server, &key, json!({"name": "y", "scopes": ["mgpass:admin"]})).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "SCOPE_NOT_HELD"));

    // Another user's key is not found, for rotation and revocation alike.
    let (admin_key_id, _) = my_key(&server, &admin, &[]).await;
    for action in ["rotate", "revoke"] {
        let (status, body) =
            rest(&server, &user, "POST", format!("/v1/me/apiKeys/{admin_key_id}:{action}"), Some(json!({}))).await;
        assert_eq!((status, rest_reason(&body).as_str()), (404, "API_KEY_NOT_FOUND"), "{action}");
    }
    let (status, body) = rest(&server, &user, "POST", "/v1/me/apiKeys/not-a-uuid:revoke", Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
    // Management listing needs its permission.
    let (status, _) = rest(&server, &user, "GET", "/v1/apiKeys", None).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_and_expiry_stop_a_key_within_a_second_on_every_instance() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(first.database_url.clone(), &[]).await;
    let admin = first.admin_token().await;
    let (id, key) = my_key(&first, &admin, &["identity.users.read"]).await;
    // Both instances accept it, and cache it.
    assert_eq!(list_users_status(&first, &key).await, 200);
    assert_eq!(list_users_status(&second, &key).await, 200);

    let (status, body) = rest(&first, &admin, "POST", format!("/v1/me/apiKeys/{id}:revoke"), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apiKey"]["status"], "API_KEY_STATUS_REVOKED");
    // At once on the instance that revoked it, within a second on the other.
    assert_eq!(list_users_status(&first, &key).await, 401);
    let waited = wait_for_status(&second, &key, 401, Duration::from_millis(1500)).await;
    assert!(waited <= Duration::from_millis(1200), "took {waited:?}");
    // Revoking again is not an error; rotating a revoked key is.
    let (status, _) = rest(&first, &admin, "POST", format!("/v1/me/apiKeys/{id}:revoke"), Some(json!({}))).await;
    assert_eq!(status, 200);
    let (status, body) = rest(&first, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "API_KEY_INACTIVE"));

    // Expiry: a key whose time passes stops within a second too (on the cached instance).
    let (id, key) = my_key(&first, &admin, &["identity.users.read"]).await;
    assert_eq!(list_users_status(&second, &key).await, 200);
    psql(&first.database_url, &format!("UPDATE api_keys SET expires_at = now() WHERE id = '{id}'"));
    wait_for_status(&second, &key, 401, Duration::from_millis(1500)).await;
    let (_, listed) = rest(&first, &admin, "GET", "/v1/me/apiKeys?status=API_KEY_STATUS_EXPIRED", None).await;
    assert_eq!(listed["apiKeys"].as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_with_and_without_overlap() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (id, old) = my_key(&server, &admin, &["identity.users.read"]).await;
    assert_eq!(list_users_status(&server, &old).await, 200);

    // Without overlap the old value stops at once.
    let (status, body) = rest(&server, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let new = body["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(body["apiKey"]["id"], id.as_str());
    assert_eq!(body["apiKey"]["prefix"], new[..12]);
    assert_eq!(list_users_status(&server, &old).await, 401);
    assert_eq!(list_users_status(&server, &new).await, 200);

    // With an overlap both work, until the overlap ends.
    let (status, body) =
        rest(&server, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({"overlap": "2s"}))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["apiKey"]["previousKeyExpireTime"].is_string(), "{body}");
    let newest = body["key"].as_str().unwrap().to_string();
    assert_eq!(list_users_status(&server, &new).await, 200);
    assert_eq!(list_users_status(&server, &newest).await, 200);
    wait_for_status(&server, &new, 401, Duration::from_secs(4)).await;
    assert_eq!(list_users_status(&server, &newest).await, 200);

    for overlap in ["-1s", "604801s"] {
        let (status, body) =
            rest(&server, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({"overlap": overlap})))
                .await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "{overlap}");
    }
    assert_eq!(list_users_status(&server, &newest).await, 200, "refused rotations changed nothing");

    // Revocation also stops a value still in its overlap.
    let (_, body) =
        rest(&server, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({"overlap": "60s"}))).await;
    let latest = body["key"].as_str().unwrap().to_string();
    assert_eq!(list_users_status(&server, &newest).await, 200);
    rest(&server, &admin, "POST", format!("/v1/me/apiKeys/{id}:revoke"), Some(json!({}))).await;
    assert_eq!(list_users_status(&server, &newest).await, 401);
    assert_eq!(list_users_status(&server, &latest).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_rotations_leave_exactly_one_working_value() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (id, _) = my_key(&server, &admin, &["identity.users.read"]).await;
    let calls = (0..12).map(|_| {
        let (server, admin, id) = (&server, admin.clone(), id.clone());
        async move { rest(server, &admin, "POST", format!("/v1/me/apiKeys/{id}:rotate"), Some(json!({}))).await }
    });
    let results = futures::future::join_all(calls).await;
    let mut keys = Vec::new();
    for (status, body) in results {
        assert_eq!(status, 200, "{body}");
        keys.push(body["key"].as_str().unwrap().to_string());
    }
    let mut working = 0;
    for key in &keys {
        if list_users_status(&server, key).await == 200 {
            working += 1;
        }
    }
    assert_eq!(working, 1, "exactly the last rotation's value works");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM api_keys"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_keys_act_for_their_organization_only() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let admin_id = psql(&server.database_url, "SELECT id FROM users WHERE email = 'admin@admin.com'");
    let (org_a, org_b) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    for org in [&org_a, &org_b] {
        psql(
            &server.database_url,
            &format!("INSERT INTO organizations (id, name, owner_user_id) VALUES ('{org}', 'Org {org}', '{admin_id}')"),
        );
    }
    let missing = uuid::Uuid::new_v4();
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        format!("/v1/organizations/{missing}/apiKeys"),
        Some(json!({"name": "x", "scopes": []})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));

    let mut org_keys = Vec::new();
    for org in [&org_a, &org_b] {
        let (status, body) = rest(
            &server,
            &admin,
            "POST",
            format!("/v1/organizations/{org}/apiKeys"),
            Some(json!({"name": "org key", "scopes": ["access.api_keys.read", "access.api_keys.revoke", "identity.users.read"]})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["apiKey"]["organizationId"], org.as_str());
        assert_eq!(body["apiKey"]["userId"], Value::Null);
        org_keys.push((body["apiKey"]["id"].as_str().unwrap().to_string(), body["key"].as_str().unwrap().to_string()));
    }
    let (a_id, a_key) = &org_keys[0];
    let (b_id, _) = &org_keys[1];
    // An organization key acts only on calls naming its organization: never globally, even
    // with a scope that would open a global method.
    assert_eq!(list_users_status(&server, a_key).await, 403);
    let (status, _) = rest(&server, a_key, "GET", "/v1/apiKeys", None).await;
    assert_eq!(status, 403);
    let (status, listed) = rest(&server, a_key, "GET", format!("/v1/organizations/{org_a}/apiKeys"), None).await;
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> = listed["apiKeys"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![a_id.as_str()]);
    let (status, body) = rest(&server, a_key, "GET", format!("/v1/organizations/{org_b}/apiKeys"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));
    // It cannot revoke another organization's key (through its own organization or the other's),
    // nor does it have personal keys.
    let (status, body) =
        rest(&server, a_key, "POST", format!("/v1/organizations/{org_a}/apiKeys/{b_id}:revoke"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "API_KEY_NOT_FOUND"));
    let (status, body) =
        rest(&server, a_key, "POST", format!("/v1/organizations/{org_b}/apiKeys/{b_id}:revoke"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));
    let (status, _) = rest(&server, a_key, "GET", "/v1/me/apiKeys", None).await;
    assert_eq!(status, 403);
    // The admin sees both; filtering by organization narrows it.
    let (_, all) = rest(&server, &admin, "GET", "/v1/apiKeys", None).await;
    assert_eq!(all["apiKeys"].as_array().unwrap().len(), 2, "{all}");
    let (_, only_b) = rest(&server, &admin, "GET", format!("/v1/organizations/{org_b}/apiKeys"), None).await;
    assert_eq!(only_b["apiKeys"][0]["id"], b_id.as_str());
    // Rotating a personal key through the management API is refused.
    let (personal, _) = my_key(&server, &admin, &[]).await;
    let (status, body) = rest(&server, &admin, "POST", format!("/v1/apiKeys/{personal}:rotate"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "PERSONAL_API_KEY"));
    // Admin revokes organization A's key through A's path: it stops.
    let (status, _) =
        rest(&server, &admin, "POST", format!("/v1/organizations/{org_a}/apiKeys/{a_id}:revoke"), Some(json!({})))
            .await;
    assert_eq!(status, 200);
    let (status, _) = rest(&server, a_key, "GET", format!("/v1/organizations/{org_a}/apiKeys"), None).await;
    assert_eq!(status, 401);
    // gRPC reports the same reason as REST.
    let mut grpc = mgpass_e2e::proto::access::api_key_service_client::ApiKeyServiceClient::new(server.channel().await);
    let err = grpc
        .revoke_api_key(authed(
            mgpass_e2e::proto::access::RevokeApiKeyRequest {
                api_key_id: uuid::Uuid::new_v4().to_string(),
                organization_id: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "API_KEY_NOT_FOUND");
}
