//! The backends' permissions end to end: permission groups, grants to users, roles and groups
//! (on every object or one), attribute-based rules with CEL conditions, the decision calls, and
//! cache invalidation on one instance and across two instances of one database.

use std::time::{Duration, Instant};

use mgpass_e2e::{TestServer, authed, fresh_database, grpc_reason, proto::access as pb, psql, rest, rest_reason};
use pb::permission_service_client::PermissionServiceClient;
use serde_json::{Value, json};

const GROUPS_ON: [(&str, &str); 1] = [("MGPASS_ACCESS__USER_GROUPS_ACTIVE", "true")];

async fn create_user(server: &TestServer, token: &str, email: &str) -> String {
    let (status, body) = rest(
        server,
        token,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "P", "familyName": "Q"}, "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

/// A call that must succeed (`body` null: none).
async fn ok(server: &TestServer, token: &str, method: &str, path: impl AsRef<str>, body: Value) -> Value {
    let path = path.as_ref().to_string();
    let (status, answer) = rest(server, token, method, &path, (!body.is_null()).then_some(body)).await;
    assert_eq!(status, 200, "{method} {path}: {answer}");
    answer
}

/// `projectManagement` with `createProject` and `editProject`.
async fn project_permissions(server: &TestServer, token: &str) -> Value {
    ok(
        server,
        token,
        "POST",
        "/v1/permissionGroups",
        json!({"name": "projectManagement", "description": "Projects",
               "permissions": [{"name": "createProject"}, {"name": "editProject", "description": "Edit"}]}),
    )
    .await
}

async fn grant(
    server: &TestServer,
    token: &str,
    permission: &str,
    grantee: Value,
    object: Option<(&str, &str)>,
) -> String {
    let mut g = json!({"permission": permission, "grantee": grantee});
    if let Some((t, i)) = object {
        g["object"] = json!({"objectType": t, "objectId": i});
    }
    let body = ok(server, token, "POST", "/v1/permissionGrants", g).await;
    body["permissionGrant"]["id"].as_str().unwrap().to_string()
}

async fn check(
    server: &TestServer,
    token: &str,
    user: &str,
    permission: &str,
    object: Option<(&str, &str)>,
    attrs: Value,
) -> Value {
    let mut req = json!({"subject": {"userId": user}, "permission": permission, "objectAttributes": attrs});
    if let Some((t, i)) = object {
        req["object"] = json!({"objectType": t, "objectId": i});
    }
    ok(server, token, "POST", "/v1/permissions:check", req).await
}

fn allowed(answer: &Value) -> bool {
    answer["allowed"] == true
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_groups_crud_and_validation() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let created = project_permissions(&server, &token).await;
    let id = created["permissionGroup"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["permissionGroup"]["permissions"][1]["name"], "editProject");

    for (body, reason, status) in [
        (json!({"name": "projectManagement"}), "PERMISSION_GROUP_NAME_TAKEN", 409),
        (json!({"name": "ProjectManagement"}), "PERMISSION_GROUP_NAME_TAKEN", 409),
        (json!({"name": "has.dot"}), "INVALID_ARGUMENT", 400),
        (json!({"name": "1abc"}), "INVALID_ARGUMENT", 400),
        (json!({"name": "x", "permissions": [{"name": "a b"}]}), "INVALID_ARGUMENT", 400),
        (json!({"name": "y", "permissions": [{"name": "read"}, {"name": "Read"}]}), "PERMISSION_NAME_TAKEN", 409),
    ] {
        let (s, answer) = rest(&server, &token, "POST", "/v1/permissionGroups", Some(body.clone())).await;
        assert_eq!((s, rest_reason(&answer).as_str()), (status, reason), "{body}: {answer}");
    }
    assert_eq!(
        psql(&server.database_url, "SELECT count(*) FROM permission_groups"),
        "1",
        "refused creates wrote nothing"
    );

    // Replacing the list drops the removed permission with its grants.
    let user = create_user(&server, &token, "u@example.com").await;
    let g = grant(&server, &token, "projectManagement.editProject", json!({"userId": user}), None).await;
    let updated = ok(
        &server,
        &token,
        "PATCH",
        format!("/v1/permissionGroups/{id}?updateMask=permissions,description"),
        json!({"description": "new", "permissions": [{"name": "createProject"}, {"name": "archiveProject"}]}),
    )
    .await;
    let names: Vec<&str> = updated["permissionGroup"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["createProject", "archiveProject"]);
    assert_eq!(psql(&server.database_url, &format!("SELECT count(*) FROM permission_grants WHERE id = '{g}'")), "0");
    let (s, answer) = rest(
        &server,
        &token,
        "PATCH",
        format!("/v1/permissionGroups/{id}?updateMask=name"),
        Some(json!({"name": "z"})),
    )
    .await;
    assert_eq!((s, rest_reason(&answer).as_str()), (400, "INVALID_UPDATE_MASK"), "{answer}");

    let (_, listed) = rest(&server, &token, "GET", "/v1/permissionGroups?pageSize=1", None).await;
    assert_eq!(listed["permissionGroups"].as_array().unwrap().len(), 1, "{listed}");
    let (s, _) = rest(&server, &token, "DELETE", format!("/v1/permissionGroups/{id}"), None).await;
    assert_eq!(s, 200);
    let (s, answer) = rest(&server, &token, "GET", format!("/v1/permissionGroups/{id}"), None).await;
    assert_eq!((s, rest_reason(&answer).as_str()), (404, "PERMISSION_GROUP_NOT_FOUND"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_and_decisions() {
    let server = TestServer::start_with(&GROUPS_ON).await;
    let token = server.admin_token().await;
    project_permissions(&server, &token).await;
    let user = create_user(&server, &token, "dev@example.com").await;
    let other = create_user(&server, &token, "other@example.com").await;

    // Bad grants change nothing.
    for (g, reason, status) in [
        (json!({"permission": "nodot", "grantee": {"userId": user}}), "INVALID_ARGUMENT", 400),
        (
            json!({"permission": "projectManagement.deleteProject", "grantee": {"userId": user}}),
            "PERMISSION_NOT_FOUND",
            404,
        ),
        (json!({"permission": "projectManagement.createProject"}), "INVALID_ARGUMENT", 400),
        (
            json!({"permission": "projectManagement.createProject", "grantee": {"userId": uuid::Uuid::new_v4().to_string()}}),
            "USER_NOT_FOUND",
            404,
        ),
        (
            json!({"permission": "projectManagement.createProject", "grantee": {"groupId": uuid::Uuid::new_v4().to_string()}}),
            "GROUP_NOT_FOUND",
            404,
        ),
        (
            json!({"permission": "projectManagement.createProject", "grantee": {"roleId": uuid::Uuid::new_v4().to_string()}}),
            "ROLE_NOT_FOUND",
            404,
        ),
        (
            json!({"permission": "projectManagement.createProject", "grantee": {"userId": user}, "object": {"objectType": "9x", "objectId": "a"}}),
            "INVALID_ARGUMENT",
            400,
        ),
        (
            json!({"permission": "projectManagement.createProject", "grantee": {"userId": user}, "object": {"objectType": "project", "objectId": ""}}),
            "INVALID_ARGUMENT",
            400,
        ),
    ] {
        let (s, answer) = rest(&server, &token, "POST", "/v1/permissionGrants", Some(g.clone())).await;
        assert_eq!((s, rest_reason(&answer).as_str()), (status, reason), "{g}: {answer}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM permission_grants"), "0");

    // A direct grant: allowed, and why; granting it again returns the same grant.
    let denied = check(&server, &token, &user, "projectManagement.createProject", None, json!({})).await;
    assert!(!allowed(&denied), "{denied}");
    let direct = grant(&server, &token, "projectManagement.createProject", json!({"userId": user}), None).await;
    assert_eq!(grant(&server, &token, "projectManagement.createProject", json!({"userId": user}), None).await, direct);
    let answer = check(&server, &token, &user, "projectManagement.createProject", None, json!({})).await;
    assert!(allowed(&answer), "a grant is seen at once on the instance that made it: {answer}");
    assert_eq!(
        (answer["source"].as_str(), answer["permissionGrantId"].as_str()),
        (Some("DECISION_SOURCE_USER"), Some(direct.as_str()))
    );
    let answer = check(&server, &token, &other, "projectManagement.createProject", None, json!({})).await;
    assert!(!allowed(&answer), "{answer}");
    // A grant without object covers every object.
    assert!(allowed(
        &check(&server, &token, &user, "projectManagement.createProject", Some(("project", "p9")), json!({})).await
    ));

    // Through a group, on one object only.
    let (s, body) = rest(&server, &token, "POST", "/v1/groups", Some(json!({"name": "devs"}))).await;
    assert_eq!(s, 200, "{body}");
    let gid = body["group"]["id"].as_str().unwrap().to_string();
    ok(&server, &token, "POST", format!("/v1/groups/{gid}/members"), json!({"userId": user})).await;
    let by_group =
        grant(&server, &token, "projectManagement.editProject", json!({"groupId": gid}), Some(("project", "p1"))).await;
    let answer =
        check(&server, &token, &user, "projectManagement.editProject", Some(("project", "p1")), json!({})).await;
    assert_eq!(
        (answer["source"].as_str(), answer["permissionGrantId"].as_str()),
        (Some("DECISION_SOURCE_GROUP"), Some(by_group.as_str()))
    );
    assert!(!allowed(
        &check(&server, &token, &user, "projectManagement.editProject", Some(("project", "p2")), json!({})).await
    ));
    assert!(!allowed(&check(&server, &token, &user, "projectManagement.editProject", None, json!({})).await));
    assert!(!allowed(
        &check(&server, &token, &other, "projectManagement.editProject", Some(("project", "p1")), json!({})).await
    ));

    // Through a global role, given to the other user with the roles API (a change the database
    // trigger announces: seen within a second).
    let (_, roles) = rest(&server, &token, "GET", "/v1/roles", None).await;
    let role = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_role =
        grant(&server, &token, "projectManagement.editProject", json!({"roleId": role}), Some(("project", "p2"))).await;
    assert!(!allowed(
        &check(&server, &token, &other, "projectManagement.editProject", Some(("project", "p2")), json!({})).await
    ));
    ok(&server, &token, "POST", format!("/v1/roles/{role}:assign"), json!({"userIds": [other]})).await;
    let start = Instant::now();
    loop {
        let answer =
            check(&server, &token, &other, "projectManagement.editProject", Some(("project", "p2")), json!({})).await;
        if allowed(&answer) {
            assert_eq!(
                (answer["source"].as_str(), answer["permissionGrantId"].as_str()),
                (Some("DECISION_SOURCE_ROLE"), Some(by_role.as_str()))
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "a role assignment was not seen within 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // ListPermissions and ListObjects.
    let held = ok(&server, &token, "POST", "/v1/permissions:list", json!({"subject": {"userId": user}})).await;
    let mut listed: Vec<(String, String)> = held["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (h["permission"].as_str().unwrap().to_string(), h["object"]["objectId"].as_str().unwrap_or("*").to_string())
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("projectManagement.createProject".to_string(), "*".to_string()),
            ("projectManagement.editProject".into(), "p1".into())
        ]
    );
    let objects = ok(
        &server,
        &token,
        "POST",
        "/v1/permissions:listObjects",
        json!({"subject": {"userId": user}, "permission": "projectManagement.editProject", "objectType": "project"}),
    )
    .await;
    assert_eq!(objects["objectIds"], json!(["p1"]), "{objects}");
    assert_ne!(objects["allObjects"], true);
    let objects = ok(
        &server,
        &token,
        "POST",
        "/v1/permissions:listObjects",
        json!({"subject": {"userId": user}, "permission": "projectManagement.createProject", "objectType": "project"}),
    )
    .await;
    assert_eq!(objects["allObjects"], true, "{objects}");

    // Removing the membership and revoking grants take effect at once here.
    let (s, _) = rest(&server, &token, "DELETE", format!("/v1/groups/{gid}/members/{user}"), None).await;
    assert_eq!(s, 200);
    assert!(!allowed(
        &check(&server, &token, &user, "projectManagement.editProject", Some(("project", "p1")), json!({})).await
    ));
    let (s, _) = rest(&server, &token, "DELETE", format!("/v1/permissionGrants/{direct}"), None).await;
    assert_eq!(s, 200);
    assert!(!allowed(&check(&server, &token, &user, "projectManagement.createProject", None, json!({})).await));
    let (s, answer) = rest(&server, &token, "DELETE", format!("/v1/permissionGrants/{direct}"), None).await;
    assert_eq!((s, rest_reason(&answer).as_str()), (404, "PERMISSION_GRANT_NOT_FOUND"));

    // Listing grants by grantee.
    let (_, grants) = rest(&server, &token, "GET", format!("/v1/permissionGrants?grantee.roleId={role}"), None).await;
    assert_eq!(grants["permissionGrants"].as_array().map(Vec::len), Some(1), "{grants}");

    // Unknown subjects are refusals; malformed requests are errors (gRPC too).
    let ghost = uuid::Uuid::new_v4().to_string();
    assert!(!allowed(&check(&server, &token, &ghost, "projectManagement.createProject", None, json!({})).await));
    let mut client = PermissionServiceClient::new(server.channel().await);
    let err = client
        .check_permission(authed(
            pb::CheckPermissionRequest { permission: "projectManagement.createProject".into(), ..Default::default() },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::InvalidArgument, "INVALID_ARGUMENT"));
    let user_token = server.login("dev@example.com", "a long enough password").await;
    let (s, answer) = rest(
        &server,
        &user_token,
        "POST",
        "/v1/permissions:check",
        Some(json!({"subject": {"userId": user}, "permission": "projectManagement.createProject"})),
    )
    .await;
    assert_eq!((s, rest_reason(&answer).as_str()), (403, "PERMISSION_DENIED"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn attribute_based_rules() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    project_permissions(&server, &token).await;
    let user = create_user(&server, &token, "abac@example.com").await;

    for (condition, reason) in [
        ("object.attributes.type ==", "INVALID_CONDITION"),
        ("1 + 2", "INVALID_CONDITION"),
        ("account.id == 'x'", "INVALID_CONDITION"),
    ] {
        let rule = json!({"name": "bad", "objectType": "project", "condition": condition,
                          "permissions": ["projectManagement.editProject"], "enabled": true});
        let (s, answer) = rest(&server, &token, "POST", "/v1/abacRules", Some(rule)).await;
        assert_eq!((s, rest_reason(&answer).as_str()), (400, reason), "{condition}: {answer}");
    }
    let rule = json!({"name": "r", "objectType": "project", "condition": "true", "permissions": ["projectManagement.nope"], "enabled": true});
    let (s, answer) = rest(&server, &token, "POST", "/v1/abacRules", Some(rule)).await;
    assert_eq!((s, rest_reason(&answer).as_str()), (404, "PERMISSION_NOT_FOUND"), "{answer}");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM abac_rules"), "0");

    let created = ok(
        &server,
        &token,
        "POST",
        "/v1/abacRules",
        json!({"name": "external projects", "objectType": "project",
               "condition": "object.attributes.type == \"external\" && subject.kind == \"user\"",
               "permissions": ["projectManagement.editProject"], "enabled": true}),
    )
    .await;
    let rule_id = created["abacRule"]["id"].as_str().unwrap().to_string();
    let (s, answer) = rest(
        &server,
        &token,
        "POST",
        "/v1/abacRules",
        Some(json!({"name": "External Projects", "objectType": "project", "condition": "true",
                    "permissions": ["projectManagement.editProject"]})),
    )
    .await;
    assert_eq!((s, rest_reason(&answer).as_str()), (409, "ABAC_RULE_NAME_TAKEN"), "{answer}");

    let answer = check(
        &server,
        &token,
        &user,
        "projectManagement.editProject",
        Some(("project", "p1")),
        json!({"type": "external"}),
    )
    .await;
    assert!(allowed(&answer), "{answer}");
    assert_eq!(
        (answer["source"].as_str(), answer["abacRuleId"].as_str()),
        (Some("DECISION_SOURCE_ABAC_RULE"), Some(rule_id.as_str()))
    );
    for attrs in [json!({"type": "internal"}), json!({})] {
        let answer =
            check(&server, &token, &user, "projectManagement.editProject", Some(("project", "p1")), attrs).await;
        assert!(!allowed(&answer), "{answer}");
    }
    // Other type, other permission, no object: the rule does not apply.
    assert!(!allowed(
        &check(
            &server,
            &token,
            &user,
            "projectManagement.editProject",
            Some(("file", "f")),
            json!({"type": "external"})
        )
        .await
    ));
    assert!(!allowed(
        &check(
            &server,
            &token,
            &user,
            "projectManagement.createProject",
            Some(("project", "p1")),
            json!({"type": "external"})
        )
        .await
    ));
    let objects = ok(
        &server,
        &token,
        "POST",
        "/v1/permissions:listObjects",
        json!({"subject": {"userId": user}, "permission": "projectManagement.editProject", "objectType": "project"}),
    )
    .await;
    assert_eq!(objects["abacRuleIds"], json!([rule_id]), "{objects}");

    // Disabling the rule, or an invalid new condition (refused, rule unchanged).
    let (s, answer) = rest(
        &server,
        &token,
        "PATCH",
        format!("/v1/abacRules/{rule_id}?updateMask=condition"),
        Some(json!({"condition": "object.("})),
    )
    .await;
    assert_eq!((s, rest_reason(&answer).as_str()), (400, "INVALID_CONDITION"), "{answer}");
    ok(&server, &token, "PATCH", format!("/v1/abacRules/{rule_id}?updateMask=enabled"), json!({"enabled": false}))
        .await;
    let answer = check(
        &server,
        &token,
        &user,
        "projectManagement.editProject",
        Some(("project", "p1")),
        json!({"type": "external"}),
    )
    .await;
    assert!(!allowed(&answer), "a disabled rule decides nothing: {answer}");
    let (s, _) = rest(&server, &token, "DELETE", format!("/v1/abacRules/{rule_id}"), None).await;
    assert_eq!(s, 200);
    let (s, answer) = rest(&server, &token, "GET", format!("/v1/abacRules/{rule_id}"), None).await;
    assert_eq!((s, rest_reason(&answer).as_str()), (404, "ABAC_RULE_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_grants_make_one() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    project_permissions(&server, &token).await;
    let user = create_user(&server, &token, "c@example.com").await;
    let calls = (0..20).map(|_| {
        let (server, token, user) = (&server, &token, &user);
        async move {
            grant(server, token, "projectManagement.createProject", json!({"userId": user}), Some(("project", "p")))
                .await
        }
    });
    let ids = futures::future::join_all(calls).await;
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM permission_grants"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_reaches_another_instance_within_a_second() {
    let db = fresh_database();
    // One deployment behind one public URL: a token of either instance is valid on both.
    let env = [("MGPASS_SERVER__PUBLIC_URL", "http://mgpass.test")];
    let a = TestServer::start_on(db.clone(), &env).await;
    let b = TestServer::start_on(db, &env).await;
    let token = a.admin_token().await;
    project_permissions(&a, &token).await;
    let user = create_user(&a, &token, "two@example.com").await;

    // B caches a refusal, then A grants: B must drop it.
    assert!(!allowed(&check(&b, &token, &user, "projectManagement.createProject", None, json!({})).await));
    let id = grant(&a, &token, "projectManagement.createProject", json!({"userId": user}), None).await;
    let wait_for = |want: bool| {
        let (b, token, user) = (&b, &token, &user);
        async move {
            let start = Instant::now();
            loop {
                if allowed(&check(b, token, user, "projectManagement.createProject", None, json!({})).await) == want {
                    return start.elapsed();
                }
                assert!(start.elapsed() < Duration::from_secs(1), "instance B still answers {} after 1 s", !want);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(true).await;
    // Warm B's cache with the allowing decision, then revoke on A.
    for _ in 0..5 {
        assert!(allowed(&check(&b, &token, &user, "projectManagement.createProject", None, json!({})).await));
    }
    let (s, _) = rest(&a, &token, "DELETE", format!("/v1/permissionGrants/{id}"), None).await;
    assert_eq!(s, 200);
    let took = wait_for(false).await;
    eprintln!("revocation seen on instance B after {took:?}");
}

/// Grants to an organization and to an organization role: they reach members acting in that
/// organization (the role's grant only those holding the role), never outside it, never
/// non-members; a membership change is seen at once; unknown grantees are refused.
#[tokio::test(flavor = "multi_thread")]
async fn grants_to_organizations_and_their_roles() {
    let server = TestServer::start_with(&GROUPS_ON).await;
    let token = server.admin_token().await;
    project_permissions(&server, &token).await;
    let lead = create_user(&server, &token, "lead@example.com").await;
    let dev = create_user(&server, &token, "dev@example.com").await;
    let outsider = create_user(&server, &token, "outsider@example.com").await;
    let org = ok(
        &server,
        &token,
        "POST",
        "/v1/organizations",
        json!({"organization": {"name": "Studio"}, "ownerUserId": lead}),
    )
    .await["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&server, &token, "POST", format!("/v1/organizations/{org}/members"), json!({"userId": dev, "role": "member"}))
        .await;
    let roles = ok(&server, &token, "GET", format!("/v1/organizations/{org}/roles"), json!(null)).await;
    let role_id = |name: &str| {
        roles["orgRoles"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };

    for (grantee, reason) in [
        (json!({"organizationId": uuid::Uuid::new_v4().to_string()}), "ORGANIZATION_NOT_FOUND"),
        (json!({"orgRoleId": uuid::Uuid::new_v4().to_string()}), "ORG_ROLE_NOT_FOUND"),
    ] {
        let g = json!({"permission": "projectManagement.createProject", "grantee": grantee});
        let (status, answer) = rest(&server, &token, "POST", "/v1/permissionGrants", Some(g)).await;
        assert_eq!((status, rest_reason(&answer).as_str()), (404, reason), "{answer}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM permission_grants"), "0");

    let to_org = grant(&server, &token, "projectManagement.createProject", json!({"organizationId": org}), None).await;
    let to_owner =
        grant(&server, &token, "projectManagement.editProject", json!({"orgRoleId": role_id("owner")}), None).await;
    let check_in = |user: String, permission: &'static str, organization: Option<String>| {
        let (server, token) = (&server, token.clone());
        async move {
            let mut subject = json!({"userId": user});
            if let Some(org) = organization {
                subject["organizationId"] = json!(org);
            }
            ok(server, &token, "POST", "/v1/permissions:check", json!({"subject": subject, "permission": permission}))
                .await
        }
    };
    // Every member in the organization holds the organization's grant; only the owner the role's.
    let answer = check_in(dev.clone(), "projectManagement.createProject", Some(org.clone())).await;
    assert!(allowed(&answer), "{answer}");
    assert_eq!(
        (answer["source"].as_str(), answer["permissionGrantId"].as_str()),
        (Some("DECISION_SOURCE_ORGANIZATION"), Some(to_org.as_str()))
    );
    assert!(!allowed(&check_in(dev.clone(), "projectManagement.editProject", Some(org.clone())).await));
    let answer = check_in(lead.clone(), "projectManagement.editProject", Some(org.clone())).await;
    assert_eq!(
        (answer["source"].as_str(), answer["permissionGrantId"].as_str()),
        (Some("DECISION_SOURCE_ORG_ROLE"), Some(to_owner.as_str())),
        "{answer}"
    );
    // Outside the organization, or not a member of it: nothing.
    assert!(!allowed(&check_in(dev.clone(), "projectManagement.createProject", None).await));
    assert!(!allowed(&check_in(outsider.clone(), "projectManagement.createProject", Some(org.clone())).await));
    // The member leaves: the grant stops reaching them at once.
    ok(&server, &token, "DELETE", format!("/v1/organizations/{org}/members/{dev}"), json!(null)).await;
    assert!(!allowed(&check_in(dev.clone(), "projectManagement.createProject", Some(org.clone())).await));
    // Deleting the organization takes its grants with it.
    ok(&server, &token, "DELETE", format!("/v1/organizations/{org}"), json!(null)).await;
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM permission_grants"), "0");
}
