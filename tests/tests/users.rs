//! The first vertical slice, end to end: admin CRUD of users over REST, native gRPC and grpc-web
//! against the real binary and a real Postgres, with the error contract and concurrency.

use mgpass_e2e::{TestServer, bearer, grpc_reason, proto::identity as pb, rest_reason};
use pb::user_service_client::UserServiceClient;
use serde_json::{Value, json};

async fn rest_create(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    let resp = server.http.post(server.url("/v1/users")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn count_users(server: &TestServer, token: &str) -> usize {
    let resp = server.http.get(server.url("/v1/users?pageSize=1000")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["users"].as_array().map(Vec::len).unwrap_or(0)
}

/// Runs the grpc-web client script (connect-web's grpc-web transport, in Node) and returns its
/// JSON output.
fn grpc_web(server: &TestServer, token: &str, action: &str, arg: &str) -> Value {
    let fds = std::env::temp_dir().join(format!("mgpass-fds-{}.binpb", std::process::id()));
    std::fs::write(&fds, mgpass_e2e::proto::FILE_DESCRIPTOR_SET).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node/grpcweb.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .args([server.base_url.as_str(), fds.to_str().unwrap(), token, action, arg])
        .output()
        .expect("node runs");
    assert!(out.status.success(), "grpc-web client failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("grpc-web client prints JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_across_rest_grpc_and_grpc_web() {
    let config = mgpass_e2e::ConfigFile::new(
        "[[identity.properties]]\nname = \"newsletter\"\ntype = \"boolean\"\n\n\
         [[identity.properties]]\nname = \"age\"\ntype = \"integer\"\n",
    );
    let server = TestServer::start_with(&[("MGPASS_CONFIG", config.path())]).await;
    let token = server.admin_token().await;

    // Create over REST.
    let (status, created) = rest_create(
        &server,
        &token,
        json!({"user": {"email": "Ama.Mensah@Example.com", "givenName": "Ama", "familyName": "Mensah",
                        "mobile": "+233 20 123 4567", "properties": {"newsletter": true, "age": 31}},
               "password": "a long enough password"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let user = &created["user"];
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["email"], "Ama.Mensah@Example.com");
    assert_eq!(user["mobile"], "+233201234567", "mobile is normalised to E.164");
    assert_eq!(user["status"], "USER_STATUS_ACTIVE", "enums render by name");
    assert_eq!(user["roles"], json!(["user"]), "the default role is given");
    assert!(user["avatarUrl"].as_str().unwrap().starts_with("https://www.gravatar.com/avatar/"));
    assert!(user["createTime"].as_str().unwrap().ends_with('Z'), "timestamps are RFC 3339 in UTC");
    assert_eq!(user["properties"]["newsletter"], true);
    assert_eq!(user["properties"]["age"].as_f64(), Some(31.0), "google.protobuf.Value numbers are doubles");
    assert!(user.get("password").is_none() && user.get("passwordHash").is_none());

    // The new user can sign in, and their token is not an admin token.
    let user_token = server.login("ama.mensah@example.com", "a long enough password").await;
    let resp = server.http.get(server.url(&format!("/v1/users/{id}"))).bearer_auth(&user_token).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(rest_reason(&resp.json().await.unwrap()), "PERMISSION_DENIED");

    // Get over native gRPC.
    let mut grpc = UserServiceClient::new(server.channel().await);
    let mut req = tonic::Request::new(pb::GetUserRequest { user_id: id.clone() });
    req.metadata_mut().insert("authorization", bearer(&token));
    let got = grpc.get_user(req).await.unwrap().into_inner().user.unwrap();
    assert_eq!(got.email, "Ama.Mensah@Example.com");
    assert_eq!(got.given_name, "Ama");

    // List over grpc-web with an independent client.
    let listed = grpc_web(&server, &token, "list", "");
    let emails: Vec<&str> = listed["emails"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(emails.contains(&"Ama.Mensah@Example.com") && emails.contains(&"admin@admin.com"), "{listed}");

    // Update with a field mask over REST: only the named field changes.
    let resp = server
        .http
        .patch(server.url(&format!("/v1/users/{id}?updateMask=givenName")))
        .bearer_auth(&token)
        .json(&json!({"givenName": "Akosua", "familyName": "Ignored"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["user"]["givenName"], "Akosua");
    assert_eq!(updated["user"]["familyName"], "Mensah", "fields outside the mask keep their value");

    // Update over gRPC with a mask path that is not updatable.
    let mut req = tonic::Request::new(pb::UpdateUserRequest {
        user: Some(pb::User { id: id.clone(), email_verified: true, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["email_verified".into()] }),
    });
    req.metadata_mut().insert("authorization", bearer(&token));
    let err = grpc.update_user(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(grpc_reason(&err), "INVALID_UPDATE_MASK");

    // Delete over REST; then it is gone on every transport.
    let resp = server.http.delete(server.url(&format!("/v1/users/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = server.http.get(server.url(&format!("/v1/users/{id}"))).bearer_auth(&token).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!((status.as_u16(), rest_reason(&body).as_str()), (404, "USER_NOT_FOUND"), "{body}");
    let missing = grpc_web(&server, &token, "get", &id);
    assert_eq!(missing["code"], "not_found", "{missing}");
    let unauthenticated = grpc_web(&server, "not-a-token", "get", &id);
    assert_eq!(unauthenticated["code"], "unauthenticated", "{unauthenticated}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let before = count_users(&server, &token).await;

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "bad email",
            server.http.post(server.url("/v1/users")).json(&json!({"user": {"email": "not-an-email"}})),
            400,
            "INVALID_EMAIL",
        ),
        (
            "bad mobile",
            server.http.post(server.url("/v1/users")).json(&json!({"user": {"mobile": "0201234567"}})),
            400,
            "INVALID_MOBILE",
        ),
        (
            "no identifier",
            server.http.post(server.url("/v1/users")).json(&json!({"user": {"givenName": "Kofi"}})),
            400,
            "IDENTIFIER_REQUIRED",
        ),
        (
            "weak password",
            server.http.post(server.url("/v1/users")).json(&json!({"user": {"email": "k@example.com"}, "password": "short"})),
            400,
            "WEAK_PASSWORD",
        ),
        (
            "unknown JSON field",
            server.http.post(server.url("/v1/users")).json(&json!({"user": {"email": "k@example.com", "isAdmin": true}})),
            400,
            "UNKNOWN_FIELD",
        ),
        (
            "malformed JSON",
            server
                .http
                .post(server.url("/v1/users"))
                .header("content-type", "application/json")
                .body(r#"{"user": {"email": "k@example.com""#),
            400,
            "MALFORMED_JSON",
        ),
        (
            "oversize body",
            server.http.post(server.url("/v1/users")).json(
                &json!({"user": {"email": "big@example.com", "fullName": "x".repeat(2 * 1024 * 1024)}}),
            ),
            400,
            "BODY_TOO_LARGE",
        ),
        (
            "bad id",
            server.http.get(server.url("/v1/users/not-a-uuid")),
            400,
            "INVALID_ID",
        ),
    ];
    for (name, request, status, reason) in cases {
        let resp = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(rest_reason(&body), reason, "{name}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {body}");
    }
    assert_eq!(count_users(&server, &token).await, before, "nothing was written");

    // Duplicate email, case-insensitively: 409.
    let (status, _) = rest_create(&server, &token, json!({"user": {"email": "dup@example.com"}})).await;
    assert_eq!(status, 200);
    let (status, body) = rest_create(&server, &token, json!({"user": {"email": "DUP@example.com"}})).await;
    assert_eq!(status, 409);
    assert_eq!(rest_reason(&body), "EMAIL_TAKEN");

    // No token, a forged token, a token for another issuer: 401.
    let resp = server.http.get(server.url("/v1/users")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(rest_reason(&resp.json().await.unwrap()), "UNAUTHENTICATED");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), "garbage", "mgp_notakey"] {
        let resp = server.http.get(server.url("/v1/users")).bearer_auth(bad).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{bad}");
    }
    // Over gRPC too, with the same reason.
    let mut grpc = UserServiceClient::new(server.channel().await);
    let err = grpc.list_users(pb::ListUsersRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(grpc_reason(&err), "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_of_one_email_make_exactly_one_user() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let attempts = (0..20).map(|i| {
        let server = &server;
        let token = &token;
        async move {
            let email = if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" };
            rest_create(server, token, json!({"user": {"email": email}, "password": "a long enough password"})).await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 200).count();
    let conflicts = results.iter().filter(|(s, b)| *s == 409 && rest_reason(b) == "EMAIL_TAKEN").count();
    assert_eq!((created, conflicts), (1, 19), "{results:?}");
    let resp = server.http.get(server.url("/v1/users?query=race")).bearer_auth(&token).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_and_filters() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    for i in 0..7 {
        let (status, _) = rest_create(&server, &token, json!({"user": {"email": format!("page{i}@example.com")}})).await;
        assert_eq!(status, 200);
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let resp = server
            .http
            .get(server.url(&format!("/v1/users?pageSize=3&query=page&pageToken={page_token}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let users = body["users"].as_array().cloned().unwrap_or_default();
        assert!(users.len() <= 3);
        seen.extend(users.iter().map(|u| u["email"].as_str().unwrap().to_string()));
        match body["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => page_token = next.to_string(),
            _ => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("page{i}@example.com")).collect();
    assert_eq!(seen, expected, "newest first, each user once");

    let resp = server.http.get(server.url("/v1/users?status=USER_STATUS_SUSPENDED")).bearer_auth(&token).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("users").is_none(), "no suspended users yet: {body}");
    let resp = server.http.get(server.url("/v1/users?role=superAdmin")).bearer_auth(&token).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["users"][0]["email"], "admin@admin.com");
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    let resp = server.http.get(server.url("/v1/users?pageSize=5000")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = server.http.get(server.url("/v1/users?pageToken=bogus")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(rest_reason(&resp.json().await.unwrap()), "INVALID_PAGE_TOKEN");
}
