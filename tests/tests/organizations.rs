//! Organizations end to end: creation (by admins, and self-service under
//! `tenantRegisterIsPublic`), custom properties, members and organization roles (system roles
//! protected, nobody handing out more than they hold), leaving and removing, ownership transfer
//! (also concurrently: never two owners), feature flags, invitations by email (read out of a
//! real SMTP server), the `orgs` claim, and organization tokens (RFC 8693 exchange).

use std::time::Duration;

use mgpass_e2e::{
    ConfigFile, TestServer, authed, grpc_reason, oauth::claims, proto::org as pb, psql, rest, rest_reason,
    smtp::SmtpServer,
};
use serde_json::{Value, json};

const PW: &str = "a long enough password";

async fn create_user(server: &TestServer, admin: &str, email: &str) -> String {
    let (status, body) = rest(
        server,
        admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Test", "familyName": "User"}, "password": PW})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// A user and their token.
async fn user(server: &TestServer, admin: &str, email: &str) -> (String, String) {
    let id = create_user(server, admin, email).await;
    (id, server.login(email, PW).await)
}

async fn create_my_org(server: &TestServer, token: &str, name: &str) -> String {
    let (status, body) = rest(server, token, "POST", "/v1/me/organizations", Some(json!({"name": name}))).await;
    assert_eq!(status, 200, "{body}");
    body["organization"]["id"].as_str().expect("organization id").to_string()
}

async fn add_member(server: &TestServer, token: &str, org: &str, user: &str, role: &str) -> (u16, Value) {
    rest(server, token, "POST", format!("/v1/organizations/{org}/members"), Some(json!({"userId": user, "role": role})))
        .await
}

fn owners(server: &TestServer, org: &str) -> String {
    psql(
        &server.database_url,
        &format!(
            "SELECT string_agg(user_id::text, ',') FROM org_members WHERE organization_id = '{org}' AND role = 'owner'"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn members_roles_properties_and_flags() {
    let config = ConfigFile::new(
        r#"
[[organizations.properties]]
name = "plan"
type = "enum"
values = ["free", "pro"]
default = "free"

[[organizations.properties]]
name = "seats"
type = "integer"
"#,
    );
    let server = TestServer::start_with(&[("MGPASS_CONFIG", config.path())]).await;
    let admin = server.admin_token().await;
    let (a, a_token) = user(&server, &admin, "owner@example.com").await;
    let (b, b_token) = user(&server, &admin, "member@example.com").await;
    let (c, _) = user(&server, &admin, "other@example.com").await;

    // Properties are checked like user properties; defaults fill the gaps.
    for (org, reason) in [
        (json!({"name": "Acme", "properties": {"plan": "gold"}}), "INVALID_PROPERTY"),
        (json!({"name": "Acme", "properties": {"color": "red"}}), "INVALID_PROPERTY"),
        (json!({"name": "Acme", "properties": {"seats": "many"}}), "INVALID_PROPERTY"),
        (json!({"name": "  "}), "INVALID_ARGUMENT"),
    ] {
        let (status, body) = rest(&server, &a_token, "POST", "/v1/me/organizations", Some(org.clone())).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, reason), "{org}");
    }
    assert_eq!(
        psql(&server.database_url, "SELECT count(*) FROM organizations"),
        "0",
        "refused creations change nothing"
    );
    let (status, created) = rest(
        &server,
        &a_token,
        "POST",
        "/v1/me/organizations",
        Some(json!({"name": "Acme", "properties": {"seats": 5}})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let created = created["organization"].clone();
    let org = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["ownerUserId"], a.as_str());
    assert_eq!(created["properties"]["plan"], "free");
    assert_eq!(created["properties"]["seats"].as_f64(), Some(5.0));
    assert_eq!(created["memberCount"], 1);
    assert!(created["avatarUrl"].as_str().unwrap().starts_with("https://"));

    // Four system roles, by name.
    let (_, roles) = rest(&server, &a_token, "GET", format!("/v1/organizations/{org}/roles"), None).await;
    let names: Vec<&str> = roles["orgRoles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "member", "owner", "viewer"], "{roles}");
    assert!(roles["orgRoles"].as_array().unwrap().iter().all(|r| r["system"] == true));
    let owner_role = roles["orgRoles"].as_array().unwrap().iter().find(|r| r["name"] == "owner").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Members: the owner adds, owner is never given directly.
    let (status, body) = add_member(&server, &a_token, &org, &b, "owner").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "OWNER_ROLE_NOT_ASSIGNABLE"));
    let (status, body) = add_member(&server, &a_token, &org, &b, "ghost").await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORG_ROLE_NOT_FOUND"));
    let (status, body) = add_member(&server, &a_token, &org, &b, "member").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["email"], "member@example.com");
    let (status, body) = add_member(&server, &a_token, &org, &b, "viewer").await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "ALREADY_ORGANIZATION_MEMBER"));

    // A member reads but does not manage.
    let (status, body) = rest(&server, &b_token, "GET", format!("/v1/organizations/{org}/members"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["members"].as_array().unwrap().len(), 2);
    let (status, body) = add_member(&server, &b_token, &org, &c, "viewer").await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PERMISSION_DENIED"));

    // Admins list the organization's users (and a bad id is refused, not ignored).
    let (status, body) = rest(&server, &admin, "GET", format!("/v1/users?organizationId={org}"), None).await;
    assert_eq!(status, 200, "{body}");
    let mut listed: Vec<&str> = body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    listed.sort();
    let mut expected = vec![a.as_str(), b.as_str()];
    expected.sort();
    assert_eq!(listed, expected, "members only, not {c}");
    let (status, body) = rest(&server, &admin, "GET", "/v1/users?organizationId=acme", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
    let (status, _) = rest(
        &server,
        &b_token,
        "PATCH",
        format!("/v1/organizations/{org}?updateMask=name"),
        Some(json!({"name": "Mine"})),
    )
    .await;
    assert_eq!(status, 403);

    // The owner updates; properties are checked again.
    let (status, body) = rest(
        &server,
        &a_token,
        "PATCH",
        format!("/v1/organizations/{org}?updateMask=name,properties"),
        Some(json!({"name": "Acme Ltd", "properties": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"]["name"], "Acme Ltd");
    let (status, body) = rest(
        &server,
        &a_token,
        "PATCH",
        format!("/v1/organizations/{org}?updateMask=properties"),
        Some(json!({"properties": {"plan": 3}})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_PROPERTY"));

    // The owner cannot be removed, demoted or leave.
    let (status, body) = rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}/members/{a}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "CANNOT_REMOVE_OWNER"));
    let (status, body) = rest(
        &server,
        &admin,
        "PATCH",
        format!("/v1/organizations/{org}/members/{a}?updateMask=role"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "OWNER_ROLE_NOT_ASSIGNABLE"));
    let (status, body) =
        rest(&server, &a_token, "POST", format!("/v1/me/organizations/{org}:leave"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "OWNER_CANNOT_LEAVE"));
    assert_eq!(owners(&server, &org), a);

    // Roles: system roles stay; custom roles hold only what their creator holds.
    let (status, body) =
        rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}/roles/{owner_role}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "SYSTEM_ROLE_IMMUTABLE"));
    for (scopes, reason, code) in [
        (json!(["org.organizations.delete"]), "SCOPE_NOT_HELD", 403),
        (json!(["org.feature_flags.update"]), "SCOPE_NOT_HELD", 403),
        (json!(["no.such.permission"]), "UNKNOWN_SCOPE", 400),
    ] {
        let (status, body) = rest(
            &server,
            &a_token,
            "POST",
            format!("/v1/organizations/{org}/roles"),
            Some(json!({"name": "auditor", "scopes": [{"resource": "mgpass", "scopes": scopes}]})),
        )
        .await;
        assert_eq!((status, rest_reason(&body).as_str()), (code, reason), "{scopes}");
    }
    let (status, auditor) = rest(
        &server,
        &a_token,
        "POST",
        format!("/v1/organizations/{org}/roles"),
        Some(json!({"name": "auditor", "scopes": [{"resource": "mgpass", "scopes": ["org.invitations.read", "org.members.read"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{auditor}");
    let (status, body) =
        rest(&server, &a_token, "POST", format!("/v1/organizations/{org}/roles"), Some(json!({"name": "auditor"})))
            .await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "ORG_ROLE_NAME_TAKEN"));
    // B becomes auditor and may now read invitations, which a plain member may not.
    let (status, _) = rest(&server, &b_token, "GET", format!("/v1/organizations/{org}/invitations"), None).await;
    assert_eq!(status, 403);
    let (status, body) = rest(
        &server,
        &a_token,
        "PATCH",
        format!("/v1/organizations/{org}/members/{b}?updateMask=role"),
        Some(json!({"role": "auditor"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = rest(&server, &b_token, "GET", format!("/v1/organizations/{org}/invitations"), None).await;
    assert_eq!(status, 200, "{body}");
    let auditor_id = auditor["orgRole"]["id"].as_str().unwrap();
    let (status, body) =
        rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}/roles/{auditor_id}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "ORG_ROLE_IN_USE"));

    // An org admin cannot hand out a role giving more than their own (a custom role made by a
    // global admin with the flag permission).
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        format!("/v1/organizations/{org}/roles"),
        Some(json!({"name": "flagger", "scopes": [{"resource": "mgpass", "scopes": ["org.feature_flags.update"]}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = add_member(&server, &a_token, &org, &c, "flagger").await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "SCOPE_NOT_HELD"));

    // Feature flags: set by a global admin (organization admins only read them), cached, read.
    let (status, body) = rest(
        &server,
        &a_token,
        "PUT",
        format!("/v1/organizations/{org}/featureFlags/beta"),
        Some(json!({"boolValue": true})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    for (name, flag) in
        [("beta", json!({"boolValue": true, "includeInToken": true})), ("tier", json!({"stringValue": "gold"}))]
    {
        let (status, body) =
            rest(&server, &admin, "PUT", format!("/v1/organizations/{org}/featureFlags/{name}"), Some(flag)).await;
        assert_eq!(status, 200, "{body}");
    }
    for (name, flag) in [
        ("bad name", json!({"boolValue": true})),
        ("empty", json!({})),
        ("long", json!({"stringValue": "x".repeat(257)})),
    ] {
        let (status, body) =
            rest(&server, &admin, "PUT", format!("/v1/organizations/{org}/featureFlags/{name}"), Some(flag)).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "{name}");
    }
    let (status, body) = rest(&server, &a_token, "GET", format!("/v1/organizations/{org}/featureFlags"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["featureFlags"][0]["name"], "beta");
    assert_eq!(body["featureFlags"][1]["stringValue"], "gold");
    let (status, body) =
        rest(&server, &admin, "DELETE", format!("/v1/organizations/{org}/featureFlags/nope"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "FEATURE_FLAG_NOT_FOUND"));

    // Tokens list memberships.
    let b_token = server.login("member@example.com", PW).await;
    assert_eq!(claims(&b_token)["orgs"], json!([{"id": org, "role": "auditor"}]));
    let (status, body) = rest(&server, &b_token, "GET", "/v1/me/organizations", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["memberships"][0]["role"], "auditor");

    // Leaving: the member is gone, and the organization is no longer visible to them.
    let (status, body) =
        rest(&server, &b_token, "POST", format!("/v1/me/organizations/{org}:leave"), Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = rest(&server, &b_token, "GET", format!("/v1/organizations/{org}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));
    let (status, body) =
        rest(&server, &b_token, "POST", format!("/v1/me/organizations/{org}:leave"), Some(json!({}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));

    // Deleting takes everything with it.
    let (status, _) = rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}"), None).await;
    assert_eq!(status, 200);
    for table in ["organizations", "org_members", "org_roles", "org_feature_flags"] {
        assert_eq!(psql(&server.database_url, &format!("SELECT count(*) FROM {table}")), "0", "{table}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_can_be_restricted_to_admins() {
    let server = TestServer::start_with(&[("MGPASS_ORGANIZATIONS__REGISTRATION_PUBLIC", "false")]).await;
    let admin = server.admin_token().await;
    let (a, a_token) = user(&server, &admin, "someone@example.com").await;
    let (status, body) = rest(&server, &a_token, "POST", "/v1/me/organizations", Some(json!({"name": "Nope"}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "ORGANIZATION_REGISTRATION_RESTRICTED"));
    let (status, body) = rest(
        &server,
        &a_token,
        "POST",
        "/v1/organizations",
        Some(json!({"organization": {"name": "Nope"}, "ownerUserId": a})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM organizations"), "0");
    // Admins create organizations, for themselves or for a user.
    create_my_org(&server, &admin, "Admin's").await;
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        "/v1/organizations",
        Some(json!({"organization": {"name": "For A"}, "ownerUserId": a})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"]["ownerUserId"], a.as_str());
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        "/v1/organizations",
        Some(json!({"organization": {"name": "Ghost"}, "ownerUserId": uuid::Uuid::new_v4().to_string()})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "USER_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_transfers_never_make_two_owners() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (a, a_token) = user(&server, &admin, "first@example.com").await;
    let org = create_my_org(&server, &a_token, "Contested").await;
    let mut members = Vec::new();
    for i in 0..8 {
        let id = create_user(&server, &admin, &format!("m{i}@example.com")).await;
        let (status, body) = add_member(&server, &a_token, &org, &id, "admin").await;
        assert_eq!(status, 200, "{body}");
        members.push(id);
    }
    // The owner hands the organization to eight people at once: one wins, the others find the
    // caller no longer the owner.
    let calls = members.iter().map(|m| {
        let (server, token, org) = (&server, a_token.clone(), org.clone());
        async move {
            rest(
                server,
                &token,
                "POST",
                format!("/v1/organizations/{org}:transferOwnership"),
                Some(json!({"newOwnerUserId": m})),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let won: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|(s, b)| *s == 200 || (*s == 403 && rest_reason(b) == "PERMISSION_DENIED")),
        "{results:?}"
    );
    let owner = owners(&server, &org);
    assert_eq!(won[0].1["organization"]["ownerUserId"], owner.as_str());
    assert_eq!(
        psql(&server.database_url, &format!("SELECT owner_user_id FROM organizations WHERE id = '{org}'")),
        owner
    );
    assert_eq!(psql(&server.database_url, &format!("SELECT role FROM org_members WHERE user_id = '{a}'")), "admin");

    // A global admin's concurrent transfers all succeed, one after the other: still one owner.
    let calls = members.iter().map(|m| {
        let (server, token, org) = (&server, admin.clone(), org.clone());
        async move {
            rest(
                server,
                &token,
                "POST",
                format!("/v1/organizations/{org}:transferOwnership"),
                Some(json!({"newOwnerUserId": m})),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(owners(&server, &org).split(',').count(), 1);
    let (status, body) = rest(
        &server,
        &admin,
        "POST",
        format!("/v1/organizations/{org}:transferOwnership"),
        Some(json!({"newOwnerUserId": uuid::Uuid::new_v4().to_string()})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_MEMBER_NOT_FOUND"));
}

/// The token of an invitation link in an email body.
fn invitation_token(text: &str) -> String {
    let start = text.find("/invitations/").expect("an invitation link") + "/invitations/".len();
    text[start..].split(|c: char| c.is_whitespace() || c == '"' || c == '<').next().unwrap().to_string()
}

/// Signing up with an invitation token: allowed even where registration is restricted, only
/// with the invited email, which counts as verified; the membership comes with the account, and a
/// bad or spent token creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn sign_up_with_an_invitation_joins_the_organization() {
    let smtp = SmtpServer::start();
    let server = TestServer::start_with(&[
        ("MGPASS_DELIVERY__SMTP_URL", &smtp.url()),
        ("MGPASS_DELIVERY__EMAIL_FROM", "mgpass <no-reply@mgpass.test>"),
        ("MGPASS_DELIVERY__POLL_INTERVAL_MS", "100"),
        ("MGPASS_IDENTITY__REGISTRATION_PUBLIC", "false"),
    ])
    .await;
    let admin = server.admin_token().await;
    let (_, a_token) = user(&server, &admin, "host@example.com").await;
    let org = create_my_org(&server, &a_token, "Guests Welcome").await;
    let (status, body) = rest(
        &server,
        &a_token,
        "POST",
        format!("/v1/organizations/{org}/invitations"),
        Some(json!({"email": "guest@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    let token = invitation_token(mail[0].text.as_deref().unwrap_or_default());
    let register = |email: &str, token: &str| {
        let body = json!({"user": {"email": email}, "password": PW, "invitationToken": token});
        let server = &server;
        async move { rest(server, "", "POST", "/v1/auth/register", Some(body)).await }
    };

    // Restricted registration stays restricted without a token.
    let (status, body) = rest(
        &server,
        "",
        "POST",
        "/v1/auth/register",
        Some(json!({"user": {"email": "guest@example.com"}, "password": PW})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "REGISTRATION_RESTRICTED"));
    // Another email, or a token that is not one: refused, nothing created.
    let (status, body) = register("crasher@example.com", &token).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_EMAIL_MISMATCH"), "{body}");
    let (status, body) = register("guest@example.com", "forged").await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "INVITATION_NOT_FOUND"), "{body}");
    assert_eq!(
        psql(
            &server.database_url,
            "SELECT count(*) FROM users WHERE email <> 'host@example.com' AND email NOT LIKE 'admin%'"
        ),
        "0"
    );

    // The invited email: an account, verified, in the organization with the invited role.
    let (status, body) = register("Guest@Example.com", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organizationId"], org.as_str());
    assert_eq!(body["user"]["emailVerified"], true);
    assert_ne!(body["emailVerificationNeeded"], true);
    let guest = server.login("guest@example.com", PW).await;
    assert_eq!(claims(&guest)["orgs"], json!([{"id": org, "role": "viewer"}]));
    // The token is spent: a second sign-up with it creates nothing.
    let (status, body) = register("guest@example.com", &token).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_NOT_PENDING"), "{body}");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM users WHERE lower(email) = 'guest@example.com'"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn invitations_by_email() {
    let smtp = SmtpServer::start();
    let server = TestServer::start_with(&[
        ("MGPASS_DELIVERY__SMTP_URL", &smtp.url()),
        ("MGPASS_DELIVERY__EMAIL_FROM", "mgpass <no-reply@mgpass.test>"),
        ("MGPASS_DELIVERY__POLL_INTERVAL_MS", "100"),
    ])
    .await;
    let admin = server.admin_token().await;
    let (_, a_token) = user(&server, &admin, "boss@example.com").await;
    let org = create_my_org(&server, &a_token, "Inviters").await;
    let invite = |email: &str, role: &str| {
        let (server, token, org) = (&server, a_token.clone(), org.clone());
        let body = json!({"email": email, "role": role});
        async move { rest(server, &token, "POST", format!("/v1/organizations/{org}/invitations"), Some(body)).await }
    };
    for (email, role, status, reason) in [
        ("not-an-email", "member", 400, "INVALID_EMAIL"),
        ("new@example.com", "owner", 400, "OWNER_ROLE_NOT_ASSIGNABLE"),
        ("new@example.com", "ghost", 404, "ORG_ROLE_NOT_FOUND"),
        ("boss@example.com", "member", 409, "ALREADY_ORGANIZATION_MEMBER"),
    ] {
        let (got, body) = invite(email, role).await;
        assert_eq!((got, rest_reason(&body).as_str()), (status, reason), "{email} {role}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM org_invitations"), "0");
    let (status, created) = invite("New@Example.com", "admin").await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["invitation"]["status"], "INVITATION_STATUS_PENDING");
    let (status, body) = invite("new@example.com", "member").await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "INVITATION_PENDING"));

    let mail = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mail[0].rcpt_tos, vec!["New@Example.com".to_string()]);
    let text = mail[0].text.clone().unwrap_or_default();
    assert!(text.contains("Inviters") && text.contains("admin"), "{text}");
    let token = invitation_token(&text);
    assert!(token.len() >= 43, "{token}");
    // Stored only as its SHA-256.
    let matches = psql(
        &server.database_url,
        &format!("SELECT count(*) FROM org_invitations WHERE token_hash = sha256(convert_to('{token}', 'UTF8'))"),
    );
    assert_eq!(matches, "1");
    assert_eq!(
        psql(
            &server.database_url,
            &format!("SELECT count(*) FROM org_invitations WHERE token_hash::text LIKE '%{token}%'")
        ),
        "0"
    );

    // The page behind the link: the invitee has no account yet.
    let (status, body) = rest(&server, "", "POST", "/v1/invitations:lookup", Some(json!({"token": token}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["organizationName"].as_str(), body["accountExists"].as_bool()), (Some("Inviters"), None));
    let (status, body) = rest(&server, "", "POST", "/v1/invitations:lookup", Some(json!({"token": "nope"}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "INVITATION_NOT_FOUND"));

    // Someone else signed in cannot use it.
    let (_, other) = user(&server, &admin, "intruder@example.com").await;
    let (status, body) =
        rest(&server, &other, "POST", "/v1/me/invitations:accept", Some(json!({"token": token}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_EMAIL_MISMATCH"));

    // The invitee signs up, signs in and accepts; the membership exists, the token is spent.
    let (status, body) = rest(
        &server,
        "",
        "POST",
        "/v1/auth/register",
        Some(json!({"user": {"email": "new@example.com"}, "password": PW})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let invitee = server.login("new@example.com", PW).await;
    let (status, body) =
        rest(&server, &invitee, "POST", "/v1/me/invitations:accept", Some(json!({"token": token}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["role"], "admin");
    let (status, body) =
        rest(&server, &invitee, "POST", "/v1/me/invitations:accept", Some(json!({"token": token}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_NOT_PENDING"));
    assert_eq!(psql(&server.database_url, "SELECT email_verified FROM users WHERE email = 'new@example.com'"), "t");
    let invitee = server.login("new@example.com", PW).await;
    assert_eq!(claims(&invitee)["orgs"][0]["role"], "admin");

    // Revoking: the token stops working.
    let (status, second) = invite("later@example.com", "viewer").await;
    assert_eq!(status, 200, "{second}");
    let id = second["invitation"]["id"].as_str().unwrap();
    let (status, body) =
        rest(&server, &a_token, "POST", format!("/v1/organizations/{org}/invitations/{id}:revoke"), Some(json!({})))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invitation"]["status"], "INVITATION_STATUS_REVOKED");
    let (status, body) =
        rest(&server, &a_token, "POST", format!("/v1/organizations/{org}/invitations/{id}:revoke"), Some(json!({})))
            .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_NOT_PENDING"));
    let mail = smtp.wait_for(2, Duration::from_secs(15)).await;
    let revoked = invitation_token(mail[1].text.as_deref().unwrap_or_default());
    let (status, body) = rest(&server, "", "POST", "/v1/invitations:lookup", Some(json!({"token": revoked}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_NOT_PENDING"));

    // Expired tokens are refused.
    let (status, third) = invite("slow@example.com", "viewer").await;
    assert_eq!(status, 200, "{third}");
    psql(
        &server.database_url,
        "UPDATE org_invitations SET expires_at = now() - interval '1 minute' WHERE email = 'slow@example.com'",
    );
    let mail = smtp.wait_for(3, Duration::from_secs(15)).await;
    let expired = invitation_token(mail[2].text.as_deref().unwrap_or_default());
    let (status, body) = rest(&server, "", "POST", "/v1/invitations:lookup", Some(json!({"token": expired}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVITATION_EXPIRED"));
    let (status, body) = rest(
        &server,
        &a_token,
        "GET",
        format!("/v1/organizations/{org}/invitations?status=INVITATION_STATUS_EXPIRED"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invitations"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_tokens_by_token_exchange() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (_, a_token) = user(&server, &admin, "lead@example.com").await;
    let (b, _) = user(&server, &admin, "dev@example.com").await;
    let (_, c_token) = user(&server, &admin, "stranger@example.com").await;
    let org = create_my_org(&server, &a_token, "Tokens Inc").await;
    let other = create_my_org(&server, &c_token, "Elsewhere").await;
    let (status, _) = add_member(&server, &a_token, &org, &b, "member").await;
    assert_eq!(status, 200);
    let (status, _) = rest(
        &server,
        &admin,
        "PUT",
        format!("/v1/organizations/{org}/featureFlags/beta"),
        Some(json!({"boolValue": true, "includeInToken": true})),
    )
    .await;
    assert_eq!(status, 200);
    let app = mgpass_e2e::oauth::create_app(
        &server,
        &admin,
        json!({
            "name": "Console", "applicationType": "APPLICATION_TYPE_SPA", "firstParty": true,
            "redirectUris": ["https://console.example.com/cb"],
            "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_TOKEN_EXCHANGE"],
            "allowedResources": [{"resource": "mgpass", "scopes": ["org.members.read", "org.organizations.read", "org.members.create"]}]
        }),
    )
    .await;
    let b_token = server.login("dev@example.com", PW).await;
    assert_eq!(claims(&b_token)["orgs"], json!([{"id": org, "role": "member"}]));
    let exchange = |subject: String, org: String, scope: &'static str| {
        let (server, client) = (&server, app.client_id.clone());
        async move {
            mgpass_e2e::oauth::form(
                server,
                "/oauth2/token",
                None,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("client_id", &client),
                    ("subject_token", &subject),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                    ("organization_id", &org),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange(b_token.clone(), org.clone(), "org:flags").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    let org_token = body["access_token"].as_str().unwrap().to_string();
    let c = claims(&org_token);
    assert_eq!(c["org_id"], org.as_str());
    assert_eq!(c["org_flags"], json!({"beta": true}));
    // The member role gives read scopes; `org.members.create` is allowed to the app but not held.
    let scopes: Vec<&str> = c["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"org.members.read") && scopes.contains(&"org.organizations.read"), "{c}");
    assert!(!scopes.contains(&"org.members.create"), "{c}");
    let (status, _) = exchange(b_token.clone(), org.clone(), "org.members.read").await;
    assert_eq!(status, 200);

    // The organization token acts in its organization only, never globally.
    let (status, body) = rest(&server, &org_token, "GET", format!("/v1/organizations/{org}/members"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rest(&server, &org_token, "GET", format!("/v1/organizations/{other}/members"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"));
    let (status, _) = rest(&server, &org_token, "GET", "/v1/organizations", None).await;
    assert_eq!(status, 403);

    // Not a member, unknown organization, bad subject token.
    let (status, body) = exchange(b_token.clone(), other.clone(), "").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
    let (status, body) = exchange("not-a-token".into(), org.clone(), "").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (status, body) = exchange(org_token.clone(), org.clone(), "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "an organization token is not exchanged again: {body}"
    );

    // Over gRPC too; removal from the organization stops the organization token within a second.
    let mut tokens = mgpass_e2e::proto::oauth::token_service_client::TokenServiceClient::new(server.channel().await);
    let resp = tokens
        .exchange_token(mgpass_e2e::proto::oauth::ExchangeTokenRequest {
            client_id: app.client_id.clone(),
            subject_token: b_token.clone(),
            organization_id: org.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(claims(&resp.access_token)["org_id"], org.as_str());
    let err = tokens
        .exchange_token(mgpass_e2e::proto::oauth::ExchangeTokenRequest {
            client_id: app.client_id.clone(),
            subject_token: b_token.clone(),
            organization_id: other.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "NOT_ORGANIZATION_MEMBER");
    let (status, _) = rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}/members/{b}"), None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = rest(&server, &org_token, "GET", format!("/v1/organizations/{org}/members"), None).await;
    assert_eq!(status, 404);

    // Over gRPC the org-scoped permission works the same way.
    let mut orgs = pb::organization_service_client::OrganizationServiceClient::new(server.channel().await);
    let got = orgs
        .get_organization(authed(pb::GetOrganizationRequest { organization_id: org.clone() }, &a_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.organization.unwrap().name, "Tokens Inc");
    let err = orgs
        .get_organization(authed(pb::GetOrganizationRequest { organization_id: org.clone() }, &b_token))
        .await
        .unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::NotFound, "ORGANIZATION_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn organization_tokens_by_the_authorization_code_flow() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use mgpass_e2e::browser::{Browser, query};

    const REDIRECT: &str = "https://console.example.com/cb";
    const VERIFIER: &str = "org-flow-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (_, a_token) = user(&server, &admin, "boss@example.com").await;
    let (b, _) = user(&server, &admin, "staff@example.com").await;
    let (_, c_token) = user(&server, &admin, "outsider@example.com").await;
    let org = create_my_org(&server, &a_token, "Flow Inc").await;
    let other = create_my_org(&server, &c_token, "Not Yours").await;
    assert_eq!(add_member(&server, &a_token, &org, &b, "member").await.0, 200);
    let app = mgpass_e2e::oauth::create_app(
        &server,
        &admin,
        json!({
            "name": "Console", "applicationType": "APPLICATION_TYPE_SPA", "firstParty": true,
            "redirectUris": [REDIRECT],
            "grantTypes": ["GRANT_TYPE_AUTHORIZATION_CODE", "GRANT_TYPE_REFRESH_TOKEN"],
            "allowedScopes": ["openid", "offline_access"],
            "allowedResources": [{"resource": "mgpass", "scopes": ["org.members.read", "org.members.create"]}]
        }),
    )
    .await;
    let challenge = URL_SAFE_NO_PAD.encode(mgpass_server::crypto::secret::digest(VERIFIER));
    let authorize = |organization: &str| {
        format!(
            "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid%20offline_access%20org.members.read%20org.members.create&code_challenge={challenge}&code_challenge_method=S256&organization={organization}",
            app.client_id
        )
    };
    let redeem = |code: String| {
        let (server, client_id) = (&server, app.client_id.clone());
        async move {
            mgpass_e2e::oauth::form(
                server,
                "/oauth2/token",
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await
        }
    };

    // A member gets an organization token: `org_id`, and only what the member role holds.
    let browser = Browser::new(&server.url(""));
    let page = browser.authorize(&authorize(&org), "staff@example.com", PW).await;
    let callback = query(page.left_to.as_deref().expect("back at the client"));
    let (status, body) = redeem(callback["code"].clone()).await;
    assert_eq!(status, 200, "{body}");
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["org_id"], org.as_str(), "{access}");
    let scopes: Vec<&str> = access["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"org.members.read") && !scopes.contains(&"org.members.create"), "{access}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["org_id"], org.as_str());
    let org_token = body["access_token"].as_str().unwrap().to_string();
    let (status, _) = rest(&server, &org_token, "GET", format!("/v1/organizations/{org}/members"), None).await;
    assert_eq!(status, 200);

    // Refreshing keeps it an organization token.
    let refresh = body["refresh_token"].as_str().expect("a refresh token").to_string();
    let (status, body) = mgpass_e2e::oauth::form(
        &server,
        "/oauth2/token",
        None,
        &[("grant_type", "refresh_token"), ("client_id", &app.client_id), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["org_id"], org.as_str());
    let refresh = body["refresh_token"].as_str().unwrap().to_string();

    // Another organization: access_denied back at the client, and no code.
    let page = browser.authorize(&authorize(&other), "staff@example.com", PW).await;
    let callback = query(page.left_to.as_deref().expect("back at the client"));
    assert_eq!(callback.get("error").map(String::as_str), Some("access_denied"), "{callback:?}");
    assert!(!callback.contains_key("code"));
    // Not an id: refused before anything else.
    let page = browser.authorize(&authorize("acme"), "staff@example.com", PW).await;
    let callback = query(page.left_to.as_deref().expect("back at the client"));
    assert_eq!(callback.get("error").map(String::as_str), Some("invalid_request"), "{callback:?}");

    // A resource server introspecting the organization token sees it active while the
    // membership lasts, and inactive once it ends.
    let api = mgpass_e2e::oauth::create_app(
        &server,
        &admin,
        json!({"name": "Backend", "applicationType": "APPLICATION_TYPE_M2M", "grantTypes": ["GRANT_TYPE_CLIENT_CREDENTIALS"]}),
    )
    .await;
    let introspect = || {
        let (server, api, token) = (&server, &api, org_token.clone());
        async move {
            mgpass_e2e::oauth::form(
                server,
                "/oauth2/introspect",
                Some((&api.client_id, &api.secret)),
                &[("token", &token)],
            )
            .await
        }
    };
    let (status, body) = introspect().await;
    assert_eq!((status, &body["active"], &body["org_id"]), (200, &json!(true), &json!(org)), "{body}");

    // Removed from the organization: the refresh fails (and the grant ends).
    let (status, _) = rest(&server, &a_token, "DELETE", format!("/v1/organizations/{org}/members/{b}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = introspect().await;
    assert_eq!((status, &body["active"]), (200, &json!(false)), "{body}");
    let (status, body) = mgpass_e2e::oauth::form(
        &server,
        "/oauth2/token",
        None,
        &[("grant_type", "refresh_token"), ("client_id", &app.client_id), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// An organization always has an owner: its owner's account cannot be deleted until the
/// ownership moves; afterwards it can, and the organization stays with the new owner.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_cannot_be_deleted_out_from_under_an_organization() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (a, a_token) = user(&server, &admin, "founder@example.com").await;
    let (b, _) = user(&server, &admin, "successor@example.com").await;
    let org = create_my_org(&server, &a_token, "Kept Owned").await;
    assert_eq!(add_member(&server, &a_token, &org, &b, "admin").await.0, 200);

    let (status, body) = rest(&server, &admin, "DELETE", format!("/v1/users/{a}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "ORGANIZATION_OWNER"), "{body}");
    assert_eq!(owners(&server, &org), a, "nothing changed");
    let (status, _) = rest(
        &server,
        &a_token,
        "POST",
        format!("/v1/organizations/{org}:transferOwnership"),
        Some(json!({"newOwnerUserId": b})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = rest(&server, &admin, "DELETE", format!("/v1/users/{a}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(owners(&server, &org), b);
    assert_eq!(psql(&server.database_url, &format!("SELECT owner_user_id FROM organizations WHERE id = '{org}'")), b);
}
