//! User groups end to end: the deployment switches, CRUD with names unique per scope, isolation
//! of organization groups, members, authorization, and concurrent writes.

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::access as pb, rest, rest_reason};
use pb::group_service_client::GroupServiceClient;
use serde_json::{Value, json};

const ACTIVE: [(&str, &str); 2] =
    [("MGPASS_ACCESS__USER_GROUPS_ACTIVE", "true"), ("MGPASS_ACCESS__USER_GROUPS_IN_TENANT_LEVEL", "true")];

async fn create_user(server: &TestServer, token: &str, email: &str) -> String {
    let (status, body) = rest(
        server,
        token,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": email, "givenName": "Group", "familyName": "Member"}, "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"]["id"].as_str().unwrap().to_string()
}

async fn create_group(server: &TestServer, token: &str, path: &str, name: &str) -> (u16, Value) {
    rest(server, token, "POST", path, Some(json!({"name": name, "description": "d"}))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn switches_turn_groups_off() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (status, body) = create_group(&server, &token, "/v1/groups", "staff").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "FEATURE_DISABLED"), "{body}");
    let (status, body) = rest(&server, &token, "GET", "/v1/groups", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "FEATURE_DISABLED"), "{body}");
    drop(server);

    let server = TestServer::start_with(&ACTIVE[..1]).await;
    let token = server.admin_token().await;
    let (status, body) = create_group(&server, &token, "/v1/groups", "staff").await;
    assert_eq!(status, 200, "{body}");
    let org = uuid::Uuid::new_v4();
    let (status, body) = create_group(&server, &token, &format!("/v1/organizations/{org}/groups"), "staff").await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "FEATURE_DISABLED"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_members_and_isolation() {
    let server = TestServer::start_with(&ACTIVE).await;
    let token = server.admin_token().await;

    // Global group; names are unique per scope, case-insensitively.
    let (status, body) = create_group(&server, &token, "/v1/groups", "Editors").await;
    assert_eq!(status, 200, "{body}");
    let group = body["group"].clone();
    let gid = group["id"].as_str().unwrap().to_string();
    assert!(group["avatarUrl"].as_str().unwrap().starts_with("https://"), "{group}");
    assert!(group.get("organizationId").is_none_or(|o| o == ""), "{group}");
    let (status, body) = create_group(&server, &token, "/v1/groups", "editors").await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "GROUP_NAME_TAKEN"), "{body}");
    for bad in ["", "   ", &"x".repeat(101)] {
        let (status, body) = create_group(&server, &token, "/v1/groups", bad).await;
        assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ARGUMENT"), "{bad:?}: {body}");
    }

    // Organization groups: the same name in two organizations, each invisible to the other.
    let ghost_org = uuid::Uuid::new_v4();
    let (status, body) =
        create_group(&server, &token, &format!("/v1/organizations/{ghost_org}/groups"), "Editors").await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "ORGANIZATION_NOT_FOUND"), "{body}");
    let mut orgs = Vec::new();
    for name in ["Org A", "Org B"] {
        let (status, body) = rest(&server, &token, "POST", "/v1/me/organizations", Some(json!({"name": name}))).await;
        assert_eq!(status, 200, "{body}");
        orgs.push(body["organization"]["id"].as_str().unwrap().to_string());
    }
    let (org_a, org_b) = (orgs[0].clone(), orgs[1].clone());
    let (status, body) = create_group(&server, &token, &format!("/v1/organizations/{org_a}/groups"), "Editors").await;
    assert_eq!(status, 200, "{body}");
    let ga = body["group"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["group"]["organizationId"], org_a.as_str());
    let (status, _) = create_group(&server, &token, &format!("/v1/organizations/{org_b}/groups"), "Editors").await;
    assert_eq!(status, 200);
    for path in [format!("/v1/organizations/{org_b}/groups/{ga}"), format!("/v1/groups/{ga}")] {
        let (status, body) = rest(&server, &token, "GET", &path, None).await;
        assert_eq!((status, rest_reason(&body).as_str()), (404, "GROUP_NOT_FOUND"), "{path}: {body}");
        let (status, body) = rest(&server, &token, "DELETE", &path, None).await;
        assert_eq!((status, rest_reason(&body).as_str()), (404, "GROUP_NOT_FOUND"), "{path}: {body}");
    }
    let (status, body) = rest(&server, &token, "GET", format!("/v1/organizations/{org_a}/groups/{ga}"), None).await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = rest(&server, &token, "GET", "/v1/groups", None).await;
    assert_eq!(listed["groups"].as_array().unwrap().len(), 1, "global listing holds only global groups: {listed}");
    let (_, listed) = rest(&server, &token, "GET", format!("/v1/organizations/{org_a}/groups"), None).await;
    assert_eq!(listed["groups"].as_array().unwrap().len(), 1, "{listed}");
    let (status, body) = rest(&server, &token, "GET", "/v1/groups/not-a-uuid", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"), "{body}");

    // Update: masked fields only; an org group cannot be renamed through another organization.
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        format!("/v1/groups/{gid}?updateMask=name,description"),
        Some(json!({"name": "Writers", "description": "they write"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["group"]["name"].as_str(), body["group"]["description"].as_str()),
        (Some("Writers"), Some("they write"))
    );
    let (status, body) =
        rest(&server, &token, "PATCH", format!("/v1/groups/{gid}?updateMask=memberCount"), Some(json!({"name": "x"})))
            .await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_UPDATE_MASK"), "{body}");
    let (status, body) = rest(
        &server,
        &token,
        "PATCH",
        format!("/v1/organizations/{org_b}/groups/{ga}?updateMask=name"),
        Some(json!({"name": "stolen"})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "GROUP_NOT_FOUND"), "{body}");

    // Members.
    let alice = create_user(&server, &token, "alice@example.com").await;
    let (status, body) =
        rest(&server, &token, "POST", format!("/v1/groups/{gid}/members"), Some(json!({"userId": alice}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["email"], "alice@example.com");
    assert!(!body["member"]["adderUserId"].as_str().unwrap_or_default().is_empty(), "{body}");
    let (status, body) =
        rest(&server, &token, "POST", format!("/v1/groups/{gid}/members"), Some(json!({"userId": alice}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (409, "ALREADY_GROUP_MEMBER"), "{body}");
    let ghost = uuid::Uuid::new_v4().to_string();
    let (status, body) =
        rest(&server, &token, "POST", format!("/v1/groups/{gid}/members"), Some(json!({"userId": ghost}))).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "USER_NOT_FOUND"), "{body}");
    let (_, body) = rest(&server, &token, "GET", format!("/v1/groups/{gid}"), None).await;
    assert_eq!(body["group"]["memberCount"], 1, "{body}");
    let (_, body) = rest(&server, &token, "GET", format!("/v1/groups/{gid}/members"), None).await;
    assert_eq!(body["members"][0]["userId"], alice.as_str(), "{body}");
    let (_, body) = rest(&server, &token, "GET", format!("/v1/groups?userId={alice}"), None).await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1, "{body}");
    let (status, _) = rest(&server, &token, "DELETE", format!("/v1/groups/{gid}/members/{alice}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = rest(&server, &token, "DELETE", format!("/v1/groups/{gid}/members/{alice}"), None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "GROUP_MEMBER_NOT_FOUND"), "{body}");

    // Authorization: no credential, and a user without the permission.
    let (status, _) = rest(&server, "", "GET", "/v1/groups", None).await;
    assert_eq!(status, 401);
    let alice_token = server.login("alice@example.com", "a long enough password").await;
    let (status, body) = create_group(&server, &alice_token, "/v1/groups", "mine").await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PERMISSION_DENIED"), "{body}");

    // Delete, then gone over gRPC too.
    let (status, _) = rest(&server, &token, "DELETE", format!("/v1/groups/{gid}"), None).await;
    assert_eq!(status, 200);
    let mut client = GroupServiceClient::new(server.channel().await);
    let err = client
        .get_group(authed(pb::GetGroupRequest { group_id: gid.clone(), organization_id: String::new() }, &token))
        .await
        .unwrap_err();
    assert_eq!((err.code(), grpc_reason(&err).as_str()), (tonic::Code::NotFound, "GROUP_NOT_FOUND"));
    assert_eq!(
        mgpass_e2e::psql(
            &server.database_url,
            &format!("SELECT count(*) FROM user_group_members WHERE group_id = '{gid}'")
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_make_one_group_and_one_membership() {
    let server = TestServer::start_with(&ACTIVE).await;
    let token = server.admin_token().await;
    let creates = (0..20).map(|i| {
        let (server, token) = (&server, &token);
        async move { create_group(server, token, "/v1/groups", if i % 2 == 0 { "Team" } else { "TEAM" }).await.0 }
    });
    let statuses = futures::future::join_all(creates).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    let gid = mgpass_e2e::psql(&server.database_url, "SELECT id FROM user_groups");

    let bob = create_user(&server, &token, "bob@example.com").await;
    let adds =
        (0..20).map(|_| {
            let (server, token, gid, bob) = (&server, &token, &gid, &bob);
            async move {
                rest(server, token, "POST", format!("/v1/groups/{gid}/members"), Some(json!({"userId": bob}))).await.0
            }
        });
    let statuses = futures::future::join_all(adds).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    assert_eq!(mgpass_e2e::psql(&server.database_url, "SELECT count(*) FROM user_group_members"), "1");
}

/// Organization admins manage their organization's groups (and only theirs); members read them;
/// nobody without a global permission touches global groups.
#[tokio::test(flavor = "multi_thread")]
async fn organization_admins_manage_their_organizations_groups() {
    let server = TestServer::start_with(&ACTIVE).await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "boss@example.com").await;
    let staff = create_user(&server, &admin, "staff@example.com").await;
    create_user(&server, &admin, "rival@example.com").await;
    let login = |email: &'static str| {
        let server = &server;
        async move { server.login(email, "a long enough password").await }
    };
    let (boss_token, staff_token, rival_token) =
        (login("boss@example.com").await, login("staff@example.com").await, login("rival@example.com").await);
    let my_org = |token: String, name: &'static str| {
        let server = &server;
        async move {
            let (status, body) =
                rest(server, &token, "POST", "/v1/me/organizations", Some(json!({"name": name}))).await;
            assert_eq!(status, 200, "{body}");
            body["organization"]["id"].as_str().unwrap().to_string()
        }
    };
    let org = my_org(boss_token.clone(), "Boss Co").await;
    let rival_org = my_org(rival_token.clone(), "Rival Co").await;
    let (status, body) = rest(
        &server,
        &boss_token,
        "POST",
        format!("/v1/organizations/{org}/members"),
        Some(json!({"userId": staff, "role": "member"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The owner (an organization admin) creates a group in the organization and fills it.
    let (status, body) = create_group(&server, &boss_token, &format!("/v1/organizations/{org}/groups"), "Crew").await;
    assert_eq!(status, 200, "{body}");
    let crew = body["group"]["id"].as_str().unwrap().to_string();
    let (status, body) = rest(
        &server,
        &boss_token,
        "POST",
        format!("/v1/organizations/{org}/groups/{crew}/members"),
        Some(json!({"userId": staff})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Outsiders cannot be put in an organization's group (answered like unknown users).
    let rival = uuid_of(&server, &admin, "rival@example.com").await;
    let (status, body) = rest(
        &server,
        &boss_token,
        "POST",
        format!("/v1/organizations/{org}/groups/{crew}/members"),
        Some(json!({"userId": rival})),
    )
    .await;
    assert_eq!((status, rest_reason(&body).as_str()), (404, "USER_NOT_FOUND"), "{body}");
    // A member reads the organization's groups but does not change them.
    let (status, body) = rest(&server, &staff_token, "GET", format!("/v1/organizations/{org}/groups"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    let (status, _) = create_group(&server, &staff_token, &format!("/v1/organizations/{org}/groups"), "Mine").await;
    assert_eq!(status, 403);
    // Nobody reaches another organization's groups or the global ones through their own role.
    let (status, _) = create_group(&server, &boss_token, &format!("/v1/organizations/{rival_org}/groups"), "Spy").await;
    assert!(status == 403 || status == 404, "{status}");
    let (status, _) = rest(&server, &rival_token, "GET", format!("/v1/organizations/{org}/groups/{crew}"), None).await;
    assert!(status == 403 || status == 404, "{status}");
    let (status, _) = create_group(&server, &boss_token, "/v1/groups", "Global").await;
    assert_eq!(status, 403);
    let (status, _) = rest(&server, &boss_token, "GET", "/v1/groups", None).await;
    assert_eq!(status, 403);

    // Leaving the organization leaves its groups.
    let (status, _) =
        rest(&server, &boss_token, "DELETE", format!("/v1/organizations/{org}/members/{staff}"), None).await;
    assert_eq!(status, 200);
    let (_, body) =
        rest(&server, &boss_token, "GET", format!("/v1/organizations/{org}/groups/{crew}/members"), None).await;
    assert_eq!(body["members"].as_array().map_or(0, Vec::len), 0, "{body}");
}

async fn uuid_of(server: &TestServer, admin: &str, email: &str) -> String {
    let (status, body) = rest(server, admin, "GET", format!("/v1/users?query={email}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["users"][0]["id"].as_str().unwrap().to_string()
}
