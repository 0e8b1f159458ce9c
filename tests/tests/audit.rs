//! The audit log end to end: changes (and failed attempts) of management and sign-in calls are
//! appended once, by the one layer, with actor, credential kind, target, request id, IP and
//! outcome, secrets redacted; reads are not entries; only administrators list, filter and page
//! them; nobody can change them (not even through SQL).

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::admin as pb, psql, rest, rest_reason};
use serde_json::{Value, json};

const PASSWORD: &str = "the initial password 42";

/// A REST call with a chosen request id.
async fn rest_with_id(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
    rid: &str,
) -> (u16, Value) {
    let mut req =
        server.http.request(method.parse().unwrap(), server.url(path)).header("x-request-id", rid).json(&body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The audit entries of one request id.
async fn entries(server: &TestServer, admin: &str, rid: &str) -> Vec<Value> {
    let (status, body) = rest(server, admin, "GET", format!("/v1/auditEvents?requestId={rid}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["auditEvents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_and_failures_are_recorded_with_secrets_redacted() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let admin_id = psql(&server.database_url, "SELECT id FROM users WHERE email = 'admin@admin.com'");

    // A change over REST.
    let (status, created) = rest_with_id(
        &server,
        &admin,
        "POST",
        "/v1/users",
        json!({"user": {"email": "ann@example.com", "givenName": "Ann", "familyName": "Lee"}, "password": PASSWORD}),
        "rid-create-user",
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let user_id = created["user"]["id"].as_str().unwrap();
    let found = entries(&server, &admin, "rid-create-user").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let e = &found[0];
    assert_eq!(e["action"], "mgpass.identity.v1.UserService/CreateUser");
    assert_eq!(e["outcome"], "AUDIT_OUTCOME_SUCCESS");
    assert_eq!(e["actor"]["userId"], admin_id.as_str());
    assert_eq!(e["actor"]["credentialKind"], "CREDENTIAL_KIND_ACCESS_TOKEN");
    assert_eq!((e["targetType"].as_str(), e["targetId"].as_str()), (Some("user"), Some(user_id)));
    assert_eq!(e["request"]["password"], "[REDACTED]");
    assert_eq!(e["request"]["user"]["email"], "ann@example.com");
    assert_eq!(e["after"]["user"]["id"], user_id);
    assert!(e.get("before").is_none_or(Value::is_null), "nothing existed before a creation: {e}");
    assert_eq!(e["ipAddress"], "127.0.0.1");

    // A change records the target before and after it.
    let (status, body) = rest_with_id(
        &server,
        &admin,
        "PATCH",
        &format!("/v1/users/{user_id}?updateMask=givenName"),
        json!({"givenName": "Annie"}),
        "rid-update-user",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found = entries(&server, &admin, "rid-update-user").await;
    assert_eq!(found.len(), 1, "the read of `before` is no entry of its own: {found:?}");
    assert_eq!(found[0]["before"]["user"]["givenName"], "Ann", "{}", found[0]);
    assert_eq!(found[0]["after"]["user"]["givenName"], "Annie");
    assert!(e["createTime"].is_string());
    // GetAuditEvent returns the same entry.
    let (status, one) =
        rest(&server, &admin, "GET", format!("/v1/auditEvents/{}", e["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200);
    assert_eq!(one["auditEvent"]["id"], e["id"]);

    // A failed change, with its reason; nothing else changed.
    let (status, body) = rest_with_id(
        &server,
        &admin,
        "POST",
        "/v1/users",
        json!({"user": {"email": "bob@example.com", "givenName": "Bob", "familyName": "Lee"}, "password": "pw1x"}),
        "rid-weak",
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "WEAK_PASSWORD"));
    let found = entries(&server, &admin, "rid-weak").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["outcome"], "AUDIT_OUTCOME_FAILURE");
    assert_eq!(found[0]["errorReason"], "WEAK_PASSWORD");
    assert_eq!(found[0]["request"]["password"], "[REDACTED]");

    // Sign-in failure and success (security-relevant, public): the password never stored.
    let (status, _) = rest_with_id(
        &server,
        "",
        "POST",
        "/v1/auth/login",
        json!({"identifier": "ann@example.com", "password": "wrong password 1234"}),
        "rid-login-bad",
    )
    .await;
    assert_eq!(status, 401);
    let (status, login) = rest_with_id(
        &server,
        "",
        "POST",
        "/v1/auth/login",
        json!({"identifier": "ann@example.com", "password": PASSWORD}),
        "rid-login-ok",
    )
    .await;
    assert_eq!(status, 200);
    let bad = &entries(&server, &admin, "rid-login-bad").await[0];
    assert_eq!(bad["action"], "mgpass.identity.v1.AuthenticationService/Login");
    assert_eq!(bad["errorReason"], "INVALID_CREDENTIALS");
    assert_eq!(bad["actor"]["credentialKind"], "CREDENTIAL_KIND_NONE");
    assert_eq!(bad["targetId"], "ann@example.com");
    let ok = &entries(&server, &admin, "rid-login-ok").await[0];
    assert_eq!(ok["outcome"], "AUDIT_OUTCOME_SUCCESS");
    assert_eq!((ok["targetType"].as_str(), ok["targetId"].as_str()), (Some("user"), Some(user_id)));
    assert_eq!(ok["after"]["accessToken"], "[REDACTED]");
    assert_eq!(ok["after"]["refreshToken"], "[REDACTED]");

    // An API key's creation: the key itself is redacted; a call made with the key names it.
    let (status, key) = rest_with_id(
        &server,
        &admin,
        "POST",
        "/v1/me/apiKeys",
        json!({"name": "ops", "scopes": ["mgpass:admin"]}),
        "rid-key",
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let value = key["key"].as_str().unwrap();
    let e = &entries(&server, &admin, "rid-key").await[0];
    assert_eq!(e["after"]["key"], "[REDACTED]");
    assert_eq!(e["targetId"], key["apiKey"]["id"]);
    let (status, _) = rest_with_id(
        &server,
        value,
        "POST",
        "/v1/roles",
        json!({"name": "auditors", "description": "by key"}),
        "rid-by-key",
    )
    .await;
    assert_eq!(status, 200);
    let e = &entries(&server, &admin, "rid-by-key").await[0];
    assert_eq!(e["actor"]["credentialKind"], "CREDENTIAL_KIND_API_KEY");
    assert_eq!(e["actor"]["apiKeyId"], key["apiKey"]["id"]);
    assert_eq!(e["actor"]["userId"], admin_id.as_str());

    // Secrets appear nowhere in the table.
    for secret in [PASSWORD, "wrong password 1234", value, login["accessToken"].as_str().unwrap(), "pw1x"] {
        let hits = psql(
            &server.database_url,
            &format!("SELECT count(*) FROM audit_events WHERE row_to_json(audit_events)::text LIKE '%{secret}%'"),
        );
        assert_eq!(hits, "0", "a secret was stored");
    }

    // Reads are not entries.
    rest_with_id(&server, &admin, "GET", &format!("/v1/users/{user_id}"), Value::Null, "rid-read").await;
    assert!(entries(&server, &admin, "rid-read").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_filter_and_page_nobody_else_reads_and_nobody_edits() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    for name in ["r1", "r2", "r3"] {
        let (status, _) = rest(&server, &admin, "POST", "/v1/roles", Some(json!({"name": name}))).await;
        assert_eq!(status, 200);
    }
    // Filter by action, page one by one (keyset), newest first.
    let action = "mgpass.access.v1.RoleService/CreateRole";
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) =
            rest(&server, &admin, "GET", format!("/v1/auditEvents?action={action}&pageSize=1&pageToken={token}"), None)
                .await;
        assert_eq!(status, 200, "{page}");
        for e in page["auditEvents"].as_array().unwrap() {
            names.push(e["request"]["role"]["name"].as_str().unwrap().to_string());
        }
        token = page["nextPageToken"].as_str().unwrap_or_default().to_string();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(names, ["r3", "r2", "r1"]);
    // Time range and outcome filters.
    let (_, none) = rest(
        &server,
        &admin,
        "GET",
        format!("/v1/auditEvents?action={action}&createBefore=2001-01-01T00:00:00Z"),
        None,
    )
    .await;
    assert!(none["auditEvents"].as_array().is_none_or(Vec::is_empty), "{none}");
    let (_, failures) =
        rest(&server, &admin, "GET", format!("/v1/auditEvents?action={action}&outcome=AUDIT_OUTCOME_FAILURE"), None)
            .await;
    assert!(failures["auditEvents"].as_array().is_none_or(Vec::is_empty), "{failures}");
    let (status, body) = rest(&server, &admin, "GET", "/v1/auditEvents?actorUserId=nope", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
    let (status, body) = rest(&server, &admin, "GET", format!("/v1/auditEvents/{}", uuid::Uuid::new_v4()), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "AUDIT_EVENT_NOT_FOUND"));

    // A plain user cannot list, over REST or gRPC.
    let (status, _) = rest(
        &server,
        &admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": "p@example.com", "givenName": "P", "familyName": "U"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200);
    let user = server.login("p@example.com", PASSWORD).await;
    let (status, body) = rest(&server, &user, "GET", "/v1/auditEvents", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PERMISSION_DENIED"));
    let mut grpc = pb::audit_service_client::AuditServiceClient::new(server.channel().await);
    let err = grpc.list_audit_events(authed(pb::ListAuditEventsRequest::default(), &user)).await.unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::PermissionDenied, "PERMISSION_DENIED"));
    let listed = grpc.list_audit_events(authed(pb::ListAuditEventsRequest::default(), &admin)).await.unwrap();
    assert!(listed.into_inner().audit_events.len() >= 4);

    // Append-only even for SQL: the trigger refuses updates, deletes and truncation.
    let before = psql(&server.database_url, "SELECT count(*) FROM audit_events");
    for sql in ["UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
        let out =
            std::process::Command::new("psql").args([server.database_url.as_str(), "-qAtc", sql]).output().unwrap();
        assert!(!out.status.success(), "{sql} succeeded");
        assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{sql}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM audit_events"), before);
}

/// The hosted pages' sign-ins (failed and successful) are entries like the API's, under the
/// same action, with the address they came from and no password.
#[tokio::test(flavor = "multi_thread")]
async fn hosted_page_sign_ins_are_recorded() {
    use mgpass_e2e::browser::Browser;
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": "page@example.com", "givenName": "Pa", "familyName": "Ge"}, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let user_id = body["user"]["id"].as_str().unwrap().to_string();
    let app = mgpass_e2e::oauth::create_app(
        &server,
        &admin,
        json!({"name": "Pages", "applicationType": "APPLICATION_TYPE_SPA", "firstParty": true,
               "redirectUris": ["https://pages.example.com/cb"]}),
    )
    .await;
    let url = format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fpages.example.com%2Fcb&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        app.client_id
    );
    let browser = Browser::new(&server.url(""));
    let page = browser.authorize(&url, "page@example.com", PASSWORD).await;
    assert!(page.left_to.is_some(), "{}", page.body);
    // Another browser (no session) with a wrong password stays on the page.
    let page = Browser::new(&server.url("")).authorize(&url, "page@example.com", "not the password").await;
    assert!(page.left_to.is_none(), "a wrong password stays on the page");

    let (status, body) = rest(
        &server,
        &admin,
        "GET",
        "/v1/auditEvents?action=mgpass.identity.v1.AuthenticationService/Login",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let events = body["auditEvents"].as_array().cloned().unwrap_or_default();
    let hosted: Vec<&Value> = events.iter().filter(|e| e["request"]["via"] == "hosted_page").collect();
    // One success; the helper browser retried the wrong password a few times: each a failure.
    assert_eq!(hosted.iter().filter(|e| e["outcome"] == "AUDIT_OUTCOME_SUCCESS").count(), 1, "{body}");
    let failed = hosted.iter().find(|e| e["outcome"] != "AUDIT_OUTCOME_SUCCESS").expect("the failure");
    assert_eq!(failed["errorReason"], "INVALID_CREDENTIALS", "{failed}");
    assert_eq!((failed["targetType"].as_str(), failed["targetId"].as_str()), (Some("identifier"), Some("page@example.com")));
    let ok = hosted.iter().find(|e| e["outcome"] == "AUDIT_OUTCOME_SUCCESS").expect("the success");
    assert_eq!(ok["actor"]["userId"], user_id.as_str());
    assert_eq!(ok["ipAddress"], "127.0.0.1");
    assert!(!body.to_string().contains("not the password"));
}
